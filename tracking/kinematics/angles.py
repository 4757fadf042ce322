"""Joint and segment angles in the image plane, each defined by keypoint names (see docs/motion-analysis.md).

Coordinates are the image's, y down; every direction below is as seen on the screen. ``neck`` and ``hip``
are the set's own points where it has them (Halpe-26), else the mid-shoulder and the mid-hip.

- **Joint angles** (left and right, 0 to 180 degrees, unsigned: a 2-D angle does not tell flexion from
  extension): the interior angle at the middle point of three, 180 = straight; ``ankle`` is the angle
  between the shank (ankle -> knee) and the foot (heel -> big toe), 90 = foot at a right angle to the shank,
  smaller = dorsiflexion.
- **Segment angles**: the direction of a segment, from its first point to its second, anticlockwise from
  the image's rightward horizontal, in [-180, 180) (``pelvis`` and ``shoulders``, right -> left, in
  [-90, 90)), minus the floor angle, so that they are measured from the floor rather than the image's edge.
- ``trunk_lean``: the mid-hip -> mid-shoulder vector's angle from the image's upward vertical, + towards the
  image's right (as before: not tilt-corrected).

Sports2D and Pose2Sim (``Pose2Sim.common.angle_dict``) use the same segment directions; for a person facing
the image's right their segment angles equal ours, and their flexion angles are 180 - ours (knee, elbow, and
hip and shoulder where the same-side shoulder-hip line is parallel to the neck-hip line) and 90 - ours for the
ankle. tests/test_kinematics_angles.py runs their functions where they are installed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from toppose.tracking.kinematics.keypoint_sets import KeypointSet

SIDES = ("left", "right")
TRUNK_LEAN = "trunk_lean"


@dataclass(frozen=True)
class AngleDef:
    """One angle: its name, kind (``joint``, ``segment``, ``lean``), the keypoints it needs, and its definition."""

    name: str
    kind: str
    points: tuple[str, ...]
    definition: str

    @property
    def period(self) -> float:
        """The angle's wrap-around (degrees), for rates; 0: it does not wrap."""
        if self.kind == "joint":
            return 0.0
        return 180.0 if self.name in ("pelvis", "shoulders") else 360.0


# Joint -> (end, vertex, end) name stems; a side goes in front. "ankle" -> (knee, ankle, heel, big toe).
JOINTS = {
    "elbow": ("shoulder", "elbow", "wrist"),
    "shoulder": ("hip", "shoulder", "elbow"),
    "hip": ("shoulder", "hip", "knee"),
    "knee": ("hip", "knee", "ankle"),
    "ankle": ("knee", "ankle", "heel", "big_toe"),
    "wrist": ("elbow", "wrist", "forefinger1"),
}
# Segment -> (from, to) names; "{s}" is the side.
SEGMENTS = {
    "foot": ("{s}_heel", "{s}_big_toe"),
    "shank": ("{s}_knee", "{s}_ankle"),
    "thigh": ("{s}_hip", "{s}_knee"),
    "pelvis": ("right_hip", "left_hip"),
    "trunk": ("hip", "neck"),
    "shoulders": ("right_shoulder", "left_shoulder"),
    "head": ("neck", "head"),
    "arm": ("{s}_shoulder", "{s}_elbow"),
    "forearm": ("{s}_elbow", "{s}_wrist"),
    "hand": ("{s}_wrist", "{s}_forefinger1"),
}
MIDPOINTS = {"neck": "shoulder", "hip": "hip"}  # stand-ins where the set has no such point


def _joint(side: str, joint: str, stems: tuple[str, ...]) -> AngleDef:
    points = tuple(f"{side}_{stem}" for stem in stems)
    if joint == "ankle":
        text = f"angle between {points[1]} -> {points[0]} and {points[2]} -> {points[3]}, 90 = right angle"
    else:
        text = f"interior angle at {points[1]} between {points[0]} and {points[2]}, 180 = straight"
    return AngleDef(f"{side}_{joint}", "joint", points, text)


