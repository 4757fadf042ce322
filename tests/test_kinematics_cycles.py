"""Repetitions (count, tempo, jitter and half repetitions that must not count) and gait events on synthetic motion."""

from __future__ import annotations

import numpy as np
import pytest
from toppose.tracking.kinematics.keypoint_sets import SETS
from toppose.tracking.kinematics.motion import analyse_track
from toppose.tracking.kinematics.options import KinematicsOptions
from toppose.tracking.kinematics.repetitions import RepetitionOptions, count_repetitions
from toppose.tracking.kinematics.synthetic import squat_series, squat_set, walk_series


def knee_reps(times: np.ndarray, knee: np.ndarray, **options: object):  # noqa: ANN201
    broken = np.zeros(len(times), dtype=bool)
    broken[0] = True
    speed = np.gradient(knee, times)
    return count_repetitions(knee, times, broken, speed, RepetitionOptions("knee", **options), "knee", "given")


def test_squats_counted_with_their_tempo() -> None:
    times, depth = squat_set(4, fps=30.0, period_s=2.0, depth_deg=90.0)
    track = analyse_track(1, np.arange(len(times)), times, squat_series(times, depth, SETS[26]), 0.3,
                          KinematicsOptions(repetitions=RepetitionOptions("auto")))  # fmt: skip
    reps = track.repetitions
    assert len(reps.reps) == 4 and reps.angle.endswith(("knee", "hip")) and reps.start_zone == "high"
    for rep in reps.reps:
        assert rep.range_deg == pytest.approx(90.0, abs=0.5)
        # depth 90 sin^2(pi t / 2): within 10 % of the range from the top at t = 0.205 s, of the bottom at 0.795 s
        assert rep.time_out_s == pytest.approx(0.59, abs=0.07) and rep.time_back_s == pytest.approx(0.59, abs=0.07)
        assert rep.peak_speed_deg_s == pytest.approx(90 * np.pi / 2, rel=0.03)  # max of d/dt 90 sin^2(pi t / 2)
    assert reps.spread("range_deg")[1] < 0.5


def test_jitter_and_half_repetitions_do_not_count() -> None:
    times = np.arange(0, 16, 1 / 30)
    knee = np.full(len(times), 175.0)
    for start in (1.0, 5.0, 9.0):  # three full squats to 85 degrees
        inside = (times >= start) & (times < start + 2)
        knee[inside] = 175 - 90 * np.sin(np.pi * (times[inside] - start) / 2) ** 2
    half = (times >= 13.0) & (times < 15.0)  # a half squat: never below the low threshold
    knee[half] = 175 - 40 * np.sin(np.pi * (times[half] - 13.0) / 2) ** 2
    rng = np.random.default_rng(0)
    jittery = knee + rng.normal(0, 4.0, len(times))
    jittery[[100, 101]] = 60.0  # a two-frame glitch through both thresholds: too short
    reps = knee_reps(times, jittery)
    assert len(reps.reps) == 3 and reps.rejected == 1
    assert (reps.low, reps.high) == pytest.approx((115.0, 145.0), abs=6.0)
    strict = knee_reps(times, knee, thresholds=(100.0, 160.0), min_range=95.0)  # 90-degree squats are too small
    assert not strict.reps and strict.rejected == 3


def test_a_repetition_cut_by_a_gap_is_not_counted() -> None:
    times = np.arange(0, 7, 1 / 30)
    knee = 175 - 90 * np.sin(np.pi * times / 2) ** 2 * (times < 6)
    knee[(times > 2.5) & (times < 2.8)] = np.nan  # during the second squat
    assert len(knee_reps(times, knee, thresholds=(110.0, 150.0)).reps) == 2


def test_walking_strikes_toe_offs_and_cadence() -> None:
    times = np.arange(0, 5, 1 / 60)
    track = analyse_track(1, np.arange(len(times)), times, walk_series(times, SETS[26], cadence_hz=0.9), 0.3)
    strikes = {side: [e.time_s for e in track.gait.events if e.foot == side and e.event == "strike"]
               for side in ("left", "right")}  # fmt: skip
    assert strikes["left"] == pytest.approx([(0.25 + n) / 0.9 for n in range(5)], abs=1.5 / 60)
    assert strikes["right"] == pytest.approx([(0.75 + n) / 0.9 for n in range(4)], abs=1.5 / 60)
    offs = [e.time_s for e in track.gait.events if e.foot == "left" and e.event == "toe_off"]
    assert offs == pytest.approx([(0.75 + n) / 0.9 for n in range(4)], abs=1.5 / 60)
    assert track.gait.cadence_steps_min == pytest.approx(2 * 0.9 * 60, rel=0.01)  # two steps per stride
    assert analyse_track(1, np.arange(len(times)), times, walk_series(times, SETS[17]), 0.3).gait is None
