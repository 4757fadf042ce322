"""One track's motion, in the image plane: cleaned keypoints, angles, angular velocities, speeds, metres, cycles.

The steps, in order: keypoints below the confidence threshold become gaps (NaN, never filled unless asked);
with ``fill_gaps``, rows for short runs of missing frames; left/right swaps corrected (:mod:`.swaps`);
outliers rejected on request and short gaps filled on request (:mod:`.cleaning`); the filter
(:mod:`.filters`); then the body height, the floor line and the metre scale (:mod:`.scale`), the angles
(:mod:`.angles`), their rates, the keypoint speeds, the repetitions (:mod:`.repetitions`) and the gait events
(:mod:`.gait`).

Rates are second-order central differences on the real time stamps (uneven steps included), taken only where a
row and both its neighbours are valid and linked: consecutive frames with no time jump between them (see
:func:`breaks`). Speeds are in body heights per second, and in metres per second where the person's height is
given.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from toppose.tracking.kinematics.angles import BY_NAME, SIDES, AngleDef, available, measure
from toppose.tracking.kinematics.cleaning import add_missing_frames, fill_gaps, hampel
from toppose.tracking.kinematics.filters import filter_series
from toppose.tracking.kinematics.gait import Gait, gait_events
from toppose.tracking.kinematics.keypoint_sets import SETS, KeypointSet
from toppose.tracking.kinematics.options import KinematicsOptions
from toppose.tracking.kinematics.repetitions import RepetitionSet, count_repetitions, periodic_score
from toppose.tracking.kinematics.scale import Floor, Scale, body_height, estimate_floor, metres_scale, to_metres
from toppose.tracking.kinematics.swaps import GROUPS, correct_swaps

TIME_JUMP = 3.0  # a step more than this many times the track's median frame step is a jump (a pause, a cut)


@dataclass
class TrackKinematics:
    """Per-frame motion of one track; NaN marks a gap."""

    track_id: int
    frames: np.ndarray  # (T,) frame indices
    times: np.ndarray  # (T,) seconds
    angles: dict[str, np.ndarray]  # angle name -> (T,) degrees, the angles the keypoint set allows
    angular_velocity: dict[str, np.ndarray]  # angle name -> (T,) degrees per second
    speeds: np.ndarray  # (T, B) speeds of the set's body points (KeypointSet.body) in body heights per second
    body_height: float  # pixels; NaN where no frame shows the segments it needs
    breaks: np.ndarray  # (T,) bool: row i does not follow row i - 1 (a missing frame or a time jump)
    kind: KeypointSet
    xy: np.ndarray  # (T, K, 2) pixels, cleaned and filtered
    added: np.ndarray  # (T,) bool: rows filled in for missing frames
    filled: np.ndarray  # (T, K) bool: values interpolated
    outliers: np.ndarray  # (T, K) bool: values rejected
    swapped: dict[str, np.ndarray]  # limb group -> (T,) bool: left and right exchanged
    omitted: dict[str, str]  # angle name -> why the set cannot measure it
    floor: Floor
    scale: Scale | None = None
    metres: np.ndarray | None = None  # (T, K, 2) x along the floor, y up, where the scale is known
    speeds_m_s: np.ndarray | None = None  # (T, B)
    repetitions: RepetitionSet | None = None
    gait: Gait | None = None

    @property
    def definitions(self) -> list[AngleDef]:
        """The definitions of the measured angles, in column order."""
        return [BY_NAME[name] for name in self.angles]


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


def _median_step(frames: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(T - 1,) seconds per frame between rows, and the median over consecutive frames (NaN where none are)."""
    per_frame = np.diff(times) / np.maximum(np.diff(frames), 1)
    consecutive = per_frame[np.diff(frames) == 1]
    return per_frame, float(np.median(consecutive)) if consecutive.size else math.nan


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
    if period:
        back, ahead = ((d + period / 2) % period - period / 2 for d in (back, ahead))
    central = (h1**2 * ahead - h2**2 * back) / (h1 * h2 * (h1 + h2))
    linked = (~broken[1:-1] & ~broken[2:]).reshape(shape)
    out[1:-1] = np.where(linked, central, np.nan)
    return out


def _speeds(xy: np.ndarray, times: np.ndarray, broken: np.ndarray) -> np.ndarray:
    return np.hypot(*np.moveaxis(rate(xy, times, broken), -1, 0))


