"""The setup a pose checkpoint was trained in, read from the registry or the file, merged into a config.

A weights file implies or records part of its model setup:

* a registry entry records its backbone, input size, pixel convention and channel order;
* one of our training checkpoints records the whole setup it was trained with (``config``): model,
  crop padding, codec (sigma, decoding, convention; files from before conventions were recorded
  used ``half_pixel``);
* an MMPose 0.x/1.x file (``backbone.*`` with ``keypoint_head.*`` or ``head.*``) was trained on RGB,
  in the legacy convention unless the config text in its ``meta`` names a UDP codec (then recorded);
* a file in the official SimpleBaseline / HRNet-repository layout (our module names, no wrapper) was
  trained on BGR frames (``cv2.imread``, no conversion) in the legacy convention.

Recorded values win over the default config; a value set explicitly (by a ``--config`` file or a
flag) that contradicts a recorded one is a :class:`UserError`. Implied values only fill what the user
did not set.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toppose.common.config import Config, override, read_toml
from toppose.common.errors import UserError
from toppose.common.keypoint_sets import set_of_size
from toppose.common.weights import read_checkpoint
from toppose.pose.checkpoints import resolve_local_weights
from toppose.pose.registry import REGISTRY

# Fields a file may record that decide whether its weights fit: a contradiction is an error.
ARCHITECTURE_FIELDS = (
    "model.family",
    "model.backbone",
    "model.input_size",
    "model.heatmap_size",
    "model.deconv_channels",
    "model.num_deconv",
    "model.channel_order",
    "model.keypoints",
    "codec.type",
    "codec.split_ratio",
    "codec.convention",
)
# Fields our training checkpoints record that only tune inference: adopted unless set explicitly.
TUNING_FIELDS = ("crop.padding", "codec.sigma", "codec.simcc_sigma", "codec.decode", "codec.blur_kernel")
# What a training checkpoint from before conventions and channel orders were recorded was trained with.
# the head's last layer, one output channel per keypoint: a plain convolution, or RTMW's ConvModule
HEAD_LAST_LAYERS = ("final_layer.weight", "final_layer.conv.weight")
FIRST_VERSION_DEFAULTS = {"codec.convention": "half_pixel", "model.channel_order": "rgb", "model.keypoints": "coco17"}
UDP_CODEC = re.compile(r"UDPHeatmap|use_udp\s*=\s*True|encoding\s*=\s*['\"]UDP['\"]")
MSRA_CODEC = re.compile(r"MSRAHeatmap|TopDownGenerateTarget")


@dataclass
class WeightsSetup:
    """What a weights source says about its setup: ``recorded`` (binding) and ``implied`` (defaults)."""

    source: str
    layout: str
    recorded: dict[str, Any] = field(default_factory=dict)
    implied: dict[str, Any] = field(default_factory=dict)


def _get(config: Mapping[str, Any], dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _mmpose_config_text(meta: Any) -> str:
    if not isinstance(meta, Mapping):
        return ""
    text = meta.get("cfg", meta.get("config", ""))
    return text if isinstance(text, str) else ""


def describe_checkpoint(checkpoint: Any, source: str) -> WeightsSetup:
    """The layout of a loaded checkpoint and the setup it records or implies."""
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("config"), Mapping):
        stored = checkpoint["config"]
        recorded = {key: _get(stored, key) for key in ARCHITECTURE_FIELDS + TUNING_FIELDS}
        for key, value in FIRST_VERSION_DEFAULTS.items():
            recorded[key] = recorded[key] if recorded[key] is not None else value
        recorded = {k: tuple(v) if isinstance(v, list) else v for k, v in recorded.items() if v is not None}
        return WeightsSetup(source, "toppose", recorded)
    state = checkpoint.get("state_dict", checkpoint) if isinstance(checkpoint, Mapping) else {}
    keys = [key.removeprefix("module.") for key in state] if isinstance(state, Mapping) else []
    if any(key.startswith("backbone.") for key in keys):
        setup = WeightsSetup(source, "mmpose", implied={"model.channel_order": "rgb", "codec.convention": "legacy"})
        text = _mmpose_config_text(checkpoint.get("meta"))
        if UDP_CODEC.search(text):
            setup.recorded["codec.convention"] = "udp"
        elif MSRA_CODEC.search(text):
            setup.recorded["codec.convention"] = "legacy"
    else:
        setup = WeightsSetup(source, "official", implied={"model.channel_order": "bgr", "codec.convention": "legacy"})
    keypoints = keypoints_of_head(state)
    if keypoints is not None:
        setup.recorded["model.keypoints"] = keypoints
    return setup


def keypoints_of_head(state: Any) -> str | None:
    """The keypoint set a state dict's head outputs, from its last layer's output channels (one per keypoint); a
    count no set has is a :class:`UserError`."""
    if not isinstance(state, Mapping):
        return None
    heads = [value for key, value in state.items()
             if key.endswith(HEAD_LAST_LAYERS) and hasattr(value, "shape")]  # fmt: skip
    if not heads:
        return None
    found = set_of_size(int(heads[-1].shape[0]))
    if found is None:
        raise UserError(
            f"the network's head outputs {int(heads[-1].shape[0])} keypoints: no keypoint set has that many"
        )
    return found.name


def weights_setup(spec: str) -> WeightsSetup | None:
    """The setup of a weights spec (registry name or file); ``None`` for ``""`` (random weights).

    A registry entry is described from the registry alone (nothing is downloaded)."""
    if not spec:
        return None
    entry = REGISTRY.get(spec)
    if entry is not None:
        return WeightsSetup(f"weights '{spec}'", "registry", entry.setup())
    path = resolve_local_weights(spec)
    return describe_checkpoint(read_checkpoint(path), str(path))


def _set(cfg: Config, dotted: str, value: Any, source: str) -> None:
    """Set a field from what the weights say, checked like any config value."""
    override(cfg, dotted, list(value) if isinstance(value, tuple) else value, source)


def _value(cfg: Config, dotted: str) -> Any:
    section, key = dotted.split(".")
    value = getattr(getattr(cfg, section), key)
    return tuple(value) if isinstance(value, list) else value


def apply_weights_setup(cfg: Config, explicit: Mapping[str, str]) -> WeightsSetup | None:
    """Merge the setup of ``cfg.model.weights`` into ``cfg`` (in place) and return it.

    ``explicit`` maps the dotted fields the user set to where they were set (``--config FILE``, a flag).
    """
    setup = weights_setup(cfg.model.weights)
    if setup is None:
        return None
    for dotted, value in setup.recorded.items():
        if dotted not in explicit:
            _set(cfg, dotted, value, setup.source)
        elif dotted not in TUNING_FIELDS and _value(cfg, dotted) != value:  # tuning: the user's choice stands
            raise UserError(
                f"{setup.source} was trained with {dotted} = {value!r}, but {explicit[dotted]} "
                f"sets {_value(cfg, dotted)!r} (drop that setting, or use weights trained for it)"
            )
    for dotted, value in setup.implied.items():
        if dotted not in explicit and dotted not in setup.recorded:
            _set(cfg, dotted, value, setup.source)
    return setup


def explicit_fields(config_path: Path | None, flags: Mapping[str, Any]) -> dict[str, str]:
    """The dotted fields a ``--config`` file sets, and those of ``flags`` (dotted field -> flag) given."""
    explicit: dict[str, str] = {}
    if config_path is not None:
        for section, table in read_toml(config_path).items():
            if isinstance(table, Mapping):
                explicit.update({f"{section}.{key}": f"{config_path}" for key in table})
    explicit.update({dotted: flag for dotted, flag in flags.items()})
    return explicit
