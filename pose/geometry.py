"""All crop geometry: DeepPose box normalization, the affine warp into a crop, and its exact inverse.

Convention: pixel centres sit at integer coordinates, so pixel ``i`` covers ``[i - 0.5, i + 0.5]``
(the convention of ``cv2.warpAffine`` and of COCO keypoints). A crop region with centre ``c`` and
size ``s = (w, h)`` covers ``[c - s/2, c + s/2]``; DeepPose-normalized coordinates are
``n = (p - c) / s``, in ``[-0.5, 0.5]`` inside the region. An output grid of ``W x H`` pixels covers
``[-0.5, W - 0.5] x [-0.5, H - 0.5]``, so ``u = n * W + (W - 1) / 2``. The same map serves the network
input (e.g. 192x256) and its heatmap (e.g. 48x64): both cover the same region, which keeps the
heatmap aligned with the input and makes a horizontal flip the plain mirror ``u -> W - 1 - u``.
"""

from __future__ import annotations

import cv2
import numpy as np

ArrayLike = np.ndarray


def box_to_center_size(
    boxes_xywh: ArrayLike, aspect_ratio: float, padding: float = 1.25
) -> tuple[np.ndarray, np.ndarray]:
    """Turn ``(N, 4)`` COCO boxes into crop regions: centres ``(N, 2)`` and sizes ``(N, 2)``.

    The box is grown along one axis to the network input's ``aspect_ratio`` (width / height),
    then both sides are multiplied by ``padding``.
    """
    boxes = np.asarray(boxes_xywh, dtype=np.float64).reshape(-1, 4)
    centers = boxes[:, :2] + boxes[:, 2:] / 2.0
    w = np.maximum(boxes[:, 2], 1e-6)
    h = np.maximum(boxes[:, 3], 1e-6)
    wide = w > aspect_ratio * h
    w2 = np.where(wide, w, h * aspect_ratio)
    h2 = np.where(wide, w / aspect_ratio, h)
    sizes = np.stack([w2, h2], axis=1) * padding
    return centers, sizes


def to_normalized(points: ArrayLike, centers: ArrayLike, sizes: ArrayLike) -> np.ndarray:
    """DeepPose normalization of ``(N, K, 2)`` image points: relative to the centre, over the size."""
    points = np.asarray(points, dtype=np.float64)
    return (points - np.asarray(centers)[:, None, :]) / np.asarray(sizes)[:, None, :]


def from_normalized(normalized: ArrayLike, centers: ArrayLike, sizes: ArrayLike) -> np.ndarray:
    """Inverse of :func:`to_normalized`."""
    normalized = np.asarray(normalized, dtype=np.float64)
    return normalized * np.asarray(sizes)[:, None, :] + np.asarray(centers)[:, None, :]


def image_to_crop(points: ArrayLike, centers: ArrayLike, sizes: ArrayLike, out_size: tuple[int, int]) -> np.ndarray:
    """Map ``(N, K, 2)`` image points into ``W x H`` crop (or heatmap) pixel coordinates."""
    out = np.asarray(out_size, dtype=np.float64)
    return to_normalized(points, centers, sizes) * out + (out - 1.0) / 2.0


def crop_to_image(points: ArrayLike, centers: ArrayLike, sizes: ArrayLike, out_size: tuple[int, int]) -> np.ndarray:
    """Exact inverse of :func:`image_to_crop`: crop or heatmap coordinates back to the image."""
    out = np.asarray(out_size, dtype=np.float64)
    normalized = (np.asarray(points, dtype=np.float64) - (out - 1.0) / 2.0) / out
    return from_normalized(normalized, centers, sizes)


def flip_crop_points(points: ArrayLike, width: int) -> np.ndarray:
    """Mirror crop/heatmap x coordinates: ``u -> width - 1 - u`` (keypoint order is unchanged)."""
    flipped = np.array(points, dtype=np.float64, copy=True)
    flipped[..., 0] = width - 1.0 - flipped[..., 0]
    return flipped


def crop_matrix(
    center: ArrayLike,
    size: ArrayLike,
    out_size: tuple[int, int],
    rotation_deg: float = 0.0,
    flip: bool = False,
) -> np.ndarray:
    """The ``2 x 3`` affine taking image coordinates to crop coordinates.

    Without rotation or flip it equals :func:`image_to_crop`. ``rotation_deg`` turns the region
    about its centre (positive = the person appears rotated counter-clockwise in the crop);
    ``flip`` mirrors the crop horizontally.
    """
    cx, cy = (float(v) for v in np.asarray(center).reshape(2))
    sw, sh = (float(v) for v in np.asarray(size).reshape(2))
    ow, oh = out_size
    theta = np.deg2rad(rotation_deg)
    cos, sin = np.cos(theta), np.sin(theta)
    # normalized n = R(theta) (p - c) / s, then u = n * out + (out - 1) / 2 (with y pointing down,
    # R(theta) = [[cos, sin], [-sin, cos]] turns content counter-clockwise on screen).
    linear = np.array([[cos * ow / sw, sin * ow / sw], [-sin * oh / sh, cos * oh / sh]])
    offset = np.array([(ow - 1.0) / 2.0, (oh - 1.0) / 2.0]) - linear @ np.array([cx, cy])
    matrix = np.concatenate([linear, offset[:, None]], axis=1)
    if flip:
        matrix[0] = -matrix[0]
        matrix[0, 2] += ow - 1.0
    return matrix


def invert_affine(matrix: ArrayLike) -> np.ndarray:
    """Inverse of a ``2 x 3`` affine."""
    full = np.vstack([np.asarray(matrix, dtype=np.float64), [0.0, 0.0, 1.0]])
    return np.linalg.inv(full)[:2]


def apply_affine(points: ArrayLike, matrix: ArrayLike) -> np.ndarray:
    """Apply a ``2 x 3`` affine to points of shape ``(..., 2)``."""
    points = np.asarray(points, dtype=np.float64)
    matrix = np.asarray(matrix, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def warp_crop(image: np.ndarray, matrix: ArrayLike, out_size: tuple[int, int]) -> np.ndarray:
    """Warp ``image`` (H x W x C) through ``matrix`` into a ``out_size = (W, H)`` crop, bilinear, zero border."""
    return cv2.warpAffine(
        image,
        np.asarray(matrix, dtype=np.float64),
        (int(out_size[0]), int(out_size[1])),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def warp_crops(image: np.ndarray, centers: ArrayLike, sizes: ArrayLike, out_size: tuple[int, int]) -> np.ndarray:
    """Cut one axis-aligned crop per region from ``image``: returns ``(N, H, W, C)``."""
    centers = np.asarray(centers).reshape(-1, 2)
    sizes = np.asarray(sizes).reshape(-1, 2)
    channels = image.shape[2] if image.ndim == 3 else 1
    crops = np.zeros((len(centers), out_size[1], out_size[0], channels), dtype=image.dtype)
    for i, (center, size) in enumerate(zip(centers, sizes, strict=True)):
        crops[i] = warp_crop(image, crop_matrix(center, size, out_size), out_size).reshape(crops.shape[1:])
    return crops
