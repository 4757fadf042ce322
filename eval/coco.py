"""``python -m eval.coco``: COCO keypoint AP (OKS) of the top-down system on an annotated image folder.

One mode per run: the full pipeline with the person detector (default); ground-truth person boxes
(``--gt-boxes``: the non-crowd people with at least one labelled keypoint, box score 1, the usual
top-down protocol); boxes from a COCO detection results file (``--boxes``); an existing keypoint
results file (``--results``, no images needed); or the decoder ceiling (``--oracle``, see
:mod:`eval.oracle`). Images listed in the annotations but missing or unreadable on disk are skipped,
reported at the end, and left out of the evaluation.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from rich.console import Console
from toppose.common.coco import (
    evaluate_keypoints,
    evaluate_wholebody,
    is_wholebody,
    scored_keypoints,
    selected_image_ids,
)
from toppose.common.config import Config
from toppose.common.console import warn
from toppose.common.errors import UserError
from toppose.common.keypoint_sets import WHOLEBODY133
from toppose.common.numbers import is_number
from toppose.common.poses import PoseResult
from toppose.detector.boxes_file import load_boxes
from toppose.detector.detections import Detections
from toppose.eval.oracle import SimulatedNetwork, keypoints_outside_crops, oracle_poses
from toppose.pose.annotations import ground_truth_people, predict_images
from toppose.pose.inference import StageTimer, TopDownEstimator
from toppose.pose.results import load_results

from toppose.pipeline import TopDownPipeline, build_pipeline


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
    parts: dict[str, dict[str, float]] = field(default_factory=dict)  # COCO-WholeBody: the metrics of each part


def score(coco: COCO, entries: list[dict[str, Any]], image_ids: list[int]) -> tuple[dict[str, float], dict[str, Any]]:
    """The metrics of ``entries`` on ``image_ids``, and what to add to their :class:`Evaluation`: what was scored
    (a note) and, for 133-point results against COCO-WholeBody annotations, every part's metrics (the metrics
    are then the whole body's)."""
    _, what = scored_keypoints(coco, entries)
    extra: dict[str, Any] = {"notes": [("scored", what)]}
    if is_wholebody(coco) and entries and len(entries[0]["keypoints"]) == 3 * len(WHOLEBODY133):
        extra["parts"] = evaluate_wholebody(coco, entries, image_ids)
        return extra["parts"]["whole"], extra
    return evaluate_keypoints(coco, entries, image_ids), extra


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
    metrics, extra = score(coco, entries, image_ids)
    return Evaluation("results", metrics, entries, image_ids, seconds=time.perf_counter() - started, **extra)


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
    metrics, extra = score(coco, entries, processed)
    network = network or SimulatedNetwork()
    notes = [
        *extra["notes"],
        ("labelled keypoints outside their crop", str(outside)),
        ("convention: decoded / simulated", f"{cfg.codec.convention} / {network.convention or cfg.codec.convention}"),
    ]
    if network.noise > 0:
        notes.append(("simulated localisation noise", f"{network.noise:g} heatmap px (seed {network.seed})"))
    return Evaluation(
        "oracle", metrics, entries, processed, [], blank, time.perf_counter() - started, estimator.timer, notes,
        extra.get("parts", {}),
    )  # fmt: skip


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
    boxes = load_boxes(boxes_path, min_score=cfg.detector.score_threshold, max_people=cfg.detector.max_people)
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
    metrics, extra = score(coco, entries, processed)
    seconds = time.perf_counter() - started
    return Evaluation(mode, metrics, entries, processed, skipped, [], seconds, pipeline.timer, **extra)


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


if __name__ == "__main__":  # a checkout's python -m alias of `toppose eval`
    from toppose.cli import alias

    alias("eval")
