"""Camera motion between consecutive frames from sparse optical flow, as BoT-SORT's compensation does.

Corners of the previous frame (downscaled, greyscale) are followed into the next one by pyramidal
Lucas-Kanade flow; a similarity transform (shift, rotation, zoom) is fitted to them with RANSAC, so
people moving against the background are outliers. The result maps the previous frame's pixels to
the current one's, as :meth:`tracking.tracker.Tracker.predict` takes it.
"""

from __future__ import annotations

import cv2
import numpy as np

MAX_CORNERS = 500
MIN_TRACKED = 12  # fewer followed corners than this: no estimate (a still camera is assumed)


class CameraMotion:
    """Call with each frame in turn; returns the ``(2, 3)`` map from the previous frame, or None."""

    def __init__(self, downscale: int = 2) -> None:
        self.downscale = downscale
        self._previous: np.ndarray | None = None

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
        height, width = grey.shape
        small = cv2.resize(grey, (width // self.downscale, height // self.downscale), interpolation=cv2.INTER_AREA)
        previous, self._previous = self._previous, small
        if previous is None:
            return None
        corners = cv2.goodFeaturesToTrack(previous, MAX_CORNERS, qualityLevel=0.01, minDistance=1, blockSize=3)
        if corners is None or len(corners) < MIN_TRACKED:
            return None
        moved, status, _ = cv2.calcOpticalFlowPyrLK(previous, small, corners, None)
        found = status.reshape(-1) == 1
        if found.sum() < MIN_TRACKED:
            return None
        affine, _ = cv2.estimateAffinePartial2D(corners[found], moved[found], method=cv2.RANSAC)
        if affine is None:
            return None
        affine[:, 2] *= self.downscale  # back to full-resolution pixels
        return affine
