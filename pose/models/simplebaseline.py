"""SimpleBaseline (Xiao et al., 2018): a ResNet trunk, three stride-2 deconvolutions, a 1x1 heatmap head.

Module names follow the official release (torchvision ResNet names for the trunk, then
``deconv_layers`` and ``final_layer``), so its checkpoints load as they are; MMPose's layout maps
onto them by prefix (see :mod:`pose.checkpoints`).
"""

from __future__ import annotations

import torch
import torchvision
from toppose.common.config import FAMILY_BACKBONES
from toppose.common.errors import UserError
from toppose.common.schema import NUM_KEYPOINTS
from torch import nn

BACKBONES = FAMILY_BACKBONES["simplebaseline"]
TRUNK_STRIDE = 32  # the ResNet trunk's total downsampling
TRUNK_MODULES = ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4")


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


def check_sizes(input_size: tuple[int, int], heatmap_size: tuple[int, int], num_deconv: int = 3) -> None:
    """Reject an input the trunk cannot divide evenly, or a heatmap size the network does not produce."""
    if any(side % TRUNK_STRIDE for side in input_size):
        raise UserError(f"model.input_size {tuple(input_size)}: both sides must be multiples of {TRUNK_STRIDE}")
    stride = TRUNK_STRIDE // 2**num_deconv
    expected = (input_size[0] // stride, input_size[1] // stride)
    if tuple(heatmap_size) != expected:
        raise UserError(
            f"model.heatmap_size {tuple(heatmap_size)} does not match input_size {tuple(input_size)} "
            f"/ output stride {stride} = {expected}"
        )
