"""``python -m eval.coco``: COCO keypoint AP (OKS) of the top-down system on an annotated image folder.

One mode per run: the full pipeline with the person detector (default); ground-truth person boxes
(``--gt-boxes``: the non-crowd people with at least one labelled keypoint, box score 1, the usual
top-down protocol); boxes from a COCO detection results file (``--boxes``); an existing keypoint
results file (``--results``, no images needed); or the decoder ceiling (``--oracle``, see
:mod:`eval.oracle`). Images listed in the annotations but missing or unreadable on disk are skipped,
reported at the end, and left out of the evaluation.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from rich.console import Console
from toppose.common.atomic import check_writable_folder, write_json
from toppose.common.coco import METRIC_NAMES, evaluate_keypoints, load_coco, selected_image_ids
from toppose.common.config import Config
from toppose.common.console import error_console, stage_rows, summary_table, warn
from toppose.common.errors import UserError, run_cli
from toppose.common.numbers import finite_or_none, is_number
from toppose.detector.boxes_file import load_boxes
from toppose.detector.detections import Detections
from toppose.eval.oracle import SimulatedNetwork, keypoints_outside_crops, oracle_poses
from toppose.pose.annotations import ground_truth_people, predict_images
from toppose.pose.geometry import CONVENTIONS
from toppose.pose.inference import PoseResult, StageTimer, TopDownEstimator
from toppose.pose.options import add_model_arguments, config_from_args, positive_int
from toppose.pose.results import load_results

from toppose.pipeline import TopDownPipeline, build_pipeline

LISTED_SKIPS = 10  # skipped images named one per line; the rest are counted


@dataclass
class Evaluation:
    """What one run of the evaluation found."""

    mode: str
    metrics: dict[str, float]
    entries: list[dict[str, Any]]  # the COCO keypoint results that were scored
    image_ids: list[int]  # the images evaluated
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (image file, why) left out
    blank: list[str] = field(default_factory=list)  # oracle: image files replaced by blank frames
    seconds: float = 0.0
    timer: StageTimer | None = None
    notes: list[tuple[str, str]] = field(default_factory=list)  # extra (name, value) summary rows


def count_people(coco: COCO, image_ids: list[int]) -> int:
    """Ground-truth people COCOeval scores in ``image_ids`` (see :func:`pose.annotations.ground_truth_people`)."""
    return sum(len(ground_truth_people(coco, image_id)) for image_id in image_ids)


def checked_results(coco: COCO, path: Path) -> list[dict[str, Any]]:
    """A keypoint results file, checked to hold finite numbers and to refer only to images of ``coco``."""
    entries = load_results(path)
    known = set(coco.getImgIds())
    for i, entry in enumerate(entries):
        if not is_number(entry["image_id"]) or entry["image_id"] not in known:
            raise UserError(f"{path}: entry {i} refers to image_id {entry['image_id']!r}, not in the annotation file")
    return entries


def evaluate_results_file(coco: COCO, path: Path, limit: int | None = None) -> Evaluation:
    """Score an existing keypoint results file (on the first ``limit`` images when given)."""
    started = time.perf_counter()
    image_ids = selected_image_ids(coco, limit)
    wanted = set(image_ids)
    entries = [e for e in checked_results(coco, path) if e["image_id"] in wanted]
    metrics = evaluate_keypoints(coco, entries, image_ids)
    return Evaluation("results", metrics, entries, image_ids, seconds=time.perf_counter() - started)


def evaluate_oracle(
    coco: COCO,
    cfg: Config,
    image_dir: Path | None,
    console: Console,
    limit: int | None = None,
    network: SimulatedNetwork | None = None,
) -> Evaluation:
    """The decoder ceiling under ``cfg``: the heatmaps of a simulated ``network`` (default: a perfect one in
    ``cfg``'s convention) through the production path, scored."""
    started = time.perf_counter()
    estimator = TopDownEstimator(None, cfg)
    outside = 0

    def predict(frame: np.ndarray, image_id: int) -> PoseResult:
        nonlocal outside
        people = ground_truth_people(coco, image_id)
        outside += keypoints_outside_crops(estimator, people)
        return oracle_poses(estimator, frame, people, network=network, image_id=image_id)

    image_ids = selected_image_ids(coco, limit)
    entries, processed, _, blank = predict_images(
        coco, image_ids, image_dir, predict, console, estimator.timer, blank_missing=True
    )
    metrics = evaluate_keypoints(coco, entries, processed)
    network = network or SimulatedNetwork()
    notes = [
        ("labelled keypoints outside their crop", str(outside)),
        ("convention: decoded / simulated", f"{cfg.codec.convention} / {network.convention or cfg.codec.convention}"),
    ]
    if network.noise > 0:
        notes.append(("simulated localisation noise", f"{network.noise:g} heatmap px (seed {network.seed})"))
    return Evaluation(
        "oracle", metrics, entries, processed, [], blank, time.perf_counter() - started, estimator.timer, notes
    )


def ground_truth_boxes(coco: COCO, image_ids: list[int]) -> dict[int, Detections]:
    """Per image, the boxes of :func:`pose.annotations.ground_truth_people` with score 1."""
    boxes = {}
    for image_id in image_ids:
        people = ground_truth_people(coco, image_id)
        boxes[image_id] = Detections(people.boxes, np.ones(len(people)))
    return boxes


def person_boxes(
    coco: COCO, image_ids: list[int], cfg: Config, console: Console, boxes_path: Path | None = None
) -> Mapping[int, Detections]:
    """The person boxes to evaluate on: ground truth, or the COCO detection results at ``boxes_path``."""
    if boxes_path is None:
        return ground_truth_boxes(coco, image_ids)
    boxes = load_boxes(boxes_path, min_score=cfg.detector.score_threshold)
    for problem in boxes.problems:
        warn(console, problem)
    if not set(boxes) & set(image_ids):
        warn(console, f"no image id of the annotation file appears in {boxes_path}: nobody will be found")
    return boxes


def run_evaluation(
    coco: COCO, pipeline: TopDownPipeline, image_ids: list[int], image_dir: Path, console: Console, mode: str
) -> Evaluation:
    """``pipeline`` on the images (missing or unreadable ones skipped), scored with COCOeval."""
    started = time.perf_counter()
    entries, processed, skipped, _ = predict_images(
        coco, image_ids, image_dir, pipeline.process, console, pipeline.timer
    )
    if not processed:
        raise UserError(f"none of the {len(image_ids)} images of the annotation file could be read from {image_dir}")
    metrics = evaluate_keypoints(coco, entries, processed)
    return Evaluation(mode, metrics, entries, processed, skipped, [], time.perf_counter() - started, pipeline.timer)


def evaluate_pipeline(
    coco: COCO,
    cfg: Config,
    mode: str,
    image_dir: Path,
    console: Console,
    limit: int | None = None,
    boxes_path: Path | None = None,
    pose: str = "network",
) -> Evaluation:
    """The top-down pipeline on the images, with person boxes from ``mode``: detector, gt-boxes or boxes."""
    image_ids = selected_image_ids(coco, limit)
    boxes = None if mode == "detector" else person_boxes(coco, image_ids, cfg, console, boxes_path)
    pipeline = build_pipeline(cfg, boxes=boxes, pose=pose)
    return run_evaluation(coco, pipeline, image_ids, image_dir, console, mode)


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="python -m eval.coco",
        description="COCO keypoint AP (OKS) of the top-down system, of a results file, or of the decoder ceiling.",
    )
    parser.add_argument("--ann", type=Path, required=True, help="COCO person-keypoints annotation file")
    parser.add_argument(
        "--images", type=Path, help="folder of the annotated images (optional with --results, --oracle)"
    )
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--gt-boxes", action="store_true", help="ground-truth person boxes instead of the detector")
    modes.add_argument("--boxes", type=Path, metavar="DETS.json", help="COCO detection results instead of the detector")
    modes.add_argument("--results", type=Path, metavar="RESULTS.json", help="score an existing keypoint results file")
    modes.add_argument(
        "--oracle", action="store_true", help="decoder ceiling: ground-truth heatmaps through the production path"
    )
    add_model_arguments(parser)
    oracle = parser.add_argument_group("oracle")
    oracle.add_argument(
        "--oracle-network",
        choices=CONVENTIONS,
        metavar="CONVENTION",
        help="the convention the simulated network was trained in (default: the setup's, --convention); "
        "a different one measures what decoding it in the wrong convention costs",
    )
    oracle.add_argument(
        "--oracle-noise",
        type=float,
        default=0.0,
        metavar="PX",
        help="Gaussian localisation error of the simulated network, in heatmap pixels (default 0)",
    )
    oracle.add_argument("--oracle-seed", type=int, default=0, metavar="N", help="seed of that noise (default 0)")
    parser.add_argument("--limit", type=positive_int, metavar="N", help="evaluate the first N images (by id) only")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the ten metrics to this JSON file")
    parser.add_argument("--save-results", type=Path, metavar="PATH", help="write the scored keypoint results (JSON)")
    return parser


