"""Command-line options shared by the CLIs that run the model: the config file and its common overrides."""

from __future__ import annotations

import argparse
import copy
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toppose.common.config import (
    BACKENDS,
    CHANNEL_ORDERS,
    CONFIG_DIR,
    CONVENTIONS,
    DECODE_METHODS,
    DEFAULT_CONFIG,
    PRECISION_NAMES,
    Config,
    load_config,
    override,
)
from toppose.common.errors import ConfigError
from toppose.pose.setup import apply_weights_setup, explicit_fields
from toppose.pose.training.config import TrainingConfig

# Named setups users pick by intent (``--setup NAME``: configs/setup_NAME.toml); see README "Real time on a CPU".
SETUPS = ("fast", "balanced", "accurate")
POSE_SOURCES = ("network", "rcnn")  # the pose network, or Keypoint R-CNN's own keypoints

# (argument, config field) pairs: a flag given on the command line overrides the config file.
CONFIG_FLAGS = (
    ("pose_weights", "model.weights"),
    ("detector", "detector.name"),
    ("detector_weights", "detector.weights"),
    ("det_threshold", "detector.score_threshold"),
    ("device", "inference.device"),
    ("batch_size", "inference.batch_size"),
    ("precision", "inference.precision"),
    ("backend", "inference.backend"),
    ("decode", "codec.decode"),
    ("sigma", "codec.sigma"),
    ("padding", "crop.padding"),
    ("convention", "codec.convention"),
    ("channel_order", "model.channel_order"),
)


def _int_at_least(minimum: int, text: str) -> int:
    value = int(text)
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
    return value


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    return _int_at_least(1, text)


def non_negative_int(text: str) -> int:
    """An argparse type: an integer of at least 0."""
    return _int_at_least(0, text)


def positive_float(text: str) -> float:
    """An argparse type: a finite number greater than 0 (not nan, not inf)."""
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config`` and the flags that override its common fields."""
    group = parser.add_argument_group("model setup")
    group.add_argument(
        "--config", type=Path, metavar="TOML", help=f"model setup (default: configs/{DEFAULT_CONFIG.name})"
    )
    group.add_argument(
        "--setup", choices=SETUPS, help="a named setup instead of --config: configs/setup_NAME.toml (see README)"
    )
    group.add_argument(
        "--pose",
        choices=POSE_SOURCES,
        default="network",
        help="poses from the heatmap network (default) or from Keypoint R-CNN's own keypoints",
    )
    group.add_argument(
        "--pose-weights",
        metavar="NAME_OR_PATH",
        help="pose network weights: a registry name, a .pth file, or '' (random)",
    )
    group.add_argument(
        "--detector", metavar="NAME", help="torchvision person detector (e.g. keypointrcnn_resnet50_fpn)"
    )
    group.add_argument(
        "--detector-weights", metavar="PATH", help="detector weights file (default: torchvision's COCO weights)"
    )
    group.add_argument("--det-threshold", type=float, metavar="F", help="minimum person box score (detector, --boxes)")
    group.add_argument("--device", metavar="DEVICE", help="cpu, cuda or cuda:N")
    group.add_argument("--batch-size", type=positive_int, metavar="N", help="person crops per network call")
    group.add_argument(
        "--precision",
        choices=PRECISION_NAMES,
        help="pose network arithmetic: fp32 (default), bf16 or fp16 autocast, auto (bf16 where the CPU has it)",
    )
    group.add_argument(
        "--backend",
        choices=BACKENDS,
        help="what runs the pose network: torch (default) or onnxruntime (its ONNX export, fp32; pip extra 'onnx')",
    )
    group.add_argument("--no-flip", action="store_true", help="no flip test (faster, slightly less accurate)")
    group.add_argument("--decode", choices=DECODE_METHODS, help="heatmap decoding")
    group.add_argument("--sigma", type=float, metavar="S", help="Gaussian sigma of the heatmaps (heatmap pixels)")
    group.add_argument("--padding", type=float, metavar="P", help="crop padding around the person box")
    group.add_argument(
        "--convention",
        choices=CONVENTIONS,
        help="pixel convention the pose weights were trained in (default: what the weights record or imply)",
    )
    group.add_argument(
        "--channel-order",
        choices=CHANNEL_ORDERS,
        help="channel order of the frames the pose weights were trained on (default: from the weights)",
    )


def setup_path(name: str) -> Path:
    """The config file of the named setup ``name`` (one of :data:`SETUPS`)."""
    return CONFIG_DIR / f"setup_{name}.toml"


def config_path(args: argparse.Namespace) -> Path | None:
    """The config file ``--config`` or ``--setup`` names (``None``: the default setup); both at once is an error."""
    setup = getattr(args, "setup", None)
    if setup is not None and args.config is not None:
        raise ConfigError("--setup and --config both name a setup: give one")
    return setup_path(setup) if setup is not None else args.config


def config_from_args(args: argparse.Namespace, weights_setup: bool = True) -> Config:
    """The ``--config`` file (or the default setup) with the command-line overrides applied.

    ``--det-every`` (where the parser has it) overrides the setup's ``video.det_every``. A training config is
    accepted too (its model setup is used). With ``weights_setup`` the setup the
    pose weights record or imply is merged in (:func:`pose.setup.apply_weights_setup`): a checkpoint
    of ours runs with no ``--config``, and a setting that contradicts the weights is an error.
    """
    overrides = [(dotted, getattr(args, name), "--" + name.replace("_", "-")) for name, dotted in CONFIG_FLAGS]
    overrides.append(("video.det_every", getattr(args, "det_every", None), "--det-every"))
    if args.no_flip:
        overrides.append(("inference.flip_test", False, "--no-flip"))
    return build_config(config_path(args), overrides, weights_setup and args.pose == "network")


def build_config(
    path: Path | None,
    overrides: Sequence[tuple[str, Any, str]] = (),
    weights_setup: bool = True,
    base: Config | None = None,
) -> Config:
    """The config file at ``path`` (``None``: the default setup; or a copy of ``base``) with ``overrides`` applied.

    Each override is (dotted field, value, where it came from); ``None`` values are skipped. With
    ``weights_setup`` the setup the pose weights record or imply is merged in, and an override that
    contradicts the weights is an error (see :func:`pose.setup.apply_weights_setup`).
    """
    cfg = copy.deepcopy(base) if base is not None else load_config(path, cls=TrainingConfig)
    given = {}
    for dotted, value, source in overrides:
        override(cfg, dotted, value, source)
        if value is not None:
            given[dotted] = source
    if weights_setup:
        apply_weights_setup(cfg, explicit_fields(path, given))
    return cfg
