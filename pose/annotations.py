"""COCO keypoint annotations as arrays: the people of an image that COCOeval scores."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pycocotools.coco import COCO

from common.schema import NUM_KEYPOINTS


@dataclass
class GroundTruthPeople:
    """The annotated people of one image that top-down evaluation uses."""

    boxes: np.ndarray  # (N, 4) xywh
    keypoints: np.ndarray  # (N, K, 2) image pixels
    visible: np.ndarray  # (N, K) bool: labelled (v > 0)

    def __len__(self) -> int:
        return len(self.boxes)


def ground_truth_people(coco: COCO, image_id: int) -> GroundTruthPeople:
    """Non-crowd annotations of ``image_id`` with at least one labelled keypoint.

    These are the people COCOeval scores (it ignores crowd regions and people without keypoints),
    and the usual choice for top-down evaluation with ground-truth boxes.
    """
    anns = [
        a
        for a in coco.loadAnns(coco.getAnnIds(imgIds=[image_id], iscrowd=False))
        if a.get("num_keypoints", 0) > 0 and len(a.get("keypoints", ())) == 3 * NUM_KEYPOINTS
    ]
    if not anns:
        empty = np.zeros((0, NUM_KEYPOINTS))
        return GroundTruthPeople(np.zeros((0, 4)), np.zeros((0, NUM_KEYPOINTS, 2)), empty.astype(bool))
    flat = np.array([a["keypoints"] for a in anns], dtype=np.float64).reshape(-1, NUM_KEYPOINTS, 3)
    boxes = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
    return GroundTruthPeople(boxes, flat[..., :2], flat[..., 2] > 0)
