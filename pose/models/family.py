"""What a pose family is, in one description (:class:`FamilySpec`) that its module keeps beside its network, and
the registry of the families described: the config's choices of ``model.family`` and ``model.backbone``
(:data:`common.config.FAMILY_BACKBONES`), the checks of a model setup, the network builder and the checkpoint
loader's recognition of a file's family all read it. This module imports no torch: descriptions are names,
numbers and functions.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from toppose.common.config import CODEC_TYPES, FAMILY_BACKBONES, ModelConfig
from toppose.common.errors import UserError

if TYPE_CHECKING:
    from torch import Tensor, nn


@dataclass(frozen=True)
class FamilySpec:
    """A pose family: the setups it builds, how its published checkpoints are recognised and renamed, its builder."""

    name: str  # as a config names it (model.family)
    title: str  # as its paper and model zoo name it
    backbones: tuple[str, ...]  # model.backbone values it builds
    codec: str  # what the network outputs (codec.type)
    input_multiple: int  # both sides of model.input_size must be multiples of it
    heatmap_stride: Callable[[ModelConfig], int | None]  # input size / model.heatmap_size; None: no heatmaps
    signature: str  # the end of a checkpoint key that only this family's files (and its extensions') have
    # the checkpoint's tensors under the module names of the network they are loaded into
    to_model_keys: Callable[[Mapping[str, Tensor], nn.Module], dict[str, Tensor]]
    build: Callable[[ModelConfig, float], nn.Module]  # a new network (model setup, SimCC bins per input pixel)
    # the family whose signature this one's files carry too (RTMW's head has RTMPose's attention unit): where
    # both signatures are found, this family's decides
    extends: str | None = None
    # False where fp16 arithmetic breaks the network (RTMPose's trunk: its features leave fp16's range)
    fp16_safe: bool = True


FAMILIES: dict[str, FamilySpec] = {}  # name -> description, in registration order


def register_family(family: FamilySpec) -> FamilySpec:
    """Add ``family`` to the families configs may name and checkpoints are recognised as."""
    if family.name in FAMILIES:
        raise ValueError(f"pose family {family.name!r} is registered already")
    if family.codec not in CODEC_TYPES:
        raise ValueError(f"pose family {family.name!r}: unknown codec {family.codec!r} (choose from {CODEC_TYPES})")
    if family.extends is not None and family.extends not in FAMILIES:
        raise ValueError(f"pose family {family.name!r} extends {family.extends!r}, which is not registered (before it)")
    FAMILIES[family.name] = family
    FAMILY_BACKBONES[family.name] = family.backbones
    return family


def check_model_config(model_cfg: ModelConfig) -> FamilySpec:
    """The family of ``model_cfg``, which must build it: a known family and backbone, sizes the network produces."""
    family = FAMILIES.get(model_cfg.family)
    if family is None:
        raise UserError(f"model.family: unknown family '{model_cfg.family}' (choose from {', '.join(FAMILIES)})")
    if model_cfg.backbone not in family.backbones:
        raise UserError(
            f"model.backbone: '{model_cfg.backbone}' is not a {family.name} backbone ({', '.join(family.backbones)})"
        )
    input_size = tuple(model_cfg.input_size)
    if any(side % family.input_multiple for side in input_size):
        raise UserError(f"model.input_size {input_size}: both sides must be multiples of {family.input_multiple}")
    stride = family.heatmap_stride(model_cfg)
    expected = tuple(side // stride for side in input_size) if stride is not None else None
    if expected is not None and tuple(model_cfg.heatmap_size) != expected:
        raise UserError(
            f"model.heatmap_size {tuple(model_cfg.heatmap_size)} does not match input_size {input_size} "
            f"/ output stride {stride} = {expected}"
        )
    return family


def build_network(model_cfg: ModelConfig, split_ratio: float = 2.0) -> nn.Module:
    """The randomly initialised network of ``model_cfg`` (``split_ratio``: SimCC bins per input pixel)."""
    family = check_model_config(model_cfg)
    try:
        return family.build(model_cfg, split_ratio)
    except ValueError as err:
        raise UserError(f"model: {err}") from None


def family_of_keys(keys: Collection[str]) -> FamilySpec | None:
    """The family whose checkpoints carry keys like these, or ``None`` when none does: the one whose signature a key
    ends with, and of a family and one that extends it, the extension."""
    found = [f for f in FAMILIES.values() if any(key.endswith(f.signature) for key in keys)]
    extended = {f.extends for f in found}
    return next((f for f in found if f.name not in extended), None)


def mmpose_keys(state: Mapping[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """MMPose 1.x's names (``backbone.*``, ``head.*``), which networks written after MMPose's sources keep, from
    any MMPose file: 0.x's ``keypoint_head.`` becomes ``head.``, DataParallel's ``module.`` goes, and so does
    ``data_preprocessor.*`` (normalisation constants some files carry). A ``to_model_keys`` hook; ``model`` unused."""
    renamed = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith("data_preprocessor."):
            continue
        if key.startswith("keypoint_head."):
            key = "head." + key.removeprefix("keypoint_head.")
        renamed[key] = value
    return renamed
