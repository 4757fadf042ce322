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
    count = None
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise UserError(f"{source}: entry {i} is not an object")
        missing = [name for name in required if name not in entry]
        if missing:
            raise UserError(f"{source}: entry {i} has no '{missing[0]}' field")
        problem = _numbers_problem(entry, "bbox" in required, count)
        if problem:
            raise UserError(f"{source}: entry {i} {problem}")
        count = len(entry["keypoints"]) // 3  # every entry of a file has the keypoint set of the first
    return entries


def _numbers_problem(entry: dict[str, Any], needs_bbox: bool, count: int | None) -> str | None:
    """What is wrong with an entry's ``keypoints``, ``score`` and (when required or present) ``bbox``, if anything."""
    problem = keypoints_problem(entry["keypoints"], count)
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
    """Read and check a COCO keypoint results file (133-point results also in COCO-WholeBody's layout)."""
    entries = read_json(path, "results file")
    if isinstance(entries, list) and entries and isinstance(entries[0], dict) and WHOLEBODY_PARTS[1] in entries[0]:
        entries = from_wholebody_layout(entries, str(path))
    return validate_entries(entries, str(path), required)


# COCO-WholeBody's result fields, in the order of its 133 points: body, feet, face, left hand, right hand
WHOLEBODY_PARTS = ("keypoints", "foot_kpts", "face_kpts", "lefthand_kpts", "righthand_kpts")
_PART_SIZES = (17, 6, 68, 21, 21)


def to_wholebody_layout(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """133-point results in COCO-WholeBody's layout: the body's 17 triplets in ``keypoints``, the feet, face and
    hands in ``foot_kpts``, ``face_kpts``, ``lefthand_kpts`` and ``righthand_kpts`` (what its evaluators read)."""
    out = []
    for entry in entries:
        flat, parts, start = entry["keypoints"], {}, 0
        for name, size in zip(WHOLEBODY_PARTS, _PART_SIZES, strict=True):
            parts[name] = flat[3 * start : 3 * (start + size)]
            start += size
        out.append({**entry, **parts})
    return out


def from_wholebody_layout(entries: list[Any], source: str) -> list[dict[str, Any]]:
    """Results in COCO-WholeBody's layout as 133-point results (the parts' triplets joined in order)."""
    joined = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not all(isinstance(entry.get(name), list) for name in WHOLEBODY_PARTS):
            raise UserError(f"{source}: entry {i} lacks one of COCO-WholeBody's fields {', '.join(WHOLEBODY_PARTS)}")
        rest = {k: v for k, v in entry.items() if k not in WHOLEBODY_PARTS}
        joined.append({**rest, "keypoints": [v for name in WHOLEBODY_PARTS for v in entry[name]]})
    return joined


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


def keypoint_count(entries: list[dict[str, Any]]) -> int:
    """The keypoints per entry of a checked results list (every entry has the first's; COCO's 17 where it is
    empty)."""
    return len(entries[0]["keypoints"]) // 3 if entries else NUM_KEYPOINTS


def keypoints_array(entries: list[dict[str, Any]]) -> np.ndarray:
    """The ``(N, K, 3)`` keypoints of result entries (K: :func:`keypoint_count`)."""
    return np.array([e["keypoints"] for e in entries], dtype=np.float64).reshape(-1, keypoint_count(entries), 3)
