"""``python -m benchmarks.zoo``: the model zoo's networks side by side on this machine, in one run.

For each setup (one registry entry per architecture, by default every 256x192 one): its published COCO
val AP, GFLOP per crop, and crops/s of the pose network at one batch size in fp32 and with bf16 autocast
(random weights: the arithmetic is the same), measured in interleaved rounds so that machine noise falls
on every setup alike.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from rich.console import Console
from toppose.common.config import Config
from toppose.common.console import summary_table
from toppose.common.errors import UserError, run_cli
from toppose.pose.checkpoints import build_pose_model
from toppose.pose.inference import TopDownEstimator
from toppose.pose.registry import REGISTRY
from toppose.pose.setup import apply_weights_setup

from benchmarks.speed import count_flops
from toppose.cli.options import positive_int


def default_setups() -> list[str]:
    """One registry entry per 256x192 architecture (the first listed)."""
    seen: dict[tuple, str] = {}
    for name, entry in REGISTRY.items():
        if entry.input_size == (192, 256):
            seen.setdefault((entry.family, entry.backbone, entry.num_deconv), name)
    return list(seen.values())


def estimator_for(name: str, precision: str) -> TopDownEstimator:
    """The optimized inference estimator of a registry setup, with random weights."""
    cfg = Config()
    cfg.model.weights = name
    apply_weights_setup(cfg, explicit={})
    cfg.inference.precision = precision
    model = build_pose_model(cfg.model, weights="", split_ratio=cfg.codec.split_ratio)
    return TopDownEstimator(model, cfg, optimize=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.zoo", description=__doc__.splitlines()[0])
    parser.add_argument("setups", nargs="*", help="registry names (default: every 256x192 architecture)")
    parser.add_argument("--batch", type=positive_int, default=8, help="crops per network call (default 8)")
    parser.add_argument("--repeats", type=positive_int, default=3, help="timed rounds (default 3)")
    args = parser.parse_args(argv)
    names = args.setups or default_setups()
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise UserError(f"unknown setup '{unknown[0]}' (see pose/registry.py)")
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    runs = {}
    for name in names:
        width, height = REGISTRY[name].input_size
        crops = rng.integers(0, 255, (args.batch, height, width, 3), dtype=np.uint8)
        fp32, bf16 = estimator_for(name, "fp32"), estimator_for(name, "bf16")
        flops = count_flops(lambda e=fp32, c=crops: e.network_outputs(c[:1]))
        runs[name] = (crops, fp32, bf16, flops, {"fp32": [], "bf16": []})
        fp32.network_outputs(crops), bf16.network_outputs(crops)  # warm-up
    for _ in range(args.repeats):
        for crops, fp32, bf16, _, times in runs.values():
            for label, estimator in (("fp32", fp32), ("bf16", bf16)):
                started = time.perf_counter()
                estimator.network_outputs(crops)
                times[label].append(time.perf_counter() - started)
    rows = []
    for name, (_, _, _, flops, times) in runs.items():
        entry = REGISTRY[name]
        fp32_rate, bf16_rate = (args.batch / min(times[label]) for label in ("fp32", "bf16"))
        rows.append((
            f"{name} ({entry.codec}, {entry.convention})",
            f"AP {entry.published_ap:.1f} | {flops / 1e9:.2f} GFLOP | fp32 {fp32_rate:.1f} crops/s | "
            f"bf16 {bf16_rate:.1f} crops/s ({bf16_rate / fp32_rate:.1f}x)",
        ))  # fmt: skip
    console = Console()
    console.print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, best of {args.repeats}"
    )
    console.print(summary_table("pose networks (published COCO val AP; per crop; this machine)", rows))
    return 0


if __name__ == "__main__":
    run_cli(main)
