"""Live pose tracking: identities from :class:`Tracker`, smoothing from past frames only, frame by frame.

This is what ``run.py --track`` runs and what ``python -m tracking --online`` replays on a results file.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from toppose.common.poses import PoseResult
from toppose.tracking.smoothing import SmootherConfig, TrackSmoother
from toppose.tracking.tracker import UNTRACKED, Tracker, TrackerConfig


@dataclass
class TrackingConfig:
    """Tracker and smoother settings together."""

    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    smoother: SmootherConfig = field(default_factory=SmootherConfig)
    smooth: bool = True


@dataclass
class TrackedFrame:
    """The people of one frame in confirmed tracks (as ByteTrack reports), in the order given, with their ids."""

    poses: PoseResult  # smoothed boxes and keypoints (keypoint confidences as detected)
    track_ids: np.ndarray  # >= 1
    indices: np.ndarray  # each person's position among the frame's detections (or followed tracks)


class PoseTracker:
    """Per frame: :meth:`predict`, then :meth:`update` with detections or :meth:`follow` with followed poses."""

    def __init__(self, cfg: TrackingConfig | None = None) -> None:
        self.cfg = cfg or TrackingConfig()
        self.tracker = Tracker(self.cfg.tracker)
        self.smoothers: dict[int, TrackSmoother] = {}

    def predict(self, camera: np.ndarray | None = None) -> tuple[list[int], np.ndarray, np.ndarray]:
        """Start the next frame (``camera``: see :meth:`Tracker.predict`); returns the tracks to follow if the
        detector is skipped (uids, boxes, scores)."""
        self.tracker.predict(camera)
        live = {t.uid for t in self.tracker.tracks}
        self.smoothers = {uid: s for uid, s in self.smoothers.items() if uid in live}
        return self.tracker.followed()

    def update(self, frame: int, detections: PoseResult) -> TrackedFrame:
        """Track and smooth one frame's detections (frame: the frame's index, for the smoother's clock)."""
        uids = self.tracker.update(detections)
        return self._output(frame, detections, uids)

    def follow(self, frame: int, uids: list[int], poses: PoseResult) -> TrackedFrame:
        """Track and smooth poses measured at the tracks' predicted boxes (``poses`` in ``uids`` order)."""
        self.tracker.follow(uids, poses)
        boxes = np.array([self._track_box(uid) for uid in uids]).reshape(-1, 4)
        measured = PoseResult(boxes, poses.box_scores, poses.keypoints, poses.scores)
        return self._output(frame, measured, np.asarray(uids, dtype=np.int64))

    def _track_box(self, uid: int) -> np.ndarray:
        return next(t.box for t in self.tracker.tracks if t.uid == uid)

    def _output(self, frame: int, detections: PoseResult, uids: np.ndarray) -> TrackedFrame:
        """Smooth every tracked person (tentative tracks too, so confirmed ones start warm); report the confirmed."""
        ids = np.array([self.tracker.public_id(u) if u != UNTRACKED else UNTRACKED for u in uids], dtype=np.int64)
        boxes = np.array(detections.boxes, dtype=np.float64, copy=True).reshape(-1, 4)
        keypoints = np.array(detections.keypoints, dtype=np.float64, copy=True)
        if self.cfg.smooth:
            for i, uid in enumerate(uids):
                if uid == UNTRACKED:
                    continue
                smoother = self.smoothers.setdefault(int(uid), TrackSmoother(self.cfg.smoother))
                boxes[i], keypoints[i, :, :2] = smoother.step(
                    frame, boxes[i], keypoints[i], float(detections.box_scores[i])
                )
        keep = np.flatnonzero(ids != UNTRACKED)
        poses = PoseResult(boxes, detections.box_scores, keypoints, detections.scores).select(keep)
        return TrackedFrame(poses, ids[keep], keep)
