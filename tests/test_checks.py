"""One validation for both doors: the command line's flags and the Python API's parameters pass and fail alike."""

from __future__ import annotations

import argparse
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from toppose.common import checks
from toppose.common.errors import UserError

from toppose.cli.options import non_negative_int, positive_float, positive_int
from toppose.runs import RunRequest

NUMBERS = st.one_of(st.integers(-(10**6), 10**6), st.floats(allow_nan=True, allow_infinity=True), st.booleans())


def cli_accepts(argument_type, value: object) -> bool:  # noqa: ANN001 - an argparse type function
    try:
        argument_type(str(value))
    except argparse.ArgumentTypeError:
        return False
    return True


def api_accepts(**options: object) -> bool:
    try:
        RunRequest("clip.mp4", out=None, track=True, **options).check_values()  # type: ignore[arg-type]
    except UserError:
        return False
    return True


@given(NUMBERS)
def test_fps_passes_both_doors_or_neither(value: float) -> None:
    as_text = not isinstance(value, bool)  # the command line has no booleans: "True" is no number
    assert cli_accepts(positive_float, value) == (as_text and api_accepts(fps=value))


@given(NUMBERS)
def test_frame_counts_pass_both_doors_or_neither(value: int) -> None:
    whole = isinstance(value, int) and not isinstance(value, bool)
    assert cli_accepts(positive_int, value) == (whole and api_accepts(det_every=value))
    assert cli_accepts(positive_int, value) == (whole and api_accepts(max_frames=value))
    assert cli_accepts(non_negative_int, value) == (whole and api_accepts(trails=value))


@pytest.mark.parametrize(
    ("boxes", "problem"),
    [
        (np.array([[10, 10, 50, 100, 0.9]] * 4), None),  # (N, 5): the scores column, not 5 reshaped boxes
        (np.array([[10, 10, 50, 100]]), None),
        (np.zeros((0, 4)), None),
        (np.array([[1e30, 0, 10, 10]]), "finite coordinates within 1e+06 pixels"),
        (np.array([[0, 0, math.nan, 10]]), "finite coordinates"),
        (np.array([[0, 0, 0, 10]]), "width and height > 0"),
        (np.array([[0, 0, 10, 10, 2.0]]), "scores (the 5th column) must lie in [0, 1]"),
        (np.zeros((2, 3)), "got shape (2, 3)"),
        (np.zeros((2, 4, 1)), "got shape (2, 4, 1)"),
        ([["a", 1, 2, 3]], "must be an (N, 4) array"),
    ],
)
def test_person_boxes(boxes: object, problem: str | None) -> None:
    if problem is None:
        xywh, _ = checks.person_boxes(boxes)
        assert xywh.shape == (len(np.asarray(boxes)), 4)
    else:
        with pytest.raises(UserError, match="^boxes: ") as raised:
            checks.person_boxes(boxes)
        assert problem in str(raised.value)


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        (np.zeros((0, 0, 3), np.uint8), "at least 1x1 pixels"),
        (np.zeros((4, 4, 3), np.float32), "uint8 pixels"),
        (np.zeros((4, 4, 4), np.uint8), "(H, W, 3) or (H, W)"),
        ([[0]], "a path or a numpy array"),
    ],
)
def test_image_arrays(image: object, problem: str) -> None:
    with pytest.raises(UserError, match="^image: ") as raised:
        checks.image_array(image)
    assert problem in str(raised.value)


def test_camera_indices() -> None:
    assert checks.camera_index(0) == 0
    for bad in (-1, 1.5, True, "0"):
        with pytest.raises(UserError):
            checks.camera_index(bad)
