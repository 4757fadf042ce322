"""COCO keypoint results: converting poses to result entries, and reading result files back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from toppose.common.errors import UserError
from toppose.common.jsonio import read_json
from toppose.common.numbers import MAX_COORDINATE, is_coordinate, is_number, keypoints_problem
from toppose.common.poses import PoseResult
from toppose.common.schema import NUM_KEYPOINTS, PERSON_CATEGORY_ID

REQUIRED_FIELDS = ("image_id", "category_id", "keypoints", "score")


def to_coco_entries(result: PoseResult, image_id: int, **extra: Any) -> list[dict[str, Any]]:
    """One COCO keypoint result per person (``keypoints`` as x, y, confidence triplets, ``bbox`` xywh).

    ``extra`` fields (e.g. ``file_name``) are added to every entry. A person with a non-finite number
    (which strict JSON cannot hold) is left out.
    """
    entries = []
    finite = np.isfinite(result.keypoints).all(axis=(1, 2)) & np.isfinite(result.boxes).all(axis=1)
    finite &= np.isfinite(result.scores) & np.isfinite(result.box_scores)
    for i in np.flatnonzero(finite):
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
        problem = _numbers_problem(entry, "bbox" in required)
        if problem:
            raise UserError(f"{source}: entry {i} {problem}")
    return entries


def _numbers_problem(entry: dict[str, Any], needs_bbox: bool) -> str | None:
    """What is wrong with an entry's ``keypoints``, ``score`` and (when required or present) ``bbox``, if anything."""
    problem = keypoints_problem(entry["keypoints"])
    if problem:
        return problem
    if not is_number(entry["score"]):
        return f"'score' must be a finite number, got {entry['score']!r}"
    if "bbox" in entry or needs_bbox:
        bbox = entry.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            return "'bbox' must be [x, y, w, h]"
        if not all(is_coordinate(v) for v in bbox):
            return f"'bbox' must hold finite numbers within {MAX_COORDINATE:g} pixels, got {bbox!r}"
    return None


def load_results(path: str | Path, required: tuple[str, ...] = REQUIRED_FIELDS) -> list[dict[str, Any]]:
    """Read and check a COCO keypoint results file."""
    return validate_entries(read_json(path, "results file"), str(path), required)


def resumable_entries(path: Path, names: set[str]) -> list[dict[str, Any]]:
    """The entries of an earlier, interrupted run's results file, to keep when continuing it.

    A missing file is a run that had not finished its first image: nothing to keep. See :func:`same_input`.
    """
    if not path.exists():
        return []
    return same_input(read_json(path, "results file"), names, str(path))


def same_input(entries: Any, names: set[str], source: str) -> list[dict[str, Any]]:
    """``entries`` checked as results of a run over the images ``names``, to keep when continuing it.

    Every entry must carry the ``file_name`` of one of ``names`` (the images of this run); otherwise the
    entries are not of a run over the same input, and continuing it would mix two runs: a :class:`UserError`.
    """
    entries = validate_entries(entries, source)
    strangers = [e.get("file_name") for e in entries if e.get("file_name") not in names]
    if strangers:
        raise UserError(
            f"cannot resume: {source} holds results for {len(strangers)} entries that are not images of this input "
            f"(e.g. {strangers[0]!r}): it is the output of another run"
        )
    return entries


def keypoints_array(entries: list[dict[str, Any]]) -> np.ndarray:
    """The ``(N, K, 3)`` keypoints of result entries."""
    return np.array([e["keypoints"] for e in entries], dtype=np.float64).reshape(-1, NUM_KEYPOINTS, 3)
