"""Model-setup configs: TOML files in ``configs/`` read into typed dataclasses.

Every section, key and value is checked when the config is read: an unknown section or key, or a
value of the wrong type, outside its range or not among its choices, is a :class:`ConfigError`
(exit 2) naming the source, the section and the key, e.g. ``x.toml [crop] padding: expected a number
in (0, 10], got 0``. The constraints sit next to each field (:func:`setting`); command-line flags
and ``--set`` go through the same check in :func:`override`.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import re
import tomllib
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

from toppose.common.errors import ConfigError
from toppose.common.keypoint_sets import KEYPOINT_SETS

# The packaged configs (package data of toppose.configs), found the same way in a wheel and in a checkout.
CONFIG_DIR = Path(str(files("toppose.configs")))
DEFAULT_CONFIG = CONFIG_DIR / "rtmpose_m_256x192.toml"

# family -> its backbones: what model.family and model.backbone accept. The pose families are a later step (one
# module each in pose/models, described there), which this module does not import: each registers here
# (pose.models.family.register_family), and the choices are looked up when a value is checked.
FAMILY_BACKBONES: dict[str, tuple[str, ...]] = {}
CONVENTIONS = ("legacy", "udp", "half_pixel")  # pixel conventions, see pose/geometry.py
CHANNEL_ORDERS = ("rgb", "bgr")
CODEC_TYPES = ("heatmap", "simcc")  # the codecs of pose/codecs; each family names the one it outputs
DECODE_METHODS = ("dark", "argmax")  # the heatmap codec's
PRECISION_NAMES = ("fp32", "bf16", "fp16", "auto")  # "auto": see pose/precision.py
BACKENDS = ("torch", "onnxruntime")  # what runs the pose network, see pose/runtime.py
MAX_FRAME_BATCH = 64  # frames held at once by inference.frame_batch
GPU_FRAME_BATCH = 8  # inference.frame_batch 0 on a GPU
DETECTOR_NAMES = (
    "keypointrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn", "maskrcnn_resnet50_fpn_v2", "fasterrcnn_resnet50_fpn",
    "fasterrcnn_resnet50_fpn_v2", "fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_mobilenet_v3_large_320_fpn",
    "ssdlite320_mobilenet_v3_large",
)  # fmt: skip
DEVICE_PATTERN = (r"cpu|cuda(:\d+)?", "cpu, cuda or cuda:N")


FAMILIES_MODULE = "toppose.pose.models"  # where the families register themselves when imported


def _registered_families() -> dict[str, tuple[str, ...]]:
    """The registered families; the first config checked in a process that has not imported the families' module
    imports it by name (a plugin registry's discovery: this module depends on no family)."""
    if not FAMILY_BACKBONES:
        importlib.import_module(FAMILIES_MODULE)
    return FAMILY_BACKBONES


def family_names() -> tuple[str, ...]:
    """The registered pose families, in registration order: model.family's choices."""
    return tuple(_registered_families())


def backbone_names() -> tuple[str, ...]:
    """The backbones of every registered pose family: model.backbone's choices."""
    return tuple(name for names in _registered_families().values() for name in names)


@dataclass(frozen=True)
class Check:
    """What a field accepts beyond its type: a range, choices, a pattern, odd integers (each element of a tuple)."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    choices: tuple[str, ...] | Callable[[], tuple[str, ...]] = ()  # or the function that gives them at each check
    pattern: tuple[str, str] | None = None  # (regular expression for the whole value, how to describe it)
    odd: bool = False

    def accepts(self, value: Any) -> bool:
        """Whether a value of the field's element type satisfies every constraint."""
        return not (
            (self.ge is not None and value < self.ge)
            or (self.gt is not None and value <= self.gt)
            or (self.le is not None and value > self.le)
            or (self.lt is not None and value >= self.lt)
            or (self.choices and value not in self.options())
            or (self.pattern is not None and not re.fullmatch(self.pattern[0], value))
            or (self.odd and value % 2 == 0)
        )

    def options(self) -> tuple[str, ...]:
        """The values the field may take, when it has choices."""
        return self.choices() if callable(self.choices) else self.choices

    def describe(self) -> str:
        """The range in words, to follow the type: ``"> 0"``, ``"in [0, 1]"``, or ``""``."""
        low = ("[", ">=", self.ge) if self.ge is not None else ("(", ">", self.gt)
        high = ("]", "<=", self.le) if self.le is not None else (")", "<", self.lt)
        if low[2] is not None and high[2] is not None:
            return f"in {low[0]}{low[2]:g}, {high[2]:g}{high[0]}"
        bound = low if low[2] is not None else high
        return f"{bound[1]} {bound[2]:g}" if bound[2] is not None else ""


def setting(default: Any, **constraints: Any) -> Any:
    """A dataclass field with ``default`` and the :class:`Check` constraints (``ge``, ``gt``, ``le``, ``lt``,
    ``choices``, ``pattern``, ``odd``) its values must meet."""
    return field(default=default, metadata={"check": Check(**constraints)})


@dataclass
class ModelConfig:
    """The single-person pose network."""

    family: str = setting("simplebaseline", choices=family_names)  # pose/models: one module each
    backbone: str = setting("resnet50", choices=backbone_names)
    input_size: tuple[int, int] = setting((192, 256), ge=1)  # (width, height)
    heatmap_size: tuple[int, int] = setting((48, 64), ge=1)  # (width, height)
    deconv_channels: int = setting(256, ge=1)
    num_deconv: int = setting(3, ge=0, le=5)
    weights: str = ""  # registry name, local path, or "" for random initialisation
    # of the frames the weights were trained on: "rgb" (MMPose) or "bgr" (the official SimpleBaseline release)
    channel_order: str = setting("rgb", choices=CHANNEL_ORDERS)
    # the keypoint set the network outputs (common/keypoint_sets.py): one output channel per keypoint
    keypoints: str = setting("coco17", choices=tuple(KEYPOINT_SETS))


@dataclass
class CropConfig:
    """DeepPose box normalization."""

    padding: float = setting(1.25, gt=0, le=10)  # the crop is this much larger than the box


@dataclass
class CodecConfig:
    """What the network outputs (heatmaps or SimCC vectors), its targets and decoding."""

    type: str = setting("heatmap", choices=CODEC_TYPES)  # what the network outputs: its family's codec (pose/models)
    sigma: float = setting(2.0, gt=0, le=100)  # heatmap pixels
    decode: str = setting("dark", choices=DECODE_METHODS)  # "dark" (sub-pixel Taylor step) or "argmax"
    blur_kernel: int = setting(11, ge=1, odd=True)  # DARK's Gaussian blur (1 = none)
    # Pixel convention the weights were trained in (see pose/geometry.py).
    convention: str = setting("udp", choices=CONVENTIONS)
    split_ratio: float = setting(2.0, gt=0, le=16)  # simcc: bins per input pixel
    simcc_sigma: tuple[float, float] = setting((4.9, 5.66), gt=0, le=100)  # simcc: label sigma (x, y), in bins


@dataclass
class DetectorConfig:
    """The person detector."""

    name: str = setting("keypointrcnn_resnet50_fpn", choices=DETECTOR_NAMES)
    weights: str = ""  # "" = the architecture's default torchvision weights; or a local file
    score_threshold: float = setting(0.5, ge=0, le=1)
    nms_threshold: float = setting(0.5, ge=0, le=1)
    max_people: int = setting(30, ge=0)  # 0 = every person


@dataclass
class InferenceConfig:
    """Top-down inference settings."""

    device: str = setting("cpu", pattern=DEVICE_PATTERN)
    # "fp32", or "bf16" / "fp16" autocast for the pose network, or "auto": bf16 on a CPU that does it natively
    precision: str = setting("fp32", choices=PRECISION_NAMES)
    # "torch", or "onnxruntime": the network exported to ONNX and run by ONNX Runtime (fp32, CPU; optional extra)
    backend: str = setting("torch", choices=BACKENDS)
    ort_threads: int = setting(0, ge=0)  # onnxruntime's intra-op threads; 0: torch's thread count
    batch_size: int = setting(16, ge=1)
    # frames run through the detector and the pose network together (videos with the detector on every frame,
    # image folders); 0: 8 on a GPU, 1 on a CPU and for a live camera
    frame_batch: int = setting(0, ge=0, le=MAX_FRAME_BATCH)
    flip_test: bool = True
    keypoint_score_threshold: float = setting(0.2, ge=0, le=1)
    oks_nms_threshold: float = setting(0.9, ge=0, le=1)


@dataclass
class VideoConfig:
    """The video loop (``run.py VIDEO --track``)."""

    det_every: int = setting(1, ge=1)  # with --track: the detector on every K-th frame, tracks followed between


@dataclass
class Config:
    """One model setup: every section of a ``configs/*.toml`` file."""

    model: ModelConfig = field(default_factory=ModelConfig)
    crop: CropConfig = field(default_factory=CropConfig)
    codec: CodecConfig = field(default_factory=CodecConfig)
    detector: DetectorConfig = field(default_factory=DetectorConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    video: VideoConfig = field(default_factory=VideoConfig)


_NOUNS = {float: ("a number", "numbers"), int: ("an integer", "integers"), str: ("a string", "strings"),
          bool: ("true or false", "true or false")}  # fmt: skip


def describe(annotation: Any, check: Check) -> str:
    """What a field of type ``annotation`` under ``check`` accepts, in words."""
    if check.choices:
        return "one of " + ", ".join(repr(c) for c in check.options())
    if check.pattern is not None:
        return check.pattern[1]
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is tuple:
        plural = _NOUNS[args[0]][1]
        text = f"a list of {plural}" if args[1:] == (Ellipsis,) else f"{len(args)} {plural}"
    else:
        text = ("an odd integer" if check.odd else _NOUNS[annotation][0]) if annotation in _NOUNS else str(annotation)
    return f"{text} {check.describe()}".strip()


class _Rejected(Exception):
    """A value that does not fit its field."""


def _scalar(value: Any, kind: type, check: Check) -> Any:
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _Rejected
    if (kind is float and not math.isfinite(value)) or not check.accepts(value):
        raise _Rejected
    return value


def _value(value: Any, annotation: Any, check: Check) -> Any:
    if typing.get_origin(annotation) is not tuple:
        return _scalar(value, annotation, check)
    if not isinstance(value, list | tuple):
        raise _Rejected
    args = typing.get_args(annotation)
    kinds = [args[0]] * len(value) if args[1:] == (Ellipsis,) else list(args)
    if len(kinds) != len(value):
        raise _Rejected
    return tuple(_scalar(v, k, check) for v, k in zip(value, kinds, strict=True))


def _field_value(section: Any, key: str, value: Any, source: str, section_name: str) -> Any:
    """``value`` checked (and converted: ints to floats, lists to tuples) for field ``key`` of ``section``."""
    fields = {f.name: f for f in dataclasses.fields(section)}
    if key not in fields:
        known = ", ".join(sorted(fields))
        raise ConfigError(f"{source} [{section_name}]: unknown key {key!r} (known: {known})")
    annotation = typing.get_type_hints(section)[key]
    check = fields[key].metadata.get("check", Check())
    try:
        return _value(value, annotation, check)
    except _Rejected:
        expected = describe(annotation, check)
        raise ConfigError(f"{source} [{section_name}] {key}: expected {expected}, got {value!r}") from None


def _sections(cls: type) -> dict[str, type]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def config_from_dict(data: dict[str, Any], cls: type = Config, source: str = "config") -> Any:
    """Build a config dataclass from a parsed TOML mapping, checking every section, key and value."""
    sections = _sections(cls)
    kwargs = {}
    for name, table in data.items():
        if name not in sections:
            raise ConfigError(f"{source}: unknown section {name!r} (known: {', '.join(sections)})")
        if not isinstance(table, dict):
            raise ConfigError(f"{source} [{name}]: expected a table of keys, got {table!r}")
        section = sections[name]
        kwargs[name] = section(**{k: _field_value(section, k, v, source, name) for k, v in table.items()})
    return cls(**kwargs)


def load_config(path: str | Path | None = None, cls: type = Config) -> Any:
    """Read a TOML config (default: the RTMPose-m setup) into ``cls``. A relative path that does not exist but
    names a packaged config (``configs/hrnet_w32_udp_256x192.toml``, or just its file name) reads that one, so the
    documented commands work from any folder after a normal install."""
    path = packaged(Path(path)) if path is not None else DEFAULT_CONFIG
    return config_from_dict(read_toml(path), cls, str(path))


def packaged(path: Path) -> Path:
    """``path``, or the packaged config of its file name where ``path`` is relative, missing and the file name is
    one of :data:`CONFIG_DIR`'s."""
    if path.is_absolute() or path.exists() or path.parent not in (Path("."), Path("configs")):
        return path
    return CONFIG_DIR / path.name if (CONFIG_DIR / path.name).is_file() else path


def read_toml(path: str | Path) -> dict[str, Any]:
    """The parsed TOML file at ``path``; a missing, unreadable, non-UTF-8 or malformed file is a
    :class:`ConfigError`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = path.read_bytes()
        return tomllib.loads(data.decode("utf-8"))
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror or err}") from None
    except UnicodeDecodeError as err:  # TOML files are UTF-8: e.g. a Latin-1 byte in a comment
        line = data.count(b"\n", 0, err.start) + 1
        raise ConfigError(f"{path}: not valid TOML: byte 0x{data[err.start]:02x} on line {line} is not UTF-8") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None
    except RecursionError:  # tomllib recurses into nested arrays and tables
        raise ConfigError(f"{path}: not valid TOML (arrays or tables nested too deep)") from None


def override(cfg: Any, dotted: str, value: Any, source: str = "override") -> None:
    """Set ``cfg.section.key = value``, checked as in a file (``source`` names the flag in errors).

    ``value`` None leaves the field as it is.
    """
    if value is None:
        return
    section_name, _, key = dotted.partition(".")
    sections = _sections(type(cfg))
    if section_name not in sections:
        raise ConfigError(f"{source}: unknown config section {section_name!r} (known: {', '.join(sections)})")
    section = getattr(cfg, section_name)
    setattr(section, key, _field_value(type(section), key, value, source, section_name))


def frame_batch(inference: InferenceConfig, live: bool = False) -> int:
    """The frames to run through the networks together: ``inference.frame_batch``, or where it is 0,
    :data:`GPU_FRAME_BATCH` on a GPU and 1 on a CPU or for a ``live`` source (a camera waits for no chunk)."""
    if inference.frame_batch > 0:
        return inference.frame_batch
    return 1 if live or not inference.device.startswith("cuda") else GPU_FRAME_BATCH
