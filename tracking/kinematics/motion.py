"""Joint angles, angular velocities, keypoint speeds and range of motion of one track, in the image plane.

Angles (degrees, from the 2-D keypoints: a projection, so they depend on the camera's view):

- a joint angle is the interior angle at the middle keypoint of three, between the segments to the
  other two: 180 = straight, smaller = more bent (the 2-D angle does not tell flexion from extension).
  ``elbow`` shoulder-elbow-wrist, ``shoulder`` hip-shoulder-elbow (0 = arm down along the trunk,
  180 = arm straight up), ``hip`` shoulder-hip-knee, ``knee`` hip-knee-ankle; left and right each.
- ``trunk_lean`` is the angle of the mid-hip -> mid-shoulder vector from the image's upward vertical,
  in (-180, 180]: 0 = upright, positive = shoulders towards the image's right (+x), negative = left.

A keypoint whose confidence is below the threshold is missing, and so is every angle and speed that
needs it: a gap (NaN), never filled in. Rates are second-order central differences on the real time
stamps (uneven steps included), taken only where a row and both its neighbours are valid and linked:
consecutive frames with no time jump between them (see :func:`breaks`).

Speeds are in body heights per second. The body height of a track is the median, over its frames where
both shoulders, both hips and at least one whole leg are confident, of trunk + thigh + shank length
(mid-shoulder to mid-hip, plus hip-knee and knee-ankle, averaged over the confident legs), in pixels:
sums of segment lengths, so a squat or a bow does not shorten it (about 0.8 of a standing person's
stature, as it leaves out the head and feet).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from toppose.common.schema import KEYPOINT_NAMES

SIDES = ("left", "right")
# Joint -> (end, vertex, end) keypoint name stems; a side is put in front ("left_" + "shoulder").
JOINTS = {
    "elbow": ("shoulder", "elbow", "wrist"),
    "shoulder": ("hip", "shoulder", "elbow"),
    "hip": ("shoulder", "hip", "knee"),
    "knee": ("hip", "knee", "ankle"),
}
TRUNK_LEAN = "trunk_lean"
ANGLE_NAMES = (*(f"{side}_{joint}" for joint in JOINTS for side in SIDES), TRUNK_LEAN)
TIME_JUMP = 3.0  # a step more than this many times the track's median frame step is a jump (a pause, a cut)

_INDEX = {name: i for i, name in enumerate(KEYPOINT_NAMES)}


@dataclass
class TrackKinematics:
    """Per-frame motion of one track; NaN marks a gap."""

    track_id: int
    frames: np.ndarray  # (T,) frame indices
    times: np.ndarray  # (T,) seconds
    angles: dict[str, np.ndarray]  # ANGLE_NAMES -> (T,) degrees
    angular_velocity: dict[str, np.ndarray]  # ANGLE_NAMES -> (T,) degrees per second
    speeds: np.ndarray  # (T, 17) keypoint speeds in body heights per second
    body_height: float  # pixels; NaN where no frame shows the segments it needs
    breaks: np.ndarray  # (T,) bool: row i does not follow row i - 1 (a missing frame or a time jump)


@dataclass
class RangeOfMotion:
    """The spread of one angle over a track's valid frames (NaN where there are none)."""

    minimum: float
    maximum: float
    p5: float
    p95: float

    @property
    def full(self) -> float:
        """max - min: the whole excursion (one wrong keypoint can set it)."""
        return self.maximum - self.minimum

    @property
    def robust(self) -> float:
        """95th - 5th percentile: the excursion without the extreme 5 % on either side."""
        return self.p95 - self.p5


def _points(xy: np.ndarray, valid: np.ndarray, name: str) -> np.ndarray:
    """(T, 2) positions of keypoint ``name``, NaN where it is not confident."""
    index = _INDEX[name]
    return np.where(valid[:, index, None], xy[:, index], np.nan)


def interior_angle(end_a: np.ndarray, vertex: np.ndarray, end_c: np.ndarray) -> np.ndarray:
    """(T,) degrees in [0, 180] between ``vertex -> end_a`` and ``vertex -> end_c``; NaN where a segment is missing
    or has no length."""
    u, v = end_a - vertex, end_c - vertex
    cross = u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]
    dot = (u * v).sum(axis=1)
    degenerate = (np.hypot(*u.T) == 0) | (np.hypot(*v.T) == 0)
    return np.where(degenerate, np.nan, np.degrees(np.arctan2(np.abs(cross), dot)))


def _middle(xy: np.ndarray, valid: np.ndarray, stem: str) -> np.ndarray:
    return (_points(xy, valid, f"left_{stem}") + _points(xy, valid, f"right_{stem}")) / 2


