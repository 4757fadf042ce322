"""Metres from a known height, the floor line from the feet, perspective, and left/right swaps put right."""

from __future__ import annotations

import math

import numpy as np
import pytest
from toppose.tracking.kinematics.keypoint_sets import SETS
from toppose.tracking.kinematics.motion import analyse_track
from toppose.tracking.kinematics.options import KinematicsOptions
from toppose.tracking.kinematics.scale import STATURE_FRACTION, Camera, estimate_floor
from toppose.tracking.kinematics.synthetic import Posture, figure, keypoints, walk_series

HEIGHT_PX = 400.0


def standing(times: np.ndarray, speed_px_s: float, kind_size: int = 26, tilt: float = 0.0) -> np.ndarray:
    return np.stack([keypoints(figure(np.array([100.0 + speed_px_s * t, 300.0]), HEIGHT_PX, Posture()),
                               SETS[kind_size], tilt) for t in times])  # fmt: skip


def test_known_height_gives_known_speed_in_metres_per_second() -> None:
    # A 1.75 m person 400 px tall gliding at 200 px/s moves at 200 * 1.75 / 400 = 0.875 m/s.
    times = np.arange(60) / 30.0
    track = analyse_track(4, np.arange(60), times, standing(times, 200.0), 0.3, KinematicsOptions(height=1.75))
    expected = 200.0 * 1.75 / HEIGHT_PX
    assert track.body_height == pytest.approx(STATURE_FRACTION * HEIGHT_PX, rel=1e-3)
    assert track.scale.m_per_px == pytest.approx(np.full(60, 1.75 / HEIGHT_PX), rel=1e-3)
    assert track.scale.relative_sd == pytest.approx(0.03, abs=1e-3)  # the proportions' spread alone: exact lengths
    assert track.speeds_m_s[1:-1] == pytest.approx(np.full((58, len(SETS[26].body)), expected), rel=1e-3)
    hips = track.metres[:, [SETS[26].index["left_hip"], SETS[26].index["right_hip"]]].mean(axis=1)
    assert hips[0] == pytest.approx([0.0, 0.0 + hips[0, 1]]) and hips[-1, 0] == pytest.approx(expected * times[-1])
    feet = track.metres[:, [SETS[26].index[n] for n in ("left_heel", "right_heel")], 1]
    assert feet.min() == pytest.approx(0.0, abs=1e-6)  # y = 0 on the floor
    other = analyse_track(5, np.arange(60), times, standing(times, 200.0), 0.3, KinematicsOptions(heights={4: 1.8}))
    assert other.scale is None and other.speeds_m_s is None  # a height for track 4 only


def test_floor_line_from_still_feet() -> None:
    # Feet resting at three places along a floor tilted 4 degrees, plus moving samples that must not count.
    kind = SETS[26]
    turn = math.radians(4.0)
    xy = np.full((30, len(kind.names), 2), np.nan)
    speeds = np.full((30, len(kind.names)), 5.0)
    for i, x in enumerate(np.repeat([100.0, 300.0, 500.0], 10)):
        for name in ("left_big_toe", "right_big_toe"):
            xy[i, kind.index[name]] = (x, 500.0 - x * math.tan(turn))
            speeds[i, kind.index[name]] = 0.0 if i % 10 < 8 else 5.0
    floor = estimate_floor(xy, speeds, kind, 300.0)
    assert floor.angle_deg == pytest.approx(4.0, abs=1e-6) and floor.sd_deg < 0.01 and "fitted" in floor.method
    level = estimate_floor(xy[:10], speeds[:10], kind, 300.0)  # standing in one place: no line
    assert level.angle_deg == 0.0 and "give --floor-angle" in level.method


def test_perspective_follows_a_person_walking_away() -> None:
    # Shrinking from 400 to 300 px tall over 2 s: the scale grows with the distance, distance = focal x scale.
    times = np.arange(60) / 30.0
    sizes = 400.0 - 50.0 * times
    poses = np.stack([keypoints(figure(np.array([640.0, 360.0]), s, Posture()), SETS[17]) for s in sizes])
    camera = Camera(1000.0, 1280, 720)
    track = analyse_track(1, np.arange(60), times, poses, 0.3, KinematicsOptions(height=1.7, camera=camera))
    assert track.scale.m_per_px[5:-5] == pytest.approx(1.7 / sizes[5:-5], rel=0.01)
    assert track.scale.distance_m[5:-5] == pytest.approx(1000.0 * 1.7 / sizes[5:-5], rel=0.01)


def test_leg_swaps_on_chosen_frames_are_corrected_and_marked() -> None:
    times = np.arange(0, 3, 1 / 30)
    poses = walk_series(times, SETS[26], cadence_hz=0.8)
    truth = analyse_track(1, np.arange(len(times)), times, poses.copy(), 0.3)
    swapped = poses.copy()
    legs = [SETS[26].index[f"left_{p}"] for p in ("knee", "ankle", "big_toe", "small_toe", "heel")]
    rights = [SETS[26].index[f"right_{p}"] for p in ("knee", "ankle", "big_toe", "small_toe", "heel")]
    chosen = [10, 11, 12, 40, 41, 70]
    for frame in chosen:
        swapped[frame, legs + rights] = swapped[frame, rights + legs]
    fixed = analyse_track(1, np.arange(len(times)), times, swapped, 0.3)
    assert np.flatnonzero(fixed.swapped["legs"]).tolist() == chosen and not fixed.swapped["arms"].any()
    assert fixed.angles["left_knee"] == pytest.approx(truth.angles["left_knee"], abs=1e-6)
    kept = analyse_track(1, np.arange(len(times)), times, swapped, 0.3, KinematicsOptions(fix_swaps=False))
    assert not kept.swapped["legs"].any() and kept.xy[10, legs[1], 0] != pytest.approx(fixed.xy[10, legs[1], 0])
