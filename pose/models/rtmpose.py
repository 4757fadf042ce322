"""RTMPose (Jiang et al., 2023): a CSPNeXt trunk and the RTMCC head, which reads SimCC x and y vectors.

Written from the published definitions (MMDetection's CSPNeXt, arch P5; MMPose's ``RTMCCHead`` and
``RTMCCBlock``); module names follow them, so MMPose's released checkpoints (``backbone.*``,
``head.*``) load as they are. Batch norms use eps 1e-5 (the RTMPose configs' SyncBN), activations SiLU.
A new network starts as the published one does (the trunk with PyTorch's default initialisation, which
is MMDetection's Kaiming-uniform choice for CSPNeXt; the head as ``RTMCCHead`` initialises it).
"""

from __future__ import annotations

import math

import torch
from toppose.common.config import ModelConfig
from toppose.common.keypoint_sets import keypoint_set
from toppose.common.schema import NUM_KEYPOINTS
from toppose.pose.models.family import FamilySpec, mmpose_keys
from torch import nn

# size -> (deepen factor, widen factor), as in the RTMPose configs
SIZES = {"t": (0.167, 0.375), "s": (0.33, 0.5), "m": (0.67, 0.75), "l": (1.0, 1.0)}
# CSPNeXt P5 stages: (in channels, out channels, blocks, identity add in the blocks, SPP first)
P5_STAGES = (
    (64, 128, 3, True, False),
    (128, 256, 6, True, False),
    (256, 512, 6, True, False),
    (512, 1024, 3, False, True),
)
TRUNK_STRIDE = 32
BN_EPS = 1e-5


class ConvModule(nn.Sequential):
    """Convolution (no bias) -> batch norm -> SiLU, named ``conv``, ``bn``, ``activate`` as in mmcv."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.activate = nn.SiLU(inplace=True)


class DepthwiseSeparableConv(nn.Sequential):
    """A depthwise ``kernel`` convolution then a pointwise one, each with batch norm and SiLU."""

    def __init__(self, cin: int, cout: int, kernel: int) -> None:
        super().__init__()
        self.depthwise_conv = ConvModule(cin, cin, kernel, groups=cin)
        self.pointwise_conv = ConvModule(cin, cout, 1)


class CSPNeXtBlock(nn.Module):
    """3x3 convolution, then a 5x5 depthwise-separable one, with an identity add where asked."""

    def __init__(self, channels: int, add_identity: bool) -> None:
        super().__init__()
        self.conv1 = ConvModule(channels, channels, 3)
        self.conv2 = DepthwiseSeparableConv(channels, channels, 5)
        self.add_identity = add_identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2(self.conv1(x))
        return out + x if self.add_identity else out


class ChannelAttention(nn.Module):
    """Squeeze-and-excite without reduction: ``x * hardsigmoid(fc(mean(x)))``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * nn.functional.hardsigmoid(self.fc(x.mean(dim=(2, 3), keepdim=True)))


class CSPLayer(nn.Module):
    """Cross-stage partial layer: blocks on one half of the channels, concatenated with the other half."""

    def __init__(self, channels: int, num_blocks: int, add_identity: bool) -> None:
        super().__init__()
        mid = channels // 2
        self.main_conv = ConvModule(channels, mid, 1)
        self.short_conv = ConvModule(channels, mid, 1)
        self.final_conv = ConvModule(2 * mid, channels, 1)
        self.blocks = nn.Sequential(*(CSPNeXtBlock(mid, add_identity) for _ in range(num_blocks)))
        self.attention = ChannelAttention(2 * mid)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        both = torch.cat([self.blocks(self.main_conv(x)), self.short_conv(x)], dim=1)
        return self.final_conv(self.attention(both))


class SPPBottleneck(nn.Module):
    """Spatial pyramid pooling: the input and its 5, 9 and 13 max pools (stride 1), concatenated."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = channels // 2
        self.conv1 = ConvModule(channels, mid, 1)
        self.conv2 = ConvModule(4 * mid, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        pools = [nn.functional.max_pool2d(x, k, 1, k // 2) for k in (5, 9, 13)]
        return self.conv2(torch.cat([x, *pools], dim=1))


class CSPNeXt(nn.Module):
    """The CSPNeXt P5 trunk at a depth and width; returns the stride-32 feature map."""

    def __init__(self, deepen: float, widen: float) -> None:
        super().__init__()
        half, full = int(64 * widen // 2), int(64 * widen)
        self.stem = nn.Sequential(ConvModule(3, half, 3, 2), ConvModule(half, half, 3), ConvModule(half, full, 3))
        for index, (cin, cout, blocks, identity, spp) in enumerate(P5_STAGES, start=1):
            cin, cout = int(cin * widen), int(cout * widen)
            layers: list[nn.Module] = [ConvModule(cin, cout, 3, 2)]
            if spp:
                layers.append(SPPBottleneck(cout))
            layers.append(CSPLayer(cout, max(round(blocks * deepen), 1), identity))
            setattr(self, f"stage{index}", nn.Sequential(*layers))
        self.out_channels = int(P5_STAGES[-1][1] * widen)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for index in range(1, len(P5_STAGES) + 1):
            x = getattr(self, f"stage{index}")(x)
        return x


class ScaleNorm(nn.Module):
    """``g * x / max(rms(x), eps)`` over the last dimension (one learned scalar ``g``)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.scale = dim**-0.5
        self.eps = eps
        self.g = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = torch.linalg.vector_norm(x, dim=-1, keepdim=True) * self.scale
        return x / norm.clamp(min=self.eps) * self.g


