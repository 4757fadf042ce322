"""Speed benchmark: per-stage times, pose-network throughput against the machine's convolution rate,
video frames/s with tracking, and Keypoint R-CNN end to end as the reference, in one run.

``python -m benchmarks.speed [--frames 8] [--video-frames 30] [--config configs/X.toml] [--json OUT.json]``

Frames are the first ``--frames`` images of ``--images``/``--ann`` (default: ../shared/coco-mini
val2017 when present), else generated synthetic 640x480 scenes. The pose stage gets the frames'
ground-truth person boxes, so its work does not depend on the detector's weights. Detectors whose
pretrained weights are not cached run with random weights: their time per frame is what is measured
(a random Keypoint R-CNN still runs its region proposals and heads at full size), never their output.

The video part renders a synthetic clip (two people crossing, 640x360), writes it as mp4 and runs
``run.py --track``'s loop on it with ``--det-every 1`` and ``--det-every 5``, beside Keypoint R-CNN on
every frame. A detector without its pretrained weights runs its network on each frame it is given
(the time is real) but hands the tracker the clip's true boxes, so that the pose stage and the
tracker see the people a trained detector would find. A random Keypoint R-CNN finds almost nobody
and so skips its keypoint head: its reference time is a lower bound, which makes the ratio conservative.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from rich.console import Console
from toppose.common.atomic import write_json
from toppose.common.coco import load_coco
from toppose.common.config import Config, DetectorConfig, load_config, override
from toppose.common.console import summary_table
from toppose.common.errors import MissingWeightsError, run_cli
from toppose.common.synthetic import render_scene
from toppose.detector import Detections, PersonDetector, build_detector
from toppose.pose.checkpoints import build_pose_model
from toppose.pose.geometry import warp_crops
from toppose.pose.inference import TopDownEstimator
from toppose.pose.models.prepacked import PackedConv2d
from toppose.pose.precision import describe_precision
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.sequences import Sequence, make_sequence, render_frames
from toppose.pipeline import TopDownPipeline, detections_to_pose_result
from toppose.sources import open_source
from toppose.video import pipeline_config, process_video, video_options

DEFAULT_IMAGES = Path(__file__).resolve().parent.parent.parent / "shared" / "coco-mini" / "val2017"
DEFAULT_ANN = DEFAULT_IMAGES.parent / "annotations" / "person_keypoints_val2017.json"
BATCH_SIZES = (1, 2, 4, 8, 16)
# 3x3 convolutions at ResNet stage shapes for a 256x192 input (channels, height, width): the reference
# for "this machine's convolution throughput" is the best rate torch reaches on them at batch 8.
REFERENCE_CONVS = ((64, 64, 48), (128, 32, 24), (256, 16, 12), (512, 8, 6))
REFERENCE_BATCH = 8
STAGE_LABELS = {"read": "decode image", "decode": "keypoint decode"}  # pipeline stage -> table row
KEYPOINT_RCNN = "keypointrcnn_resnet50_fpn"
FAST_DETECTOR = "fasterrcnn_mobilenet_v3_large_fpn"  # also timed in the video part, beside the config's


@dataclass
class Frame:
    """An encoded image and the person boxes (xywh) to crop from it."""

    name: str
    encoded: bytes
    boxes: np.ndarray


def best_time(fn: Callable[[], object], repeats: int) -> float:
    """The fastest of ``repeats`` calls of ``fn`` after one warm-up call, in seconds."""
    fn()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def count_flops(fn: Callable[[], object]) -> int:
    """Floating-point operations of one call of ``fn`` (a multiply-add counts as two)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


@torch.inference_mode()
def network_conv_gflops(estimator: TopDownEstimator, crops: np.ndarray, repeats: int) -> float:
    """GFLOP/s of the pose network's own convolutions, each run alone on its input at this batch size.

    This is the machine's convolution throughput on exactly the layers the pose stage runs (packed ones with
    the activation fused into them); the pose stage's shortfall from it is everything else (normalization,
    other activations, pooling, data movement).
    """
    inputs: list[tuple[torch.nn.Module, torch.Tensor]] = []
    layers = torch.nn.Conv2d | torch.nn.ConvTranspose2d | PackedConv2d
    convs = [m for m in estimator.model.modules() if isinstance(m, layers)]
    hooks = [m.register_forward_hook(lambda m, args, out: inputs.append((m, args[0]))) for m in convs]
    estimator.network_outputs(crops)
    for hook in hooks:
        hook.remove()
    flops = sum(count_flops(lambda m=m, x=x: m(x)) for m, x in inputs)
    seconds = sum(best_time(lambda m=m, x=x: m(x), repeats) for m, x in inputs)
    return flops / seconds / 1e9


