"""Foot strikes, toe-offs and cadence of walking or running, from the feet (sets with heels and big toes).

Zeni's method (Zeni, Richards and Higginson 2008), in the image: along the floor (the tilt removed), a foot
strikes where its heel is furthest ahead of the mid-hip and leaves the ground where its big toe is furthest
behind it. Ahead is the way the feet point (the median heel -> big toe direction along the floor). Events are
peaks (scipy ``find_peaks``) at least ``MIN_STEP_S`` apart and standing out by at least ``MIN_PROMINENCE_BH``
body heights, found on each unbroken stretch. Cadence: steps (foot strikes of either foot) per minute, from
the first strike to the last.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import signal
from toppose.tracking.kinematics.angles import SIDES, point
from toppose.tracking.kinematics.filters import stretches
from toppose.tracking.kinematics.keypoint_sets import KeypointSet

MIN_STEP_S = 0.25
MIN_PROMINENCE_BH = 0.1


@dataclass
class GaitEvent:
    """One event: the foot (``left``/``right``), ``strike`` or ``toe_off``, when, and the frame."""

    foot: str
    event: str
    time_s: float
    frame: int


@dataclass
class Gait:
    """A track's gait events and cadence (NaN under two strikes)."""

    events: list[GaitEvent] = field(default_factory=list)
    cadence_steps_min: float = math.nan


def _along(xy: np.ndarray, floor_deg: float) -> np.ndarray:
    theta = math.radians(floor_deg)
    return xy[:, 0] * math.cos(theta) - xy[:, 1] * math.sin(theta)


def gait_events(
    xy: np.ndarray, frames: np.ndarray, times: np.ndarray, broken: np.ndarray, kind: KeypointSet, floor_deg: float,
    height_px: float,
) -> Gait:  # fmt: skip
    """Strikes and toe-offs of both feet (see the module docstring)."""
    hip = _along(point(xy, kind, "hip"), floor_deg)
    heels = {s: _along(point(xy, kind, f"{s}_heel"), floor_deg) for s in SIDES}
    toes = {s: _along(point(xy, kind, f"{s}_big_toe"), floor_deg) for s in SIDES}
    pointing = np.concatenate([toes[s] - heels[s] for s in SIDES])
    if not np.isfinite(pointing).any() or not math.isfinite(height_px):
        return Gait()
    ahead = 1.0 if np.nanmedian(pointing) >= 0 else -1.0
    fs = 1 / float(np.median(np.diff(times))) if len(times) > 1 else 1.0
    gait = Gait()
    for side in SIDES:
        for event, series in (("strike", ahead * (heels[side] - hip)), ("toe_off", -ahead * (toes[side] - hip))):
            for part in stretches(np.isfinite(series), broken):
                peaks, _ = signal.find_peaks(series[part], distance=max(1, int(MIN_STEP_S * fs)),
                                             prominence=MIN_PROMINENCE_BH * height_px)  # fmt: skip
                gait.events += [GaitEvent(side, event, float(times[part][i]), int(frames[part][i])) for i in peaks]
    gait.events.sort(key=lambda e: e.time_s)
    strikes = [e.time_s for e in gait.events if e.event == "strike"]
    if len(strikes) >= 2 and strikes[-1] > strikes[0]:
        gait.cadence_steps_min = 60.0 * (len(strikes) - 1) / (strikes[-1] - strikes[0])
    return gait
