"""Matching detections to tracks: box IoU, pose OKS, their blend, and the Hungarian assignment."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from toppose.pose.oks import oks

MIN_POSE_KEYPOINTS = 3  # a pose with fewer confident keypoints is matched by IoU alone
_INFEASIBLE = 1e6


def iou_matrix(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """IoU of every ``(N, 4)`` xywh box in ``boxes_a`` with every ``(M, 4)`` box in ``boxes_b``: ``(N, M)``."""
    a = np.asarray(boxes_a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(boxes_b, dtype=np.float64).reshape(-1, 4)
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum((a[:, 0] + a[:, 2])[:, None], (b[:, 0] + b[:, 2])[None, :])
    y1 = np.minimum((a[:, 1] + a[:, 3])[:, None], (b[:, 1] + b[:, 3])[None, :])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def move_pose(keypoints: np.ndarray, from_box: np.ndarray, to_box: np.ndarray) -> np.ndarray:
    """Carry a ``(K, 3)`` pose from one xywh box to another: shift by the centres, scale by the heights."""
    from_centre = from_box[:2] + from_box[2:] / 2.0
    to_centre = to_box[:2] + to_box[2:] / 2.0
    moved = keypoints.copy()
    moved[:, :2] = (keypoints[:, :2] - from_centre) * (to_box[3] / max(from_box[3], 1e-6)) + to_centre
    return moved


def pose_similarity(
    track_poses: np.ndarray, track_boxes: np.ndarray, det_poses: np.ndarray, keypoint_threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """OKS of each of ``(N, K, 3)`` track poses (placed in ``track_boxes``) against ``(M, K, 3)`` detections.

    The track's confident keypoints form the reference; the area is the track box's. Returns the
    ``(N, M)`` OKS and an ``(N,)`` mask of the tracks with enough confident keypoints to count.
    """
    similarity = np.zeros((len(track_poses), len(det_poses)))
    usable = np.zeros(len(track_poses), dtype=bool)
    if len(det_poses) == 0:
        return similarity, usable
    for i, (pose, box) in enumerate(zip(track_poses, track_boxes, strict=True)):
        valid = pose[:, 2] > keypoint_threshold
        if valid.sum() < MIN_POSE_KEYPOINTS:
            continue
        usable[i] = True
        similarity[i] = oks(pose[:, :2], det_poses[..., :2], box[2] * box[3], valid)
    return similarity, usable


def blended_similarity(
    track_boxes: np.ndarray,
    det_boxes: np.ndarray,
    track_poses: np.ndarray | None,
    det_poses: np.ndarray | None,
    oks_weight: float,
    keypoint_threshold: float,
) -> np.ndarray:
    """``(1 - oks_weight) * IoU + oks_weight * OKS`` per (track, detection); IoU alone where a pose is missing."""
    similarity = iou_matrix(track_boxes, det_boxes)
    if track_poses is None or det_poses is None or oks_weight <= 0 or similarity.size == 0:
        return similarity
    pose, usable = pose_similarity(track_poses, track_boxes, det_poses, keypoint_threshold)
    similarity[usable] = (1.0 - oks_weight) * similarity[usable] + oks_weight * pose[usable]
    return similarity


def match(similarity: np.ndarray, min_similarity: float) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Hungarian assignment maximising total similarity, where leaving a pair unmatched is allowed.

    Matching a pair costs ``1 - similarity``; leaving a row or a column unmatched costs half of
    ``1 - min_similarity`` each, so no pair below ``min_similarity`` is ever matched and a weak pair
    is not forced just because every row must be assigned. Returns ``(matches as (row, column),
    unmatched rows, unmatched columns)``.
    """
    rows, cols = similarity.shape
    if rows == 0 or cols == 0:
        return [], list(range(rows)), list(range(cols))
    limit = 1.0 - min_similarity
    size = rows + cols
    cost = np.full((size, size), limit / 2.0)
    cost[rows:, cols:] = 0.0
    cost[:rows, :cols] = np.where(similarity >= min_similarity, 1.0 - similarity, _INFEASIBLE)
    assigned_rows, assigned_cols = linear_sum_assignment(cost)
    matches = [
        (int(r), int(c)) for r, c in zip(assigned_rows, assigned_cols, strict=True)
        if r < rows and c < cols and cost[r, c] < _INFEASIBLE
    ]  # fmt: skip
    used_rows = {r for r, _ in matches}
    used_cols = {c for _, c in matches}
    return matches, [r for r in range(rows) if r not in used_rows], [c for c in range(cols) if c not in used_cols]