@torch.inference_mode()
def conv_reference_gflops(repeats: int = 5) -> tuple[float, str]:
    """The machine's convolution throughput: the best GFLOP/s over :data:`REFERENCE_CONVS` at batch 8."""
    best, label = 0.0, ""
    for channels, height, width in REFERENCE_CONVS:
        conv = torch.nn.Conv2d(channels, channels, 3, padding=1, bias=False).eval()
        x = torch.randn(REFERENCE_BATCH, channels, height, width).contiguous(memory_format=torch.channels_last)
        conv = conv.to(memory_format=torch.channels_last)
        rate = count_flops(lambda c=conv, x=x: c(x)) / best_time(lambda c=conv, x=x: c(x), repeats) / 1e9
        if rate > best:
            best, label = rate, f"3x3 conv {channels}ch {height}x{width}"
    return best, label


def load_frames(images: Path | None, ann: Path | None, count: int) -> tuple[list[Frame], str]:
    """``count`` frames with their ground-truth person boxes, from COCO files or generated."""
    if images is not None and ann is not None and images.is_dir() and ann.is_file():
        coco = load_coco(ann)
        frames = []
        for image_id in sorted(coco.getImgIds(catIds=[1])):
            anns = [a for a in coco.loadAnns(coco.getAnnIds(imgIds=image_id, iscrowd=False)) if a["num_keypoints"] > 0]
            path = images / coco.loadImgs(image_id)[0]["file_name"]
            if anns and path.is_file():
                frames.append(Frame(path.name, path.read_bytes(), np.array([a["bbox"] for a in anns], dtype=float)))
            if len(frames) == count:
                break
        return frames, f"{images} ({len(frames)} images)"
    rng = np.random.default_rng(0)
    frames = []
    for i in range(count):
        image, people = render_scene(rng, 640, 480)
        encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
        frames.append(Frame(f"synthetic_{i}", encoded, np.array([p.bbox() for p in people])))
    return frames, f"synthetic 640x480 scenes ({count})"


def decode_frame(frame: Frame) -> np.ndarray:
    return cv2.imdecode(np.frombuffer(frame.encoded, np.uint8), cv2.IMREAD_COLOR)


def build_timing_detector(cfg: DetectorConfig, device: str, keypoints: bool = False) -> tuple[PersonDetector, str]:
    """The detector with its pretrained weights when cached, else random weights (timing only).

    Random weights are drawn from one fixed seed, so every timing detector of an architecture is the
    same network and finds the same (few) boxes: their time per frame is comparable.
    """
    try:
        return build_detector(cfg, device, pretrained=True, keypoints=keypoints), "pretrained"
    except MissingWeightsError:
        torch.manual_seed(0)
        return build_detector(cfg, device, pretrained=False, keypoints=keypoints), "random weights, timing only"


def frame_key(frame_bgr: np.ndarray) -> bytes:
    """A content hash identifying a decoded frame."""
    return hashlib.blake2b(frame_bgr.tobytes(), digest_size=16).digest()


class TruthFeedingDetector:
    """Runs a detector network on every frame it is asked about (real time spent), answers with the true boxes."""

    def __init__(self, detector: PersonDetector, truth: dict[bytes, Detections]) -> None:
        self.detector = detector
        self.truth = truth

    def detect_batch(self, frames_bgr: list[np.ndarray]) -> list[Detections]:
        self.detector.detect_batch(frames_bgr)
        return [self.truth.get(frame_key(frame), Detections.empty()) for frame in frames_bgr]


def stage_times(pipeline: TopDownPipeline, frames: list[Frame]) -> dict[str, float]:
    """Mean ms per frame of every stage of the image pipeline over ``frames`` (after one warm-up frame)."""

    def run(frame: Frame) -> None:
        started = time.perf_counter()
        image = decode_frame(frame)
        pipeline.timer.add("read", started)
        pipeline.draw(image, pipeline.process(image))

    run(frames[0])
    pipeline.timer.seconds.clear()
    for frame in frames:
        run(frame)
    return {STAGE_LABELS.get(stage, stage): 1000.0 * s / len(frames) for stage, s in pipeline.timer.seconds.items()}


def crop_stack(estimator: TopDownEstimator, frames: list[Frame], count: int) -> np.ndarray:
    """``count`` real person crops from the frames (cycled when there are fewer people)."""
    crops = []
    for frame in frames:
        centers, sizes = estimator.crop_regions(frame.boxes)
        crops.extend(warp_crops(decode_frame(frame), estimator.crop_matrices(centers, sizes), estimator.input_size))
    return np.stack([crops[i % len(crops)] for i in range(count)])


