"""Crowd scenarios written apart from :mod:`benchmarks.sequences` (issue #24): test data the tracker was not tuned on.

As the issue describes them: 1280x720 frames, 300 frames at 25 frames/s, people 180-380 px tall walking
straight across in both directions at 2-7 px a frame on a ground plane (nearer is larger and lower), their
keypoints real COCO poses (``coco-mini`` train2017, missing joints filled from a fitted template) with a
small limb sway. Families: ``hd-crowd`` (9 people), ``hd-walkers`` (4), ``hd-fast`` (6 at 14-24 px a
frame) and ``hd-approach`` (4 walking towards the camera, growing 1.6-2.2x).

The simulated detector (:func:`detect`, also used by :mod:`benchmarks.tud`): the farther of two people
whose boxes overlap with IoU > 0.45 is not detected; 5-8 % random misses; 0.05-0.15 false detections a
frame scored 0.3-0.6; true detections scored 0.6-0.99; keypoint noise of 1-1.2 OKS-sigma widths
(``2 sigma_k`` times the person's scale, per axis); boxes around the noisy keypoints plus 10 % margin.
Seeds are independent of :mod:`benchmarks.sequences`'s (their own random streams).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from toppose.common.schema import NUM_KEYPOINTS, OKS_SIGMAS, PERSON_CATEGORY_ID
from toppose.common.synthetic import TEMPLATE, random_pose
from toppose.tracking.association import iou_matrix

from benchmarks.sequences import Sequence, TruthFrame

WIDTH, HEIGHT, FRAMES, FPS = 1280, 720, 300, 25.0
COCO_MINI = Path(os.environ.get("COCO_MINI", Path(__file__).resolve().parents[2] / "shared" / "coco-mini"))
MARGIN = 0.1  # box margin on each side, as a fraction of the keypoints' extent
AREA_FRACTION = 0.53  # a person's area as a fraction of the box (the OKS scale)
HIDE_IOU = 0.45  # the farther of two people overlapping by more is not detected
MIN_INSIDE = 6  # keypoints a person needs inside the image to be in the truth
# (parent, the joints it swings, phase offset, share of the amplitude): arms against the legs of their side.
_SWAY = (
    (5, (7, 9), np.pi, 1.0), (7, (9,), np.pi, 0.5), (6, (8, 10), 0.0, 1.0), (8, (10,), 0.0, 0.5),
    (11, (13, 15), 0.0, 1.0), (13, (15,), 0.0, 0.5), (12, (14, 16), np.pi, 1.0), (14, (16,), np.pi, 0.5),
)  # fmt: skip
_SWAY_AMPLITUDE = 0.2  # radians


@dataclass(frozen=True)
class Family:
    """One scenario family: how many people, their speed across (px a frame) and growth over the clip."""

    people: int
    speed: tuple[float, float]
    growth: tuple[float, float] | None = None  # walking towards the camera: height multiplied by this much


FAMILIES = {
    "hd-crowd": Family(9, (2.0, 7.0)),
    "hd-walkers": Family(4, (2.0, 7.0)),
    "hd-fast": Family(6, (14.0, 24.0)),
    "hd-approach": Family(4, (0.3, 1.5), growth=(1.6, 2.2)),
}


@cache
def pose_library() -> tuple[str, tuple[np.ndarray, ...]]:
    """Upright poses in body heights (hip centre at the origin, y down) and where they come from.

    Real poses: COCO annotations of ``coco-mini`` with shoulders, hips and at least 10 labelled joints
    that a scaled template fits within 0.2 body heights; their unlabelled joints are the fitted
    template's. Without ``coco-mini`` (``$COCO_MINI``), 24 synthetic poses (``random_pose``, seed 0).
    """
    path = COCO_MINI / "annotations" / "person_keypoints_train2017.json"
    if not path.is_file():
        rng = np.random.default_rng(0)
        return "synthetic (coco-mini not found)", tuple(random_pose(rng, (0.0, 0.0), 1.0) for _ in range(24))
    poses = []
    for annotation in json.loads(path.read_text())["annotations"]:
        keypoints = np.asarray(annotation["keypoints"], dtype=np.float64).reshape(NUM_KEYPOINTS, 3)
        labelled = keypoints[:, 2] > 0
        if annotation.get("iscrowd") or labelled.sum() < 10 or not labelled[[5, 6, 11, 12]].all():
            continue
        template = TEMPLATE[labelled] - TEMPLATE[labelled].mean(axis=0)
        points = keypoints[labelled, :2] - keypoints[labelled, :2].mean(axis=0)
        scale = float((template * points).sum() / (template**2).sum())
        residual = np.sqrt(((points - scale * template) ** 2).sum(axis=1).mean()) / max(abs(scale), 1e-6)
        if scale <= 0 or residual > 0.2:
            continue
        pose = TEMPLATE.copy() + (keypoints[labelled, :2].mean(axis=0) / scale - TEMPLATE[labelled].mean(axis=0))
        pose[labelled] = keypoints[labelled, :2] / scale
        poses.append(pose - pose[[11, 12]].mean(axis=0))
    return f"COCO train2017 ({len(poses)} poses)", tuple(poses)


def swayed(pose: np.ndarray, phase: float) -> np.ndarray:
    """The pose with its limbs swung about their parents by a small angle that follows the gait ``phase``."""
    out = pose.copy()
    for parent, children, offset, share in _SWAY:
        angle = _SWAY_AMPLITUDE * share * np.sin(phase + offset)
        c, s = np.cos(angle), np.sin(angle)
        rows = list(children)
        out[rows] = (out[rows] - out[parent]) @ np.array([[c, s], [-s, c]]) + out[parent]
    return out


def keypoint_box(keypoints: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """The xywh box around the ``valid`` keypoints, grown by :data:`MARGIN` of its extent on each side."""
    points = keypoints[valid, :2]
    low, high = points.min(axis=0), points.max(axis=0)
    pad = MARGIN * (high - low)
    return np.concatenate([low - pad, high - low + 2 * pad])


def truth_frames(
    ids: list[np.ndarray], keypoints: list[np.ndarray], width: int, height: int, boxes: list[np.ndarray] | None = None
) -> list[TruthFrame]:
    """Truth frames from each frame's ids and ``(N, K, 2)`` keypoints (boxes around them unless given)."""
    frames = []
    for t, (frame_ids, points) in enumerate(zip(ids, keypoints, strict=True)):
        inside = (points[..., 0] >= 0) & (points[..., 0] < width) & (points[..., 1] >= 0) & (points[..., 1] < height)
        keep = inside.sum(axis=1) >= MIN_INSIDE
        points, inside = points[keep], inside[keep]
        if boxes is None:
            frame_boxes = np.array([keypoint_box(p, v) for p, v in zip(points, inside, strict=True)]).reshape(-1, 4)
        else:
            frame_boxes = boxes[t][keep]
        frames.append(
            TruthFrame(
                frame_ids[keep].astype(np.int64),
                points,
                np.where(inside, 2.0, 0.0),
                frame_boxes,
                frame_boxes[:, 2] * frame_boxes[:, 3] * AREA_FRACTION,
                frame_boxes[:, 3].copy(),
            )
        )
    return frames


