"""COCO keypoint annotations as the pose step sees them: the people of an image that COCOeval scores, and
predictions over the annotated images."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from rich.console import Console
from toppose.common.coco import annotated_keypoints
from toppose.common.console import progress_bar
from toppose.common.errors import UserError
from toppose.common.images import read_image
from toppose.common.poses import PoseResult
from toppose.pose.inference import StageTimer
from toppose.pose.results import to_coco_entries

# (frame BGR, image id) -> the poses of that image.
Predictor = Callable[[np.ndarray, int], PoseResult]


@dataclass
class GroundTruthPeople:
    """The annotated people of one image that top-down evaluation uses."""

    boxes: np.ndarray  # (N, 4) xywh
    keypoints: np.ndarray  # (N, K, 2) image pixels
    visible: np.ndarray  # (N, K) bool: labelled (v > 0)

    def __len__(self) -> int:
        return len(self.boxes)


def ground_truth_people(coco: COCO, image_id: int) -> GroundTruthPeople:
    """Non-crowd annotations of ``image_id`` with at least one labelled keypoint (as many keypoints as the file has).

    These are the people COCOeval scores (it ignores crowd regions and people without keypoints),
    and the usual choice for top-down evaluation with ground-truth boxes.
    """
    count = annotated_keypoints(coco)
    anns = [
        a
        for a in coco.loadAnns(coco.getAnnIds(imgIds=[image_id], iscrowd=False))
        if a.get("num_keypoints", 0) > 0 and len(a.get("keypoints", ())) == 3 * count
    ]
    if not anns:
        return GroundTruthPeople(np.zeros((0, 4)), np.zeros((0, count, 2)), np.zeros((0, count), dtype=bool))
    flat = np.array([a["keypoints"] for a in anns], dtype=np.float64).reshape(-1, count, 3)
    boxes = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
    return GroundTruthPeople(boxes, flat[..., :2], flat[..., 2] > 0)


def predict_images(
    coco: COCO,
    image_ids: list[int],
    image_dir: Path | None,
    predict: Predictor,
    console: Console,
    timer: StageTimer,
    blank_missing: bool = False,
) -> tuple[list[dict[str, Any]], list[int], list[tuple[str, str]], list[str]]:
    """Run ``predict`` on every image; returns (results entries, processed ids, skipped, blank).

    An image that is missing or unreadable is skipped with its reason, or with ``blank_missing``
    replaced by a black frame of its annotated size (``image_dir`` None: every frame is blank).
    Reading is timed into ``timer`` as stage ``"read"``.
    """
    entries: list[dict[str, Any]] = []
    processed: list[int] = []
    skipped: list[tuple[str, str]] = []
    blank: list[str] = []
    with progress_bar(console, "evaluating") as progress:
        task = progress.add_task("images", total=len(image_ids), item="")
        for image_id in image_ids:
            info = coco.imgs[image_id]
            name = str(info.get("file_name", image_id))
            progress.update(task, item=name)
            frame = None
            if image_dir is not None:
                started = time.perf_counter()
                try:
                    frame = read_image(image_dir / name)
                    timer.add("read", started)
                except UserError as err:
                    if not blank_missing:
                        skipped.append((name, str(err)))
                        progress.advance(task)
                        continue
                    blank.append(name)
            if frame is None:
                if not isinstance(info.get("height"), int) or not isinstance(info.get("width"), int):
                    raise UserError(f"image {name}: not on disk and the annotation file gives no integer size")
                frame = np.zeros((info["height"], info["width"], 3), dtype=np.uint8)
            entries += to_coco_entries(predict(frame, image_id), image_id)
            processed.append(image_id)
            progress.advance(task)
    return entries, processed, skipped, blank