def repetition_angle(angles: dict[str, np.ndarray], velocity: dict[str, np.ndarray], name: str) -> tuple:
    """(values, angular velocity) of a named angle, or of a joint: the mean of its sides where both are seen, else
    the side seen."""
    if name in angles:
        return angles[name], velocity[name]
    sides = [f"{side}_{name}" for side in SIDES]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # neither side seen: NaN
        return tuple(np.nanmean(np.stack([series[s] for s in sides]), axis=0) for series in (angles, velocity))


def _repetitions(track: TrackKinematics, options: KinematicsOptions, fs: float) -> RepetitionSet:
    reps = options.repetitions
    name, chosen = reps.angle, "given"
    if name == "auto":
        joints = [a.name for a in track.definitions if a.kind == "joint"]
        scores = {n: periodic_score(track.angles[n], track.breaks, fs) for n in joints}
        name = max(scores, key=lambda n: scores[n][0])
        score, frequency = scores[name]
        chosen = f"auto: the largest periodic range ({score:.0f} deg x power share, at {frequency:.2f} Hz)"
    values, speed = repetition_angle(track.angles, track.angular_velocity, name)
    return count_repetitions(values, track.times, track.breaks, speed, reps, name, chosen)


def analyse_track(
    track_id: int, frames: np.ndarray, times: np.ndarray, keypoints: np.ndarray, min_confidence: float,
    options: KinematicsOptions | None = None,
) -> TrackKinematics:  # fmt: skip
    """Everything of one track's frames (in frame order; (T, K, 3) keypoints of a set of :data:`SETS`)."""
    options = options or KinematicsOptions(min_confidence=min_confidence)
    kind = SETS[keypoints.shape[1]]
    xy = np.where((keypoints[..., 2] >= min_confidence)[..., None], keypoints[..., :2], np.nan)
    added = np.zeros(len(frames), dtype=bool)
    if options.fill_gaps:
        per_frame, median = _median_step(frames, times)
        jumps = np.concatenate([[False], per_frame > TIME_JUMP * median])
        frames, times, xy, added = add_missing_frames(frames, times, xy, options.fill_gaps, jumps)
    broken = breaks(frames, times)
    swapped = correct_swaps(xy, broken, kind) if options.fix_swaps else {g: np.zeros(len(xy), bool) for g in GROUPS}
    outliers = hampel(xy, options.outliers) if options.outliers else np.zeros(xy.shape[:2], dtype=bool)
    xy[outliers] = np.nan
    filled = np.zeros_like(outliers)
    if options.fill_gaps:
        filled = fill_gaps(xy, times, broken, options.fill_gaps).any(axis=-1)
    fs = 1 / _median_step(frames, times)[1] if len(frames) > 1 else 1.0
    xy = filter_series(xy, broken, options.filter, fs)
    height = body_height(xy, kind)
    body = [kind.index[n] for n in kind.body]
    speeds = _speeds(xy, times, broken) / height
    floor = (Floor(options.floor_angle, math.nan, "given") if options.floor_angle is not None
             else estimate_floor(xy, speeds, kind, height))  # fmt: skip
    measured, omitted = available(kind)
    angles = {a.name: measure(a, xy, kind, floor.angle_deg) for a in measured}
    velocity = {a.name: rate(angles[a.name], times, broken, period=a.period) for a in measured}
    track = TrackKinematics(track_id, frames, times, angles, velocity, speeds[:, body], height, broken, kind, xy,
                            added, filled, outliers, swapped, omitted, floor)  # fmt: skip
    height_m = options.height_of(track_id)
    if height_m is not None:
        track.scale = metres_scale(xy, times, kind, height_m, options.camera)
        if track.scale is not None:
            track.metres = to_metres(xy, kind, track.scale, floor, options.camera)
            track.speeds_m_s = _speeds(track.metres, times, broken)[:, body]
    if options.repetitions is not None:
        track.repetitions = _repetitions(track, options, fs)
    if all(f"{side}_{p}" in kind.index for side in SIDES for p in ("heel", "big_toe")):
        track.gait = gait_events(xy, frames, times, broken, kind, floor.angle_deg, height)
    return track


def range_of_motion(angle: np.ndarray) -> RangeOfMotion:
    """Minimum, maximum and 5th / 95th percentiles of an angle's valid values."""
    valid = angle[np.isfinite(angle)]
    if not valid.size:
        return RangeOfMotion(*([float("nan")] * 4))
    p5, p95 = np.percentile(valid, [5, 95])
    return RangeOfMotion(float(valid.min()), float(valid.max()), float(p5), float(p95))
