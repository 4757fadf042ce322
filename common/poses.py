"""The result of pose estimation on one frame: the people, their boxes, keypoints and scores (NumPy only, no torch).

Every step after the network uses it (tracking, drawing, results files, evaluation), so it lives here, below
all of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from toppose.common.schema import NUM_KEYPOINTS


@dataclass
class PoseResult:
    """The people found in one frame: best score first after OKS-NMS, else one per given box in its order."""

    boxes: np.ndarray  # (N, 4) xywh, the boxes the crops were built from
    box_scores: np.ndarray  # (N,)
    keypoints: np.ndarray  # (N, K, 3): x, y in image pixels, confidence
    scores: np.ndarray  # (N,) instance score = box score x mean confident-keypoint confidence

    @classmethod
    def empty(cls, num_keypoints: int = NUM_KEYPOINTS) -> PoseResult:
        """No people (of a keypoint set of ``num_keypoints``)."""
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros((0, num_keypoints, 3)), np.zeros(0))

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, index: np.ndarray | list[int]) -> PoseResult:
        """The people at ``index``, in that order."""
        index = np.asarray(index, dtype=np.int64)
        return PoseResult(self.boxes[index], self.box_scores[index], self.keypoints[index], self.scores[index])
