"""Left/right swaps: a detector that labels the left leg right for a few frames, found and undone per track.

Each limb group (legs: knee, ankle and foot points; arms: elbow, wrist and hand points) is checked frame by
frame against where its points should be: the previous frame's positions (already corrected) moved on at
their last velocity, or where they were last seen. Where the swapped labelling lands closer to that
prediction than ``SWAP_RATIO`` times the kept one, the frame's left and right points of that group are
exchanged. The comparison restarts after a
break in the track. A track whose frames end up mostly exchanged is turned back over, so that the labels the
detector gave most of the time win.
"""

from __future__ import annotations

import numpy as np
from toppose.tracking.kinematics.keypoint_sets import FINGERS, KeypointSet

SWAP_RATIO = 0.5
GROUPS = {
    "legs": ("left_knee", "left_ankle", "left_big_toe", "left_small_toe", "left_heel"),
    "arms": ("left_elbow", "left_wrist", "left_hand_root",
             *(f"left_{finger}{joint}" for finger in FINGERS for joint in range(1, 5))),
}  # fmt: skip


def _cost(current: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.hypot(*(current - predicted).T).sum())


def correct_swaps(xy: np.ndarray, broken: np.ndarray, kind: KeypointSet) -> dict[str, np.ndarray]:
    """Exchange the swapped left/right points of (T, K, 2) ``xy`` in place; per group, (T,) bool of the frames
    exchanged."""
    flags = {}
    for group, names in GROUPS.items():
        pairs = kind.pairs(names)
        left, right = [p[0] for p in pairs], [p[1] for p in pairs]
        swapped = np.zeros(len(xy), dtype=bool)
        last = xy[0].copy()
        for t in range(1, len(xy)):
            if broken[t]:
                last = xy[t].copy()
                continue
            before = xy[t - 1]
            moving = before if t < 2 or broken[t - 1] else 2 * before - xy[t - 2]
            predicted = np.where(np.isfinite(moving), moving, np.where(np.isfinite(before), before, last))
            seen = np.isfinite(xy[t, left] + xy[t, right] + predicted[left] + predicted[right]).all(axis=1)
            cl, cr = xy[t, left][seen], xy[t, right][seen]
            pl, pr = predicted[left][seen], predicted[right][seen]
            if _cost(cl, pr) + _cost(cr, pl) < SWAP_RATIO * (_cost(cl, pl) + _cost(cr, pr)):
                xy[t, left + right] = xy[t, right + left]
                swapped[t] = True
            last = np.where(np.isfinite(xy[t]), xy[t], last)
        if swapped.sum() > len(xy) / 2:
            xy[:, left + right] = xy[:, right + left]
            swapped = ~swapped
        flags[group] = swapped
    return flags
