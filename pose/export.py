"""``python -m pose.export``: the pose network of a setup as an ONNX file, checked against torch.

    python -m pose.export --setup fast -o rtmpose-s.onnx
    python -m pose.export --config configs/hrnet_w32_udp_256x192.toml --pose-weights W.pth -o hrnet.onnx

The setup and its weights are read as ``run.py`` reads them (``--setup``, ``--config``, ``--pose-weights``
and the other model flags). The graph takes ``uint8`` BGR person crops ``(N, H, W, 3)`` with a dynamic
batch axis and normalizes them inside (see :mod:`pose.onnx_export`); it runs in fp32. Where onnxruntime
is installed, the file's outputs on random crops are compared with the torch network's (fp32, the
estimator's own input path) before it is written: a difference beyond ``--tolerance`` times the largest
output is an error.
The file is written atomically.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from toppose.common.atomic import write_bytes
from toppose.common.config import Config
from toppose.common.console import summary_table
from toppose.common.errors import UserError, run_cli
from toppose.pose.checkpoints import build_pose_model
from toppose.pose.inference import TopDownEstimator
from toppose.pose.onnx_export import INPUT_NAME, OUTPUT_NAMES, export_onnx
from toppose.pose.options import add_model_arguments, config_from_args, positive_float
from toppose.pose.runtime import ort_session, require_onnx

CHECK_BATCHES = (1, 3)  # batch sizes the check runs: neither is the traced one (2), so the batch axis is tested


def max_difference(graph: bytes, reference: TopDownEstimator, cfg: Config, seed: int = 0) -> tuple[float, float]:
    """The largest absolute difference between ONNX Runtime's outputs of ``graph`` and those of the torch
    estimator ``reference`` on random crops over :data:`CHECK_BATCHES`, and the largest absolute output of torch's."""
    session = ort_session(graph, torch.get_num_threads())
    width, height = cfg.model.input_size
    rng = np.random.default_rng(seed)
    difference = scale = 0.0
    for batch in CHECK_BATCHES:
        crops = rng.integers(0, 256, (batch, height, width, 3), dtype=np.uint8)
        expected = reference.network_outputs(crops)
        outputs = session.run(None, {INPUT_NAME: crops})
        if [o.shape for o in outputs] != [e.shape for e in expected]:
            raise UserError(f"the ONNX graph's output shapes {[o.shape for o in outputs]} differ from torch's")
        for output, wanted in zip(outputs, expected, strict=True):
            difference = max(difference, float(np.abs(output - wanted).max()))
            scale = max(scale, float(np.abs(wanted).max()))
    return difference, scale


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pose.export", description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="FILE.onnx", help="the ONNX file to write")
    parser.add_argument(
        "--tolerance", type=positive_float, default=1e-4, metavar="T",
        help="largest difference from the torch network's outputs accepted, as a fraction of their largest "
        "absolute value (default 1e-4)",
    )  # fmt: skip
    add_model_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    if args.pose != "network":
        raise UserError("--pose rcnn has no pose network to export")
    require_onnx("ONNX export", ("onnx", "onnxscript"))
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
    write_bytes(args.out, graph)
    width, height = cfg.model.input_size
    console.print(summary_table(f"ONNX export: {args.out}", [
        ("network", f"{cfg.model.family} {cfg.model.backbone}, weights {cfg.model.weights or 'random'}"),
        ("input", f"{INPUT_NAME}: (N, {height}, {width}, 3) uint8 BGR crops, normalized inside; fp32"),
        ("outputs", ", ".join(OUTPUT_NAMES[cfg.codec.type])),
        ("size", f"{len(graph) / 1e6:.1f} MB"),
        ("check", checked),
    ]))  # fmt: skip
    return 0


if __name__ == "__main__":
    run_cli(main)