def _walk(rng: np.random.Generator, family: Family, poses: tuple[np.ndarray, ...]) -> tuple[np.ndarray, np.ndarray]:
    """One person's ``(T, K, 2)`` keypoints and presence ``(T,)`` (on the frame's plane, before clipping)."""
    t = np.arange(FRAMES, dtype=np.float64)
    direction = rng.choice([-1.0, 1.0])
    speed = rng.uniform(*family.speed)
    if family.growth is None:
        tall = np.full(FRAMES, rng.uniform(180.0, 380.0))
        span = WIDTH + tall[0]  # from just outside one side to just outside the other
        start = rng.uniform(-(span / speed - 40.0), 0.8 * FRAMES)
        x = np.where(direction > 0, -tall[0] / 2, WIDTH + tall[0] / 2) + direction * speed * (t - start)
    else:  # walking towards the camera: height grows as the distance shrinks, across a little
        start = rng.uniform(-0.1, 0.3) * FRAMES
        walked = np.clip((t - start) / (FRAMES - start), 0.0, 1.0)
        tall = rng.uniform(150.0, 220.0) / (1.0 - (1.0 - 1.0 / rng.uniform(*family.growth)) * walked)
        x = rng.uniform(0.2, 0.8) * WIDTH + direction * speed * (t - start)
    feet = 200.0 + 1.05 * tall + rng.uniform(-25.0, 25.0)  # ground plane: the nearer, the lower and larger
    pose = poses[int(rng.integers(len(poses)))]
    period = np.clip(0.9 * tall[0] / speed, 8.0, 30.0)  # frames a gait cycle: a stride of 0.9 body heights
    phase = rng.uniform(0, 2 * np.pi) + 2 * np.pi * t / period
    points = np.array([swayed(pose, p) for p in phase]) * tall[:, None, None]
    points += np.stack([x, feet - 0.5 * tall], axis=1)[:, None, :]
    return points, t >= start


