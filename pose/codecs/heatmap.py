"""Heatmap codec: Gaussian targets with sub-pixel centres, and argmax / DARK decoding.

Coordinates are heatmap pixel coordinates; :mod:`pose.geometry` maps them to and from the image in
the pixel convention the network was trained in, which also fixes how a heatmap is mirrored.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import convolve1d
from toppose.common.config import DECODE_METHODS
from toppose.common.keypoint_sets import flip_index_of
from toppose.pose.codecs.base import Outputs, TensorOutputs
from toppose.pose.geometry import mirror, mirror_torch


def encode(
    keypoints: np.ndarray, visible: np.ndarray, heatmap_size: tuple[int, int], sigma: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """Render ``(N, K, 2)`` heatmap-space keypoints as Gaussian heatmaps ``(N, K, H, W)``.

    Returns the heatmaps (float32, peak 1 at the exact sub-pixel centre) and per-joint target
    weights ``(N, K)``: 1 where the keypoint is labelled (``visible``) and its Gaussian's 3-sigma
    window overlaps the heatmap, else 0 (and an all-zero map).
    """
    keypoints = np.asarray(keypoints, dtype=np.float64)
    width, height = heatmap_size
    xs = np.arange(width, dtype=np.float64)
    ys = np.arange(height, dtype=np.float64)
    mx = keypoints[..., 0][..., None]
    my = keypoints[..., 1][..., None]
    gx = np.exp(-((xs - mx) ** 2) / (2.0 * sigma**2))  # (N, K, W)
    gy = np.exp(-((ys - my) ** 2) / (2.0 * sigma**2))  # (N, K, H)
    # As in the reference recipes, a centre just off the map still gets its partial Gaussian; only one
    # whose 3-sigma window misses the map entirely gets an empty map and weight 0.
    reach = 3.0 * sigma
    inside = (mx[..., 0] > -reach) & (mx[..., 0] < width - 1 + reach) & (my[..., 0] > -reach)
    inside &= my[..., 0] < height - 1 + reach
    weights = (np.asarray(visible, dtype=bool) & inside).astype(np.float32)
    heatmaps = gy[..., :, None] * gx[..., None, :] * weights[..., None, None]
    return heatmaps.astype(np.float32), weights


def flip_heatmaps(heatmaps: np.ndarray, convention: str = "half_pixel") -> np.ndarray:
    """Heatmaps of the mirrored crop, as heatmaps of the original: mirror x (in ``convention``, see
    :func:`pose.geometry.mirror`) and swap left/right (the pairs of the keypoint set with as many keypoints)."""
    return mirror(heatmaps[..., flip_index_of(heatmaps.shape[-3]), :, :], -1, convention)


def flip_heatmaps_torch(heatmaps: torch.Tensor, convention: str = "half_pixel") -> torch.Tensor:
    """:func:`flip_heatmaps` on the heatmaps' device."""
    flip = torch.as_tensor(flip_index_of(heatmaps.shape[-3]), device=heatmaps.device)
    return mirror_torch(heatmaps.index_select(-3, flip), -1, convention)


def _gaussian_kernel(size: int) -> np.ndarray:
    sigma = 0.3 * ((size - 1) * 0.5 - 1) + 0.8  # OpenCV's choice for a given kernel size
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    kernel = np.exp(-(x**2) / (2 * sigma**2))
    return kernel / kernel.sum()


def _blur(heatmaps: np.ndarray, kernel_size: int) -> np.ndarray:
    kernel = _gaussian_kernel(kernel_size)
    out = convolve1d(heatmaps, kernel, axis=-1, mode="constant")
    out = convolve1d(out, kernel, axis=-2, mode="constant")
    # Keep each map's peak height, as the unblurred map's maximum is the confidence.
    peak_in = heatmaps.max(axis=(-2, -1), keepdims=True)
    peak_out = np.maximum(out.max(axis=(-2, -1), keepdims=True), 1e-12)
    return out * (peak_in / peak_out)


