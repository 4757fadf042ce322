"""SimCC codec (Li et al., ECCV 2022; RTMPose): each keypoint as two 1-D classifications over bins.

The x (y) vector has ``split_ratio`` bins per input pixel, so its grid covers the crop region like a
heatmap of ``input_size * split_ratio`` pixels and follows the same pixel convention
(:mod:`pose.geometry`). Targets are unnormalised Gaussians (peak 1) with ``sigma`` bins; decoding takes
the argmax of each vector, and the confidence is the smaller of the two maxima.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from toppose.common.keypoint_sets import flip_index_of
from toppose.pose.codecs.base import Outputs, TensorOutputs
from toppose.pose.geometry import mirror, mirror_torch


def _gaussian_labels(centres: np.ndarray, length: int, sigma: float) -> np.ndarray:
    bins = np.arange(length, dtype=np.float64)
    return np.exp(-((bins - centres[..., None]) ** 2) / (2.0 * sigma**2)).astype(np.float32)


@dataclass(frozen=True)
class SimCCCodec:
    """Two vectors per keypoint: x ``(N, K, W * r)`` and y ``(N, K, H * r)``."""

    input_size: tuple[int, int]
    split_ratio: float = 2.0
    sigma: tuple[float, float] = (4.9, 5.66)

    @property
    def grid_size(self) -> tuple[int, int]:
        """``(W * r, H * r)``: the number of x and y bins."""
        width, height = self.input_size
        return int(round(width * self.split_ratio)), int(round(height * self.split_ratio))

    def encode(self, points: np.ndarray, visible: np.ndarray) -> tuple[Outputs, np.ndarray]:
        """Gaussian label vectors for ``(N, K, 2)`` bin coordinates; weight 0 (and zero labels) outside the grid."""
        points = np.asarray(points, dtype=np.float64)
        width, height = self.grid_size
        inside = (points[..., 0] >= 0) & (points[..., 0] <= width - 1)
        inside &= (points[..., 1] >= 0) & (points[..., 1] <= height - 1)
        weights = (np.asarray(visible, dtype=bool) & inside).astype(np.float32)
        labels_x = _gaussian_labels(points[..., 0], width, self.sigma[0]) * weights[..., None]
        labels_y = _gaussian_labels(points[..., 1], height, self.sigma[1]) * weights[..., None]
        return (labels_x, labels_y), weights

    def decode(self, outputs: Outputs) -> tuple[np.ndarray, np.ndarray]:
        """Bin coordinates ``(N, K, 2)`` of the two argmaxes, and the smaller of the two maxima (at least 0)."""
        simcc_x, simcc_y = (np.asarray(o, dtype=np.float64) for o in outputs)
        coords = np.stack([simcc_x.argmax(axis=-1), simcc_y.argmax(axis=-1)], axis=-1).astype(np.float64)
        scores = np.minimum(simcc_x.max(axis=-1), simcc_y.max(axis=-1))
        return coords, np.maximum(scores, 0.0)

    def flip_back(self, outputs: Outputs, convention: str) -> Outputs:
        """Mirror the x vectors in ``convention`` (see :func:`pose.geometry.mirror`) and swap left/right."""
        simcc_x, simcc_y = outputs
        flip = flip_index_of(simcc_x.shape[1])  # the set with as many keypoints
        return mirror(simcc_x[:, flip], -1, convention), simcc_y[:, flip]

    def decode_tensors(self, outputs: TensorOutputs) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`decode` on the outputs' device (float64 results, the same argmax: the first maximum)."""
        (max_x, arg_x), (max_y, arg_y) = (o.max(dim=-1) for o in outputs)
        coords = torch.stack([arg_x, arg_y], dim=-1).double()
        return coords, torch.minimum(max_x, max_y).double().clamp_min(0.0)

    def flip_back_tensors(self, outputs: TensorOutputs, convention: str) -> TensorOutputs:
        """:meth:`flip_back` on the outputs' device."""
        simcc_x, simcc_y = outputs
        flip = torch.as_tensor(flip_index_of(simcc_x.shape[1]), device=simcc_x.device)
        return mirror_torch(simcc_x.index_select(1, flip), -1, convention), simcc_y.index_select(1, flip)
