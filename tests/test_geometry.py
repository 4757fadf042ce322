"""Crop geometry: exact round trips, the affine matches the point map, pixels land where the map says."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from toppose.pose import geometry

coords = st.floats(-200.0, 1200.0, allow_nan=False)
lengths = st.floats(4.0, 600.0, allow_nan=False)
out_sizes = st.tuples(st.integers(8, 288), st.integers(8, 384))


@st.composite
def regions(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """One crop region: centre (1, 2) and size (1, 2)."""
    center = np.array([[draw(coords), draw(coords)]])
    size = np.array([[draw(lengths), draw(lengths)]])
    return center, size


@st.composite
def points(draw: st.DrawFn, count: int = 5) -> np.ndarray:
    """``(1, count, 2)`` image points."""
    return np.array([[[draw(coords), draw(coords)] for _ in range(count)]])


@settings(max_examples=200, deadline=None)
@given(region=regions(), pts=points(), out_size=out_sizes)
def test_crop_to_image_inverts_image_to_crop(region, pts, out_size) -> None:
    center, size = region
    crop = geometry.image_to_crop(pts, center, size, out_size)
    np.testing.assert_allclose(geometry.crop_to_image(crop, center, size, out_size), pts, atol=1e-8)
    back = geometry.image_to_crop(geometry.crop_to_image(crop, center, size, out_size), center, size, out_size)
    np.testing.assert_allclose(back, crop, atol=1e-8)


@settings(max_examples=100, deadline=None)
@given(region=regions(), out_size=out_sizes)
def test_region_corners_map_to_crop_pixel_edges(region, out_size) -> None:
    center, size = region
    corners = np.concatenate([center - size / 2, center + size / 2])[None]
    expected = np.array([[[-0.5, -0.5], [out_size[0] - 0.5, out_size[1] - 0.5]]])
    np.testing.assert_allclose(geometry.image_to_crop(corners, center, size, out_size), expected, atol=1e-8)


@settings(max_examples=100, deadline=None)
@given(region=regions(), pts=points(), out_size=out_sizes)
def test_crop_matrix_equals_image_to_crop(region, pts, out_size) -> None:
    center, size = region
    matrix = geometry.crop_matrix(center[0], size[0], out_size)
    expected = geometry.image_to_crop(pts, center, size, out_size)
    np.testing.assert_allclose(geometry.apply_affine(pts, matrix), expected, atol=1e-7)


@settings(max_examples=100, deadline=None)
@given(region=regions(), pts=points(), out_size=out_sizes, rotation=st.floats(-180.0, 180.0), flip=st.booleans())
def test_crop_matrix_inverse_with_rotation_and_flip(region, pts, out_size, rotation, flip) -> None:
    center, size = region
    matrix = geometry.crop_matrix(center[0], size[0], out_size, rotation, flip)
    inverse = geometry.invert_affine(matrix)
    np.testing.assert_allclose(geometry.apply_affine(geometry.apply_affine(pts, matrix), inverse), pts, atol=1e-6)
    # The region's centre stays at the crop's centre whatever the rotation and flip.
    crop_centre = [(out_size[0] - 1) / 2, (out_size[1] - 1) / 2]
    np.testing.assert_allclose(geometry.apply_affine(center[0], matrix), crop_centre, atol=1e-7)
    # Flipping is mirroring the unflipped crop points.
    unflipped = geometry.apply_affine(pts, geometry.crop_matrix(center[0], size[0], out_size, rotation))
    mirrored = geometry.flip_crop_points(unflipped, out_size[0]) if flip else unflipped
    np.testing.assert_allclose(geometry.apply_affine(pts, matrix), mirrored, atol=1e-6)


def test_positive_rotation_turns_content_counter_clockwise() -> None:
    center, size, out_size = np.array([50.0, 50.0]), np.array([40.0, 40.0]), (41, 41)
    right_of_centre = np.array([60.0, 50.0])
    crop_point = geometry.apply_affine(right_of_centre, geometry.crop_matrix(center, size, out_size, 90.0))
    np.testing.assert_allclose(crop_point, [20.0, 20.0 - 10.25], atol=1e-9)  # now above the centre (y down)


@settings(max_examples=200, deadline=None)
@given(
    box=st.tuples(coords, coords, lengths, lengths),
    aspect=st.floats(0.3, 3.0),
    padding=st.floats(1.0, 2.0),
)
def test_box_to_center_size_keeps_aspect_and_contains_box(box, aspect, padding) -> None:
    boxes = np.array([box])
    centers, sizes = geometry.box_to_center_size(boxes, aspect, padding)
    np.testing.assert_allclose(sizes[:, 0] / sizes[:, 1], aspect, rtol=1e-9)
    np.testing.assert_allclose(centers, boxes[:, :2] + boxes[:, 2:] / 2, atol=1e-9)
    tol = 1e-9 * (1 + np.abs(boxes).max())
    assert np.all(centers - sizes / 2 <= boxes[:, :2] + tol)
    assert np.all(centers + sizes / 2 >= boxes[:, :2] + boxes[:, 2:] - tol)
    # Without padding one side fits the box exactly; padding scales both sides.
    _, tight = geometry.box_to_center_size(boxes, aspect, 1.0)
    assert np.isclose(tight[0, 0], box[2]) or np.isclose(tight[0, 1], box[3])
    np.testing.assert_allclose(sizes, tight * padding, rtol=1e-12)


@settings(max_examples=100, deadline=None)
@given(pts=points(), width=st.integers(1, 400))
def test_flip_crop_points_is_an_involution(pts, width) -> None:
    once = geometry.flip_crop_points(pts, width)
    np.testing.assert_allclose(once[..., 1], pts[..., 1])
    np.testing.assert_allclose(once[..., 0] + pts[..., 0], width - 1.0)
    np.testing.assert_allclose(geometry.flip_crop_points(once, width), pts, atol=1e-9)


def _blob(shape: tuple[int, int], x0: float, y0: float, sigma: float = 1.5) -> np.ndarray:
    ys, xs = np.mgrid[0 : shape[0], 0 : shape[1]]
    return np.exp(-((xs - x0) ** 2 + (ys - y0) ** 2) / (2 * sigma**2)).astype(np.float32)


def _centroid(image: np.ndarray) -> np.ndarray:
    vs, us = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    total = image.sum()
    return np.array([(image * us).sum() / total, (image * vs).sum() / total])


@pytest.mark.parametrize("magnification", [1.0, 2.0, 3.0])
def test_warped_pixels_land_where_image_to_crop_predicts(magnification: float) -> None:
    """A small blob's weighted centroid in the warped crop matches the predicted point to 0.05 crop px."""
    rng = np.random.default_rng(3)
    out_size = (64, 80)
    for _ in range(30):
        x0, y0 = rng.uniform(60, 80), rng.uniform(50, 70)
        image = _blob((128, 144), x0, y0)
        size = np.array(out_size) / magnification * rng.uniform(0.95, 1.05)
        center = np.array([x0, y0]) + rng.uniform(-3, 3, 2)
        crop = geometry.warp_crop(image, geometry.crop_matrix(center, size, out_size), out_size)
        predicted = geometry.image_to_crop(np.array([[[x0, y0]]]), center[None], size[None], out_size)[0, 0]
        assert np.hypot(*(_centroid(crop) - predicted)) < 0.05


