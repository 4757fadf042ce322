"""COCO keypoint results: converting poses to result entries, and reading result files back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from common.errors import UserError
from common.jsonio import read_json
from pose.inference import PoseResult
from pose.schema import NUM_KEYPOINTS, PERSON_CATEGORY_ID

REQUIRED_FIELDS = ("image_id", "category_id", "keypoints", "score")


def to_coco_entries(result: PoseResult, image_id: int, **extra: Any) -> list[dict[str, Any]]:
    """One COCO keypoint result per person (``keypoints`` as x, y, confidence triplets, ``bbox`` xywh).

    ``extra`` fields (e.g. ``file_name``) are added to every entry.
    """
    entries = []
    for i in range(len(result)):
        entries.append(
            {
                "image_id": int(image_id),
                "category_id": PERSON_CATEGORY_ID,
                "keypoints": [round(float(v), 3) for v in result.keypoints[i].reshape(-1)],
                "score": round(float(result.scores[i]), 5),
                "bbox": [round(float(v), 2) for v in result.boxes[i]],
                "box_score": round(float(result.box_scores[i]), 5),
                **extra,
            }
        )
    return entries


def validate_entries(entries: Any, source: str, required: tuple[str, ...] = REQUIRED_FIELDS) -> list[dict[str, Any]]:
    """Check a parsed results list; the first bad entry is a :class:`UserError` naming the file and field."""
    if not isinstance(entries, list):
        raise UserError(f"{source}: expected a JSON list of COCO keypoint results, got {type(entries).__name__}")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise UserError(f"{source}: entry {i} is not an object")
        missing = [name for name in required if name not in entry]
        if missing:
            raise UserError(f"{source}: entry {i} has no '{missing[0]}' field")
        keypoints = entry["keypoints"]
        if not isinstance(keypoints, list) or len(keypoints) != 3 * NUM_KEYPOINTS:
            raise UserError(f"{source}: entry {i} 'keypoints' must be a list of {3 * NUM_KEYPOINTS} numbers")
        if "bbox" in required and (not isinstance(entry["bbox"], list) or len(entry["bbox"]) != 4):
            raise UserError(f"{source}: entry {i} 'bbox' must be [x, y, w, h]")
    return entries


def load_results(path: str | Path, required: tuple[str, ...] = REQUIRED_FIELDS) -> list[dict[str, Any]]:
    """Read and check a COCO keypoint results file."""
    return validate_entries(read_json(path, "results file"), str(path), required)


def keypoints_array(entries: list[dict[str, Any]]) -> np.ndarray:
    """The ``(N, K, 3)`` keypoints of result entries."""
    return np.array([e["keypoints"] for e in entries], dtype=np.float64).reshape(-1, NUM_KEYPOINTS, 3)
