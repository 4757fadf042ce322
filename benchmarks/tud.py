"""Real pedestrian motion: TUD-Campus and TUD-Stadtmitte, whose ground truth py-motmetrics ships, as pose detections.

The trajectories, boxes and occlusions are the real annotations (``motmetrics/data/*/gt.txt``, 640x480,
25 frames/s). Each person gets a COCO pose of :func:`benchmarks.crowd_scenarios.pose_library` with a
limb sway, stretched so that its keypoints plus the margin fill the annotated box; the truth boxes are
the annotations clipped to the image (people with fewer than six keypoints inside are left out). The
detections are those of :func:`benchmarks.crowd_scenarios.detect`, and a person more than
:data:`HIDDEN_COVER` covered by a nearer one is missed too (a detector's misses under occlusion); the
seed draws the poses, the misses, the noise and the false detections.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from toppose.common.schema import NUM_KEYPOINTS

from benchmarks.crowd_scenarios import MARGIN, detect, pose_library, swayed, truth_frames
from benchmarks.sequences import Sequence

SEQUENCES = {"tud-campus": "TUD-Campus", "tud-stadtmitte": "TUD-Stadtmitte"}
WIDTH, HEIGHT, FPS = 640, 480, 25.0
HIDDEN_COVER = 0.6
GAIT_PERIOD = (22.0, 30.0)  # frames a gait cycle


def ground_truth_file(name: str) -> Path:
    """The ``gt.txt`` of the sequence ``name`` (see :data:`SEQUENCES`) in the installed py-motmetrics."""
    import motmetrics

    return Path(os.path.dirname(motmetrics.__file__)) / "data" / SEQUENCES[name] / "gt.txt"


def fit_pose(pose: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The ``(K, 2)`` pose stretched so that its keypoints plus :data:`MARGIN` on each side fill the xywh ``box``."""
    low, high = pose.min(axis=0), pose.max(axis=0)
    inner = box[2:] / (1.0 + 2.0 * MARGIN)
    return (pose - low) / np.maximum(high - low, 1e-6) * inner + box[:2] + MARGIN * inner


def make_sequence(name: str, seed: int) -> Sequence:
    """The TUD sequence ``name`` with simulated pose detections, reproducible from ``seed``."""
    rows = np.loadtxt(ground_truth_file(name), delimiter=",", ndmin=2)
    rng = np.random.default_rng([24, seed, 2])
    _, poses = pose_library()
    people = np.unique(rows[:, 1]).astype(int)
    pose_of = {p: poses[int(rng.integers(len(poses)))] for p in people}
    gait = {p: (rng.uniform(0, 2 * np.pi), rng.uniform(*GAIT_PERIOD)) for p in people}
    frames = int(rows[:, 0].max())
    ids, keypoints, boxes = [], [], []
    for t in range(frames):
        here = rows[rows[:, 0] == t + 1]
        frame_ids = here[:, 1].astype(np.int64)
        ids.append(frame_ids)
        poses_now = [swayed(pose_of[p], gait[p][0] + 2 * np.pi * t / gait[p][1]) for p in frame_ids]
        fitted = [fit_pose(pose, box) for pose, box in zip(poses_now, here[:, 2:6], strict=True)]
        keypoints.append(np.array(fitted).reshape(-1, NUM_KEYPOINTS, 2))
        low = np.clip(here[:, 2:4], 0, [WIDTH, HEIGHT])
        high = np.clip(here[:, 2:4] + here[:, 4:6], 0, [WIDTH, HEIGHT])
        boxes.append(np.concatenate([low, high - low], axis=1))
    truth = truth_frames(ids, keypoints, WIDTH, HEIGHT, boxes)
    detections = detect(rng, truth, WIDTH, HEIGHT, hidden_cover=HIDDEN_COVER)
    return Sequence(name, WIDTH, HEIGHT, FPS, truth, detections)
