"""What every codec offers the inference path, the oracle and training, whatever the network outputs."""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

Outputs = tuple[np.ndarray, ...]  # a network's outputs for a batch of crops, as numpy arrays
TensorOutputs = tuple[torch.Tensor, ...]  # the same, as tensors on the network's device


class Codec(Protocol):
    """Keypoints <-> network outputs on a grid that covers the crop region (see :mod:`pose.geometry`)."""

    @property
    def grid_size(self) -> tuple[int, int]:
        """``(w, h)`` of the grid decoded coordinates live on, in the crop's pixel convention."""
        ...

    def encode(self, points: np.ndarray, visible: np.ndarray) -> tuple[Outputs, np.ndarray]:
        """Target outputs and per-joint weights ``(N, K)`` for ``(N, K, 2)`` grid points."""
        ...

    def decode(self, outputs: Outputs) -> tuple[np.ndarray, np.ndarray]:
        """Grid coordinates ``(N, K, 2)`` and confidences ``(N, K)``."""
        ...

    def flip_back(self, outputs: Outputs, convention: str) -> Outputs:
        """Outputs of horizontally mirrored crops as outputs of the crops themselves (left/right swapped)."""
        ...

    def decode_tensors(self, outputs: TensorOutputs) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`decode` on the outputs' device: float64 coordinates and confidences, equal to :meth:`decode`'s."""
        ...

    def flip_back_tensors(self, outputs: TensorOutputs, convention: str) -> TensorOutputs:
        """:meth:`flip_back` on the outputs' device."""
        ...
