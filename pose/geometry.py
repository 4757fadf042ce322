"""All crop geometry: DeepPose box normalization, the affine warp into a crop, its exact inverse, and
the pixel conventions that public pose networks were trained in.

Pixel centres sit at integer coordinates, so pixel ``i`` covers ``[i - 0.5, i + 0.5]`` (the convention
of ``cv2.warpAffine`` and of COCO keypoints). A crop region has centre ``c`` and size ``s = (w, h)``;
DeepPose-normalized coordinates are ``n = (p - c) / s``, in ``[-0.5, 0.5]`` inside the region.

A *convention* says where the region lands on a grid of ``N`` pixels (the network input, e.g. 192,
or its heatmap, e.g. 48): ``u = n * span(N) + origin(N)``. The same rule serves both grids, so it
also fixes the map a network trained in it learns from input pixels to heatmap pixels, and where
a horizontal mirror puts a point: ``u -> 2 * origin(N) - u``.

=============  ==========  =============  ==============================================================
convention     span(N)     origin(N)      trained with it
=============  ==========  =============  ==============================================================
``legacy``     ``N``       ``N / 2``      SimpleBaseline and HRNet releases, MMPose 0.x/1.x non-UDP
                                          configs: region edges on pixel centres 0 and N (heatmap
                                          ``h = u / stride``, input ``u = stride * h``)
``udp``        ``N - 1``   ``(N - 1)/2``  UDP (Huang et al., CVPR 2020), ViTPose and ``*_udp`` configs:
                                          region edges on pixel centres 0 and N - 1
``half_pixel`` ``N``       ``(N - 1)/2``  this project's first checkpoints: region edges on the outer
                                          pixel edges -0.5 and N - 0.5 (``align_corners=False``)
=============  ==========  =============  ==============================================================

A legacy mirror is ``u -> N - u``: pixel 0 of a mirrored legacy grid has no source pixel, which
:func:`mirror` fills with zeros. Cutting, mirroring and decoding in the convention a network was
trained in leave no offset and no scale error, with and without the flip test.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from toppose.common.config import CONVENTIONS  # re-exported: the names configs are checked against

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


def check_convention(convention: str) -> None:
    """Reject a name that is not one of :data:`CONVENTIONS`."""
    if convention not in CONVENTIONS:
        raise ValueError(f"unknown pixel convention {convention!r} (choose from {', '.join(CONVENTIONS)})")


def grid_span(size: ArrayLike, convention: str) -> np.ndarray:
    """How many pixels the region's extent spans on a grid of ``size`` pixels (per axis)."""
    check_convention(convention)
    size = np.asarray(size, dtype=np.float64)
    return size - 1.0 if convention == "udp" else size


def grid_origin(size: ArrayLike, convention: str) -> np.ndarray:
    """The grid coordinate of the region's centre (per axis)."""
    check_convention(convention)
    size = np.asarray(size, dtype=np.float64)
    return size / 2.0 if convention == "legacy" else (size - 1.0) / 2.0


def mirror_axis(width: int, convention: str) -> float:
    """``m`` of the horizontal mirror ``u -> m - u`` of a ``width``-pixel grid: ``2 * origin``."""
    return float(2.0 * grid_origin(width, convention))


def image_to_crop(
    points: ArrayLike, centers: ArrayLike, sizes: ArrayLike, out_size: tuple[int, int], convention: str = "half_pixel"
) -> np.ndarray:
    """Map ``(N, K, 2)`` image points into ``W x H`` crop (or heatmap) pixel coordinates."""
    normalized = to_normalized(points, centers, sizes)
    return normalized * grid_span(out_size, convention) + grid_origin(out_size, convention)


def crop_to_image(
    points: ArrayLike, centers: ArrayLike, sizes: ArrayLike, out_size: tuple[int, int], convention: str = "half_pixel"
) -> np.ndarray:
    """Exact inverse of :func:`image_to_crop`: crop or heatmap coordinates back to the image."""
    origin = grid_origin(out_size, convention)
    normalized = (np.asarray(points, dtype=np.float64) - origin) / grid_span(out_size, convention)
    return from_normalized(normalized, centers, sizes)


