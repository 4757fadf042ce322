"""Lengths in the image: the body-height scale, the floor line (camera tilt) and metres from a person's height.

- **Body height** (pixels): per frame, trunk + thigh + shank (mid-shoulder to mid-hip, plus hip-knee and
  knee-ankle averaged over the legs seen); a track's is the median over its frames. Sums of segment
  lengths, so bending does not shorten it.
- **Floor line**: where the feet (big toes, else ankles) stand still (under 0.3 body heights per second)
  at places at least half a body height apart, a straight line fitted through them (numpy ``polyfit``,
  whose covariance gives the angle's standard deviation); its direction, anticlockwise from the image's
  rightward horizontal, is the camera's tilt. Or given (``--floor-angle DEG``), or 0 where the feet did not
  travel.
- **Metres**: the body height is 0.779 of stature (Winter's segment proportions: trunk 0.288, thigh 0.245,
  shank 0.246), so a person of known height ``H`` gives ``H / (body height / 0.779)`` metres per pixel.
  Its relative uncertainty combines an assumed 3 % spread of those proportions between adults with the
  frame-to-frame spread of the body height (1.4826 x MAD / median). With perspective (a focal length in
  pixels, or a horizontal field of view, and the image size) the scale follows the person's distance frame
  by frame (body height over a running 1 s median), and the distance is ``focal length x scale``.
  Positions: x along the floor (the tilt removed), y up from the floor (the median of each frame's lowest
  foot point), x = 0 at the track's first mid-hip.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from toppose.tracking.kinematics.angles import SIDES, direction, point
from toppose.tracking.kinematics.keypoint_sets import KeypointSet

STATURE_FRACTION = 0.779
PROPORTION_SD = 0.03
STILL_BH_S = 0.3  # a foot slower than this many body heights per second stands on the floor
MIN_TRAVEL_BH = 0.5  # the still feet must spread this far along the image for a floor line
MAD_TO_SD = 1.4826


@dataclass
class Floor:
    """The floor line's direction in the image (degrees, as segment angles are measured) and how it was found."""

    angle_deg: float
    sd_deg: float  # NaN where given or assumed
    method: str


@dataclass
class Scale:
    """Metres per pixel, frame by frame, with its relative standard deviation and how it was found."""

    height_m: float
    m_per_px: np.ndarray  # (T,)
    relative_sd: float
    method: str
    distance_m: np.ndarray | None  # (T,) from the camera, where a focal length is known


@dataclass
class Camera:
    """What perspective needs: the focal length in pixels and the image size (the principal point at its centre)."""

    focal_px: float
    width: int
    height: int


