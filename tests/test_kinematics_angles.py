"""Joint and segment angles on synthetic figures with known segment angles, in the three keypoint sets."""

from __future__ import annotations

import math

import numpy as np
import pytest
from toppose.tracking.kinematics.angles import BY_NAME, available, measure
from toppose.tracking.kinematics.keypoint_sets import SETS
from toppose.tracking.kinematics.motion import analyse_track
from toppose.tracking.kinematics.options import KinematicsOptions
from toppose.tracking.kinematics.synthetic import Posture, figure, keypoints

POSE = Posture(thigh=30.0, shank=-20.0, foot=10.0, lean=15.0, arm=40.0, forearm=100.0, hand=130.0)
# What each angle must read for POSE (segment directions: -90 + the angle from the downward vertical).
EXPECTED = {
    "knee": 180 - 50.0, "hip": 180 - (15.0 + 30.0), "elbow": 180 - 60.0, "shoulder": 15.0 + 40.0,
    "ankle": 90 + (-20.0) - 10.0, "wrist": 180 - 30.0, "foot": 10.0, "shank": -110.0, "thigh": -60.0,
    "arm": -50.0, "forearm": 10.0, "hand": 40.0, "trunk": 75.0, "head": 75.0, "pelvis": 0.0, "shoulders": 0.0,
}  # fmt: skip


def xy_of(kind_size: int, tilt: float = 0.0) -> np.ndarray:
    points = figure(np.array([600.0, 400.0]), 400.0, POSE)
    return keypoints(points, SETS[kind_size], tilt)[None, :, :2]


@pytest.mark.parametrize("size", [17, 26, 133])
def test_every_angle_reads_its_known_value(size: int) -> None:
    kind = SETS[size]
    measured, omitted = available(kind)
    for angle in measured:
        stem = angle.name.removeprefix("left_").removeprefix("right_")
        if stem in EXPECTED:
            assert measure(angle, xy_of(size), kind)[0] == pytest.approx(EXPECTED[stem], abs=1e-6), angle.name
    names = {a.name for a in measured}
    assert ("left_ankle" in names) == (size != 17) and ("left_wrist" in names) == (size == 133)
    assert ("head" in names) == (size == 26)  # only Halpe-26 has a head point
    if size == 17:
        assert omitted["left_ankle"] == "COCO-17 has no left_heel, left_big_toe"
        assert omitted["head"] == "COCO-17 has no head"


def test_camera_tilt_is_removed_from_segment_angles_only() -> None:
    kind = SETS[26]
    for name in ("left_shank", "trunk", "left_foot", "left_knee", "left_ankle"):
        angle = BY_NAME[name]
        level = measure(angle, xy_of(26), kind)[0]
        tilted = measure(angle, xy_of(26, tilt=7.0), kind)
        assert measure(angle, xy_of(26, tilt=7.0), kind, floor_deg=7.0)[0] == pytest.approx(level, abs=1e-6)
        assert (tilted[0] == pytest.approx(level, abs=1e-6)) == (angle.kind == "joint"), name


def test_a_given_floor_angle_reaches_the_analysis() -> None:
    frames = [keypoints(figure(np.array([600.0, 400.0]), 400.0, POSE), SETS[26], 5.0) for _ in range(12)]
    track = analyse_track(1, np.arange(12), np.arange(12) / 30, np.stack(frames), 0.3,
                          KinematicsOptions(floor_angle=5.0))  # fmt: skip
    assert track.angles["left_shank"] == pytest.approx(np.full(12, -110.0), abs=1e-3)
    assert track.floor.method == "given" and "head" not in track.omitted


def sports2d_coordinates(points: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Our figure's points under Pose2Sim's names (image coordinates, as Sports2D passes them)."""
    names = {"RKnee": "right_knee", "RAnkle": "right_ankle", "RHip": "right_hip", "RBigToe": "right_big_toe",
             "RHeel": "right_heel", "RShoulder": "right_shoulder", "RElbow": "right_elbow", "RWrist": "right_wrist",
             "RIndex": "right_forefinger1", "LHip": "left_hip", "LShoulder": "left_shoulder", "Neck": "neck",
             "Hip": "hip", "Head": "head"}  # fmt: skip
    return {ours: points[theirs] for ours, theirs in names.items()}


def test_against_pose2sim_angle_code() -> None:
    """Pose2Sim's own ``fixed_angles`` (which Sports2D calls) on the same points, facing right: equal segment angles,
    flexion = 180 - our interior angle, dorsiflexion = 90 - our ankle angle."""
    common = pytest.importorskip("Pose2Sim.common", reason="Pose2Sim is not installed (pip install pose2sim)")
    side_view = Posture(thigh=30.0, shank=-20.0, foot=10.0, lean=15.0, arm=40.0, forearm=100.0, hand=130.0)
    points = figure(np.array([600.0, 400.0]), 400.0, side_view, side_gap=0.0)
    points["neck"] = (points["left_shoulder"] + points["right_shoulder"]) / 2  # Sports2D's neck: the mid-shoulder
    theirs_xy = sports2d_coordinates(points)
    xy = keypoints(points, SETS[133])[None, :, :2]
    xy_halpe = keypoints(points, SETS[26])[None, :, :2]
    relations = {
        "right knee": ("right_knee", lambda ours: 180 - ours), "right elbow": ("right_elbow", lambda ours: 180 - ours),
        "right hip": ("right_hip", lambda ours: 180 - ours), "right shoulder": ("right_shoulder", lambda ours: ours),
        "right ankle": ("right_ankle", lambda ours: 90 - ours), "right wrist": ("right_wrist", lambda ours: 180 - ours),
        **{f"right {s}": (f"right_{s}", lambda ours: ours) for s in ("foot", "shank", "thigh", "arm", "forearm",
                                                                    "hand")},
        "trunk": ("trunk", lambda ours: ours), "head": ("head", lambda ours: ours),
    }  # fmt: skip
    for their_name, (ours, convert) in relations.items():
        kind, data = (SETS[26], xy_halpe) if ours == "head" else (SETS[133], xy)
        value = float(measure(BY_NAME[ours], data, kind)[0])
        coords = [[float(theirs_xy[p][0]), float(theirs_xy[p][1])] for p in common.angle_dict[their_name][0]]
        theirs = float(common.fixed_angles(coords, their_name))
        assert abs(theirs) == pytest.approx(abs(convert(value)), abs=1e-6), (their_name, theirs, value)
        assert math.isfinite(theirs)