def batch_throughput(
    estimator: TopDownEstimator, crops: np.ndarray, repeats: int, sizes: tuple[int, ...] = BATCH_SIZES
) -> dict[int, float]:
    """Crops per second of the pose network (as the pose stage runs it, one pass) at each batch size.

    Batch sizes are measured in interleaved rounds so that machine noise falls on all of them alike.
    """
    times: dict[int, list[float]] = {size: [] for size in sizes}
    for size in sizes:
        estimator.network_outputs(crops[:size])  # warm-up
    for _ in range(repeats):
        for size in sizes:
            started = time.perf_counter()
            estimator.network_outputs(crops[:size])
            times[size].append(time.perf_counter() - started)
    return {size: size / min(samples) for size, samples in times.items()}


def rcnn_end_to_end(cfg: Config, frames: list[Frame]) -> tuple[float, str]:
    """Keypoint R-CNN's own poses, end to end (decode, detect with keypoints), in ms per frame."""
    rcnn_cfg = replace(cfg.detector, name=KEYPOINT_RCNN, weights="")
    detector, weights = build_timing_detector(rcnn_cfg, cfg.inference.device, keypoints=True)

    def run(frame: Frame) -> None:
        detections_to_pose_result(detector.detect(decode_frame(frame)))

    run(frames[0])
    started = time.perf_counter()
    for frame in frames:
        run(frame)
    return 1000.0 * (time.perf_counter() - started) / len(frames), weights


def write_sequence_clip(path: Path, sequence: Sequence, frames: int | None = None) -> dict[bytes, Detections]:
    """Render the first ``frames`` frames of ``sequence`` to ``path`` (mp4); the true person boxes keyed by
    decoded frame."""
    truth_frames = sequence.truth[:frames]
    writer = cv2.VideoWriter(
        str(path), cv2.VideoWriter_fourcc(*"mp4v"), sequence.fps, (sequence.width, sequence.height)
    )
    for image, _ in zip(render_frames(sequence), truth_frames, strict=False):
        writer.write(image)
    writer.release()
    truth = {}
    capture = cv2.VideoCapture(str(path))
    for people in truth_frames:
        ok, decoded = capture.read()
        if ok:
            truth[frame_key(decoded)] = Detections(people.boxes.astype(float), np.ones(len(people.boxes)))
    capture.release()
    return truth


def write_clip(path: Path, frames: int) -> dict[bytes, Detections]:
    """Render the benchmark clip (people crossing) to ``path``; returns the true boxes keyed by decoded frame."""
    return write_sequence_clip(path, make_sequence("crossing", seed=0), frames)


