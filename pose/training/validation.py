"""Validation during training: COCOeval keypoint AP of a network on an annotated image folder.

The network runs through the inference path (:class:`pose.inference.TopDownEstimator`: crops, flip
test, decoding, OKS-NMS) on ground-truth person boxes or on the boxes of a COCO detection results file,
as ``toppose eval --gt-boxes`` / ``--boxes`` score it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from toppose.common.coco import evaluate_keypoints, load_coco, selected_image_ids
from toppose.common.config import Config
from toppose.common.console import warn
from toppose.common.errors import UserError
from toppose.common.poses import PoseResult
from toppose.detector.boxes_file import load_boxes
from toppose.pose.annotations import ground_truth_people, predict_images
from toppose.pose.inference import TopDownEstimator
from torch import nn


def evaluate_on_coco(
    model: nn.Module,
    cfg: Config,
    annotations: str | Path,
    image_dir: str | Path,
    detections: str | Path = "",
    device: str | torch.device = "cpu",
    max_images: int = 0,
    console: Console | None = None,
) -> dict[str, float]:
    """COCOeval keypoint metrics of ``model`` on the first ``max_images`` (0: all) images of ``annotations``.

    Person boxes are the ground truth or, with ``detections``, those of a COCO detection results file
    (kept from ``cfg.detector.score_threshold`` up). Missing or unreadable images are left out and
    reported in one line.
    """
    console = console or Console(stderr=True, highlight=False)
    coco = load_coco(annotations)
    image_ids = selected_image_ids(coco, max_images or None)
    detected = (
        load_boxes(Path(detections), min_score=cfg.detector.score_threshold, max_people=cfg.detector.max_people)
        if detections
        else None
    )
    for problem in detected.problems if detected is not None else ():
        warn(console, problem)
    estimator = TopDownEstimator(model, cfg, device)

    def predict(frame: np.ndarray, image_id: int) -> PoseResult:
        if detected is None:
            return estimator.estimate(frame, ground_truth_people(coco, image_id).boxes)
        found = detected.get(image_id)
        return PoseResult.empty() if found is None else estimator.estimate(frame, found.boxes, found.scores)

    entries, evaluated, skipped, _ = predict_images(coco, image_ids, Path(image_dir), predict, console, estimator.timer)
    if skipped:
        warn(console, f"validation skipped {len(skipped)} missing or unreadable images, e.g. {skipped[0][1]}")
    if not evaluated:
        raise UserError(f"none of the {len(image_ids)} validation images could be read from {image_dir}")
    return evaluate_keypoints(coco, entries, evaluated)
