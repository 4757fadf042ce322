"""``toppose export``: the pose network of a setup as an ONNX file, checked against torch

See :mod:`toppose.pose.export`; alias in a checkout: ``python -m pose.export``."""

from __future__ import annotations

import argparse
import copy
import importlib.util
from pathlib import Path

from rich.console import Console

from toppose.cli.options import add_model_arguments, config_from_args, positive_float
from toppose.common.atomic import check_writable_folder, write_bytes
from toppose.common.console import summary_table
from toppose.common.errors import UserError
from toppose.pose.checkpoints import build_pose_model
from toppose.pose.export import CHECK_BATCHES, max_difference
from toppose.pose.inference import TopDownEstimator
from toppose.pose.onnx_export import INPUT_NAME, OUTPUT_NAMES, export_onnx
from toppose.pose.runtime import require_onnx


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toppose export", description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="FILE.onnx", help="the ONNX file to write")
    parser.add_argument(
        "--tolerance", type=positive_float, default=1e-4, metavar="T",
        help="largest difference from the torch network's outputs accepted, as a fraction of their largest "
        "absolute value (default 1e-4)",
    )  # fmt: skip
    add_model_arguments(parser)
    return parser


def check_output_file(path: Path) -> None:
    """A :class:`UserError` before the export where ``path`` cannot be written as a file: a folder, or in a folder
    that is a file or cannot be written."""
    if path.is_dir():
        raise UserError(f"--out {path} is a folder: give the ONNX file to write")
    check_writable_folder(path.parent)


def write_graph(path: Path, graph: bytes) -> None:
    """Atomically write ``graph`` to ``path``; a failure (disk full, permissions) is a :class:`UserError`."""
    try:
        write_bytes(path, graph)
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    if args.pose != "network":
        raise UserError("--pose rcnn has no pose network to export")
    require_onnx("ONNX export", ("onnx", "onnxscript"))
    check_output_file(args.out)
    model = build_pose_model(cfg.model, device="cpu", split_ratio=cfg.codec.split_ratio)
    graph = export_onnx(model, cfg)
    console = Console()
    if importlib.util.find_spec("onnxruntime") is None:
        checked = "not checked: onnxruntime is not installed"
    else:
        reference_cfg = copy.deepcopy(cfg)
        reference_cfg.inference.precision, reference_cfg.inference.backend = "fp32", "torch"
        difference, scale = max_difference(graph, TopDownEstimator(model, reference_cfg), cfg)
        if difference > args.tolerance * scale:
            raise UserError(
                f"the ONNX graph's outputs differ from the torch network's by {difference:.3g}, more than "
                f"--tolerance {args.tolerance:g} of their largest absolute value {scale:.3g}; nothing written"
            )
        checked = (f"max abs difference {difference:.2g} from torch fp32 (outputs up to {scale:.2g}; "
                   f"batches {', '.join(map(str, CHECK_BATCHES))})")  # fmt: skip
    write_graph(args.out, graph)
    width, height = cfg.model.input_size
    console.print(summary_table(f"ONNX export: {args.out}", [
        ("network", f"{cfg.model.family} {cfg.model.backbone}, weights {cfg.model.weights or 'random'}"),
        ("input", f"{INPUT_NAME}: (N, {height}, {width}, 3) uint8 BGR crops, normalized inside; fp32"),
        ("outputs", ", ".join(OUTPUT_NAMES[cfg.codec.type])),
        ("size", f"{len(graph) / 1e6:.1f} MB"),
        ("check", checked),
    ]))  # fmt: skip
    return 0
