"""``python -m benchmarks.zoo``: the model zoo's networks side by side on this machine, in one run.

For each setup (one registry entry per architecture, by default every 256x192 one): its published figure (COCO
val AP; Body8 AUC for Halpe-26, whole-body AP for COCO-WholeBody), GFLOP per crop, and crops/s of the pose
network at one batch size in fp32 and with bf16 autocast (random weights: the arithmetic is the same), measured
in interleaved rounds so that machine noise falls on every setup alike. ``--device cuda`` runs them on the GPU:
crops cut, the network run and its outputs decoded there (the estimator's device path, only keypoints copied
back), each timed call between two synchronizations, and each setup's peak GPU memory
(``torch.cuda.max_memory_allocated``) printed.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from rich.console import Console
from toppose.common.config import Config
from toppose.common.console import summary_table
from toppose.common.errors import UserError, run_cli
from toppose.common.weights import torch_device
from toppose.pose.checkpoints import build_pose_model
from toppose.pose.inference import TopDownEstimator
from toppose.pose.models.inputs import in_channel_order
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


def estimator_for(name: str, precision: str, device: str = "cpu") -> TopDownEstimator:
    """The optimized inference estimator of a registry setup on ``device``, with random weights."""
    cfg = Config()
    cfg.model.weights = name
    apply_weights_setup(cfg, explicit={})
    cfg.inference.precision = precision
    cfg.inference.device = device
    model = build_pose_model(cfg.model, weights="", device=device, split_ratio=cfg.codec.split_ratio)
    return TopDownEstimator(model, cfg, device, optimize=True)


def network_call(estimator: TopDownEstimator, crops: np.ndarray) -> Callable[[], object]:
    """One network call on ``crops``: on the host path from host crops; on the device path (CUDA) from crops
    already on the device, outputs left there (what the estimator runs between cutting and decoding)."""
    if not estimator.device_path:
        return lambda: estimator.network_outputs(crops)
    order = estimator.cfg.model.channel_order
    on_device = torch.from_numpy(in_channel_order(crops, order)).to(estimator.device).permute(0, 3, 1, 2).float()

    def run() -> object:
        with torch.inference_mode():
            return estimator.device_network(on_device)

    return run


def timed(call: Callable[[], object], device: torch.device) -> tuple[float, float | None]:
    """Seconds of one call, between two synchronizations on CUDA, and its peak GPU memory (MB; None on a CPU)."""
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    started = time.perf_counter()
    call()
    if cuda:
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - started
    return elapsed, torch.cuda.max_memory_allocated(device) / 1e6 if cuda else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.zoo", description=__doc__.splitlines()[0])
    parser.add_argument("setups", nargs="*", help="registry names (default: every 256x192 architecture)")
    parser.add_argument("--batch", type=positive_int, default=8, help="crops per network call (default 8)")
    parser.add_argument("--repeats", type=positive_int, default=3, help="timed rounds (default 3)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = parser.parse_args(argv)
    names = args.setups or default_setups()
    unknown = [n for n in names if n not in REGISTRY]
    if unknown:
        raise UserError(f"unknown setup '{unknown[0]}' (see pose/registry.py)")
    device = torch_device(args.device)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    runs = {}
    for name in names:
        width, height = REGISTRY[name].input_size
        crops = rng.integers(0, 255, (args.batch, height, width, 3), dtype=np.uint8)
        fp32, bf16 = estimator_for(name, "fp32", args.device), estimator_for(name, "bf16", args.device)
        flops = count_flops(lambda e=fp32, c=crops: e.network_outputs(c[:1]))
        calls = {"fp32": network_call(fp32, crops), "bf16": network_call(bf16, crops)}
        runs[name] = (calls, flops, {"fp32": [], "bf16": []}, [])
        calls["fp32"](), calls["bf16"]()  # warm-up
    for _ in range(args.repeats):
        for calls, _, times, memory in runs.values():
            for label, call in calls.items():
                seconds, peak_mb = timed(call, device)
                times[label].append(seconds)
                memory.append(peak_mb)
    rows = []
    for name, (_, flops, times, memory) in runs.items():
        entry = REGISTRY[name]
        fp32_rate, bf16_rate = (args.batch / min(times[label]) for label in ("fp32", "bf16"))
        rows.append((
            f"{name} ({entry.codec}, {entry.convention})",
            f"{entry.published_metric} {entry.published_ap:g} | {flops / 1e9:.2f} GFLOP | "
            f"fp32 {fp32_rate:.1f} crops/s | "
            f"bf16 {bf16_rate:.1f} crops/s ({bf16_rate / fp32_rate:.1f}x)"
            + ("" if memory[0] is None else f" | peak GPU {max(memory):.0f} MB"),
        ))  # fmt: skip
    console = Console()
    console.print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {device}, batch {args.batch}, "
        f"best of {args.repeats}"
    )
    console.print(summary_table("pose networks (published figure; per crop; this machine)", rows))
    return 0


if __name__ == "__main__":
    run_cli(main)
