"""Pose drawing: pixels land on the keypoints, only confident limbs are drawn, opacity follows confidence."""

from __future__ import annotations

import numpy as np
import pytest
from toppose.common.poses import PoseResult
from toppose.common.schema import NUM_KEYPOINTS
from toppose.pose.draw import draw_poses, palette_colour, person_colours


def one_person(points: dict[int, tuple[float, float, float]], box: tuple[float, ...] = (20, 20, 100, 80)) -> PoseResult:
    """A result with one person whose keypoints not in ``points`` have confidence 0."""
    keypoints = np.zeros((1, NUM_KEYPOINTS, 3))
    for k, value in points.items():
        keypoints[0, k] = value
    return PoseResult(np.array([box], dtype=float), np.ones(1), keypoints, np.ones(1))


def changed(before: np.ndarray, after: np.ndarray, x: float, y: float, radius: int = 1) -> bool:
    """Whether any pixel within ``radius`` of (x, y) differs."""
    xi, yi = round(x), round(y)
    window = (slice(yi - radius, yi + radius + 1), slice(xi - radius, xi + radius + 1))
    return bool(np.any(before[window] != after[window]))


@pytest.fixture
def frame() -> np.ndarray:
    return np.full((120, 160, 3), 40, dtype=np.uint8)


def test_palette_gives_distinct_colours() -> None:
    colours = person_colours(12)
    assert len(set(colours)) == 12
    assert colours[3] == palette_colour(3)
    assert all(0 <= c <= 255 for colour in colours for c in colour)


def test_points_drawn_at_the_keypoints_and_nowhere_far(frame: np.ndarray) -> None:
    result = one_person({0: (30.3, 25.7, 0.9), 15: (120.6, 95.2, 0.8)})
    out = draw_poses(frame, result)
    assert changed(frame, out, 30.3, 25.7) and changed(frame, out, 120.6, 95.2)
    far = np.ones(frame.shape[:2], dtype=bool)
    far[15:37, 20:41] = far[85:106, 110:132] = False
    np.testing.assert_array_equal(out[far], frame[far])


def test_limbs_only_between_confident_keypoints(frame: np.ndarray) -> None:
    # left shoulder (5) - left elbow (7) both confident; left wrist (9) below the threshold.
    result = one_person({5: (30, 30, 0.9), 7: (90, 30, 0.9), 9: (90, 100, 0.1)})
    out = draw_poses(frame, result, keypoint_threshold=0.2)
    assert changed(frame, out, 60, 30, radius=0)  # middle of the 5-7 limb
    assert not changed(frame, out, 90, 65, radius=3)  # middle of the 7-9 limb
    assert not changed(frame, out, 90, 100, radius=3)  # the unconfident wrist itself


def test_opacity_grows_with_confidence(frame: np.ndarray) -> None:
    colour = [(255, 255, 255)]
    faint = draw_poses(frame, one_person({0: (80, 60, 0.3)}), colour, keypoint_threshold=0.2)
    strong = draw_poses(frame, one_person({0: (80, 60, 1.0)}), colour, keypoint_threshold=0.2)
    assert 40 < faint[60, 80, 0] < strong[60, 80, 0] == 255


def test_empty_result_leaves_frame_unchanged(frame: np.ndarray) -> None:
    out = draw_poses(frame, PoseResult.empty())
    np.testing.assert_array_equal(out, frame)
    assert out is not frame


def test_input_frame_not_modified_and_labels_drawn(frame: np.ndarray) -> None:
    original = frame.copy()
    result = one_person({0: (100, 100, 0.9)}, box=(10, 10, 60, 60))
    unlabelled = draw_poses(frame, result)
    labelled = draw_poses(frame, result, labels=["7"])
    np.testing.assert_array_equal(frame, original)
    assert np.any(labelled[10:40, 10:40] != unlabelled[10:40, 10:40])


def test_non_finite_keypoints_are_skipped(frame: np.ndarray) -> None:
    out = draw_poses(frame, one_person({0: (np.nan, 50, 0.9), 1: (40, np.inf, 0.9)}))
    np.testing.assert_array_equal(out, frame)
