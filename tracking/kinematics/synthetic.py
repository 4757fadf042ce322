"""Synthetic tracked people with known motion, for the tests and the worked example (docs/motion-analysis.md).

A stick figure seen from its left side, facing the image's right, with Winter's segment proportions of its
stature (``height_px``): every keypoint of COCO-17, Halpe-26 and the hands of COCO-WholeBody-133 (its face
points are left unseen). Segments are set by their angle from the downward vertical (+: forward), the trunk by
its lean from the upward vertical, the foot by its angle from the floor (+: toes up); the far (right) side is
drawn ``side_gap`` of the stature behind the near one. ``tilt_deg`` turns the whole image anticlockwise (a
camera rolled the other way), so the floor runs at that angle.

    python -m toppose.tracking.kinematics.synthetic squats.json --reps 5 --keypoints 26
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from toppose.common.atomic import write_json
from toppose.tracking.kinematics.keypoint_sets import SETS, KeypointSet

# Fractions of stature (Winter, Biomechanics and Motor Control of Human Movement, segment lengths).
THIGH, SHANK, TRUNK, UPPER_ARM, FOREARM = 0.245, 0.246, 0.288, 0.186, 0.146
ANKLE_HEIGHT, HEEL_BACK, FOOT, HAND = 0.039, 0.04, 0.15, 0.05


@dataclass(frozen=True)
class Posture:
    """The segment angles of one side's limbs and the trunk, in degrees (see the module docstring)."""

    thigh: float = 0.0
    shank: float = 0.0
    foot: float = 0.0
    lean: float = 0.0
    arm: float = 0.0
    forearm: float = 0.0
    hand: float = 0.0


def _down(degrees: float) -> np.ndarray:
    """The unit vector ``degrees`` forward of the downward vertical (image y down)."""
    r = math.radians(degrees)
    return np.array([math.sin(r), math.cos(r)])


def _limbs(hip: np.ndarray, shoulder: np.ndarray, p: Posture, h: float, side: str) -> dict[str, np.ndarray]:
    knee = hip + THIGH * h * _down(p.thigh)
    ankle = knee + SHANK * h * _down(p.shank)
    along = np.array([math.cos(math.radians(p.foot)), -math.sin(math.radians(p.foot))])
    heel = ankle + ANKLE_HEIGHT * h * np.array([-along[1], along[0]]) - HEEL_BACK * h * along
    elbow = shoulder + UPPER_ARM * h * _down(p.arm)
    wrist = elbow + FOREARM * h * _down(p.forearm)
    hand = _down(p.hand)
    points = {"hip": hip, "knee": knee, "ankle": ankle, "heel": heel, "big_toe": heel + FOOT * h * along,
              "small_toe": heel + 0.93 * FOOT * h * along, "shoulder": shoulder, "elbow": elbow, "wrist": wrist,
              "hand_root": wrist}  # fmt: skip
    for number, finger in enumerate(("thumb", "forefinger", "middle_finger", "ring_finger", "pinky_finger")):
        for joint in range(1, 5):
            spread = 0.1 * (number - 1) * np.array([hand[1], -hand[0]])  # the forefinger along the hand
            points[f"{finger}{joint}"] = wrist + HAND * h * (0.5 + 0.3 * joint) * (hand + spread)
    return {f"{side}_{name}": xy for name, xy in points.items()}


def figure(
    hip: np.ndarray, height_px: float, left: Posture, right: Posture | None = None, side_gap: float = 0.02,
) -> dict[str, np.ndarray]:  # fmt: skip
    """Every keypoint's position (image pixels, y down) of the figure with its mid-hip at ``hip``."""
    h, right = height_px, right or left
    up = -_down(left.lean)
    up[0] = -up[0]
    shoulder = hip + TRUNK * h * up
    gap = np.array([side_gap * h, 0.0])
    points = _limbs(hip + gap / 2, shoulder + gap / 2, left, h, "left")
    points |= _limbs(hip - gap / 2, shoulder - gap / 2, right, h, "right")
    forward = np.array([up[1] * -1.0, up[0]])  # up turned clockwise: the way the figure faces
    head = {"neck": shoulder + 0.03 * h * up, "head": shoulder + 0.18 * h * up,
            "nose": shoulder + 0.11 * h * up + 0.05 * h * forward, "hip": hip}  # fmt: skip
    for side, sign in (("left", 1.0), ("right", -1.0)):
        head[f"{side}_eye"] = head["nose"] + 0.02 * h * up - 0.01 * h * forward + sign * gap / 4
        head[f"{side}_ear"] = head["nose"] + 0.01 * h * up - 0.07 * h * forward + sign * gap / 4
    return points | head