def _scene(name: str, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each frame's person ids and keypoints of the family ``name`` (see :data:`FAMILIES`)."""
    rng = np.random.default_rng([24, seed])  # a stream of its own, apart from benchmarks.sequences' seeds
    _, poses = pose_library()
    walks = [_walk(rng, FAMILIES[name], poses) for _ in range(FAMILIES[name].people)]
    ids, points = [], []
    for t in range(FRAMES):
        present = [i for i, (_, here) in enumerate(walks) if here[t]]
        ids.append(np.array(present, dtype=np.int64) + 1)
        points.append(np.array([walks[i][0][t] for i in present]).reshape(-1, NUM_KEYPOINTS, 2))
    return ids, points


def _entry(frame: int, keypoints: np.ndarray, box: np.ndarray, box_score: float, gt_id: int) -> dict[str, Any]:
    confident = keypoints[:, 2] > 0.2
    return {
        "image_id": frame, "category_id": PERSON_CATEGORY_ID, "bbox": [round(float(v), 2) for v in box],
        "keypoints": [round(float(v), 3) for v in keypoints.reshape(-1)],
        "score": round(float(box_score * keypoints[confident, 2].mean()) if confident.any() else 0.0, 5),
        "box_score": round(float(box_score), 5), "gt_id": gt_id,
    }  # fmt: skip


def _detected_pose(
    rng: np.random.Generator, truth: np.ndarray, inside: np.ndarray, scale: float, noise: float, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(K, 3)`` noisy keypoints (errors ``noise * 2 sigma_k * scale`` per axis, more where less confident) and the
    clipped box around those inside the image plus the margin."""
    confidence = np.where(inside, rng.uniform(0.35, 1.0, NUM_KEYPOINTS), rng.uniform(0.02, 0.2, NUM_KEYPOINTS))
    std = noise * 2.0 * OKS_SIGMAS * scale * (1.4 - 0.6 * confidence)
    points = truth + rng.normal(size=truth.shape) * std[:, None]
    box = keypoint_box(points, inside)
    low = np.clip(box[:2], 0, [width, height])
    high = np.clip(box[:2] + box[2:], 0, [width, height])
    return np.concatenate([points, confidence[:, None]], axis=1), np.concatenate([low, high - low])


def detect(
    rng: np.random.Generator, truth: list[TruthFrame], width: int, height: int, hidden_cover: float | None = None
) -> list[dict[str, Any]]:
    """Simulated detections of every frame (COCO results with ``box_score`` and ``gt_id``, -1 for false ones).

    ``hidden_cover``: also not detected, a person whose box a nearer one covers beyond this fraction.
    """
    miss_rate, false_rate, noise = rng.uniform(0.05, 0.08), rng.uniform(0.05, 0.15), rng.uniform(1.0, 1.2)
    _, poses = pose_library()
    entries = []
    for frame, people in enumerate(truth):
        feet = people.boxes[:, 1] + people.boxes[:, 3]
        overlap = iou_matrix(people.boxes, people.boxes)
        np.fill_diagonal(overlap, 0.0)
        nearer = feet[None, :] > feet[:, None]  # [i, j]: j is nearer than i
        hidden = ((overlap > HIDE_IOU) & nearer).any(axis=1)
        if hidden_cover is not None:
            hidden |= (_cover(people.boxes) * nearer > hidden_cover).any(axis=1)
        for i in np.flatnonzero(~hidden & (rng.random(len(people.ids)) >= miss_rate)):
            keypoints, box = _detected_pose(rng, people.keypoints[i], people.visibility[i] > 0,
                                            float(np.sqrt(people.areas[i])), noise, width, height)  # fmt: skip
            entries.append(_entry(frame, keypoints, box, rng.uniform(0.6, 0.99), int(people.ids[i])))
        for _ in range(rng.poisson(false_rate)):
            centre = (rng.uniform(0.1, 0.9) * width, rng.uniform(0.35, 0.65) * height)
            truth_pose = poses[int(rng.integers(len(poses)))] * rng.uniform(0.25, 0.55) * height + centre
            inside = np.ones(NUM_KEYPOINTS, dtype=bool)
            scale = float(np.sqrt(np.prod(keypoint_box(truth_pose, inside)[2:]) * AREA_FRACTION))
            keypoints, box = _detected_pose(rng, truth_pose, inside, scale, noise, width, height)
            keypoints[:, 2] *= 0.6
            entries.append(_entry(frame, keypoints, box, rng.uniform(0.3, 0.6), -1))
    return entries


def _cover(boxes: np.ndarray) -> np.ndarray:
    """``[i, j]``: the fraction of box i covered by box j."""
    x0 = np.maximum(boxes[:, None, 0], boxes[None, :, 0])
    y0 = np.maximum(boxes[:, None, 1], boxes[None, :, 1])
    x1 = np.minimum((boxes[:, 0] + boxes[:, 2])[:, None], (boxes[:, 0] + boxes[:, 2])[None, :])
    y1 = np.minimum((boxes[:, 1] + boxes[:, 3])[:, None], (boxes[:, 1] + boxes[:, 3])[None, :])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    cover = inter / np.maximum(boxes[:, 2] * boxes[:, 3], 1e-6)[:, None]
    np.fill_diagonal(cover, 0.0)
    return cover


def make_sequence(name: str, seed: int) -> Sequence:
    """The family ``name`` (see :data:`FAMILIES`) with simulated detections, reproducible from ``seed``."""
    ids, points = _scene(name, seed)
    truth = truth_frames(ids, points, WIDTH, HEIGHT)
    detections = detect(np.random.default_rng([24, seed, 1]), truth, WIDTH, HEIGHT)
    return Sequence(name, WIDTH, HEIGHT, FPS, truth, detections)
