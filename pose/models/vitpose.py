"""ViTPose (Xu et al., 2022): a plain vision transformer and a heatmap decoder, classic (two deconvolutions)
or simple (ReLU, bilinear x4 upsampling, a 3x3 convolution).

Written from the published definition (mmpretrain's ``VisionTransformer`` as MMPose's ViTPose configs set
it up: patch 16 with padding 2, no class token, pre-norm layers, a final norm, LayerNorm eps 1e-6; and
MMPose's ``HeatmapHead``); module names follow it, so MMPose's released checkpoints (``backbone.*``,
``head.*``) load as they are.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from toppose.common.config import ModelConfig
from toppose.common.keypoint_sets import keypoint_set
from toppose.common.schema import NUM_KEYPOINTS
from toppose.pose.models.family import FamilySpec, mmpose_keys
from torch import nn

# backbone -> (embedding width, layers, heads, MLP width)
ARCHS = {"vit_s": (384, 12, 12, 1536), "vit_b": (768, 12, 12, 3072), "vit_l": (1024, 24, 16, 4096),
         "vit_h": (1280, 32, 16, 5120)}  # fmt: skip
PATCH = 16
LN_EPS = 1e-6


class Attention(nn.Module):
    """Multi-head self-attention with one ``qkv`` projection."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        out = nn.functional.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, n, c))


class FeedForward(nn.Module):
    """Linear -> GELU -> linear, named as mmcv's FFN (``layers.0.0``, ``layers.1``)."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Sequential(nn.Linear(dim, hidden), nn.GELU()), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class EncoderLayer(nn.Module):
    """Pre-norm transformer layer: ``x + attn(ln1(x))``, then ``x + ffn(ln2(x))``."""

    def __init__(self, dim: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.attn = Attention(dim, heads)
        self.ln2 = nn.LayerNorm(dim, eps=LN_EPS)
        self.ffn = FeedForward(dim, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x))
        return x + self.ffn(self.ln2(x))


class PatchEmbed(nn.Module):
    """A 16x16 stride-16 convolution with padding 2 (256x192 -> a 16x12 grid of tokens)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.projection = nn.Conv2d(3, dim, PATCH, PATCH, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.projection(x)


class VisionTransformer(nn.Module):
    """The ViT trunk: ``(B, 3, H, W)`` -> ``(B, C, H / 16, W / 16)`` after the final norm."""

    def __init__(self, arch: str, input_size: tuple[int, int]) -> None:
        super().__init__()
        dim, depth, heads, hidden = ARCHS[arch]
        width, height = input_size
        self.grid = (height // PATCH, width // PATCH)
        self.patch_embed = PatchEmbed(dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], dim))
        self.layers = nn.ModuleList(EncoderLayer(dim, heads, hidden) for _ in range(depth))
        self.ln1 = nn.LayerNorm(dim, eps=LN_EPS)
        self.out_channels = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.patch_embed(x)
        b, c, h, w = x.shape
        x = x.flatten(2).transpose(1, 2) + self.pos_embed
        for layer in self.layers:
            x = layer(x)
        return self.ln1(x).transpose(1, 2).reshape(b, c, h, w)


class ClassicHead(nn.Module):
    """Two 4x4 stride-2 deconvolutions (256 channels, batch norm, ReLU), then a 1x1 convolution."""

    def __init__(self, in_channels: int, num_keypoints: int = NUM_KEYPOINTS) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for cin in (in_channels, 256):
            layers += [nn.ConvTranspose2d(cin, 256, 4, 2, 1, bias=False), nn.BatchNorm2d(256), nn.ReLU(inplace=True)]
        self.deconv_layers = nn.Sequential(*layers)
        self.final_layer = nn.Conv2d(256, num_keypoints, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.final_layer(self.deconv_layers(features))


class SimpleHead(nn.Module):
    """ReLU, bilinear x4 upsampling, then a 3x3 convolution."""

    def __init__(self, in_channels: int, num_keypoints: int = NUM_KEYPOINTS) -> None:
        super().__init__()
        self.final_layer = nn.Conv2d(in_channels, num_keypoints, 3, padding=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        upsampled = nn.functional.interpolate(nn.functional.relu(features), scale_factor=4.0, mode="bilinear")
        return self.final_layer(upsampled)


class ViTPose(nn.Module):
    """ViTPose-S/B/L/H: ``(B, 3, H, W)`` -> heatmaps ``(B, K, H / 4, W / 4)``; ``num_deconv`` 2 is the
    classic decoder, 0 the simple one."""

    output_stride = 4

    def __init__(
        self, backbone: str, input_size: tuple[int, int], num_deconv: int = 2, num_keypoints: int = NUM_KEYPOINTS
    ) -> None:
        super().__init__()
        if backbone not in ARCHS:
            raise ValueError(f"unknown ViTPose backbone {backbone!r} (choose from {', '.join(ARCHS)})")
        if num_deconv not in (0, 2):
            raise ValueError(f"ViTPose decoders have 2 deconvolutions (classic) or 0 (simple), not {num_deconv}")
        self.backbone = VisionTransformer(backbone, input_size)
        head = ClassicHead if num_deconv == 2 else SimpleHead
        self.head = head(self.backbone.out_channels, num_keypoints)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images))


def to_model_keys(state: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """MMPose's names (:func:`mmpose_keys`); a ``pos_embed`` saved with a class-token slot (one position more than
    ``model`` has) loses slot 0, as mmpretrain does when it loads such a file into a model without a class token."""
    renamed = mmpose_keys(state, model)
    key = "backbone.pos_embed"
    positions = model.get_parameter(key).shape[1]
    if key in renamed and renamed[key].shape[1] == positions + 1:
        renamed[key] = renamed[key][:, 1:]
    return renamed


def _build(model_cfg: ModelConfig, split_ratio: float) -> ViTPose:
    keypoints = len(keypoint_set(model_cfg.keypoints))
    return ViTPose(model_cfg.backbone, tuple(model_cfg.input_size), model_cfg.num_deconv, keypoints)


FAMILY = FamilySpec(
    name="vitpose",
    title="ViTPose",
    backbones=tuple(ARCHS),
    codec="heatmap",
    input_multiple=PATCH,
    heatmap_stride=lambda model_cfg: ViTPose.output_stride,
    signature="patch_embed.projection.weight",
    to_model_keys=to_model_keys,
    build=_build,
)
