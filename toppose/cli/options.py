"""Command-line options shared by the subcommands: argparse types, and the model setup with its common overrides."""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from toppose.common import checks
from toppose.common.config import (
    BACKENDS,
    CHANNEL_ORDERS,
    CONVENTIONS,
    DECODE_METHODS,
    DEFAULT_CONFIG,
    PRECISION_NAMES,
    Config,
)
from toppose.common.errors import ConfigError, UserError
from toppose.common.keypoint_sets import KEYPOINT_SETS
from toppose.pipeline import POSE_SOURCES
from toppose.pose.named_setups import SETUPS, build_config, setup_path

# (argument, config field) pairs: a flag given on the command line overrides the config file.
CONFIG_FLAGS = (
    ("pose_weights", "model.weights"),
    ("detector", "detector.name"),
    ("detector_weights", "detector.weights"),
    ("det_threshold", "detector.score_threshold"),
    ("device", "inference.device"),
    ("batch_size", "inference.batch_size"),
    ("frame_batch", "inference.frame_batch"),
    ("precision", "inference.precision"),
    ("backend", "inference.backend"),
    ("decode", "codec.decode"),
    ("sigma", "codec.sigma"),
    ("padding", "crop.padding"),
    ("convention", "codec.convention"),
    ("channel_order", "model.channel_order"),
    ("keypoints", "model.keypoints"),
)


def _argument(check: Callable[..., Any], text: str, *limits: Any) -> Any:
    """Run a shared check (:mod:`toppose.common.checks`) on a command-line value, as argparse reports errors."""
    try:
        value = float(text) if check is checks.positive_number else int(text)
        return check(value, *limits, "argument")
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    except checks.ValueCheckError as err:
        raise argparse.ArgumentTypeError(err.problem.replace(f"got {value}", f"got {text}")) from None


def positive_int(text: str) -> int:
    """An argparse type: an integer of at least 1."""
    return _argument(checks.int_at_least, text, 1)


def non_negative_int(text: str) -> int:
    """An argparse type: an integer of at least 0."""
    return _argument(checks.int_at_least, text, 0)


def positive_float(text: str) -> float:
    """An argparse type: a finite number greater than 0 (not nan, not inf)."""
    return _argument(checks.positive_number, text)


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
        "--frame-batch", type=positive_int, metavar="N",
        help="frames run through the networks together (default: 8 on a GPU, 1 on a CPU or camera)",
    )  # fmt: skip
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
    group.add_argument(
        "--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="override any config field, e.g. --set inference.batch_size=8 (repeatable)",
    )  # fmt: skip
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
        "--keypoints",
        choices=tuple(KEYPOINT_SETS),
        help="keypoint set: coco17 (default), halpe26 (body and feet) or wholebody (133: body, feet, face, hands); "
        "picks the setup's checkpoint of that set unless --pose-weights names one",
    )
    group.add_argument(
        "--channel-order",
        choices=CHANNEL_ORDERS,
        help="channel order of the frames the pose weights were trained on (default: from the weights)",
    )


def config_path(args: argparse.Namespace) -> Path | None:
    """The config file ``--config`` or ``--setup`` names (``None``: the default setup); both at once is an error."""
    setup = getattr(args, "setup", None)
    if setup is not None and args.config is not None:
        raise ConfigError("--setup and --config both name a setup: give one")
    return setup_path(setup) if setup is not None else args.config


def parse_value(text: str) -> Any:
    """A ``--set`` value as TOML (numbers, booleans, lists, quoted strings), else the plain string."""
    try:
        return tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        return text


def parse_assignments(assignments: list[str]) -> list[tuple[str, Any, str]]:
    """``--set SECTION.KEY=VALUE`` assignments as (dotted field, value, where it came from) overrides."""
    parsed = []
    for assignment in assignments:
        key, sep, value = assignment.partition("=")
        if not sep or "." not in key:
            raise UserError(f"--set expects SECTION.KEY=VALUE, got '{assignment}'")
        shown = key.strip().encode("unicode_escape").decode()  # the error names it on one line
        parsed.append((key.strip(), parse_value(value.strip()), f"--set {shown}"))
    return parsed


def config_from_args(args: argparse.Namespace, weights_setup: bool = True) -> Config:
    """The ``--config`` file (or the default setup) with the command-line overrides applied.

    ``--det-every`` (where the parser has it) overrides the setup's ``video.det_every``. A training config is
    accepted too (its model setup is used). With ``weights_setup`` the setup the
    pose weights record or imply is merged in (:func:`toppose.pose.setup.apply_weights_setup`): a checkpoint
    of ours runs with no ``--config``, and a setting that contradicts the weights is an error.
    """
    overrides = [(dotted, getattr(args, name), "--" + name.replace("_", "-")) for name, dotted in CONFIG_FLAGS]
    overrides.append(("video.det_every", getattr(args, "det_every", None), "--det-every"))
    if args.no_flip:
        overrides.append(("inference.flip_test", False, "--no-flip"))
    overrides += parse_assignments(getattr(args, "set", None) or [])
    return build_config(config_path(args), overrides, weights_setup and args.pose == "network")


__all__ = ["SETUPS", "add_model_arguments", "config_from_args", "non_negative_int", "positive_float", "positive_int"]