def input_to_heatmap(
    points: ArrayLike, input_size: tuple[int, int], heatmap_size: tuple[int, int], convention: str
) -> np.ndarray:
    """Where a network trained in ``convention`` puts the heatmap peak of a point at input pixel ``points``."""
    ratio = grid_span(heatmap_size, convention) / grid_span(input_size, convention)
    offset = grid_origin(input_size, convention)
    return (np.asarray(points, dtype=np.float64) - offset) * ratio + grid_origin(heatmap_size, convention)


def flip_crop_points(points: ArrayLike, width: int, convention: str = "half_pixel") -> np.ndarray:
    """Mirror crop/heatmap x coordinates: ``u -> m - u`` (:func:`mirror_axis`; keypoint order is unchanged)."""
    flipped = np.array(points, dtype=np.float64, copy=True)
    flipped[..., 0] = mirror_axis(width, convention) - flipped[..., 0]
    return flipped


def mirror(array: np.ndarray, axis: int, convention: str) -> np.ndarray:
    """Mirror a grid along ``axis`` the way :func:`flip_crop_points` mirrors points.

    Entry ``u`` of the result is entry ``m - u`` of ``array``; where that falls off the grid (pixel 0
    of a legacy mirror) the result is 0.
    """
    flipped = np.flip(array, axis=axis)
    width = array.shape[axis]
    shift = int(round(mirror_axis(width, convention))) - (width - 1)
    if shift == 0:
        return np.ascontiguousarray(flipped)
    out = np.zeros_like(array)
    target = [slice(None)] * array.ndim
    source = [slice(None)] * array.ndim
    target[axis], source[axis] = slice(shift, None), slice(None, width - shift)
    out[tuple(target)] = flipped[tuple(source)]
    return out


def crop_matrix(
    center: ArrayLike,
    size: ArrayLike,
    out_size: tuple[int, int],
    rotation_deg: float = 0.0,
    flip: bool = False,
    convention: str = "half_pixel",
) -> np.ndarray:
    """The ``2 x 3`` affine taking image coordinates to crop coordinates.

    Without rotation or flip it equals :func:`image_to_crop`. ``rotation_deg`` turns the region
    about its centre (positive = the person appears rotated counter-clockwise in the crop);
    ``flip`` mirrors the crop horizontally (:func:`flip_crop_points`).
    """
    cx, cy = (float(v) for v in np.asarray(center).reshape(2))
    sw, sh = (float(v) for v in np.asarray(size).reshape(2))
    span_w, span_h = grid_span(out_size, convention)
    theta = np.deg2rad(rotation_deg)
    cos, sin = np.cos(theta), np.sin(theta)
    # normalized n = R(theta) (p - c) / s, then u = n * span + origin (with y pointing down,
    # R(theta) = [[cos, sin], [-sin, cos]] turns content counter-clockwise on screen).
    linear = np.array([[cos * span_w / sw, sin * span_w / sw], [-sin * span_h / sh, cos * span_h / sh]])
    offset = grid_origin(out_size, convention) - linear @ np.array([cx, cy])
    matrix = np.concatenate([linear, offset[:, None]], axis=1)
    if flip:
        matrix = mirror_matrix(matrix, out_size[0], convention)
    return matrix


def mirror_matrix(matrix: ArrayLike, width: int, convention: str) -> np.ndarray:
    """The affine of the mirrored crop: ``matrix`` (``(..., 2, 3)``) followed by ``u -> m - u``."""
    mirrored = np.array(matrix, dtype=np.float64, copy=True)
    mirrored[..., 0, :] = -mirrored[..., 0, :]
    mirrored[..., 0, 2] += mirror_axis(width, convention)
    return mirrored


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


