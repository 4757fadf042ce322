"""Pose networks, one module per family (trunk and head together, named as the published source names
them so public checkpoints load exactly); :func:`build_network` makes the one a model setup names."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from toppose.common.config import FAMILY_BACKBONES, ModelConfig
from toppose.common.errors import UserError
from toppose.common.schema import NUM_KEYPOINTS
from toppose.pose.models.hrnet import HRNet
from toppose.pose.models.rtmpose import RTMPose
from toppose.pose.models.simplebaseline import SimpleBaseline, check_sizes
from toppose.pose.models.vitpose import ViTPose
from torch import nn

FAMILIES = FAMILY_BACKBONES  # family -> the backbones it is built with
FAMILY_CODECS = {"simplebaseline": "heatmap", "hrnet": "heatmap", "vitpose": "heatmap", "rtmpose": "simcc"}  # outputs
FAMILY_NAMES = {"simplebaseline": "SimpleBaseline", "hrnet": "HRNet", "vitpose": "ViTPose", "rtmpose": "RTMPose"}
HEATMAP_STRIDE = 4  # HRNet and ViTPose heatmaps are a quarter of the input
INPUT_MULTIPLE = {"simplebaseline": 32, "hrnet": 32, "vitpose": 16, "rtmpose": 32}

__all__ = [
    "FAMILIES",
    "FAMILY_CODECS",
    "FAMILY_NAMES",
    "SimpleBaseline",
    "build_network",
    "check_model_config",
    "family_of_keys",
]


def check_model_config(model_cfg: ModelConfig) -> None:
    """Reject a setup its family cannot build: unknown family or backbone, sizes it cannot produce."""
    family, backbone = model_cfg.family, model_cfg.backbone
    if family not in FAMILIES:
        raise UserError(f"model.family: unknown family '{family}' (choose from {', '.join(FAMILIES)})")
    if backbone not in FAMILIES[family]:
        raise UserError(f"model.backbone: '{backbone}' is not a {family} backbone ({', '.join(FAMILIES[family])})")
    if family == "simplebaseline":
        check_sizes(model_cfg.input_size, model_cfg.heatmap_size, model_cfg.num_deconv)
        return
    multiple = INPUT_MULTIPLE[family]
    if any(side % multiple for side in model_cfg.input_size):
        raise UserError(f"model.input_size {tuple(model_cfg.input_size)}: both sides must be multiples of {multiple}")
    expected = tuple(side // HEATMAP_STRIDE for side in model_cfg.input_size)
    if family != "rtmpose" and tuple(model_cfg.heatmap_size) != expected:
        raise UserError(
            f"model.heatmap_size {tuple(model_cfg.heatmap_size)} does not match input_size "
            f"{tuple(model_cfg.input_size)} / output stride {HEATMAP_STRIDE} = {expected}"
        )


def build_network(model_cfg: ModelConfig, split_ratio: float = 2.0) -> nn.Module:
    """The randomly initialised network of ``model_cfg`` (``split_ratio``: SimCC bins per pixel, RTMPose)."""
    check_model_config(model_cfg)
    family, backbone, input_size = model_cfg.family, model_cfg.backbone, tuple(model_cfg.input_size)
    try:
        if family == "hrnet":
            return HRNet(backbone)
        if family == "vitpose":
            return ViTPose(backbone, input_size, model_cfg.num_deconv)
        if family == "rtmpose":
            return RTMPose(backbone.removeprefix("cspnext_"), input_size, split_ratio)
        return SimpleBaseline(backbone, NUM_KEYPOINTS, model_cfg.deconv_channels, model_cfg.num_deconv)
    except ValueError as err:
        raise UserError(f"model: {err}") from None


# A key only one family's checkpoints have (after any ``module.``/``backbone.`` prefix).
FAMILY_SIGNATURES = (
    ("rtmpose", "gau.uv.weight"),
    ("vitpose", "patch_embed.projection.weight"),
    ("hrnet", "transition1.0.0.weight"),
    ("simplebaseline", "layer4.0.conv1.weight"),
)


def family_of_keys(state: Mapping[str, torch.Tensor]) -> str | None:
    """The family whose checkpoints carry keys like ``state``'s, or ``None`` when none does."""
    for family, signature in FAMILY_SIGNATURES:
        if any(key.endswith(signature) for key in state):
            return family
    return None
