"""HRNet (Sun et al., 2019) with the heatmap head of the top-down configs: a 1x1 convolution on the
highest-resolution branch (stride 4).

Written from the published definition (MMPose's ``HRNet`` backbone and ``HeatmapHead``); module names
follow it, so MMPose's released checkpoints (``backbone.*``, ``head.*``, or ``keypoint_head.*`` in the
0.x files) load as they are. Stages 2-4 have 1, 4 and 3 modules of 4 basic blocks per branch; the
last module of stage 4 fuses into the highest-resolution branch only.
"""

from __future__ import annotations

import torch
from toppose.common.config import ModelConfig
from toppose.common.keypoint_sets import keypoint_set
from toppose.common.schema import NUM_KEYPOINTS
from toppose.pose.models.family import FamilySpec, mmpose_keys
from torch import nn

WIDTHS = {"hrnet_w32": 32, "hrnet_w48": 48}
STAGE_MODULES = (1, 4, 3)  # stages 2, 3, 4
BLOCKS_PER_BRANCH = 4


def _conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity add."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + x)


class Bottleneck(nn.Module):
    """1x1 -> 3x3 -> 1x1 (4x expansion) with batch norm, and a projected identity where the width changes."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        mid = cout // 4
        self.conv1 = nn.Conv2d(cin, mid, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        projection = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.downsample = projection if cin != cout else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)


def _fuse(cin: int, cout: int, steps_down: int, steps_up: int, channels_in_between: int) -> nn.Module:
    """The path from branch ``j`` to branch ``i``: 1x1 + nearest upsampling, or stride-2 3x3 convolutions."""
    if steps_up:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.Upsample(scale_factor=2**steps_up)
        )
    steps = [_conv_bn(cin, channels_in_between, 3, 2) for _ in range(steps_down - 1)]
    steps.append(_conv_bn(cin, cout, 3, 2, relu=False))
    return nn.Sequential(*steps)


class HRModule(nn.Module):
    """Parallel branches of basic blocks, then every output branch sums all branches brought to its resolution."""

    def __init__(self, channels: tuple[int, ...], multiscale_output: bool) -> None:
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(*(BasicBlock(c) for _ in range(BLOCKS_PER_BRANCH))) for c in channels
        )
        outputs = len(channels) if multiscale_output else 1
        self.fuse_layers = nn.ModuleList(
            nn.ModuleList(
                None if j == i else _fuse(channels[j], channels[i], max(i - j, 0), max(j - i, 0), channels[j])
                for j in range(len(channels))
            )
            for i in range(outputs)
        )
        self.relu = nn.ReLU(inplace=False)

    def forward(self, xs: list[torch.Tensor]) -> list[torch.Tensor]:
        xs = [branch(x) for branch, x in zip(self.branches, xs, strict=True)]
        fused = []
        for row in self.fuse_layers:
            total = 0
            for j, layer in enumerate(row):
                total = total + (xs[j] if layer is None else layer(xs[j]))
            fused.append(self.relu(total))
        return fused


class HRNetBackbone(nn.Module):
    """Stem (stride 4), a bottleneck stage, then stages of 2, 3 and 4 parallel branches; returns branch 0."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.conv2 = nn.Conv2d(64, 64, 3, 2, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(Bottleneck(64, 256), *(Bottleneck(256, 256) for _ in range(3)))
        previous = (256,)
        for stage, modules in enumerate(STAGE_MODULES, start=2):
            channels = tuple(width * 2**b for b in range(stage))
            setattr(self, f"transition{stage - 1}", self._transition(previous, channels))
            last = stage == len(STAGE_MODULES) + 1
            hr_modules = [HRModule(channels, multiscale_output=not (last and m == modules - 1)) for m in range(modules)]
            setattr(self, f"stage{stage}", nn.Sequential(*hr_modules))
            previous = channels

    @staticmethod
    def _transition(previous: tuple[int, ...], channels: tuple[int, ...]) -> nn.ModuleList:
        layers: list[nn.Module | None] = []
        for i, c in enumerate(channels):
            if i < len(previous):
                layers.append(_conv_bn(previous[i], c, 3) if previous[i] != c else None)
            else:  # a new, lower-resolution branch from the last one
                steps = [_conv_bn(previous[-1], previous[-1], 3, 2) for _ in range(i - len(previous))]
                layers.append(nn.Sequential(*steps, _conv_bn(previous[-1], c, 3, 2)))
        return nn.ModuleList(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))
        xs = [self.layer1(x)]
        for stage in range(2, len(STAGE_MODULES) + 2):
            transition = getattr(self, f"transition{stage - 1}")
            xs = [
                (xs[i] if i < len(xs) else xs[-1]) if layer is None else layer(xs[i] if i < len(xs) else xs[-1])
                for i, layer in enumerate(transition)
            ]
            xs = getattr(self, f"stage{stage}")(xs)
        return xs[0]


class HeatmapHead(nn.Module):
    """A 1x1 convolution from the stride-4 features to one heatmap per keypoint."""

    def __init__(self, in_channels: int, num_keypoints: int = NUM_KEYPOINTS) -> None:
        super().__init__()
        self.final_layer = nn.Conv2d(in_channels, num_keypoints, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.final_layer(features)


class HRNet(nn.Module):
    """HRNet-W32/W48 top-down network: ``(B, 3, H, W)`` -> heatmaps ``(B, K, H / 4, W / 4)``."""

    output_stride = 4

    def __init__(self, backbone: str, num_keypoints: int = NUM_KEYPOINTS) -> None:
        super().__init__()
        if backbone not in WIDTHS:
            raise ValueError(f"unknown HRNet backbone {backbone!r} (choose from {', '.join(WIDTHS)})")
        self.backbone = HRNetBackbone(WIDTHS[backbone])
        self.head = HeatmapHead(WIDTHS[backbone], num_keypoints)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.backbone(images))


def _build(model_cfg: ModelConfig, split_ratio: float) -> HRNet:
    return HRNet(model_cfg.backbone, len(keypoint_set(model_cfg.keypoints)))


FAMILY = FamilySpec(
    name="hrnet",
    title="HRNet",
    backbones=tuple(WIDTHS),
    codec="heatmap",
    input_multiple=32,  # the lowest-resolution branch's stride
    heatmap_stride=lambda model_cfg: HRNet.output_stride,
    signature="transition1.0.0.weight",
    to_model_keys=mmpose_keys,
    build=_build,
)
