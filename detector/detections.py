"""Person detections of one frame (boxes, scores and, from Keypoint R-CNN, keypoints)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function, elementwise, overflow-free."""
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=np.float64)))


@dataclass
class Detections:
    """People found in one frame, best score first.

    ``keypoints[..., 2]`` is a confidence in [0, 1]: the sigmoid of torchvision's keypoint score,
    which is the (logit-like, unbounded) value of the keypoint head's heatmap at its peak; the raw
    values are kept unchanged in ``keypoint_logits``. Only Keypoint R-CNN gives keypoints.
    """

    boxes: np.ndarray  # (N, 4) float64, COCO xywh in image pixels
    scores: np.ndarray  # (N,) float64 box scores
    keypoints: np.ndarray | None = None  # (N, 17, 3) float64: x, y, sigmoid(keypoint_logits)
    keypoint_logits: np.ndarray | None = None  # (N, 17) torchvision's ``keypoints_scores``, as given

    @classmethod
    def empty(cls) -> Detections:
        """No people."""
        return cls(np.zeros((0, 4)), np.zeros(0))

    def __len__(self) -> int:
        return len(self.scores)

    def top(self, max_people: int) -> Detections:
        """The ``max_people`` best (everyone where ``max_people`` <= 0): the bound ``detector.max_people`` puts on
        the people of a frame, whether the detector or a boxes file found them."""
        if max_people <= 0 or len(self) <= max_people:
            return self
        return self.select(np.arange(max_people))

    def select(self, index: np.ndarray | list[int]) -> Detections:
        """The people at ``index``, in that order."""
        index = np.asarray(index, dtype=np.int64)
        keypoints = None if self.keypoints is None else self.keypoints[index]
        logits = None if self.keypoint_logits is None else self.keypoint_logits[index]
        return Detections(self.boxes[index], self.scores[index], keypoints, logits)