def video_fps(
    cfg: Config, estimator: TopDownEstimator, clip: Path, truth: dict[bytes, Detections], detectors: list[str]
) -> dict[str, float]:
    """Frames/s of the tracked video loop at ``--det-every`` 1 and 5 with each of ``detectors``, and of
    Keypoint R-CNN on every frame."""
    figures: dict[str, float] = {}
    for name in detectors:
        for det_every in (1, 5):
            options = video_options(cfg, det_every=det_every)
            run_cfg = pipeline_config(cfg, options)
            run_cfg.detector = replace(run_cfg.detector, name=name, weights="")
            detector, weights = build_timing_detector(run_cfg.detector, cfg.inference.device)
            if weights != "pretrained":
                detector = TruthFeedingDetector(detector, truth)
            pipeline = TopDownPipeline(run_cfg, estimator, detector=detector)
            figures[f"--track --det-every {det_every}, {name}"] = process_video(
                open_source(clip), pipeline, options
            ).fps
    rcnn_cfg = replace(cfg.detector, name=KEYPOINT_RCNN, weights="")
    rcnn, _ = build_timing_detector(rcnn_cfg, cfg.inference.device, keypoints=True)
    options = video_options(cfg, track=False)
    report = process_video(open_source(clip), TopDownPipeline(cfg, None, detector=rcnn), options)
    figures["Keypoint R-CNN per frame"] = report.fps
    return figures


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", type=Path, default=None, help="model setup (default: configs/rtmpose_m_256x192.toml)"
    )
    parser.add_argument("--images", type=Path, default=DEFAULT_IMAGES, help="image folder (default: coco-mini val2017)")
    parser.add_argument("--ann", type=Path, default=DEFAULT_ANN, help="their COCO keypoint annotations")
    parser.add_argument("--frames", type=int, default=8, help="frames to time (default 8)")
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds per batch size (default 5)")
    parser.add_argument("--video-frames", type=int, default=30, help="frames of the video clip (default 30; 0: skip)")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: the config's)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = load_config(args.config)
    override(cfg, "inference.device", args.device, "--device")
    console = Console()
    torch.manual_seed(0)
    frames, source = load_frames(args.images, args.ann, args.frames)
    console.print(
        f"frames: {source}; torch {torch.__version__}, {torch.get_num_threads()} threads, device {cfg.inference.device}"
    )

    reference, reference_label = conv_reference_gflops(args.repeats)
    model = build_pose_model(cfg.model, weights="", device=cfg.inference.device)
    estimator = TopDownEstimator(model, cfg, cfg.inference.device, optimize=True)
    crops = crop_stack(estimator, frames, max(BATCH_SIZES))
    flops_per_crop = count_flops(lambda: estimator.network_outputs(crops[:1]))
    throughput = batch_throughput(estimator, crops, args.repeats)
    conv_rate = network_conv_gflops(estimator, crops[:REFERENCE_BATCH], args.repeats)
    bf16_cfg = copy.deepcopy(cfg)
    bf16_cfg.inference.precision = "bf16"
    bf16 = TopDownEstimator(model, bf16_cfg, cfg.inference.device, optimize=True)  # the same weights
    bf16_rate = batch_throughput(bf16, crops, args.repeats, (REFERENCE_BATCH,))[REFERENCE_BATCH]
    detector, detector_weights = build_timing_detector(cfg.detector, cfg.inference.device)
    truth = {frame_key(decode_frame(f)): Detections(f.boxes, np.ones(len(f.boxes))) for f in frames}
    stages = stage_times(TopDownPipeline(cfg, estimator, TruthFeedingDetector(detector, truth)), frames)
    rcnn_ms, rcnn_weights = rcnn_end_to_end(cfg, frames)

    people = sum(len(f.boxes) for f in frames) / len(frames)
    flip = 2 if cfg.inference.flip_test else 1
    console.print(summary_table(
        f"ms per frame ({people:.1f} people per frame, flip test {'on' if flip == 2 else 'off'})",
        [(stage, f"{ms:.1f}") for stage, ms in stages.items()]
        + [("total", f"{sum(stages.values()):.1f}"),
           (f"detector {cfg.detector.name} ({detector_weights})", f"{stages['detect']:.1f}"),
           (f"Keypoint R-CNN end to end ({rcnn_weights})", f"{rcnn_ms:.1f}")],
    ))  # fmt: skip
    gflops = flops_per_crop / 1e9
    arithmetic = describe_precision(cfg.inference)  # the setup's: fp32 unless it names another
    console.print(summary_table(
        f"pose network {cfg.model.backbone} {cfg.model.input_size[0]}x{cfg.model.input_size[1]}: "
        f"{gflops:.2f} GFLOP per crop ({arithmetic})",
        [(f"batch {size}", f"{rate:.1f} crops/s, {rate * gflops:.0f} GFLOP/s") for size, rate in throughput.items()]
        + [(f"its convolutions alone, batch {REFERENCE_BATCH}", f"{conv_rate:.0f} GFLOP/s"),
           (f"best 3x3 convolution, batch {REFERENCE_BATCH}", f"{reference:.0f} GFLOP/s ({reference_label})"),
           (f"batch {REFERENCE_BATCH}, bf16 autocast",
            f"{bf16_rate:.1f} crops/s ({bf16_rate / throughput[REFERENCE_BATCH]:.2f}x {arithmetic})")],
    ))  # fmt: skip
    ratio = throughput[8] * gflops / conv_rate
    console.print(
        f"pose stage at batch 8: {ratio:.0%} of the machine's convolution throughput on its layers "
        f"({throughput[8] * gflops / reference:.0%} of the best single 3x3 convolution); "
        f"batch 8 vs batch 1: {throughput[8] / throughput[1]:.2f}x crops/s"
    )
    video = {}
    if args.video_frames > 0:
        with tempfile.TemporaryDirectory() as tmp:
            clip = Path(tmp) / "clip.mp4"
            detectors = list(dict.fromkeys([cfg.detector.name, FAST_DETECTOR]))
            video = video_fps(cfg, estimator, clip, write_clip(clip, args.video_frames), detectors)
        reference_fps = video["Keypoint R-CNN per frame"]
        console.print(summary_table(
            f"video: {args.video_frames} frames 640x360, 2 people, pose {cfg.model.backbone}",
            [(name, f"{fps:.2f} frames/s, {fps / reference_fps:.1f}x Keypoint R-CNN") for name, fps in video.items()],
        ))  # fmt: skip
    if args.json:
        write_json(args.json, {"video_fps": video,
            "frames": source, "people_per_frame": people, "ms_per_frame": stages,
            "keypoint_rcnn_ms_per_frame": rcnn_ms, "gflop_per_crop": gflops,
            "crops_per_s": {str(k): v for k, v in throughput.items()},
            "network_conv_gflops": conv_rate, "best_3x3_conv_gflops": reference,
            "batch8_fraction_of_conv_throughput": ratio, "batch8_bf16_crops_per_s": bf16_rate,
        }, indent=2)  # fmt: skip
    return 0


if __name__ == "__main__":
    run_cli(main)