def crop_matrices(
    centers: ArrayLike, sizes: ArrayLike, out_size: tuple[int, int], convention: str = "half_pixel"
) -> np.ndarray:
    """One axis-aligned :func:`crop_matrix` per region: ``(N, 2, 3)``."""
    centers = np.asarray(centers).reshape(-1, 2)
    sizes = np.asarray(sizes).reshape(-1, 2)
    matrices = [crop_matrix(c, s, out_size, convention=convention) for c, s in zip(centers, sizes, strict=True)]
    return np.stack(matrices) if matrices else np.zeros((0, 2, 3))


def warp_crops(image: np.ndarray, matrices: ArrayLike, out_size: tuple[int, int]) -> np.ndarray:
    """Cut one crop per ``2 x 3`` affine of ``matrices`` from ``image``: returns ``(N, H, W, C)``."""
    channels = image.shape[2] if image.ndim == 3 else 1
    crops = np.zeros((len(matrices), out_size[1], out_size[0], channels), dtype=image.dtype)
    for i, matrix in enumerate(matrices):
        crops[i] = warp_crop(image, matrix, out_size).reshape(crops.shape[1:])
    return crops


def _pixel_to_unit(size: tuple[int, int]) -> np.ndarray:
    """The ``3 x 3`` affine from pixel coordinates of a ``(W, H)`` grid to ``grid_sample``'s ``[-1, 1]``
    (``align_corners=False``: -1 and 1 are the outer pixel edges, so pixel centres sit where OpenCV samples)."""
    width, height = size
    return np.array([[2.0 / width, 0.0, 1.0 / width - 1.0], [0.0, 2.0 / height, 1.0 / height - 1.0], [0, 0, 1]])


def sampling_thetas(matrices: ArrayLike, image_size: tuple[int, int], out_size: tuple[int, int]) -> np.ndarray:
    """``affine_grid``'s ``(N, 2, 3)`` thetas for image-to-crop ``matrices``: crop unit coordinates to image ones."""
    matrices = np.asarray(matrices, dtype=np.float64).reshape(-1, 2, 3)
    full = np.concatenate([matrices, np.broadcast_to([[[0.0, 0.0, 1.0]]], (len(matrices), 1, 3))], axis=1)
    crop_to_image = np.linalg.inv(full)
    return (_pixel_to_unit(image_size) @ crop_to_image @ np.linalg.inv(_pixel_to_unit(out_size)))[:, :2]


def warp_crops_torch(frame: torch.Tensor, matrices: ArrayLike, out_size: tuple[int, int]) -> torch.Tensor:
    """:func:`warp_crops` on ``frame``'s device: ``(H, W, C)`` uint8 -> ``(N, C, h, w)`` float32 crops.

    Bilinear, zero border, sampled at the same points as ``cv2.warpAffine`` and rounded to whole grey levels
    as its ``uint8`` output; OpenCV's 1/32-pixel fixed-point weights make it differ by at most 1 grey level."""
    height, width = frame.shape[:2]
    thetas = sampling_thetas(matrices, (width, height), out_size)
    theta = torch.from_numpy(thetas).to(frame.device, torch.float32)
    grid = F.affine_grid(theta, [len(thetas), frame.shape[2], out_size[1], out_size[0]], align_corners=False)
    image = frame.permute(2, 0, 1)[None].float().expand(len(thetas), -1, -1, -1)
    crops = F.grid_sample(image, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return crops.round_().clamp_(0.0, 255.0)


def mirror_torch(tensor: torch.Tensor, dim: int, convention: str) -> torch.Tensor:
    """:func:`mirror` of a tensor along ``dim``, on its device."""
    flipped = tensor.flip(dim)
    width = tensor.shape[dim]
    shift = int(round(mirror_axis(width, convention))) - (width - 1)
    if shift == 0:
        return flipped
    out = torch.zeros_like(tensor)
    out.narrow(dim, shift, width - shift).copy_(flipped.narrow(dim, 0, width - shift))
    return out
