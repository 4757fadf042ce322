"""Model-setup configs: TOML files in ``configs/`` read into typed dataclasses.

Every section and key is checked: an unknown one is a :class:`UserError` naming it and the file.
Command-line flags override single fields through :func:`override`.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from common.errors import UserError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
DEFAULT_CONFIG = CONFIG_DIR / "simplebaseline_res50_256x192.toml"


@dataclass
class ModelConfig:
    """The single-person pose network."""

    family: str = "simplebaseline"  # "simplebaseline" (pose/models/ has one module per family)
    backbone: str = "resnet50"
    input_size: tuple[int, int] = (192, 256)  # (width, height)
    heatmap_size: tuple[int, int] = (48, 64)  # (width, height)
    deconv_channels: int = 256
    num_deconv: int = 3
    weights: str = ""  # registry name, local path, or "" for random initialisation
    channel_order: str = "rgb"  # of the frames the weights were trained on: "rgb" (MMPose) or "bgr" (official)


@dataclass
class CropConfig:
    """DeepPose box normalization."""

    padding: float = 1.25


@dataclass
class CodecConfig:
    """What the network outputs (heatmaps or SimCC vectors), its targets and decoding."""

    type: str = "heatmap"  # "heatmap" (SimpleBaseline, HRNet, ViTPose) or "simcc" (RTMPose)
    sigma: float = 2.0
    decode: str = "dark"  # "dark" (sub-pixel Taylor step) or "argmax"
    blur_kernel: int = 11
    # Pixel convention the weights were trained in: "legacy", "udp" or "half_pixel" (see pose/geometry.py).
    convention: str = "udp"
    split_ratio: float = 2.0  # simcc: bins per input pixel
    simcc_sigma: tuple[float, float] = (4.9, 5.66)  # simcc: Gaussian label sigma (x, y), in bins


@dataclass
class DetectorConfig:
    """The person detector."""

    name: str = "keypointrcnn_resnet50_fpn"
    weights: str = ""  # "" = the architecture's default torchvision weights; or a local file
    score_threshold: float = 0.5
    nms_threshold: float = 0.5
    max_people: int = 30


@dataclass
class InferenceConfig:
    """Top-down inference settings."""

    device: str = "cpu"
    precision: str = "fp32"  # "fp32", or "bf16" / "fp16" autocast for the pose network (bf16 suits CPUs with AMX)
    batch_size: int = 16
    flip_test: bool = True
    keypoint_score_threshold: float = 0.2
    oks_nms_threshold: float = 0.9


@dataclass
class Config:
    """One model setup: every section of a ``configs/*.toml`` file."""

    model: ModelConfig = field(default_factory=ModelConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    codec: CodecConfig = field(default_factory=CodecConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    origin = typing.get_origin(annotation)
    if dataclasses.is_dataclass(annotation):
        if not isinstance(value, dict):
            raise UserError(f"{where}: expected a table, got {value!r}")
        return _build(annotation, value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise UserError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(annotation)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], where) for v in value)
        if len(value) != len(args):
            raise UserError(f"{where}: expected {len(args)} values, got {len(value)}")
        return tuple(_coerce(v, a, where) for v, a in zip(value, args, strict=True))
    if origin in (types.UnionType, typing.Union):
        return value
    if annotation is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if annotation in (int, str, bool) and not isinstance(value, annotation):
        raise UserError(f"{where}: expected {annotation.__name__}, got {value!r}")
    if annotation is int and isinstance(value, bool):
        raise UserError(f"{where}: expected int, got {value!r}")
    return value


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in names:
            raise UserError(f"{where}: unknown key '{key}' (known: {', '.join(sorted(names))})")
        kwargs[key] = _coerce(value, hints[key], f"{where}.{key}")
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any], cls: type = Config, source: str = "config") -> Any:
    """Build a config dataclass from a parsed TOML mapping, rejecting unknown keys."""
    return _build(cls, data, source)


def load_config(path: str | Path | None = None, cls: type = Config) -> Any:
    """Read a TOML config (default: the ResNet-50 SimpleBaseline setup) into ``cls``."""
    path = Path(path) if path is not None else DEFAULT_CONFIG
    return config_from_dict(read_toml(path), cls, str(path))


def read_toml(path: str | Path) -> dict[str, Any]:
    """The parsed TOML file at ``path``; a missing or malformed file is a :class:`UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise UserError(f"{path}: not valid TOML ({err})") from None


def override(cfg: Any, dotted: str, value: Any) -> None:
    """Set ``cfg.section.key = value`` (type-checked); ``value`` None leaves the field as it is."""
    if value is None:
        return
    *parents, leaf = dotted.split(".")
    target = cfg
    for name in parents:
        target = getattr(target, name)
    hints = typing.get_type_hints(type(target))
    if leaf not in hints:
        raise UserError(f"unknown config field '{dotted}'")
    setattr(target, leaf, _coerce(value, hints[leaf], dotted))
