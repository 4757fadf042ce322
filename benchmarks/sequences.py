"""Synthetic tracking sequences with known identities: walking stick figures and simulated pose detections.

A scenario moves people along paths (walking gait, entering and leaving, walking towards the camera,
stopping and turning, hiding behind each other for seconds, seen by a panning and zooming camera);
:func:`simulate_detections` turns the truth into what a top-down pose detector would report: noisy
boxes, keypoints with noise proportional to their OKS sigmas (larger where less confident, and a few
outliers), low scores or misses for occluded people, random misses and false detections. Every
detection carries ``gt_id`` (-1 for a false one) so accuracy can be measured entry by entry.
:func:`render_frames` draws the truth as video frames.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from toppose.common.schema import NUM_KEYPOINTS, OKS_SIGMAS, PERSON_CATEGORY_ID
from toppose.common.synthetic import TEMPLATE, Person, draw_figure, random_pose, textured_background

# (parent, joint, grandchild or -1): limbs swung by the gait, as joint indices of the COCO schema.
_ARMS = ((5, 7, 9), (6, 8, 10))
_LEGS = ((11, 13, 15), (12, 14, 16))
AREA_FRACTION = 0.55  # person area as a fraction of its box, as in common.synthetic
MIN_INSIDE = 9  # keypoints a person needs inside the frame to be in the truth (and detectable)


@dataclass
class TruthFrame:
    """The people of one frame: ids ``(N,)``, keypoints ``(N, K, 2)``, visibility ``(N, K)``, boxes, areas."""

    ids: np.ndarray
    keypoints: np.ndarray
    visibility: np.ndarray
    boxes: np.ndarray
    areas: np.ndarray
    heights: np.ndarray  # body heights, for drawing


@dataclass
class Sequence:
    """A synthetic clip: its truth per frame and simulated per-frame pose detections (COCO results)."""

    name: str
    width: int
    height: int
    fps: float
    truth: list[TruthFrame]
    detections: list[dict[str, Any]] = field(default_factory=list)
    camera: np.ndarray | None = None  # (T, 2, 3) affine maps from the scene to each frame; None: a still camera


@dataclass
class Walker:
    """One person's path: hip centre ``(T, 2)``, body height ``(T,)`` and presence ``(T,)`` per frame."""

    centre: np.ndarray
    height: np.ndarray
    present: np.ndarray
    phase: float
    stride: float = 0.9  # gait cycle length in body heights