def mode_of(args: argparse.Namespace) -> str:
    """The evaluation mode the flags select."""
    if args.gt_boxes:
        return "gt-boxes"
    if args.boxes is not None:
        return "boxes"
    if args.results is not None:
        return "results"
    return "oracle" if args.oracle else "detector"


def report_skipped(console: Console, evaluation: Evaluation, total: int) -> None:
    """One warning line per skipped image (the first few), then a count of what was evaluated."""
    for name, reason in evaluation.skipped[:LISTED_SKIPS]:
        warn(console, f"skipped {name}: {reason}")
    if len(evaluation.skipped) > LISTED_SKIPS:
        warn(console, f"... and {len(evaluation.skipped) - LISTED_SKIPS} more images skipped")
    if evaluation.skipped:
        warn(
            console,
            f"{len(evaluation.skipped)} of {total} images skipped (missing or unreadable); "
            f"evaluated on the {len(evaluation.image_ids)} processed",
        )
    if evaluation.blank:
        warn(console, f"{len(evaluation.blank)} images not found: the oracle used blank frames of their size")


def print_evaluation(coco: COCO, evaluation: Evaluation) -> None:
    """The metrics and run summary as a table on stdout."""
    count = len(evaluation.image_ids)
    rows = [
        ("mode", evaluation.mode),
        ("images evaluated", str(count)),
        ("people (ground truth)", str(count_people(coco, evaluation.image_ids))),
        ("people (results)", str(len(evaluation.entries))),
        *evaluation.notes,
        *[(name, f"{evaluation.metrics[name]:.4f}") for name in METRIC_NAMES],
        ("time", f"{evaluation.seconds:.1f} s"),
    ]
    if evaluation.timer is not None:
        rows += stage_rows(dict(evaluation.timer.seconds), count)
    Console(highlight=False).print(summary_table("COCO keypoint evaluation", rows))