def decode(heatmaps: np.ndarray, method: str = "dark", blur_kernel: int = 11) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``(N, K, H, W)`` heatmaps to keypoints ``(N, K, 2)`` in heatmap pixels and scores ``(N, K)``.

    ``argmax`` returns the integer peak. ``dark`` (Zhang et al., 2020) smooths each map with a
    Gaussian, takes its log and moves from the peak by one Newton step of the second-order Taylor
    expansion, which is exact for a Gaussian peak. The score is the raw map's maximum.
    """
    if method not in DECODE_METHODS:
        raise ValueError(f"unknown decode method {method!r} (choose from {', '.join(DECODE_METHODS)})")
    heatmaps = np.asarray(heatmaps, dtype=np.float64)
    n, k, height, width = heatmaps.shape
    flat = heatmaps.reshape(n, k, -1)
    index = flat.argmax(axis=-1)
    scores = np.maximum(np.take_along_axis(flat, index[..., None], axis=-1)[..., 0], 0.0)
    px = (index % width).astype(np.int64)
    py = (index // width).astype(np.int64)
    coords = np.stack([px, py], axis=-1).astype(np.float64)
    if method == "argmax":
        return coords, scores

    logmap = np.log(np.maximum(_blur(heatmaps, blur_kernel) if blur_kernel > 1 else heatmaps, 1e-10))
    logmap = np.pad(logmap, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="edge")
    ni, ki = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")
    x, y = px + 1, py + 1

    def at(dy: int, dx: int) -> np.ndarray:
        return logmap[ni, ki, y + dy, x + dx]

    step_x, step_y, det, ok = _newton_step(at, scores)
    safe = np.where(ok, det, 1.0)
    offsets = np.stack([step_x / safe, step_y / safe], axis=-1)
    offsets = np.where(ok[..., None], np.clip(offsets, -1.0, 1.0), 0.0)
    return coords + offsets, scores


def _newton_step(at: Callable[[int, int], Any], scores: Any) -> tuple[Any, Any, Any, Any]:
    """DARK's Newton step from the peak of the log map, for NumPy arrays and torch tensors alike: ``at(dy, dx)``
    reads the log map around each peak. Returns the step's numerators (x, y) and the Hessian's determinant, which
    divides them, and where the step is taken: a proper maximum has a negative-definite Hessian; anywhere else
    the integer peak stays."""
    center = at(0, 0)
    dx = 0.5 * (at(0, 1) - at(0, -1))
    dy = 0.5 * (at(1, 0) - at(-1, 0))
    dxx = at(0, 1) - 2 * center + at(0, -1)
    dyy = at(1, 0) - 2 * center + at(-1, 0)
    dxy = 0.25 * (at(1, 1) - at(-1, 1) - at(1, -1) + at(-1, -1))
    det = dxx * dyy - dxy**2
    ok = (det > 1e-12) & (dxx < 0) & (scores > 0)
    return -(dyy * dx - dxy * dy), -(dxx * dy - dxy * dx), det, ok


def _blur_torch(heatmaps: torch.Tensor, kernel_size: int) -> torch.Tensor:
    n, k, height, width = heatmaps.shape
    kernel = torch.from_numpy(_gaussian_kernel(kernel_size)).to(heatmaps)
    maps = heatmaps.reshape(n * k, 1, height, width)
    out = F.conv2d(maps, kernel.view(1, 1, 1, -1), padding=(0, kernel_size // 2))
    out = F.conv2d(out, kernel.view(1, 1, -1, 1), padding=(kernel_size // 2, 0)).reshape(heatmaps.shape)
    peak_in = heatmaps.amax(dim=(-2, -1), keepdim=True)
    peak_out = out.amax(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    return out * (peak_in / peak_out)


def decode_torch(
    heatmaps: torch.Tensor, method: str = "dark", blur_kernel: int = 11
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`decode` on the heatmaps' device (in float64): keypoints ``(N, K, 2)`` and scores ``(N, K)``."""
    if method not in DECODE_METHODS:
        raise ValueError(f"unknown decode method {method!r} (choose from {', '.join(DECODE_METHODS)})")
    heatmaps = heatmaps.double()
    n, k, height, width = heatmaps.shape
    scores, index = heatmaps.reshape(n, k, -1).max(dim=-1)
    scores = scores.clamp_min(0.0)
    px, py = index % width, index // width
    coords = torch.stack([px, py], dim=-1).double()
    if method == "argmax" or n * k == 0:
        return coords, scores

    logmap = (_blur_torch(heatmaps, blur_kernel) if blur_kernel > 1 else heatmaps).clamp_min(1e-10).log()
    logmap = F.pad(logmap, (1, 1, 1, 1), mode="replicate").reshape(n, k, -1)
    x, y = px + 1, py + 1

    def at(dy: int, dx: int) -> torch.Tensor:
        return logmap.gather(-1, ((y + dy) * (width + 2) + x + dx)[..., None])[..., 0]

    step_x, step_y, det, ok = _newton_step(at, scores)
    safe = torch.where(ok, det, torch.ones_like(det))
    offsets = torch.stack([step_x / safe, step_y / safe], dim=-1)
    offsets = torch.where(ok[..., None], offsets.clamp(-1.0, 1.0), torch.zeros_like(offsets))
    return coords + offsets, scores


@dataclass(frozen=True)
class HeatmapCodec:
    """Gaussian heatmaps of ``heatmap_size`` (SimpleBaseline, HRNet, ViTPose): one output, ``(N, K, h, w)``."""

    heatmap_size: tuple[int, int]
    sigma: float = 2.0
    decode_method: str = "dark"
    blur_kernel: int = 11

    @property
    def grid_size(self) -> tuple[int, int]:
        """The grid the decoded coordinates live on: the heatmap's ``(w, h)``."""
        return tuple(self.heatmap_size)

    def encode(self, points: np.ndarray, visible: np.ndarray) -> tuple[Outputs, np.ndarray]:
        """Targets ``((N, K, h, w),)`` and weights ``(N, K)`` for ``(N, K, 2)`` grid points."""
        heatmaps, weights = encode(points, visible, self.grid_size, self.sigma)
        return (heatmaps,), weights

    def decode(self, outputs: Outputs) -> tuple[np.ndarray, np.ndarray]:
        """Grid coordinates ``(N, K, 2)`` and confidences ``(N, K)``."""
        return decode(outputs[0], self.decode_method, self.blur_kernel)

    def flip_back(self, outputs: Outputs, convention: str) -> Outputs:
        """The outputs of mirrored crops as outputs of the crops themselves."""
        return (flip_heatmaps(outputs[0], convention),)

    def decode_tensors(self, outputs: TensorOutputs) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`decode` on the outputs' device."""
        return decode_torch(outputs[0], self.decode_method, self.blur_kernel)

    def flip_back_tensors(self, outputs: TensorOutputs, convention: str) -> TensorOutputs:
        """:meth:`flip_back` on the outputs' device."""
        return (flip_heatmaps_torch(outputs[0], convention),)
