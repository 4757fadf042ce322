"""The checks every door shares: the command line's argument types and the Python API's parameters call these,
so no value passes one and fails the other.

Each check returns the value (converted) or raises :class:`ValueCheckError`, a :class:`UserError` whose
``problem`` is the phrase after the name (``must be at least 1, got 0``): the command line prints it as
argparse's ``argument --det-every: must be at least 1, got 0``, the API as ``det_every: must be at least 1,
got 0``.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from toppose.common.errors import UserError
from toppose.common.numbers import MAX_COORDINATE


class ValueCheckError(UserError):
    """A parameter outside what it may be; ``problem`` is the message without the parameter's name."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.problem = problem


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueCheckError(name, f"must be a whole number, got {value!r}")
    return int(value)


def int_at_least(value: Any, minimum: int, name: str) -> int:
    """An integer (not a bool) of at least ``minimum``."""
    number = _integer(value, name)
    if number < minimum:
        raise ValueCheckError(name, f"must be at least {minimum}, got {number}")
    return number


def positive_number(value: Any, name: str) -> float:
    """A finite number greater than 0 (not nan, not inf, not a bool)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueCheckError(name, f"must be a finite number > 0, got {value}")
    return float(value)


def camera_index(value: Any, name: str = "camera") -> int:
    """A camera index: an integer of at least 0."""
    return int_at_least(value, 0, name)


def person_boxes(boxes: Any, name: str = "boxes") -> tuple[np.ndarray, np.ndarray | None]:
    """``(N, 4)`` x, y, width, height boxes, or ``(N, 5)`` with a score in [0, 1] after them: the boxes as float64
    and the scores (``None`` for ``(N, 4)``). Every coordinate finite and within :data:`MAX_COORDINATE` pixels,
    width and height > 0."""
    try:
        array = np.asarray(boxes, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueCheckError(name, "must be an (N, 4) array of x, y, width, height (or (N, 5) with scores)") from None
    if array.size == 0:
        array = array.reshape(0, 4)
    if array.ndim == 1 and array.shape[0] in (4, 5):
        array = array[None]
    if array.ndim != 2 or array.shape[1] not in (4, 5):
        raise ValueCheckError(name, f"must be an (N, 4) or (N, 5) array, got shape {array.shape}")
    coordinates = array[:, :4]
    if not np.isfinite(array).all() or (np.abs(coordinates) > MAX_COORDINATE).any():
        raise ValueCheckError(name, f"must hold finite coordinates within {MAX_COORDINATE:g} pixels")
    if (coordinates[:, 2:] <= 0).any():
        raise ValueCheckError(name, "every box must have width and height > 0")
    if array.shape[1] == 5:
        scores = array[:, 4]
        if ((scores < 0) | (scores > 1)).any():
            raise ValueCheckError(name, "scores (the 5th column) must lie in [0, 1]")
        return np.ascontiguousarray(coordinates), scores.copy()
    return np.ascontiguousarray(coordinates), None


def image_array(image: Any, name: str = "image") -> np.ndarray:
    """An ``(H, W)`` or ``(H, W, 3)`` uint8 array with H, W >= 1."""
    if not isinstance(image, np.ndarray):
        raise ValueCheckError(name, f"must be a path or a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ValueCheckError(name, f"must hold uint8 pixels, got {image.dtype}")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueCheckError(name, f"must be an (H, W, 3) or (H, W) array, got shape {image.shape}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueCheckError(name, f"must be at least 1x1 pixels, got shape {image.shape}")
    return image