def write_output(path: Path, obj: Any) -> None:
    """Atomically write ``obj`` as strict JSON (a non-finite number as null); an unwritable path is a
    :class:`UserError`."""
    try:
        write_json(path, finite_or_none(obj), indent=2)
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, evaluate, print the table and write the requested files."""
    args = build_parser().parse_args(argv)
    mode = mode_of(args)
    cfg = config_from_args(args, weights_setup=mode not in ("results", "oracle"))
    if args.images is not None and not args.images.is_dir():
        raise UserError(f"image folder not found: {args.images}")
    if args.images is None and mode not in ("results", "oracle"):
        raise UserError(f"--images is required in {mode} mode")
    if mode != "oracle" and (args.oracle_network or args.oracle_noise):
        raise UserError("--oracle-network and --oracle-noise go with --oracle")
    if not np.isfinite(args.oracle_noise) or args.oracle_noise < 0:
        raise UserError(f"--oracle-noise: expected a finite number of heatmap pixels >= 0, got {args.oracle_noise}")
    for output in (args.json, args.save_results):
        if output is not None:
            check_writable_folder(output.parent)  # before the evaluation, not after it
    coco = load_coco(args.ann)
    console = error_console()
    if mode == "results":
        evaluation = evaluate_results_file(coco, args.results, args.limit)
    elif mode == "oracle":
        network = SimulatedNetwork(args.oracle_network, args.oracle_noise, args.oracle_seed)
        evaluation = evaluate_oracle(coco, cfg, args.images, console, args.limit, network)
    else:
        evaluation = evaluate_pipeline(coco, cfg, mode, args.images, console, args.limit, args.boxes, args.pose)
    report_skipped(console, evaluation, len(selected_image_ids(coco, args.limit)))
    print_evaluation(coco, evaluation)
    if args.json is not None:
        write_output(args.json, {name: evaluation.metrics[name] for name in METRIC_NAMES})
    if args.save_results is not None:
        write_output(args.save_results, evaluation.entries)
    return 0


if __name__ == "__main__":
    run_cli(main)