def _rotate(points: np.ndarray, pivot: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return (points - pivot) @ np.array([[c, s], [-s, c]]) + pivot


def walking_pose(phase: float, centre: np.ndarray, height: float) -> np.ndarray:
    """The ``(K, 2)`` keypoints of a walking figure at gait ``phase`` (radians)."""
    pose = TEMPLATE.copy()
    swing = np.sin(phase)
    for side, (hip, knee, ankle) in enumerate(_LEGS):
        angle = 0.35 * swing * (1 if side == 0 else -1)
        pose[[knee, ankle]] = _rotate(pose[[knee, ankle]], pose[hip], angle)
        bend = 0.3 * max(0.0, np.sin(phase + (0 if side == 0 else np.pi) + np.pi / 2))
        pose[ankle] = _rotate(pose[ankle][None], pose[knee], -bend)[0]
    for side, (shoulder, elbow, wrist) in enumerate(_ARMS):
        angle = -0.3 * swing * (1 if side == 0 else -1)
        pose[[elbow, wrist]] = _rotate(pose[[elbow, wrist]], pose[shoulder], angle)
        pose[wrist] = _rotate(pose[wrist][None], pose[elbow], 0.2)[0]
    return pose * height + centre


def _straight_walker(
    frames: int, start: float, end: float, xy0: tuple[float, float], velocity: tuple[float, float],
    height0: float, growth: float = 0.0, phase: float = 0.0,
) -> Walker:  # fmt: skip
    t = np.arange(frames, dtype=np.float64)
    present = (t >= start) & (t < end)
    local = np.clip(t - start, 0, None)
    centre = np.asarray(xy0) + local[:, None] * np.asarray(velocity)
    height = height0 * (1.0 + growth) ** local
    return Walker(centre, height, present, phase)


def crossing_scenario(rng: np.random.Generator, frames: int = 90) -> tuple[list[Walker], int, int]:
    """Two people walking across each other, a third crossing both later, a fourth approaching the camera."""
    w, h = 640, 360
    walkers = [
        _straight_walker(frames, 0, frames, (80, 200), (5.5, 0.0), 190, phase=rng.uniform(0, 6)),
        _straight_walker(frames, 0, frames, (560, 205), (-5.5, 0.0), 180, phase=rng.uniform(0, 6)),
        _straight_walker(frames, 10, frames, (-30, 190), (7.0, 0.2), 160, phase=rng.uniform(0, 6)),
        _straight_walker(frames, 20, frames, (330, 150), (0.5, 1.0), 90, growth=0.012, phase=rng.uniform(0, 6)),
    ]
    return walkers, w, h


def crowd_scenario(rng: np.random.Generator, frames: int = 150, people: int = 9) -> tuple[list[Walker], int, int]:
    """People entering from either side at random times, at random depths and speeds, some changing scale."""
    w, h = 640, 360
    walkers = []
    for _ in range(people):
        height0 = rng.uniform(90, 200)
        leftwards = rng.random() < 0.5
        speed = rng.uniform(2.0, 6.0) * (-1 if leftwards else 1)
        x0 = w + 40 if leftwards else -40
        start = rng.uniform(-0.3, 0.7) * frames
        y0 = rng.uniform(0.45, 0.65) * h
        if start < 0:  # already in the scene at the first frame
            x0 += -speed * start
            start = 0
        growth = rng.choice([0.0, 0.0, rng.uniform(-0.006, 0.008)])
        walkers.append(
            _straight_walker(
                frames,
                start,
                frames,
                (x0, y0),
                (speed, rng.uniform(-0.3, 0.3)),
                height0,
                growth,
                rng.uniform(0, 2 * np.pi),
            )  # fmt: skip
        )
    return walkers, w, h


def fast_scenario(rng: np.random.Generator, frames: int = 60) -> tuple[list[Walker], int, int]:
    """Two well-separated people running at a quarter of their height per frame, turning back abruptly."""
    w, h = 640, 360
    t = np.arange(frames, dtype=np.float64)
    walkers = []
    for row, height0 in ((110.0, 120.0), (260.0, 130.0)):
        speed = 0.25 * height0
        span = 0.6 * w
        travel = (t * speed + rng.uniform(0, 2 * span)) % (2 * span)
        x = 0.2 * w + np.where(travel < span, travel, 2 * span - travel)  # back and forth at constant speed
        y = row + 10 * np.sin(2 * np.pi * t / rng.uniform(15, 25))
        walkers.append(Walker(np.stack([x, y], axis=1), np.full(frames, height0), np.ones(frames, bool), 0.0, 2.2))
    return walkers, w, h


def _path_walker(
    start: int, xy0: tuple[float, float], velocity: np.ndarray, height0: float, growth: float = 0.0, phase: float = 0.0
) -> Walker:
    """A walker present from frame ``start`` on, moving by the per-frame ``(T, 2)`` velocity (stops: zero)."""
    frames = len(velocity)
    t = np.arange(frames, dtype=np.float64)
    moving = np.where(t[:, None] >= start, velocity, 0.0)
    centre = np.asarray(xy0) + np.cumsum(moving, axis=0) - moving
    height = height0 * (1.0 + growth) ** np.clip(t - start, 0, None)
    return Walker(centre, height, t >= start, phase)


def dense_scenario(rng: np.random.Generator, frames: int = 200, people: int = 9) -> tuple[list[Walker], int, int]:
    """Nine people walking across each other at random depths, all in view most of the time (the issue's crowd)."""
    w, h = 640, 360
    walkers = []
    for _ in range(people):
        height0 = rng.uniform(100, 190)
        speed = rng.uniform(1.5, 4.5) * rng.choice([-1.0, 1.0])
        x0 = rng.uniform(0.05, 0.95) * w
        velocity = np.tile([speed, rng.uniform(-0.2, 0.2)], (frames, 1))
        turns = x0 + speed * np.arange(frames)  # walk back at the image borders
        velocity[:, 0] *= np.where((np.floor_divide(turns, w) % 2) == 0, 1.0, -1.0)
        walkers.append(_path_walker(0, (x0, rng.uniform(0.45, 0.6) * h), velocity, height0, 0.0, rng.uniform(0, 6)))
    return walkers, w, h


def occlusion_scenario(rng: np.random.Generator, frames: int = 200) -> tuple[list[Walker], int, int]:
    """Slow people passing behind near people who stand or stroll: each hidden for one to two seconds."""
    w, h = 640, 360
    walkers = []
    for x in (170.0, 450.0):  # near people, standing with a little sway
        sway = np.stack([0.4 * np.sin(np.arange(frames) / rng.uniform(8, 14)), np.zeros(frames)], axis=1)
        walkers.append(_path_walker(0, (x + rng.uniform(-20, 20), 215.0), sway, rng.uniform(200, 220), 0.0, 0.0))
    for i in range(5):  # farther people, slowly crossing behind them
        speed = rng.uniform(1.6, 2.6) * (1 if i % 2 == 0 else -1)
        x0 = rng.uniform(-30, 60) if speed > 0 else rng.uniform(580, 670)
        velocity = np.tile([speed, 0.0], (frames, 1))
        start = int(rng.uniform(0, 0.45) * frames)
        walkers.append(_path_walker(start, (x0, rng.uniform(150, 175)), velocity, rng.uniform(120, 160),
                                    0.0, rng.uniform(0, 6)))  # fmt: skip
    return walkers, w, h


def stops_scenario(rng: np.random.Generator, frames: int = 180, people: int = 6) -> tuple[list[Walker], int, int]:
    """People who walk, stop for a while, turn back or sideways, and cross each other doing so."""
    w, h = 640, 360
    walkers = []
    for _ in range(people):
        velocity = np.zeros((frames, 2))
        direction = rng.uniform(0, 2 * np.pi)
        t = 0
        while t < frames:  # legs of random length: walking in a direction, or standing still
            length = int(rng.integers(15, 45))
            if rng.random() < 0.35:
                velocity[t : t + length] = 0.0
            else:
                direction += rng.choice([0.0, np.pi, np.pi / 2, -np.pi / 2])
                velocity[t : t + length] = rng.uniform(2.0, 4.5) * np.array(
                    [np.cos(direction), 0.3 * np.sin(direction)]
                )
            t += length
        xy0 = (rng.uniform(0.2, 0.8) * w, rng.uniform(0.45, 0.6) * h)
        walkers.append(_path_walker(0, xy0, velocity, rng.uniform(110, 180), 0.0, rng.uniform(0, 6)))
    return walkers, w, h


def approach_scenario(rng: np.random.Generator, frames: int = 150, people: int = 5) -> tuple[list[Walker], int, int]:
    """People walking towards the camera (growing fast) and away from it (shrinking), crossing each other."""
    w, h = 640, 360
    walkers = []
    for i in range(people):
        growth = rng.uniform(0.004, 0.008) * (1 if i % 2 == 0 else -1)
        height0 = rng.uniform(70, 100) if growth > 0 else rng.uniform(200, 240)
        velocity = np.tile([rng.uniform(0.5, 2.0) * rng.choice([-1.0, 1.0]), 0.4 * np.sign(growth)], (frames, 1))
        start = int(rng.uniform(0, 0.3) * frames)
        xy0 = (rng.uniform(0.2, 0.8) * w, (0.35 if growth > 0 else 0.5) * h)
        walkers.append(_path_walker(start, xy0, velocity, height0, growth, rng.uniform(0, 6)))
    return walkers, w, h


def camera_motion(frames: int, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """``(T, 2, 3)`` scene-to-frame affine maps of a camera panning back and forth and zooming in and out."""
    t = np.arange(frames, dtype=np.float64)
    pan_x = 120.0 * np.sin(2 * np.pi * t / rng.uniform(90, 130)) + rng.normal(0, 0.8, frames).cumsum() * 0.3
    pan_y = 15.0 * np.sin(2 * np.pi * t / rng.uniform(60, 100))
    zoom = 1.0 + 0.25 * np.sin(2 * np.pi * t / rng.uniform(100, 160))
    centre = np.array([width / 2.0, height / 2.0])
    maps = np.zeros((frames, 2, 3))
    maps[:, 0, 0] = maps[:, 1, 1] = zoom
    maps[:, :, 2] = centre - zoom[:, None] * (centre + np.stack([pan_x, pan_y], axis=1))
    return maps


def _film(walkers: list[Walker], camera: np.ndarray) -> list[Walker]:
    """The walkers as a moving camera sees them: centres mapped by each frame's affine, heights scaled by its zoom."""
    filmed = []
    for walker in walkers:
        centre = np.einsum("tij,tj->ti", camera[:, :, :2], walker.centre) + camera[:, :, 2]
        filmed.append(Walker(centre, walker.height * camera[:, 0, 0], walker.present, walker.phase, walker.stride))
    return filmed


def panning_scenario(rng: np.random.Generator) -> tuple[list[Walker], int, int]:
    """The crowd of :func:`crowd_scenario` filmed by a panning, zooming camera (see :func:`camera_motion`)."""
    return crowd_scenario(rng)


SCENARIOS: dict[str, Callable[[np.random.Generator], tuple[list[Walker], int, int]]] = {
    "crossing": crossing_scenario,
    "crowd": crowd_scenario,
    "fast": fast_scenario,
    "dense": dense_scenario,
    "occlusion": occlusion_scenario,
    "stops": stops_scenario,
    "approach": approach_scenario,
    "panning": panning_scenario,
}
MOVING_CAMERA = {"panning"}
# The detector as simulated per scenario; "dense" follows the issue: the farther of two overlapping
# people undetected, 8 % random misses, 0.15 false detections a frame, keypoint noise twice the others' (raw OKS ~0.58).
DETECTION_OPTIONS: dict[str, dict[str, float]] = {
    "dense": {"miss_rate": 0.08, "false_rate": 0.15, "hidden_cover": 0.3, "noise": 1.0},
    "occlusion": {"miss_rate": 0.05, "false_rate": 0.2},
    "stops": {"miss_rate": 0.05, "false_rate": 0.2},
    "approach": {"miss_rate": 0.05, "false_rate": 0.2},
    "panning": {"miss_rate": 0.05, "false_rate": 0.2},
}


def _box(keypoints: np.ndarray, inside: np.ndarray) -> np.ndarray:
    return np.asarray(Person(keypoints, np.where(inside, 2.0, 0.0)).bbox(), dtype=np.float64)


def build_truth(walkers: list[Walker], width: int, height: int) -> list[TruthFrame]:
    """The ground truth of every frame: people with at least ``MIN_INSIDE`` keypoints inside the image."""
    frames = len(walkers[0].present)
    steps = [np.linalg.norm(np.diff(w.centre, axis=0), axis=1) for w in walkers]
    distances = [np.concatenate([[0.0], np.cumsum(step)]) for step in steps]  # walked so far, per frame
    truth = []
    for t in range(frames):
        ids, kps, vis, boxes, heights = [], [], [], [], []
        for identity, (walker, distance) in enumerate(zip(walkers, distances, strict=True), start=1):
            if not walker.present[t]:
                continue
            phase = walker.phase + 2 * np.pi * distance[t] / (walker.stride * walker.height[t])
            keypoints = walking_pose(phase, walker.centre[t], walker.height[t])
            inside = (keypoints[:, 0] >= 0) & (keypoints[:, 0] <= width - 1)
            inside &= (keypoints[:, 1] >= 0) & (keypoints[:, 1] <= height - 1)
            if inside.sum() < MIN_INSIDE:
                continue
            ids.append(identity)
            kps.append(keypoints)
            vis.append(np.where(inside, 2.0, 0.0))
            boxes.append(_box(keypoints, inside))
            heights.append(walker.height[t])
        boxes_array = np.array(boxes).reshape(-1, 4)
        truth.append(
            TruthFrame(
                np.array(ids, dtype=np.int64),
                np.array(kps).reshape(-1, NUM_KEYPOINTS, 2),
                np.array(vis).reshape(-1, NUM_KEYPOINTS),
                boxes_array,
                boxes_array[:, 2] * boxes_array[:, 3] * AREA_FRACTION,
                np.array(heights),
            )  # fmt: skip
        )
    return truth


def occlusion(boxes: np.ndarray) -> np.ndarray:
    """Fraction of each ``(N, 4)`` box covered by the nearest box in front of it (lower feet = nearer)."""
    covered = np.zeros(len(boxes))
    bottoms = boxes[:, 1] + boxes[:, 3]
    for i, a in enumerate(boxes):
        for j, b in enumerate(boxes):
            if bottoms[j] <= bottoms[i] or i == j:
                continue
            iw = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
            ih = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
            if iw > 0 and ih > 0:
                covered[i] = max(covered[i], iw * ih / max(a[2] * a[3], 1e-6))
    return covered


def _entry(frame: int, box: np.ndarray, keypoints: np.ndarray, box_score: float, gt_id: int) -> dict[str, Any]:
    confident = keypoints[:, 2] > 0.2
    score = box_score * (keypoints[confident, 2].mean() if confident.any() else 0.0)
    return {
        "image_id": frame,
        "category_id": PERSON_CATEGORY_ID,
        "bbox": [round(float(v), 2) for v in box],
        "keypoints": [round(float(v), 3) for v in keypoints.reshape(-1)],
        "score": round(float(score), 5),
        "box_score": round(float(box_score), 5),
        "gt_id": gt_id,
    }


def noisy_keypoints(
    rng: np.random.Generator, truth: np.ndarray, inside: np.ndarray, scale: float, noise: float
) -> np.ndarray:
    """``(K, 3)`` detected keypoints: errors ``~ noise * 2 sigma_k * scale``, larger as confidence falls; outliers."""
    confidence = rng.uniform(0.4, 1.0, NUM_KEYPOINTS)
    std = noise * 2.0 * OKS_SIGMAS * scale * (0.6 + 0.8 * (1.0 - confidence))
    points = truth + rng.normal(size=(NUM_KEYPOINTS, 2)) * std[:, None]
    outliers = (rng.random(NUM_KEYPOINTS) < 0.04) | ~inside
    points[outliers] = truth[outliers] + rng.normal(0.0, 0.15 * scale, size=(int(outliers.sum()), 2))
    confidence[outliers] = rng.uniform(0.03, 0.3, int(outliers.sum()))
    return np.concatenate([points, confidence[:, None]], axis=1)


def simulate_detections(
    rng: np.random.Generator, truth: list[TruthFrame], width: int, height: int,
    miss_rate: float = 0.04, false_rate: float = 0.3, noise: float = 0.5, hidden_cover: float = 0.65,
) -> list[dict[str, Any]]:  # fmt: skip
    """Per-frame detections (COCO keypoint results with ``box_score`` and ``gt_id``) from the truth.

    A person covered by a nearer one beyond ``hidden_cover`` of the box is not detected.
    """
    entries = []
    for frame, people in enumerate(truth):
        covered = occlusion(people.boxes)
        for i in range(len(people.ids)):
            if covered[i] > hidden_cover or rng.random() < miss_rate:
                continue
            occluded = covered[i] > 0.35
            box_score = rng.uniform(0.15, 0.45) if occluded else rng.uniform(0.6, 0.95)
            box = people.boxes[i] + rng.normal(0.0, 0.03, 4) * people.boxes[i, [2, 3, 2, 3]]
            scale = float(np.sqrt(people.areas[i]))
            keypoints = noisy_keypoints(rng, people.keypoints[i], people.visibility[i] > 0, scale,
                                        noise * (1.5 if occluded else 1.0))  # fmt: skip
            if occluded:
                keypoints[:, 2] *= 0.6
            entries.append(_entry(frame, box, keypoints, box_score, int(people.ids[i])))
        for _ in range(rng.poisson(false_rate)):
            body = rng.uniform(0.2, 0.5) * height
            centre = (rng.uniform(0.1, 0.9) * width, rng.uniform(0.3, 0.7) * height)
            keypoints = random_pose(rng, centre, body)
            inside = np.ones(NUM_KEYPOINTS, bool)
            box = _box(keypoints, inside)
            detected = noisy_keypoints(rng, keypoints, inside, body * 0.4, noise)
            detected[:, 2] *= 0.5
            box_score = rng.uniform(0.1, 0.45) if rng.random() < 0.75 else rng.uniform(0.5, 0.7)
            entries.append(_entry(frame, box, detected, box_score, -1))
    return entries


def make_sequence(name: str, seed: int = 0, **detection_options: float) -> Sequence:
    """The scenario ``name`` (see :data:`SCENARIOS`) with simulated detections, reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    walkers, width, height = SCENARIOS[name](rng)
    camera = camera_motion(len(walkers[0].present), width, height, rng) if name in MOVING_CAMERA else None
    truth = build_truth(walkers if camera is None else _film(walkers, camera), width, height)
    options = {**DETECTION_OPTIONS.get(name, {}), **detection_options}
    detections = simulate_detections(rng, truth, width, height, **options)
    return Sequence(name, width, height, 25.0, truth, detections, camera)


def _scenery(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A background with things a camera's motion can be seen by: boxes and posts on a textured field."""
    image = textured_background(rng, width, height)
    for _ in range(width * height // 4000):
        x, y = rng.integers(0, width), rng.integers(0, height)
        w, h = rng.integers(4, 40, size=2)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.rectangle(image, (int(x), int(y)), (int(x + w), int(y + h)), colour, -1)
    return image


def render_frames(sequence: Sequence, seed: int = 0) -> Iterator[np.ndarray]:
    """The sequence's truth drawn as BGR frames on one textured background (farther people drawn first).

    With a moving camera the background is a larger scene seen through each frame's camera map.
    """
    rng = np.random.default_rng(seed)
    width, height = sequence.width, sequence.height
    if sequence.camera is None:
        background = textured_background(rng, width, height)
    else:
        scene = _scenery(rng, 2 * width, 2 * height)  # scene pixel (x, y) is at (x - w/2, y - h/2)
        to_scene = np.array([[1.0, 0.0, width / 2.0], [0.0, 1.0, height / 2.0], [0.0, 0.0, 1.0]])
    for t, people in enumerate(sequence.truth):
        if sequence.camera is None:
            frame = background.copy()
        else:
            view = sequence.camera[t] @ np.linalg.inv(to_scene)
            frame = cv2.warpAffine(scene, view, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        for i in np.argsort(people.boxes[:, 1] + people.boxes[:, 3]):
            draw_figure(frame, Person(people.keypoints[i], people.visibility[i]), float(people.heights[i]))
        yield frame