def _segment(name: str, ends: tuple[str, str]) -> AngleDef:
    folded = name in ("pelvis", "shoulders")
    text = (f"direction {ends[0]} -> {ends[1]}, anticlockwise from the floor, "
            f"{'[-90, 90)' if folded else '[-180, 180)'}")  # fmt: skip
    return AngleDef(name, "segment", ends, text)


def _definitions() -> tuple[AngleDef, ...]:
    joints = [_joint(side, joint, stems) for joint, stems in JOINTS.items() for side in SIDES]
    segments = []
    for segment, ends in SEGMENTS.items():
        if "{s}" in ends[0]:
            segments += [_segment(f"{side}_{segment}", (ends[0].format(s=side), ends[1].format(s=side)))
                         for side in SIDES]  # fmt: skip
        else:
            segments.append(_segment(segment, ends))
    lean = AngleDef(TRUNK_LEAN, "lean", ("left_shoulder", "right_shoulder", "left_hip", "right_hip"),
                    "mid-hip -> mid-shoulder from the image's vertical, + towards the image's right")  # fmt: skip
    return (*joints[:8], lean, *joints[8:], *segments)


DEFINITIONS = _definitions()
BY_NAME = {a.name: a for a in DEFINITIONS}


def point(xy: np.ndarray, kind: KeypointSet, name: str) -> np.ndarray:
    """(T, 2) positions of keypoint ``name`` in (T, K, 2) ``xy`` (NaN: missing), ``neck``/``hip`` as midpoints
    where the set has no such point."""
    if name in kind.index:
        return xy[:, kind.index[name]]
    stem = MIDPOINTS[name]
    return (xy[:, kind.index[f"left_{stem}"]] + xy[:, kind.index[f"right_{stem}"]]) / 2


def missing_points(angle: AngleDef, kind: KeypointSet) -> list[str]:
    """The points of ``angle`` that the set lacks (a midpoint stand-in counts as present)."""
    return [p for p in angle.points if p not in kind.index and p not in MIDPOINTS]


def vector_angle(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """(T,) unsigned degrees in [0, 180] between (T, 2) vectors; NaN where one is missing or has no length."""
    cross = u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0]
    dot = (u * v).sum(axis=1)
    degenerate = (np.hypot(*u.T) == 0) | (np.hypot(*v.T) == 0)
    return np.where(degenerate, np.nan, np.degrees(np.arctan2(np.abs(cross), dot)))


def direction(u: np.ndarray) -> np.ndarray:
    """(T,) degrees anticlockwise (as seen, y down in ``u``) from the image's rightward horizontal, NaN where
    ``u`` is missing or has no length."""
    return np.where(np.hypot(*u.T) > 0, np.degrees(np.arctan2(-u[:, 1], u[:, 0])), np.nan)


def wrap(degrees: np.ndarray, period: float) -> np.ndarray:
    """Degrees folded into [-period/2, period/2)."""
    return (degrees + period / 2) % period - period / 2


def measure(angle: AngleDef, xy: np.ndarray, kind: KeypointSet, floor_deg: float = 0.0) -> np.ndarray:
    """(T,) values of ``angle`` for (T, K, 2) ``xy`` (NaN: missing); segment angles from a floor at
    ``floor_deg`` (the floor line's own direction, as :func:`direction` measures it)."""
    p = [point(xy, kind, name) for name in angle.points]
    if angle.kind == "segment":
        return wrap(direction(p[1] - p[0]) - floor_deg, angle.period)
    if angle.kind == "lean":
        trunk = (p[0] + p[1]) / 2 - (p[2] + p[3]) / 2
        return np.where(np.hypot(*trunk.T) > 0, np.degrees(np.arctan2(trunk[:, 0], -trunk[:, 1])), np.nan)
    if len(p) == 4:
        return vector_angle(p[0] - p[1], p[3] - p[2])
    return vector_angle(p[0] - p[1], p[2] - p[1])


def available(kind: KeypointSet) -> tuple[list[AngleDef], dict[str, str]]:
    """The angles the set can measure, and for each one it cannot, why."""
    measured, omitted = [], {}
    for angle in DEFINITIONS:
        lacking = missing_points(angle, kind)
        if lacking:
            omitted[angle.name] = f"{kind.name} has no {', '.join(lacking)}"
        else:
            measured.append(angle)
    return measured, omitted