def test_warp_crops_matches_single_crops() -> None:
    rng = np.random.default_rng(1)
    image = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    centers, sizes = np.array([[40.0, 50.0], [100.5, 70.25]]), np.array([[30.0, 40.0], [60.0, 80.0]])
    crops = geometry.warp_crops(image, geometry.crop_matrices(centers, sizes, (24, 32)), (24, 32))
    assert crops.shape == (2, 32, 24, 3)
    for crop, center, size in zip(crops, centers, sizes, strict=True):
        np.testing.assert_array_equal(
            crop, geometry.warp_crop(image, geometry.crop_matrix(center, size, (24, 32)), (24, 32))
        )


def test_flipped_warp_is_the_mirrored_crop() -> None:
    rng = np.random.default_rng(2)
    image = rng.random((120, 160)).astype(np.float32)
    center, size, out_size = np.array([80.3, 61.7]), np.array([57.0, 76.0]), (48, 64)
    plain = geometry.warp_crop(image, geometry.crop_matrix(center, size, out_size), out_size)
    flipped = geometry.warp_crop(image, geometry.crop_matrix(center, size, out_size, flip=True), out_size)
    np.testing.assert_allclose(flipped, plain[:, ::-1], atol=1e-4)  # a half-pixel slip differs by ~0.5