def joint_angles(keypoints: np.ndarray, min_confidence: float) -> dict[str, np.ndarray]:
    """Every angle of :data:`ANGLE_NAMES` for (T, 17, 3) keypoints; NaN where a keypoint it needs is not confident."""
    xy, valid = keypoints[..., :2], keypoints[..., 2] >= min_confidence
    angles = {
        f"{side}_{joint}": interior_angle(*(_points(xy, valid, f"{side}_{stem}") for stem in stems))
        for joint, stems in JOINTS.items()
        for side in SIDES
    }
    trunk = _middle(xy, valid, "shoulder") - _middle(xy, valid, "hip")
    upright = np.hypot(*trunk.T) > 0
    angles[TRUNK_LEAN] = np.where(upright, np.degrees(np.arctan2(trunk[:, 0], -trunk[:, 1])), np.nan)
    return angles


def breaks(frames: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(T,) bool: row i is not linked to row i - 1, because frames are missing between them (the track was
    not seen) or the time step is over :data:`TIME_JUMP` times the median step between consecutive frames."""
    steps, gaps = np.diff(times), np.diff(frames) > 1
    consecutive = steps[~gaps]
    jump = steps > TIME_JUMP * np.median(consecutive) if consecutive.size else np.ones_like(gaps)
    return np.concatenate([[True], gaps | jump])


def rate(values: np.ndarray, times: np.ndarray, broken: np.ndarray, period: float | None = None) -> np.ndarray:
    """d(values)/dt per second, (T, ...) like ``values``: second order on uneven steps (exact for a parabola),
    NaN at a track's ends, beside a gap or a break. ``period``: values wrap around (differences taken modulo it).
    """
    out = np.full(values.shape, np.nan)
    if len(times) < 3:
        return out
    shape = (-1,) + (1,) * (values.ndim - 1)
    h1 = (times[1:-1] - times[:-2]).reshape(shape)
    h2 = (times[2:] - times[1:-1]).reshape(shape)
    back, ahead = values[:-2] - values[1:-1], values[2:] - values[1:-1]
    if period is not None:
        back, ahead = ((d + period / 2) % period - period / 2 for d in (back, ahead))
    central = (h1**2 * ahead - h2**2 * back) / (h1 * h2 * (h1 + h2))
    linked = (~broken[1:-1] & ~broken[2:]).reshape(shape)
    out[1:-1] = np.where(linked, central, np.nan)
    return out


def body_height(keypoints: np.ndarray, min_confidence: float) -> float:
    """The track's length scale in pixels (see the module docstring), NaN when no frame shows it."""
    xy, valid = keypoints[..., :2], keypoints[..., 2] >= min_confidence
    trunk = np.hypot(*(_middle(xy, valid, "shoulder") - _middle(xy, valid, "hip")).T)
    legs = np.stack(
        [
            np.hypot(*(_points(xy, valid, f"{s}_hip") - _points(xy, valid, f"{s}_knee")).T)
            + np.hypot(*(_points(xy, valid, f"{s}_knee") - _points(xy, valid, f"{s}_ankle")).T)
            for s in SIDES
        ]
    )
    seen = np.isfinite(legs)
    leg = np.where(seen.any(axis=0), np.where(seen, legs, 0).sum(axis=0) / np.maximum(seen.sum(axis=0), 1), np.nan)
    lengths = trunk + leg
    lengths = lengths[np.isfinite(lengths) & (lengths > 0)]
    return float(np.median(lengths)) if lengths.size else float("nan")


def analyse_track(
    track_id: int, frames: np.ndarray, times: np.ndarray, keypoints: np.ndarray, min_confidence: float
) -> TrackKinematics:
    """Angles, angular velocities and keypoint speeds of one track's frames (in frame order)."""
    broken = breaks(frames, times)
    angles = joint_angles(keypoints, min_confidence)
    velocity = {
        name: rate(values, times, broken, period=360.0 if name == TRUNK_LEAN else None)
        for name, values in angles.items()
    }
    xy = np.where((keypoints[..., 2] >= min_confidence)[..., None], keypoints[..., :2], np.nan)
    height = body_height(keypoints, min_confidence)
    speeds = np.hypot(*np.moveaxis(rate(xy, times, broken), -1, 0)) / height
    return TrackKinematics(track_id, frames, times, angles, velocity, speeds, height, broken)


def range_of_motion(angle: np.ndarray) -> RangeOfMotion:
    """Minimum, maximum and 5th / 95th percentiles of an angle's valid values."""
    valid = angle[np.isfinite(angle)]
    if not valid.size:
        return RangeOfMotion(*([float("nan")] * 4))
    p5, p95 = np.percentile(valid, [5, 95])
    return RangeOfMotion(float(valid.min()), float(valid.max()), float(p5), float(p95))