class Scale(nn.Module):
    """An element-wise learned scale."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class GatedAttentionUnit(nn.Module):
    """RTMCCBlock as RTMPose configures it: gated attention over the keypoint tokens with a squared-ReLU
    kernel, no relative bias, no positional encoding, a scaled shortcut."""

    def __init__(self, dim: int = 256, expansion: int = 2, s: int = 128) -> None:
        super().__init__()
        self.e, self.s = dim * expansion, s
        self.ln = ScaleNorm(dim)
        self.uv = nn.Linear(dim, 2 * self.e + s, bias=False)
        self.gamma = nn.Parameter(torch.rand(2, s))  # U(0, 1), as RTMCCBlock
        self.beta = nn.Parameter(torch.rand(2, s))
        self.o = nn.Linear(self.e, dim, bias=False)
        self.res_scale = Scale(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        uv = nn.functional.silu(self.uv(self.ln(x)))
        u, v, base = torch.split(uv, [self.e, self.e, self.s], dim=-1)
        base = base.unsqueeze(2) * self.gamma + self.beta
        q, k = base[:, :, 0], base[:, :, 1]
        kernel = torch.square(nn.functional.relu(torch.bmm(q, k.transpose(1, 2)) / math.sqrt(self.s)))
        return self.res_scale(x) + self.o(u * torch.bmm(kernel, v))


class RTMCCHead(nn.Module):
    """7x7 convolution to one map per keypoint, flattened to a token, an MLP, the gated attention unit,
    then linear classifiers over the x and y bins."""

    def __init__(
        self,
        in_channels: int,
        input_size: tuple[int, int],
        split_ratio: float = 2.0,
        num_keypoints: int = NUM_KEYPOINTS,
    ) -> None:
        super().__init__()
        width, height = input_size
        tokens = (width // TRUNK_STRIDE) * (height // TRUNK_STRIDE)
        self.final_layer = nn.Conv2d(in_channels, num_keypoints, 7, padding=3)
        self.mlp = nn.Sequential(ScaleNorm(tokens), nn.Linear(tokens, 256, bias=False))
        self.gau = GatedAttentionUnit(256)
        self.cls_x = nn.Linear(256, int(width * split_ratio), bias=False)
        self.cls_y = nn.Linear(256, int(height * split_ratio), bias=False)
        self._init_weights()

    def _init_weights(self) -> None:
        """RTMCCHead's initialisation: the convolution N(0, 0.001) with zero bias, every linear layer N(0, 0.01)."""
        nn.init.normal_(self.final_layer.weight, std=0.001)
        nn.init.zeros_(self.final_layer.bias)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, std=0.01)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = self.gau(self.mlp(torch.flatten(self.final_layer(features), 2)))
        return self.cls_x(tokens), self.cls_y(tokens)


class RTMPose(nn.Module):
    """RTMPose-t/s/m/l: ``(B, 3, H, W)`` -> SimCC logits ``(B, K, W * r)`` and ``(B, K, H * r)``."""

    def __init__(
        self, size: str, input_size: tuple[int, int], split_ratio: float = 2.0, num_keypoints: int = NUM_KEYPOINTS
    ) -> None:
        super().__init__()
        if size not in SIZES:
            raise ValueError(f"unknown RTMPose size {size!r} (choose from {', '.join(SIZES)})")
        self.backbone = CSPNeXt(*SIZES[size])
        self.head = RTMCCHead(self.backbone.out_channels, input_size, split_ratio, num_keypoints)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.backbone(images))


def _build(model_cfg: ModelConfig, split_ratio: float) -> RTMPose:
    size, keypoints = model_cfg.backbone.removeprefix("cspnext_"), len(keypoint_set(model_cfg.keypoints))
    return RTMPose(size, tuple(model_cfg.input_size), split_ratio, keypoints)


FAMILY = FamilySpec(
    name="rtmpose",
    title="RTMPose",
    backbones=tuple(f"cspnext_{size}" for size in SIZES),
    codec="simcc",
    input_multiple=TRUNK_STRIDE,
    heatmap_stride=lambda model_cfg: None,  # SimCC vectors, no heatmaps
    signature="gau.uv.weight",
    to_model_keys=mmpose_keys,
    build=_build,
    fp16_safe=False,  # its features leave fp16's range (issue 26's CUDA measurement)
)
