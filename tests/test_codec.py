"""Heatmap codec: sub-pixel round trips, target weights, the flip of heatmaps and flip-test symmetry."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from toppose.common.schema import FLIP_INDEX, FLIP_PAIRS, NUM_KEYPOINTS
from toppose.pose.codecs import heatmap as codec
from toppose.pose.geometry import flip_crop_points

SIZE = (48, 64)  # heatmap (width, height)


def _random_points(rng: np.random.Generator, count: int, margin: float) -> np.ndarray:
    """``(count, K, 2)`` sub-pixel heatmap points at least ``margin`` pixels inside the map."""
    xs = rng.uniform(margin, SIZE[0] - 1 - margin, (count, NUM_KEYPOINTS))
    ys = rng.uniform(margin, SIZE[1] - 1 - margin, (count, NUM_KEYPOINTS))
    return np.stack([xs, ys], axis=-1)


@pytest.mark.parametrize("sigma", [1.5, 2.0, 3.0])
def test_dark_without_blur_recovers_gaussian_centres_exactly(sigma: float) -> None:
    points = _random_points(np.random.default_rng(0), 20, margin=2.0)
    heatmaps, _ = codec.encode(points, np.ones(points.shape[:2]), SIZE, sigma)
    decoded, scores = codec.decode(heatmaps, "dark", blur_kernel=1)
    np.testing.assert_allclose(decoded, points, atol=1e-4)
    assert np.all((scores > np.exp(-1 / (4 * sigma**2)) - 1e-6) & (scores <= 1.0))


def test_dark_with_default_blur_is_sub_pixel_away_from_borders() -> None:
    points = _random_points(np.random.default_rng(1), 20, margin=5.0)
    heatmaps, _ = codec.encode(points, np.ones(points.shape[:2]), SIZE, 2.0)
    decoded, _ = codec.decode(heatmaps, "dark")
    assert np.abs(decoded - points).max() < 0.01


def test_argmax_returns_the_nearest_pixel() -> None:
    points = _random_points(np.random.default_rng(2), 20, margin=0.0)
    heatmaps, _ = codec.encode(points, np.ones(points.shape[:2]), SIZE, 2.0)
    decoded, _ = codec.decode(heatmaps, "argmax")
    np.testing.assert_array_equal(decoded, np.round(decoded))
    assert np.abs(decoded - points).max() <= 0.5 + 1e-9


@settings(max_examples=100, deadline=None)
@given(x=st.floats(2.0, SIZE[0] - 3.0), y=st.floats(2.0, SIZE[1] - 3.0), sigma=st.floats(1.0, 4.0))
def test_dark_round_trip_property(x: float, y: float, sigma: float) -> None:
    points = np.full((1, NUM_KEYPOINTS, 2), [x, y])
    heatmaps, _ = codec.encode(points, np.ones((1, NUM_KEYPOINTS)), SIZE, sigma)
    np.testing.assert_allclose(codec.decode(heatmaps, "dark", blur_kernel=1)[0], points, atol=1e-4)


def test_unlabelled_and_outside_keypoints_get_zero_weight_and_empty_maps() -> None:
    points = np.full((1, NUM_KEYPOINTS, 2), [20.0, 30.0])
    points[0, 1] = [-6.01, 30.0]  # 3 sigma left of the first pixel: nothing of its Gaussian on the map
    points[0, 2] = [20.0, SIZE[1] - 1 + 6.0]  # exactly 3 sigma below the last row: outside (open bound)
    points[0, 3] = [SIZE[0] - 0.51, -0.49]  # just inside a corner
    visible = np.ones((1, NUM_KEYPOINTS), dtype=bool)
    visible[0, 4] = False
    heatmaps, weights = codec.encode(points, visible, SIZE, 2.0)
    expected = np.ones(NUM_KEYPOINTS, dtype=np.float32)
    expected[[1, 2, 4]] = 0.0
    np.testing.assert_array_equal(weights[0], expected)
    assert heatmaps.shape == (1, NUM_KEYPOINTS, SIZE[1], SIZE[0]) and heatmaps.dtype == np.float32
    assert not heatmaps[0, [1, 2, 4]].any()
    assert heatmaps[0, 3].max() > 0.5
    # Just off the map, the partial Gaussian is kept (as the reference recipes do): its tail peaks on the edge.
    near, near_weight = codec.encode(np.array([[[-2.0, 30.0]]]), np.ones((1, 1), bool), SIZE, 2.0)
    assert near_weight[0, 0] == 1.0 and near[0, 0, 30].argmax() == 0
    np.testing.assert_allclose(near[0, 0].max(), np.exp(-4.0 / 8.0), rtol=1e-6)
    # An empty map decodes with confidence 0.
    _, scores = codec.decode(heatmaps, "dark")
    np.testing.assert_array_equal(scores[0, [1, 2, 4]], 0.0)


def test_decode_rejects_unknown_method() -> None:
    with pytest.raises(ValueError, match="unknown decode method"):
        codec.decode(np.zeros((1, NUM_KEYPOINTS, 4, 4)), "soft-argmax")


def test_flip_heatmaps_mirrors_and_swaps_left_right() -> None:
    rng = np.random.default_rng(3)
    points = _random_points(rng, 3, margin=0.0)
    heatmaps, _ = codec.encode(points, np.ones(points.shape[:2]), SIZE, 2.0)
    flipped = codec.flip_heatmaps(heatmaps)
    np.testing.assert_array_equal(codec.flip_heatmaps(flipped), heatmaps)
    mirrored_points = flip_crop_points(points, SIZE[0])[:, list(FLIP_INDEX)]
    np.testing.assert_allclose(
        flipped, codec.encode(mirrored_points, np.ones(points.shape[:2]), SIZE, 2.0)[0], atol=1e-6
    )
    left, right = FLIP_PAIRS[0]
    np.testing.assert_array_equal(flipped[:, left], heatmaps[:, right, :, ::-1])
    np.testing.assert_array_equal(flipped[:, 0], heatmaps[:, 0, :, ::-1])  # the nose keeps its channel


def _symmetric_pose(rng: np.random.Generator) -> np.ndarray:
    """``(1, K, 2)`` heatmap points symmetric about the map's vertical centre line."""
    axis = (SIZE[0] - 1) / 2.0
    points = np.zeros((1, NUM_KEYPOINTS, 2))
    points[0, 0] = [axis, rng.uniform(5, 10)]
    for left, right in FLIP_PAIRS:
        offset, y = rng.uniform(1.0, 15.0), rng.uniform(5.0, SIZE[1] - 6.0)
        points[0, left] = [axis + offset, y]
        points[0, right] = [axis - offset, y]
    return points


