"""``python -m benchmarks.backends``: the pose network's crops/s under each backend and precision, in one run.

``python -m benchmarks.backends [--setups fast,balanced] [--batches 9,16] [--repeats 10] [--compile MODE,...]``

For each setup (a name of ``run.py --setup`` or a TOML file) and batch size (default 9 and 16: the crowd
clip's people a frame, and the setups' batch size), with random weights (the same arithmetic as the
published ones): torch fp32 (the inference copy ``run.py`` runs), torch with bf16 autocast
(``--precision bf16``), ONNX Runtime fp32 (``--backend onnxruntime``: graph optimization "all", torch's
thread count), ONNX Runtime at lower graph-optimization levels and with one thread, and each
``--compile`` mode of ``torch.compile`` on the torch fp32 copy ("freezing": inductor's freezing,
on the fp32 copy and under bf16 autocast). Every variant is an estimator given the
same ``uint8`` crops (its input step included); the rounds are interleaved, the best of ``--repeats``
kept. Printed: crops/s, the ratio to torch fp32, and the largest difference of the outputs from torch
fp32's as a fraction of their largest absolute value ("difference").
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable

import numpy as np
import torch
from rich.console import Console
from toppose.common.config import Config
from toppose.common.console import items_table
from toppose.common.errors import UserError, run_cli
from toppose.pose.checkpoints import build_pose_model
from toppose.pose.codecs import Outputs
from toppose.pose.inference import TopDownEstimator
from toppose.pose.models.inputs import inference_copy
from toppose.pose.runtime import cache_path, ort_session

from benchmarks.crowd import setup_config
from toppose.cli.options import positive_int

# The CPU modes of torch.compile (the others add CUDA graphs), and "freezing": the default mode with
# inductor's freezing (weights folded in as constants, prepacked for oneDNN, convolution + activation fused).
COMPILE_MODES = ("default", "max-autotune-no-cudagraphs", "freezing")


def with_inference(cfg: Config, **settings: object) -> Config:
    """A copy of ``cfg`` with the given ``[inference]`` settings."""
    changed = copy.deepcopy(cfg)
    for key, value in settings.items():
        setattr(changed.inference, key, value)
    return changed


def unpacked_estimator(model: torch.nn.Module, cfg: Config) -> TopDownEstimator:
    """An estimator of ``model`` under ``cfg`` whose copy runs torch's own convolution layers, not packed ones
    (their weights reordered at every call; inductor packs its own)."""
    estimator = TopDownEstimator(model, cfg, optimize=True)
    estimator.model = inference_copy(model, estimator.device, estimator.autocast_dtype, prepack=False)
    return estimator


def build_variants(cfg: Config, compile_modes: list[str]) -> dict[str, Callable[[np.ndarray], Outputs]]:
    """Label -> the network outputs of a batch of crops, for every variant of the setup ``cfg`` (random weights)."""
    torch.manual_seed(0)
    model = build_pose_model(cfg.model, weights="", device="cpu", split_ratio=cfg.codec.split_ratio)
    fp32 = with_inference(cfg, precision="fp32", backend="torch", device="cpu")
    variants = {
        "torch fp32": TopDownEstimator(model, fp32, optimize=True),
        "torch bf16 autocast": TopDownEstimator(model, with_inference(fp32, precision="bf16"), optimize=True),
        "onnxruntime fp32": TopDownEstimator(model, with_inference(fp32, backend="onnxruntime"), optimize=True),
    }
    for precision in ("fp32", "bf16"):
        label = f"torch {precision}{' autocast' * (precision == 'bf16')}, convolutions not packed"
        variants[label] = unpacked_estimator(model, with_inference(fp32, precision=precision))
    graph, threads = cache_path(model, fp32), torch.get_num_threads()
    others = {f"onnxruntime fp32, optimization {level}": (level, threads) for level in ("extended", "basic")}
    if threads > 1:
        others["onnxruntime fp32, 1 thread"] = ("all", 1)
    for label, (level, count) in others.items():
        estimator = TopDownEstimator(model, with_inference(fp32, backend="onnxruntime"), optimize=True)
        estimator.runtime.session = ort_session(graph, count, level)
        variants[label] = estimator
    for mode in compile_modes:
        freezing = mode == "freezing"
        how: dict[str, object] = {"options": {"freezing": True}} if freezing else {"mode": mode}
        for precision in ("fp32", "bf16") if freezing else ("fp32",):
            estimator = unpacked_estimator(model, with_inference(fp32, precision=precision))
            estimator.model = torch.compile(estimator.model, **how)
            variants[f"torch.compile {mode}" + (", bf16 autocast" if precision == "bf16" else "")] = estimator
    return {label: estimator.network_outputs for label, estimator in variants.items()}


def relative_difference(outputs: Outputs, reference: Outputs) -> float:
    """The largest absolute difference of ``outputs`` from ``reference``, over ``reference``'s largest magnitude."""
    scale = max(float(np.abs(r).max()) for r in reference)
    return max(float(np.abs(o - r).max()) for o, r in zip(outputs, reference, strict=True)) / max(scale, 1e-30)


