"""RTMW (Jiang et al., 2024), RTMPose for whole bodies: RTMPose's CSPNeXt trunk giving its stride 8, 16 and 32
maps, a CSPNeXt PAFPN neck, and RTMW's head, which reads SimCC x and y vectors from tokens of two scales.

Written from the published definitions (MMDetection's CSPNeXt with its default ``out_indices`` (2, 3, 4), MMPose's
``CSPNeXtPAFPN``, ``RTMWHead`` and ``RTMCCBlock``, as the ``rtmw-{m,l,x}`` cocktail14 configs set them); module
names follow them, so MMPose's released checkpoints (``backbone.*``, ``neck.*``, ``head.*``) load as they are. The
trunk's blocks are RTMPose's (:mod:`pose.models.rtmpose`). Batch norms use eps 1e-5 (the configs' BN and SyncBN);
activations SiLU, but ReLU in the head's convolutions. A new network starts as the published one does (PyTorch's
default initialisation, MMDetection's Kaiming-uniform choice, for trunk and neck; the head as ``RTMWHead``
initialises it).
"""

from __future__ import annotations

import torch
from toppose.common.config import ModelConfig
from toppose.common.keypoint_sets import keypoint_set
from toppose.pose.models.family import FamilySpec, mmpose_keys
from toppose.pose.models.rtmpose import (
    P5_STAGES,
    TRUNK_STRIDE,
    ConvModule,
    CSPNeXt,
    CSPNeXtBlock,
    GatedAttentionUnit,
    ScaleNorm,
)
from torch import nn

# size -> (deepen factor, widen factor), as in the RTMW configs
SIZES = {"m": (0.67, 0.75), "l": (1.0, 1.0), "x": (1.33, 1.25)}
NECK_BLOCKS = 2  # the configs' num_csp_blocks: not scaled by the deepen factor
HEAD_KERNEL = 7  # the configs' final_layer_kernel_size
TOKEN_DIMS = 256  # the gated attention unit's hidden_dims; each scale's MLP gives half of it
SHUFFLE = 2  # the head's pixel shuffle: stride-32 channels to a stride-16 map
WHOLEBODY = len(keypoint_set("wholebody"))  # the configs' out_channels, 133


class MultiScaleCSPNeXt(CSPNeXt):
    """The CSPNeXt P5 trunk returning the maps of stages 2, 3 and 4 (strides 8, 16, 32)."""

    def __init__(self, deepen: float, widen: float) -> None:
        super().__init__(deepen, widen)
        self.channels = tuple(int(stage[1] * widen) for stage in P5_STAGES[1:])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.stem(x)
        maps = []
        for index in range(1, len(P5_STAGES) + 1):
            x = getattr(self, f"stage{index}")(x)
            maps.append(x)
        return tuple(maps[1:])