@pytest.mark.parametrize("method", ["dark", "argmax"])
def test_flip_test_of_a_symmetric_scene_decodes_to_the_same_points(method: str) -> None:
    points = _symmetric_pose(np.random.default_rng(4))
    heatmaps, _ = codec.encode(points, np.ones((1, NUM_KEYPOINTS)), SIZE, 2.0)
    # The mirrored crop of a symmetric scene is the same crop, so a network sees the same heatmaps.
    fused = 0.5 * (heatmaps + codec.flip_heatmaps(heatmaps))
    np.testing.assert_allclose(fused, heatmaps, atol=1e-6)
    np.testing.assert_allclose(codec.decode(fused, method)[0], codec.decode(heatmaps, method)[0], atol=1e-6)
    if method == "dark":
        np.testing.assert_allclose(codec.decode(fused, method)[0], points, atol=0.01)


def test_flip_test_with_a_consistent_network_keeps_asymmetric_points() -> None:
    points = _random_points(np.random.default_rng(5), 4, margin=5.0)
    visible = np.ones(points.shape[:2])
    heatmaps, _ = codec.encode(points, visible, SIZE, 2.0)
    mirrored, _ = codec.encode(flip_crop_points(points, SIZE[0])[:, list(FLIP_INDEX)], visible, SIZE, 2.0)
    fused = 0.5 * (heatmaps + codec.flip_heatmaps(mirrored))
    assert np.abs(codec.decode(fused, "dark")[0] - points).max() < 0.01
