"""SimpleBaseline (Xiao et al., 2018): a ResNet trunk, three stride-2 deconvolutions, a 1x1 heatmap head.

Module names follow the official release (torchvision ResNet names for the trunk, then
``deconv_layers`` and ``final_layer``), so its checkpoints load as they are; MMPose's layout maps
onto them by prefix (:func:`to_model_keys`).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torchvision
from toppose.common.config import ModelConfig
from toppose.common.keypoint_sets import keypoint_set
from toppose.common.schema import NUM_KEYPOINTS
from toppose.pose.models.family import FamilySpec
from torch import nn

BACKBONES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
TRUNK_STRIDE = 32  # the ResNet trunk's total downsampling
TRUNK_MODULES = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")
# Checkpoint-key prefixes of the public layouts (DataParallel, MMPose 0.x and 1.x), removed to reach our names.
KEY_PREFIXES = ("module.", "backbone.", "keypoint_head.", "head.")


class SimpleBaseline(nn.Module):
    """ResNet trunk (stride 32) + ``num_deconv`` stride-2 deconvolutions + 1x1 convolution to K heatmaps."""

    def __init__(
        self,
        backbone: str = "resnet50",
        num_keypoints: int = NUM_KEYPOINTS,
        deconv_channels: int = 256,
        num_deconv: int = 3,
        backbone_weights: torchvision.models.WeightsEnum | None = None,
    ) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r} (choose from {', '.join(BACKBONES)})")
        trunk = getattr(torchvision.models, backbone)(weights=backbone_weights)
        for name in TRUNK_MODULES:
            setattr(self, name, getattr(trunk, name))
        in_channels = trunk.fc.in_features
        layers: list[nn.Module] = []
        for _ in range(num_deconv):
            layers += [
                nn.ConvTranspose2d(in_channels, deconv_channels, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(deconv_channels),
                nn.ReLU(inplace=True),
            ]
            in_channels = deconv_channels
        self.deconv_layers = nn.Sequential(*layers)
        self.final_layer = nn.Conv2d(in_channels, num_keypoints, kernel_size=1)
        self.output_stride = TRUNK_STRIDE // 2**num_deconv
        self._init_head()

    def _init_head(self) -> None:
        for module in self.deconv_layers.modules():
            if isinstance(module, nn.ConvTranspose2d):
                nn.init.normal_(module.weight, std=0.001)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        nn.init.normal_(self.final_layer.weight, std=0.001)
        nn.init.zeros_(self.final_layer.bias)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` normalized images -> ``(B, K, H / s, W / s)`` heatmaps (s = ``output_stride``)."""
        x = images
        for name in TRUNK_MODULES:
            x = getattr(self, name)(x)
        return self.final_layer(self.deconv_layers(x))


def to_model_keys(state: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Official / MMPose 0.x / MMPose 1.x keys (and ``module.``-prefixed ones) renamed to the official module names
    (a ``to_model_keys`` hook; ``model`` unused)."""
    renamed = {}
    for key, value in state.items():
        for prefix in KEY_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        renamed[key] = value
    return renamed


def _build(model_cfg: ModelConfig, split_ratio: float) -> SimpleBaseline:
    keypoints = len(keypoint_set(model_cfg.keypoints))
    return SimpleBaseline(model_cfg.backbone, keypoints, model_cfg.deconv_channels, model_cfg.num_deconv)


FAMILY = FamilySpec(
    name="simplebaseline",
    title="SimpleBaseline",
    backbones=BACKBONES,
    codec="heatmap",
    input_multiple=TRUNK_STRIDE,
    heatmap_stride=lambda model_cfg: TRUNK_STRIDE // 2**model_cfg.num_deconv,
    signature="layer4.0.conv1.weight",
    to_model_keys=to_model_keys,
    build=_build,
)