class NeckCSPLayer(nn.Module):
    """The PAFPN's cross-stage partial layer: ``cin`` to ``cout`` channels, CSPNeXt blocks without identity add on
    half of ``cout``, no channel attention."""

    def __init__(self, cin: int, cout: int, num_blocks: int = NECK_BLOCKS) -> None:
        super().__init__()
        mid = cout // 2
        self.main_conv = ConvModule(cin, mid, 1)
        self.short_conv = ConvModule(cin, mid, 1)
        self.final_conv = ConvModule(2 * mid, cout, 1)
        self.blocks = nn.Sequential(*(CSPNeXtBlock(mid, add_identity=False) for _ in range(num_blocks)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.final_conv(torch.cat([self.blocks(self.main_conv(x)), self.short_conv(x)], dim=1))


class CSPNeXtPAFPN(nn.Module):
    """Path aggregation over the trunk's maps, finest first: top-down (1x1 reduction of the coarser map, 2x nearest
    upsampling, concatenation, CSP layer), then bottom-up (3x3 stride-2 convolution, concatenation, CSP layer);
    returns the two coarsest outputs (the configs' ``out_indices`` (1, 2), no output convolutions)."""

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        coarse_to_fine = range(len(channels) - 1, 0, -1)
        self.reduce_layers = nn.ModuleList(ConvModule(channels[i], channels[i - 1], 1) for i in coarse_to_fine)
        self.top_down_blocks = nn.ModuleList(NeckCSPLayer(2 * channels[i - 1], channels[i - 1]) for i in coarse_to_fine)
        fine_to_coarse = range(len(channels) - 1)
        self.downsamples = nn.ModuleList(ConvModule(channels[i], channels[i], 3, 2) for i in fine_to_coarse)
        self.bottom_up_blocks = nn.ModuleList(NeckCSPLayer(2 * channels[i], channels[i + 1]) for i in fine_to_coarse)

    def forward(self, maps: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        inner = [maps[-1]]  # finest first; the coarsest replaced by its reduction when the next finer one reads it
        for reduce, block, finer in zip(self.reduce_layers, self.top_down_blocks, reversed(maps[:-1]), strict=True):
            inner[0] = reduce(inner[0])
            upsampled = nn.functional.interpolate(inner[0], scale_factor=2, mode="nearest")
            inner.insert(0, block(torch.cat([upsampled, finer], dim=1)))
        outs = [inner[0]]
        for downsample, block, coarser in zip(self.downsamples, self.bottom_up_blocks, inner[1:], strict=True):
            outs.append(block(torch.cat([downsample(outs[-1]), coarser], dim=1)))
        return outs[-2], outs[-1]


class ConvBNReLU(ConvModule):
    """mmcv's ConvModule (``conv`` without bias, ``bn``) with ReLU, as RTMW's head configures it."""

    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        super().__init__(cin, cout, kernel)
        self.activate = nn.ReLU(inplace=True)


class RTMWHead(nn.Module):
    """The neck's stride-16 and stride-32 maps (two arguments) to SimCC logits, through keypoint tokens of two
    scales: a 7x7 convolution of the stride-32 map to one map per keypoint, flattened, through an MLP; the stride-32
    map pixel-shuffled to stride 16 and convolved, concatenated with the stride-16 map, the same way; both halves
    joined, the gated attention unit, linear classifiers over the bins."""

    def __init__(self, in_channels: int, input_size: tuple[int, int], split_ratio: float, num_keypoints: int) -> None:
        super().__init__()
        width, height = input_size
        tokens = (width // TRUNK_STRIDE) * (height // TRUNK_STRIDE)
        self.ps = nn.PixelShuffle(SHUFFLE)
        self.conv_dec = ConvBNReLU(in_channels // SHUFFLE**2, in_channels // 4, HEAD_KERNEL)
        self.final_layer = ConvBNReLU(in_channels, num_keypoints, HEAD_KERNEL)
        self.final_layer2 = ConvBNReLU(in_channels // SHUFFLE + in_channels // 4, num_keypoints, HEAD_KERNEL)
        self.mlp = nn.Sequential(ScaleNorm(tokens), nn.Linear(tokens, TOKEN_DIMS // 2, bias=False))
        fine_tokens = tokens * SHUFFLE**2
        self.mlp2 = nn.Sequential(ScaleNorm(fine_tokens), nn.Linear(fine_tokens, TOKEN_DIMS // 2, bias=False))
        self.gau = GatedAttentionUnit(TOKEN_DIMS)
        self.cls_x = nn.Linear(TOKEN_DIMS, int(width * split_ratio), bias=False)
        self.cls_y = nn.Linear(TOKEN_DIMS, int(height * split_ratio), bias=False)
        self._init_weights()

    def _init_weights(self) -> None:
        """RTMWHead's initialisation: convolutions N(0, 0.001), linear layers N(0, 0.01), batch norms 1 and 0."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.normal_(module.weight, std=0.001)
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.01)

    def forward(self, fine: torch.Tensor, coarse: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        coarse_tokens = self.mlp(torch.flatten(self.final_layer(coarse), 2))
        fine = torch.cat([self.conv_dec(self.ps(coarse)), fine], dim=1)
        fine_tokens = self.mlp2(torch.flatten(self.final_layer2(fine), 2))
        tokens = self.gau(torch.cat([coarse_tokens, fine_tokens], dim=2))
        return self.cls_x(tokens), self.cls_y(tokens)


class RTMW(nn.Module):
    """RTMW-m/l/x: ``(B, 3, H, W)`` -> SimCC logits ``(B, K, W * r)`` and ``(B, K, H * r)``."""

    def __init__(
        self, size: str, input_size: tuple[int, int], split_ratio: float = 2.0, num_keypoints: int = WHOLEBODY
    ) -> None:
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"unknown RTMW size {size!r} (choose from {', '.join(SIZES)})")
        self.backbone = MultiScaleCSPNeXt(*SIZES[size])
        self.neck = CSPNeXtPAFPN(self.backbone.channels)
        self.head = RTMWHead(self.backbone.out_channels, input_size, split_ratio, num_keypoints)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(*self.neck(self.backbone(images)))


def _build(model_cfg: ModelConfig, split_ratio: float) -> RTMW:
    size, keypoints = model_cfg.backbone.removeprefix("cspnext_"), len(keypoint_set(model_cfg.keypoints))
    return RTMW(size, tuple(model_cfg.input_size), split_ratio, keypoints)


FAMILY = FamilySpec(
    name="rtmw",
    title="RTMW",
    backbones=tuple(f"cspnext_{size}" for size in SIZES),
    codec="simcc",
    input_multiple=TRUNK_STRIDE,
    heatmap_stride=lambda model_cfg: None,  # SimCC vectors, no heatmaps
    signature="mlp2.1.weight",  # the stride-16 tokens' MLP
    to_model_keys=mmpose_keys,
    build=_build,
    extends="rtmpose",  # its head has RTMPose's gated attention unit, and so its signature
    fp16_safe=False,  # RTMPose's trunk
)
