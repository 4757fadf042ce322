"""What every network's input is: crops in the channel order it was trained on, ImageNet-normalized, and
the inference copy (batch norms folded, channels-last) the estimator runs."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from toppose.common.config import CHANNEL_ORDERS
from toppose.pose.models import prepacked
from torch import nn
from torch.fx.experimental.optimization import fuse

# ImageNet normalization used by the torchvision trunks and the public pose checkpoints (RGB statistics).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PACKED_DTYPES = (None, torch.bfloat16)  # autocast dtypes whose copies run packed oneDNN convolutions (None: fp32)


def _check_channel_order(channel_order: str) -> None:
    if channel_order not in CHANNEL_ORDERS:
        raise ValueError(f"unknown channel order {channel_order!r} (choose from {', '.join(CHANNEL_ORDERS)})")


def in_channel_order(crops_bgr: np.ndarray, channel_order: str) -> np.ndarray:
    """``(..., H, W, 3)`` BGR crops in the channel order a network was trained on (``"rgb"`` or ``"bgr"``).

    The reversal is one OpenCV ``cvtColor`` over all crops (about 30x faster than a strided copy)."""
    _check_channel_order(channel_order)
    crops = np.ascontiguousarray(crops_bgr)
    if channel_order == "bgr" or crops.size == 0:
        return crops
    return cv2.cvtColor(crops.reshape(-1, *crops.shape[-2:]), cv2.COLOR_BGR2RGB).reshape(crops.shape)


def to_input_tensor(crops_uint8: torch.Tensor) -> torch.Tensor:
    """``(B, H, W, 3)`` uint8 crops -> ``(B, 3, H, W)`` float, ImageNet-normalized (channels-last in memory).

    The statistics are applied in the given channel order, as the official BGR-trained release did too.
    ``(x / 255 - mean) / std`` is computed as one multiply-add, ``x * (1 / (255 std)) - mean / std``."""
    x = crops_uint8.permute(0, 3, 1, 2).float()
    scale = torch.tensor([1.0 / (255.0 * s) for s in IMAGENET_STD], device=x.device).view(1, 3, 1, 1)
    shift = torch.tensor([-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD, strict=True)], device=x.device)
    return torch.addcmul(shift.view(1, 3, 1, 1), x, scale)


def network_input(crops_bgr: torch.Tensor, channel_order: str) -> torch.Tensor:
    """``(B, H, W, 3)`` BGR uint8 crops -> the network's input: its channel order, ImageNet-normalized."""
    _check_channel_order(channel_order)
    return to_input_tensor(crops_bgr.flip(-1) if channel_order == "rgb" else crops_bgr)


class Float32Head(nn.Module):
    """A trunk, then the head in float32 even under autocast: the outputs that keypoints are decoded from
    (by argmax over SimCC bins or heatmap pixels) keep float32's resolution, where bfloat16's 8-bit
    mantissa would round near-equal maxima into ties. A trunk giving several maps (RTMW's backbone and
    neck) hands them to the head as arguments."""

    def __init__(self, backbone: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, images: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        features = self.backbone(images)
        with torch.autocast(images.device.type, enabled=False):
            if isinstance(features, tuple):
                return self.head(*(f.float() for f in features))
            return self.head(features.float())


def _cast_autocast_weights(module: nn.Module, dtype: torch.dtype) -> None:
    """The weights and biases of the convolutions and linear layers below ``module`` in ``dtype``: what
    autocast to ``dtype`` casts them to on every call (those layers are on its lower-precision list, and
    their parameters feed nothing else), so under autocast the outputs stay bit for bit the same."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear | nn.modules.conv._ConvNd):
            layer.to(dtype)


def inference_copy(
    model: nn.Module, device: torch.device, autocast_dtype: torch.dtype | None = None, prepack: bool = True
) -> nn.Module:
    """A copy of ``model`` for inference: batch norms folded into their convolutions, channels-last, and
    for a network made of a ``backbone`` (and a ``neck``) and a ``head`` (the zoo's RTMPose, RTMW, HRNet,
    ViTPose), the head outside autocast (:class:`Float32Head`).

    For a copy that runs under autocast to ``autocast_dtype``, the layers autocast casts (outside the
    float32 head) hold their weights in that type already: the same outputs without a cast of every
    weight on every call. Such a copy runs under that autocast only.

    With ``prepack``, on a CPU with oneDNN and in fp32 or bf16, the convolutions run with their weights packed
    once and the ReLU or SiLU after them fused (:mod:`pose.models.prepacked`).

    The outputs equal the eval-mode model's to float rounding; the original is left untouched (a
    later change to its weights does not reach the copy).
    """
    model.eval()
    if isinstance(getattr(model, "backbone", None), nn.Module) and isinstance(getattr(model, "head", None), nn.Module):
        neck = getattr(model, "neck", None)
        trunk = nn.Sequential(model.backbone, neck) if isinstance(neck, nn.Module) else model.backbone
        fused: nn.Module = Float32Head(fuse(trunk), fuse(model.head))
    else:
        fused = fuse(model)
    fused = fused.to(device=device, memory_format=torch.channels_last).eval()
    trunk = fused.backbone if isinstance(fused, Float32Head) else fused
    if autocast_dtype is not None:
        _cast_autocast_weights(trunk, autocast_dtype)
    if prepack and prepacked.available(device) and autocast_dtype in PACKED_DTYPES:
        prepacked.pack_convolutions(trunk, autocast_dtype or torch.float32)
        if isinstance(fused, Float32Head):
            prepacked.pack_convolutions(fused.head, torch.float32)
    return fused