def measure(
    variants: dict[str, Callable[[np.ndarray], Outputs]], crops: np.ndarray, repeats: int
) -> dict[str, tuple[float, float]]:
    """Label -> (crops/s, relative output difference from "torch fp32"), best of ``repeats`` interleaved rounds."""
    reference = variants["torch fp32"](crops)
    differences = {label: relative_difference(run(crops), reference) for label, run in variants.items()}  # warm-up
    times: dict[str, list[float]] = {label: [] for label in variants}
    for _ in range(repeats):
        for label, run in variants.items():
            started = time.perf_counter()
            run(crops)
            times[label].append(time.perf_counter() - started)
    return {label: (len(crops) / min(times[label]), differences[label]) for label in variants}


def comma_list(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.backends", description=__doc__.splitlines()[0])
    parser.add_argument("--setups", default="fast,balanced", help="comma-separated setup names or TOML files")
    parser.add_argument("--batches", default="9,16", help="comma-separated batch sizes (default 9,16)")
    parser.add_argument("--repeats", type=positive_int, default=10, help="timed rounds, best kept (default 10)")
    parser.add_argument(
        "--compile", default="", metavar="MODE,...",
        help=f"also time torch.compile in these modes ({', '.join(COMPILE_MODES)}); compiling takes minutes",
    )  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setups = dict(setup_config(spec) for spec in comma_list(args.setups))
    try:
        batches = [int(b) for b in comma_list(args.batches)]
    except ValueError:
        raise UserError(f"--batches: expected comma-separated integers, got {args.batches!r}") from None
    modes = comma_list(args.compile)
    if not setups or not batches or min(batches) < 1 or any(m not in COMPILE_MODES for m in modes):
        raise UserError(f"give setups, batch sizes >= 1 and compile modes among {', '.join(COMPILE_MODES)}")
    console = Console()
    console.print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, best of {args.repeats} rounds")
    rng = np.random.default_rng(0)
    for name, cfg in setups.items():
        variants = build_variants(with_inference(cfg, batch_size=max(batches)), modes)
        width, height = cfg.model.input_size
        for batch in batches:
            crops = rng.integers(0, 256, (batch, height, width, 3), dtype=np.uint8)
            figures = measure(variants, crops, args.repeats)
            base = figures["torch fp32"][0]
            rows = [(label, f"{rate:.1f}", f"{rate / base:.2f}x", f"{difference:.1e}")
                    for label, (rate, difference) in figures.items()]  # fmt: skip
            header = ("variant", "crops/s", "vs fp32", "difference")
            console.print(items_table(f"{name} ({cfg.model.backbone}), batch {batch}", header, rows))
    return 0


if __name__ == "__main__":
    run_cli(main)