def keypoints(points: dict[str, np.ndarray], kind: KeypointSet, tilt_deg: float = 0.0,
              centre: tuple[float, float] = (640.0, 360.0)) -> np.ndarray:  # fmt: skip
    """(K, 3) keypoints of ``kind``, confidence 0.9 (0 for points the figure has none of), the image turned
    ``tilt_deg`` anticlockwise about ``centre``."""
    r = math.radians(tilt_deg)
    turn = np.array([[math.cos(r), math.sin(r)], [-math.sin(r), math.cos(r)]])
    out = np.zeros((len(kind.names), 3))
    for i, name in enumerate(kind.names):
        if name in points:
            out[i, :2] = centre + turn @ (points[name] - centre)
            out[i, 2] = 0.9
    return out


def squat_posture(depth_deg: float) -> Posture:
    """A squat whose knee angle is 180 - ``depth_deg``: thigh forward and shank back by half of it, the trunk
    leaning forward by half of it (hip angle 180 - depth), feet flat, arms held forward."""
    return Posture(thigh=depth_deg / 2, shank=-depth_deg / 2, lean=depth_deg / 2, arm=60.0, forearm=80.0)


def squat_series(
    times: np.ndarray, depth_deg: np.ndarray, kind: KeypointSet, height_px: float = 400.0, tilt_deg: float = 0.0,
    noise_px: float = 0.0, seed: int = 0,
) -> np.ndarray:  # fmt: skip
    """(T, K, 3) keypoints of squats of the given depth over time, the feet fixed on the floor."""
    rng = np.random.default_rng(seed)
    ankle = np.array([640.0, 600.0 - ANKLE_HEIGHT * height_px])
    frames = []
    for depth in depth_deg:
        posture = squat_posture(float(depth))
        legs = THIGH * height_px * _down(posture.thigh) + SHANK * height_px * _down(posture.shank)
        points = figure(ankle - legs, height_px, posture)
        frame = keypoints(points, kind, tilt_deg)
        frame[:, :2] += rng.normal(0.0, noise_px, (len(kind.names), 2)) if noise_px else 0.0
        frames.append(frame)
    return np.stack(frames)


def walk_series(
    times: np.ndarray, kind: KeypointSet, cadence_hz: float = 0.9, swing_deg: float = 25.0, speed_px_s: float = 300.0,
    height_px: float = 400.0,
) -> np.ndarray:  # fmt: skip
    """(T, K, 3) keypoints of straight legs swinging as pendulums (``cadence_hz`` strides per second), the hip
    moving forward at ``speed_px_s``: a foot strikes (its heel furthest ahead of the hip) at the peak of its
    thigh's forward swing, at t = (1/4 + n) / cadence_hz for the left leg and (3/4 + n) / cadence_hz for the
    right, and leaves the ground (its toe furthest behind) half a stride later."""
    frames = []
    for t in times:
        phase = 2 * math.pi * cadence_hz * t
        left = Posture(thigh=swing_deg * math.sin(phase), shank=swing_deg * math.sin(phase), arm=-10 * math.sin(phase))
        right = replace(left, thigh=-left.thigh, shank=-left.shank, arm=-left.arm)
        hip = np.array([200.0 + speed_px_s * t, 600.0 - (THIGH + SHANK + ANKLE_HEIGHT) * height_px])
        frames.append(keypoints(figure(hip, height_px, left, right), kind))
    return np.stack(frames)


def entries(keypoints_t: np.ndarray, times: np.ndarray, track_id: int = 1) -> list[dict[str, Any]]:
    """COCO keypoint results of one track, as ``toppose run --track`` writes them."""
    return [
        {"image_id": i, "category_id": 1, "track_id": track_id, "timestamp": round(float(t), 4), "score": 0.9,
         "keypoints": [round(float(v), 3) for v in kp.ravel()]}
        for i, (t, kp) in enumerate(zip(times, keypoints_t, strict=True))
    ]  # fmt: skip


def squat_set(reps: int, fps: float = 30.0, period_s: float = 2.0, depth_deg: float = 100.0) -> tuple:
    """(times, depth over time): ``reps`` squats of ``period_s`` each, standing 0.5 s before, between and after."""
    times = np.arange(round((reps * (period_s + 0.5) + 0.5) * fps)) / fps
    cycle = (times - 0.5) % (period_s + 0.5)
    inside = (times >= 0.5) & (cycle < period_s) & (times < 0.5 + reps * (period_s + 0.5))
    return times, np.where(inside, depth_deg * np.sin(np.pi * cycle / period_s) ** 2, 0.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m toppose.tracking.kinematics.synthetic",
                                     description="a tracked results file of a person doing squats")  # fmt: skip
    parser.add_argument("out", type=Path)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--keypoints", type=int, choices=sorted(SETS), default=26)
    parser.add_argument("--noise", type=float, default=1.5, help="keypoint jitter in pixels (default 1.5)")
    parser.add_argument("--tilt", type=float, default=0.0, help="camera tilt in degrees (default 0)")
    args = parser.parse_args(argv)
    times, depth = squat_set(args.reps)
    series = squat_series(times, depth, SETS[args.keypoints], tilt_deg=args.tilt, noise_px=args.noise)
    write_json(args.out, entries(series, times))
    print(f"wrote {args.out}: {args.reps} squats, {len(times)} frames, {SETS[args.keypoints].name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
