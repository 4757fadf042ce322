"""A constant-velocity Kalman filter on one person box (filterpy).

State: box centre (cx, cy), scale (the box height h), aspect (w / h), and the velocities of all
four, per frame. Noise is proportional to the box height, so the filter behaves the same for near
and far people; a detection's measurement noise also grows as its score falls. A measured box centre
far outside the prediction (a person turning or stopping abruptly) inflates the state's uncertainty
until it is plausible, so the velocity adapts in a frame or two instead of overshooting for many. The
box's height and aspect take no part in that test: a detector's box edges follow the extremities
(wrists, ankles) and jump with every swing and every noisy keypoint, which is no manoeuvre. Tested on
all four, more than half of the boxes of a pose detector's crowd inflated the filter, its velocity
followed the noise and identities were lost wherever people crossed.
A moving camera's frame-to-frame similarity transform can be applied to the state (:meth:`BoxKalman.warp`,
camera motion compensation as in BoT-SORT).
"""

from __future__ import annotations

import numpy as np
from filterpy.kalman import KalmanFilter

# Standard deviations as fractions of the box height (aspect: absolute), per frame.
POSITION_STD = 1.0 / 20.0
VELOCITY_STD = 1.0 / 160.0
ASPECT_STD = 1e-2
ASPECT_VELOCITY_STD = 1e-4
MIN_SCORE = 0.1  # measurement noise variance is divided by max(score, MIN_SCORE)
MIN_HEIGHT = 1.0
MANOEUVRE_GATE = 4.61  # chi-square, 2 dof, 90%: a box centre this far off inflates the motion uncertainty


def box_to_measurement(box_xywh: np.ndarray) -> np.ndarray:
    """``[x, y, w, h]`` -> ``[cx, cy, h, w / h]``."""
    x, y, w, h = np.asarray(box_xywh, dtype=np.float64)
    h = max(h, MIN_HEIGHT)
    return np.array([x + w / 2.0, y + h / 2.0, h, max(w, 1e-6) / h])


def measurement_to_box(z: np.ndarray) -> np.ndarray:
    """``[cx, cy, h, w / h]`` (or a full state) -> ``[x, y, w, h]``."""
    cx, cy, h, aspect = np.asarray(z, dtype=np.float64).reshape(-1)[:4]
    h = max(h, MIN_HEIGHT)
    w = max(aspect, 1e-6) * h
    return np.array([cx - w / 2.0, cy - h / 2.0, w, h])


class BoxKalman:
    """Tracks one box: :meth:`predict` once per frame, :meth:`update` when the box is measured."""

    def __init__(self, box_xywh: np.ndarray) -> None:
        self.kf = KalmanFilter(dim_x=8, dim_z=4)
        self.kf.F = np.eye(8)
        self.kf.F[:4, 4:] = np.eye(4)
        self.kf.H = np.eye(4, 8)
        z = box_to_measurement(box_xywh)
        self.kf.x = np.concatenate([z, np.zeros(4)])[:, None]
        h = z[2]
        std = [2 * POSITION_STD * h, 2 * POSITION_STD * h, 2 * POSITION_STD * h, ASPECT_STD,
               10 * VELOCITY_STD * h, 10 * VELOCITY_STD * h, 10 * VELOCITY_STD * h, ASPECT_VELOCITY_STD]  # fmt: skip
        self.kf.P = np.diag(np.square(std))

    @property
    def box(self) -> np.ndarray:
        """The current estimate as ``[x, y, w, h]``."""
        return measurement_to_box(self.kf.x[:4, 0])

    def predict(self) -> np.ndarray:
        """Advance one frame; returns the predicted box."""
        x = self.kf.x[:, 0]
        if x[2] + x[6] < MIN_HEIGHT:  # a shrinking box may not collapse
            self.kf.x[6, 0] = 0.0
        h = max(float(x[2]), MIN_HEIGHT)
        std = [POSITION_STD * h, POSITION_STD * h, POSITION_STD * h, ASPECT_STD,
               VELOCITY_STD * h, VELOCITY_STD * h, VELOCITY_STD * h, ASPECT_VELOCITY_STD]  # fmt: skip
        self.kf.predict(Q=np.diag(np.square(std)))
        return self.box

    def update(self, box_xywh: np.ndarray, score: float = 1.0) -> None:
        """Correct the state with a measured box of detection confidence ``score``."""
        z = box_to_measurement(box_xywh)
        h = max(float(self.kf.x[2, 0]), MIN_HEIGHT)
        std = np.array([POSITION_STD * h, POSITION_STD * h, POSITION_STD * h, ASPECT_STD])
        r = np.diag(np.square(std) / max(float(score), MIN_SCORE))
        centre = z[:2] - self.kf.x[:2, 0]
        nis = float(centre @ np.linalg.solve(self.kf.P[:2, :2] + r[:2, :2], centre))
        if nis > MANOEUVRE_GATE:
            self.kf.P = self.kf.P * (nis / MANOEUVRE_GATE)
        self.kf.update(z, R=r)

    def warp(self, affine: np.ndarray) -> None:
        """Move the state into the next frame's coordinates by a ``(2, 3)`` similarity map (camera motion)."""
        self.kf.x, self.kf.P = warp_state((self.kf.x, self.kf.P), affine)

    def state(self) -> tuple[np.ndarray, np.ndarray]:
        """A copy of the state mean and covariance, to :meth:`restore` later."""
        return self.kf.x.copy(), self.kf.P.copy()

    def restore(self, state: tuple[np.ndarray, np.ndarray]) -> None:
        self.kf.x, self.kf.P = state[0].copy(), state[1].copy()


def warp_state(state: tuple[np.ndarray, np.ndarray], affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A filter state (mean, covariance) mapped by a ``(2, 3)`` similarity map of the image."""
    affine = np.asarray(affine, dtype=np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(affine[:, :2]))))
    transform = np.eye(8)
    transform[:2, :2] = transform[4:6, 4:6] = affine[:, :2]
    transform[2, 2] = transform[6, 6] = scale
    mean = transform @ state[0]
    mean[:2, 0] += affine[:, 2]
    return mean, transform @ state[1] @ transform.T