def _length(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.hypot(*(a - b).T)


def body_lengths(xy: np.ndarray, kind: KeypointSet) -> np.ndarray:
    """(T,) trunk + thigh + shank in pixels per frame, NaN where the trunk or both legs are not whole."""
    shoulders = (point(xy, kind, "left_shoulder") + point(xy, kind, "right_shoulder")) / 2
    trunk = _length(shoulders, (point(xy, kind, "left_hip") + point(xy, kind, "right_hip")) / 2)
    legs = np.stack([
        _length(point(xy, kind, f"{s}_hip"), point(xy, kind, f"{s}_knee"))
        + _length(point(xy, kind, f"{s}_knee"), point(xy, kind, f"{s}_ankle"))
        for s in SIDES
    ])  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # no leg seen: NaN
        lengths = trunk + np.nanmean(legs, axis=0)
    return np.where(lengths > 0, lengths, np.nan)


def body_height(xy: np.ndarray, kind: KeypointSet) -> float:
    """The track's body height in pixels (the median of :func:`body_lengths`), NaN when no frame shows it."""
    lengths = body_lengths(xy, kind)
    return float(np.nanmedian(lengths)) if np.isfinite(lengths).any() else math.nan


def foot_points(kind: KeypointSet) -> list[str]:
    """The points a foot stands on: the big toes where the set has them, else the ankles."""
    stem = "big_toe" if "left_big_toe" in kind.index else "ankle"
    return [f"{side}_{stem}" for side in SIDES]


def estimate_floor(xy: np.ndarray, speeds_bh_s: np.ndarray, kind: KeypointSet, height_px: float) -> Floor:
    """The floor line through the places where the feet stand still (see the module docstring)."""
    still = []
    for name in foot_points(kind):
        index = kind.index[name]
        at_rest = speeds_bh_s[:, index] < STILL_BH_S
        still.append(xy[at_rest, index])
    samples = np.concatenate(still)
    if not math.isfinite(height_px) or len(samples) < 3 or np.ptp(samples[:, 0]) < MIN_TRAVEL_BH * height_px:
        return Floor(0.0, math.nan, f"assumed level: the feet did not stand still {MIN_TRAVEL_BH:g} body heights "
                                    "apart (give --floor-angle DEG)")  # fmt: skip
    (slope, _), covariance = np.polyfit(samples[:, 0], samples[:, 1], 1, cov=True)
    angle = float(direction(np.array([[1.0, slope]]))[0])
    sd = math.degrees(math.sqrt(max(covariance[0, 0], 0.0)) / (1 + slope**2))
    return Floor(angle, sd, f"fitted through {len(samples)} still-foot positions ({', '.join(foot_points(kind))})")


def _running_median(values: np.ndarray, times: np.ndarray, window: int) -> np.ndarray:
    """A running median over ``window`` frames of the finite values, interpolated over time across the gaps."""
    finite = np.isfinite(values)
    smooth = ndimage.median_filter(values[finite], size=window, mode="nearest")
    return np.interp(times, times[finite], smooth)


def metres_scale(
    xy: np.ndarray, times: np.ndarray, kind: KeypointSet, height_m: float, camera: Camera | None
) -> Scale | None:
    """The metre scale of a person ``height_m`` tall, None where no frame shows the body height."""
    lengths = body_lengths(xy, kind)
    finite = lengths[np.isfinite(lengths)]
    if not finite.size:
        return None
    how = f"height {height_m:g} m over body height / {STATURE_FRACTION} (Winter's proportions, {PROPORTION_SD:.0%})"
    if camera is None:
        median = float(np.median(finite))
        spread = MAD_TO_SD * float(np.median(np.abs(finite - median))) / median
        scale = np.full(len(times), height_m * STATURE_FRACTION / median)
        distance = None
    else:
        fps = 1 / np.median(np.diff(times)) if len(times) > 1 else 1.0
        smooth = _running_median(lengths, times, max(1, int(round(fps))) | 1)
        ratio = lengths / smooth
        spread = MAD_TO_SD * float(np.nanmedian(np.abs(ratio - 1)))
        scale = height_m * STATURE_FRACTION / smooth
        distance = camera.focal_px * scale
        how += f", per frame (perspective, focal length {camera.focal_px:.0f} px)"
    return Scale(height_m, scale, math.hypot(PROPORTION_SD, spread), how, distance)


def to_metres(xy: np.ndarray, kind: KeypointSet, scale: Scale, floor: Floor, camera: Camera | None) -> np.ndarray:
    """(T, K, 2) positions in metres: x along the floor, y up from it, x = 0 at the first mid-hip."""
    centre = np.array([camera.width / 2, camera.height / 2]) if camera else np.zeros(2)
    theta = math.radians(floor.angle_deg)
    x, up = xy[..., 0] - centre[0], centre[1] - xy[..., 1]
    along = (x * math.cos(theta) + up * math.sin(theta)) * scale.m_per_px[:, None]
    height = (-x * math.sin(theta) + up * math.cos(theta)) * scale.m_per_px[:, None]
    feet = [kind.index[n] for n in kind.names if n.endswith(("_ankle", "_heel", "_toe"))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # frames without feet, tracks without hips
        lowest = np.nanmin(height[:, feet], axis=1)
        level = np.nanmedian(lowest) if np.isfinite(lowest).any() else 0.0
        hips = np.nanmean(along[:, [kind.index["left_hip"], kind.index["right_hip"]]], axis=1)
    start = hips[np.isfinite(hips)][0] if np.isfinite(hips).any() else 0.0
    return np.stack([along - start, height - level], axis=-1)
