"""``python -m benchmarks.precision``: do a pose network's keypoints under bf16 (or fp16) autocast agree with fp32's?

The same network runs twice on the ground-truth person boxes of an annotated image folder, through the
production estimator (crops, flip test as configured, decoding, the map back to the image, OKS-NMS):
once in fp32 and once under autocast. Every keypoint of every person is compared: the largest and mean
distance between the two positions on the network's output grid (heatmap pixels; for SimCC, bins over
the split ratio, i.e. input pixels) and in image pixels, the share of keypoints more than 0.5 and 1
grid unit apart, and the largest confidence difference; both runs are scored with COCOeval.
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from rich.console import Console
from toppose.common.atomic import check_writable_folder
from toppose.common.coco import evaluate_keypoints, load_coco, selected_image_ids
from toppose.common.config import Config
from toppose.common.console import error_console, summary_table, warn
from toppose.common.errors import UserError, run_cli
from toppose.common.poses import PoseResult
from toppose.eval.coco import ground_truth_boxes
from toppose.pose import geometry
from toppose.pose.annotations import predict_images
from toppose.pose.checkpoints import build_pose_model
from toppose.pose.inference import StageTimer, TopDownEstimator
from toppose.pose.results import to_coco_entries

from toppose.cli.eval import write_output
from toppose.cli.options import add_model_arguments, config_from_args, positive_int

REFERENCE = "fp32"
THRESHOLDS = (0.5, 1.0)  # grid units: the shares of keypoints moved further are reported


@dataclass
class PrecisionReport:
    """fp32 against ``precision`` over every keypoint of the people both runs kept."""

    precision: str
    grid_unit: str  # what one grid unit is: a heatmap pixel, or an input pixel (SimCC bins / split ratio)
    flip_test: bool
    images: int
    people: int
    keypoints: int
    people_kept_by_one: int  # people OKS-NMS kept in one run only (not compared)
    grid_max: float
    grid_mean: float
    image_max: float
    image_mean: float
    share_beyond_half: float  # of the keypoints, more than 0.5 grid units apart
    share_beyond_one: float  # ... more than 1 grid unit apart
    confidence_max: float
    ap_fp32: float
    ap_other: float
    pose_ms_fp32: float  # pose-network time per image (both runs on this machine, one after the other)
    pose_ms_other: float


def grid_unit(cfg: Config) -> tuple[str, float]:
    """The output grid's unit in words, and how many grid pixels (heatmap pixels or SimCC bins) make one."""
    if cfg.codec.type == "simcc":
        return f"input px (SimCC bins / split ratio {cfg.codec.split_ratio:g})", cfg.codec.split_ratio
    return "heatmap px", 1.0


def matched_people(first: PoseResult, second: PoseResult) -> list[tuple[int, int]]:
    """Pairs of rows of ``first`` and ``second`` estimated from the same box (each row used once)."""
    pairs, used = [], set()
    for i, box in enumerate(first.boxes):
        j = next((j for j, other in enumerate(second.boxes) if j not in used and np.array_equal(box, other)), None)
        if j is not None:
            pairs.append((i, j))
            used.add(j)
    return pairs


def grid_points(estimator: TopDownEstimator, result: PoseResult) -> np.ndarray:
    """The keypoints of ``result`` ``(N, K, 2)`` on the estimator's output grid (heatmap pixels or SimCC bins)."""
    centers, sizes = estimator.crop_regions(result.boxes)
    grid = estimator.codec.grid_size
    return geometry.image_to_crop(result.keypoints[..., :2], centers, sizes, grid, estimator.convention)


def _distances(pairs: list[np.ndarray]) -> np.ndarray:
    """Per keypoint, the distance between the two runs' points (``pairs``: per person ``(2, K, 2)``)."""
    first, second = np.stack(pairs, axis=1)
    return np.linalg.norm(second - first, axis=-1).ravel()


