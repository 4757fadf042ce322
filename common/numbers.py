"""Numbers read from files: finite, and within what an image coordinate can plausibly be."""

from __future__ import annotations

import math
from typing import Any

from toppose.common.keypoint_sets import KEYPOINT_SETS

MAX_COORDINATE = 1e6  # pixels: far beyond any image, far below where box arithmetic overflows


def is_number(value: Any) -> bool:
    """Whether ``value`` is a finite int or float (a JSON number that is not NaN or infinite; not a bool, not an
    integer too large for a float)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def is_coordinate(value: Any) -> bool:
    """Whether ``value`` is a number within ``MAX_COORDINATE`` of 0."""
    return is_number(value) and abs(value) <= MAX_COORDINATE


def keypoints_problem(keypoints: Any, count: int | None = None) -> str | None:
    """What is wrong with a result entry's ``keypoints`` (flat x, y, confidence triplets: ``count`` of them, or as
    many as a keypoint set has: 17, 26 or 133), if anything."""
    counts = (count,) if count is not None else tuple(len(s) for s in KEYPOINT_SETS.values())
    if not isinstance(keypoints, list) or len(keypoints) not in {3 * c for c in counts}:
        wanted = " or ".join(str(3 * c) for c in counts)
        return f"'keypoints' must be a list of {wanted} numbers"
    if not all(is_coordinate(v) for v in keypoints):
        return f"'keypoints' must hold finite numbers within {MAX_COORDINATE:g} pixels"
    return None


def finite_or_none(obj: Any) -> Any:
    """``obj`` with every non-finite float (in nested dicts and lists) replaced by ``None``, for strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [finite_or_none(v) for v in obj]
    return obj
