"""Repetitions of an exercise counted on one angle, with hysteresis so that jitter and half repetitions do not count.

Two thresholds split the angle's values: above ``high``, below ``low``, and the band between (by default the
middle third of its 5th-95th percentile range, or ``--rep-thresholds LOW,HIGH``). The zone the angle is in
first is the start position (``high`` for a squat's knee, ``low`` for a deadlift's hip). A repetition leaves
the start zone, reaches the other zone and comes back; a move that turns in the band between is not one. It
counts where its range of motion is at least ``min_range`` degrees and it lasts at least ``min_duration``
seconds; a gap or a break in the track starts the count afresh, and a repetition cut by one is not counted.

Per repetition: its range of motion (max - min over it), the time out (from leaving the start position,
within 10 % of the repetition's range of its start, to reaching the turning point, within 10 % of its
extreme), the time back (the same the other way), and its peak angular speed. For a squat on the knee, out is
the way down; for a curl on the elbow, the lift; for a deadlift on the hip, the way up.

``--reps auto`` picks the joint angle with the largest periodic range: its 5th-95th percentile range times the
share of its power (periodogram of its longest unbroken stretch, scipy) within one bin of its strongest
frequency between 0.1 and 3 Hz.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import signal
from toppose.tracking.kinematics.filters import stretches

PHASE_BAND = 0.1  # a phase starts or ends within this share of the repetition's range from an extreme


@dataclass(frozen=True)
class RepetitionOptions:
    """What counts: the angle (a name, a joint for the mean of both sides, or ``auto``), the thresholds (None:
    from the angle's range), the smallest range of motion and duration."""

    angle: str = "auto"
    thresholds: tuple[float, float] | None = None
    min_range: float = 20.0
    min_duration: float = 0.3


@dataclass
class Repetition:
    """One repetition (times in seconds, angles in degrees)."""

    start_s: float
    turn_s: float
    end_s: float
    range_deg: float
    time_out_s: float
    time_back_s: float
    peak_speed_deg_s: float


@dataclass
class RepetitionSet:
    """The repetitions of one track on one angle, with what was used to count them."""

    angle: str
    chosen: str
    low: float
    high: float
    start_zone: str
    options: RepetitionOptions
    reps: list[Repetition] = field(default_factory=list)
    rejected: int = 0  # full cycles under min_range or min_duration

    def spread(self, key: str) -> tuple[float, float]:
        """Mean and standard deviation of a :class:`Repetition` field over the set (NaN where there are none)."""
        values = np.array([getattr(r, key) for r in self.reps], dtype=float)
        if not values.size:
            return math.nan, math.nan
        return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def periodic_score(values: np.ndarray, broken: np.ndarray, fs: float) -> tuple[float, float]:
    """(score, frequency in Hz) of an angle for ``--reps auto`` (0 where no stretch is long enough)."""
    parts = stretches(np.isfinite(values), broken)
    longest = max(parts, key=lambda s: s.stop - s.start, default=None)
    if longest is None or longest.stop - longest.start < 8:
        return 0.0, math.nan
    series = values[longest]
    freqs, power = signal.periodogram(series, fs=fs, detrend="linear")
    band = (freqs >= 0.1) & (freqs <= 3.0)
    if not band.any() or power.sum() <= 0:
        return 0.0, math.nan
    peak = int(np.flatnonzero(band)[np.argmax(power[band])])
    share = power[max(peak - 1, 0) : peak + 2].sum() / power.sum()
    p5, p95 = np.percentile(series, [5, 95])
    return float((p95 - p5) * share), float(freqs[peak])


def _zones(values: np.ndarray, low: float, high: float) -> np.ndarray:
    return np.where(values >= high, 1, np.where(values <= low, -1, 0))


def _runs(zones: np.ndarray) -> list[tuple[int, int, int]]:
    """(zone, first, last) of the runs of samples in ``high`` or ``low``, band samples dropped."""
    runs: list[tuple[int, int, int]] = []
    for i, zone in enumerate(zones):
        if zone == 0:
            continue
        if runs and runs[-1][0] == zone:
            runs[-1] = (zone, runs[-1][1], i)
        else:
            runs.append((zone, i, i))
    return runs


def _repetition(values: np.ndarray, times: np.ndarray, speed: np.ndarray, a: int, b: int, sign: int) -> Repetition:
    """The repetition between indices ``a`` and ``b`` (the extremes of the start zone around it)."""
    part = values[a : b + 1]
    turn = a + int(np.argmin(part * sign))
    rng = float(part.max() - part.min())
    band = PHASE_BAND * rng
    before, after = values[a : turn + 1], values[turn : b + 1]
    leave = a + int(np.flatnonzero(np.abs(before - values[a]) <= band)[-1])
    reach = a + int(np.flatnonzero(np.abs(before - values[turn]) <= band)[0])
    depart = turn + int(np.flatnonzero(np.abs(after - values[turn]) <= band)[-1])
    arrive = turn + int(np.flatnonzero(np.abs(after - values[b]) <= band)[0])
    peak = np.abs(speed[leave : arrive + 1])
    return Repetition(
        float(times[leave]), float(times[turn]), float(times[arrive]), rng, float(times[reach] - times[leave]),
        float(times[arrive] - times[depart]), float(np.nanmax(peak)) if np.isfinite(peak).any() else math.nan,
    )  # fmt: skip


def count_repetitions(
    values: np.ndarray, times: np.ndarray, broken: np.ndarray, speed: np.ndarray, options: RepetitionOptions,
    angle: str, chosen: str,
) -> RepetitionSet:  # fmt: skip
    """The repetitions of ``values`` (an angle, NaN gaps) with ``speed`` its angular velocity."""
    finite = values[np.isfinite(values)]
    if options.thresholds is not None:
        low, high = options.thresholds
    elif finite.size:
        p5, p95 = np.percentile(finite, [5, 95])
        low, high = p5 + (p95 - p5) / 3, p95 - (p95 - p5) / 3
    else:
        low = high = math.nan
    result = RepetitionSet(angle, chosen, float(low), float(high), "", options)
    if not finite.size or not high > low:
        return result
    zones = _zones(np.nan_to_num(values, nan=(low + high) / 2), low, high)
    for part in stretches(np.isfinite(values), broken):
        runs = _runs(zones[part])
        if not runs:
            continue
        if not result.start_zone:
            result.start_zone = "high" if runs[0][0] == 1 else "low"
        rest = 1 if result.start_zone == "high" else -1
        for first, middle, last in zip(runs, runs[1:], runs[2:], strict=False):
            if first[0] != rest or middle[0] == rest or last[0] != rest:
                continue
            offset = part.start
            a = offset + first[1] + int(np.argmax(values[offset + first[1] : offset + first[2] + 1] * rest))
            b = offset + last[1] + int(np.argmax(values[offset + last[1] : offset + last[2] + 1] * rest))
            rep = _repetition(values, times, speed, a, b, rest)
            if rep.range_deg >= options.min_range and rep.end_s - rep.start_s >= options.min_duration:
                result.reps.append(rep)
            else:
                result.rejected += 1
    return result