def compare_precisions(
    coco: COCO, cfg: Config, image_dir: Path, precision: str, console: Console, limit: int | None = None
) -> PrecisionReport:
    """Run the pose network of ``cfg`` in fp32 and under ``precision`` autocast on the ground-truth boxes."""
    device = cfg.inference.device
    model = build_pose_model(cfg.model, device=device, split_ratio=cfg.codec.split_ratio)
    estimators = []
    for name in (REFERENCE, precision):
        run_cfg = copy.deepcopy(cfg)
        run_cfg.inference.precision = name
        estimators.append(TopDownEstimator(model, run_cfg, device, optimize=True))
    image_ids = selected_image_ids(coco, limit)
    boxes = ground_truth_boxes(coco, image_ids)
    other_entries: list[dict[str, Any]] = []
    grid: list[np.ndarray] = []  # per person: (2, K, 2) grid points of both runs
    image: list[np.ndarray] = []  # ... image points
    confidence: list[np.ndarray] = []  # ... (2, K)
    kept_by_one = 0

    def predict(frame: np.ndarray, image_id: int) -> PoseResult:
        nonlocal kept_by_one
        found = boxes[image_id]
        results = [e.estimate(frame, found.boxes, found.scores) for e in estimators]
        other_entries.extend(to_coco_entries(results[1], image_id))
        pairs = matched_people(*results)
        kept_by_one += len(results[0]) + len(results[1]) - 2 * len(pairs)
        on_grid = [grid_points(e, r) for e, r in zip(estimators, results, strict=True)]
        for i, j in pairs:
            grid.append(np.stack([on_grid[0][i], on_grid[1][j]]))
            image.append(np.stack([results[0].keypoints[i, :, :2], results[1].keypoints[j, :, :2]]))
            confidence.append(np.stack([results[0].keypoints[i, :, 2], results[1].keypoints[j, :, 2]]))
        return results[0]

    entries, processed, skipped, _ = predict_images(coco, image_ids, image_dir, predict, console, StageTimer())
    if skipped:
        warn(console, f"{len(skipped)} images skipped (missing or unreadable), e.g. {skipped[0][0]}: {skipped[0][1]}")
    if not grid:
        raise UserError(f"no annotated person to compare in the {len(processed)} images read from {image_dir}")
    unit, per_unit = grid_unit(cfg)
    grid_distance = _distances(grid) / per_unit
    image_distance = _distances(image)
    pose_ms = [1000.0 * e.timer.seconds["pose"] / max(len(processed), 1) for e in estimators]
    return PrecisionReport(
        precision=precision,
        grid_unit=unit,
        flip_test=cfg.inference.flip_test,
        images=len(processed),
        people=len(grid),
        keypoints=grid_distance.size,
        people_kept_by_one=kept_by_one,
        grid_max=float(grid_distance.max()),
        grid_mean=float(grid_distance.mean()),
        image_max=float(image_distance.max()),
        image_mean=float(image_distance.mean()),
        share_beyond_half=float(np.mean(grid_distance > THRESHOLDS[0])),
        share_beyond_one=float(np.mean(grid_distance > THRESHOLDS[1])),
        confidence_max=float(np.abs(np.subtract(*np.stack(confidence, axis=1))).max()),
        ap_fp32=evaluate_keypoints(coco, entries, processed)["AP"],
        ap_other=evaluate_keypoints(coco, other_entries, processed)["AP"],
        pose_ms_fp32=pose_ms[0],
        pose_ms_other=pose_ms[1],
    )


def report_rows(report: PrecisionReport, weights: str) -> list[tuple[str, str]]:
    """The report as ``(name, value)`` rows for :func:`common.console.summary_table`."""
    other, unit = report.precision, report.grid_unit
    return [
        ("weights", weights or "(random)"),
        ("compared", f"{REFERENCE} vs {other} autocast, flip test {'on' if report.flip_test else 'off'}"),
        ("images / people / keypoints", f"{report.images} / {report.people} / {report.keypoints}"),
        ("people kept by one run only", str(report.people_kept_by_one)),
        (f"largest / mean difference, {unit}", f"{report.grid_max:.4f} / {report.grid_mean:.4f}"),
        ("largest / mean difference, image px", f"{report.image_max:.4f} / {report.image_mean:.4f}"),
        (
            f"keypoints > 0.5 / > 1 {unit}",
            f"{100 * report.share_beyond_half:.2f} % / {100 * report.share_beyond_one:.2f} %",
        ),
        ("largest confidence difference", f"{report.confidence_max:.4f}"),
        (f"AP {REFERENCE} / {other}", f"{report.ap_fp32:.4f} / {report.ap_other:.4f}"),
        (f"pose network ms per image {REFERENCE} / {other}", f"{report.pose_ms_fp32:.1f} / {report.pose_ms_other:.1f}"),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.precision",
        description=__doc__.splitlines()[0].split(": ", 1)[1],
        epilog="--precision names the autocast compared with fp32 (default bf16; fp32 compares fp32 with itself).",
    )
    parser.add_argument("--ann", type=Path, required=True, help="COCO person-keypoints annotation file")
    parser.add_argument("--images", type=Path, required=True, help="folder of the annotated images")
    parser.add_argument("--limit", type=positive_int, metavar="N", help="the first N images (by id) only")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the report to this JSON file")
    add_model_arguments(parser)
    parser.set_defaults(precision="bf16")
    args = parser.parse_args(argv)
    if args.pose != "network":
        raise UserError("--pose rcnn: benchmarks.precision compares the pose network's arithmetic only")
    cfg = config_from_args(args)
    if not args.images.is_dir():
        raise UserError(f"image folder not found: {args.images}")
    if args.json is not None:
        check_writable_folder(args.json.parent)
    report = compare_precisions(load_coco(args.ann), cfg, args.images, args.precision, error_console(), args.limit)
    Console(highlight=False).print(
        summary_table("keypoint agreement across precisions", report_rows(report, cfg.model.weights))
    )
    if args.json is not None:
        write_output(args.json, asdict(report))
    return 0


if __name__ == "__main__":
    run_cli(main)
