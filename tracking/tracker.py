"""Multi-person tracking by detection: a box Kalman filter per track, Hungarian matching on IoU + OKS.

Per frame: :meth:`Tracker.predict`, then either :meth:`Tracker.update` with the frame's detections
or :meth:`Tracker.follow` with poses measured at the tracks' own predicted boxes (frames where the
detector is skipped). Matching is confidence-aware in the manner of ByteTrack, in stages:

1. confident detections against the confirmed tracks, on IoU with the predicted box blended with
   OKS against the track's last pose moved there;
2. confident leftovers against the tentative tracks, the same way;
3. low-score detections, which may only continue confirmed tracks, under a stricter gate;
4. confident leftovers against confirmed tracks still unmatched and seen in one of the last
   ``RESCUE_FRAMES`` frames, on IoU with their last measured box (people who turned or stopped
   abruptly, away from their prediction, a missed frame included). It comes after the low-score
   stage: a person partly hidden at the predicted place keeps the track, rather than whoever
   steps out near its last box.

Confident detections still unmatched start tentative tracks. A tentative track is confirmed after
``min_hits`` consecutive hits (detection matches, or poses followed with enough confident joints
where the detector is skipped; at once in the first frame) and gets its public id
then; an unmatched tentative track is dropped. A confirmed track that misses detections is carried
by prediction, so it can be matched again after a short occlusion, and is deleted after
``max_missed`` frames without one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from toppose.common.poses import PoseResult
from toppose.tracking.association import MIN_POSE_KEYPOINTS, blended_similarity, iou_matrix, match, move_pose
from toppose.tracking.kalman import BoxKalman, warp_state

UNTRACKED = -1  # track id of a detection that belongs to no confirmed track
RESCUE_MAX_SCALE = 1.25  # a rescue match needs heights within this ratio
RESCUE_FRAMES = 2  # a rescue match needs the track seen in one of this many last frames


@dataclass
class TrackerConfig:
    """Association and track life-cycle settings."""

    high_score: float = 0.5  # detections at or above: first-stage matching, and may start tracks
    low_score: float = 0.1  # detections below are ignored; between: may only continue tracks
    min_similarity: float = 0.2  # gate on the IoU/OKS blend for confident detections
    low_min_similarity: float = 0.4  # gate for low-score detections (stricter)
    oks_weight: float = 0.5  # weight of OKS against the track's moved last pose in the blend
    keypoint_threshold: float = 0.2  # keypoints above this confidence count in OKS and pose following
    min_hits: int = 3  # detection matches (or reliably followed poses) that confirm a tentative track
    max_missed: int = 45  # frames a confirmed track survives without a detection (people hidden 1-2 s)
    reupdate: bool = True  # after an occlusion, re-run the filter through the gap (OC-SORT)


@dataclass
class Track:
    """One person's track."""

    uid: int  # internal serial, given at birth
    kalman: BoxKalman
    box: np.ndarray  # last measured xywh box
    keypoints: np.ndarray  # last measured (K, 3) pose
    score: float  # last detection (box) score
    first_frame: int
    id: int = UNTRACKED  # public id, given when the track is confirmed
    hits: int = 1  # detection matches
    missed: int = 0  # frames since the last detection match (or reliably followed pose)
    tracked: bool = True  # matched (or followed) in the last detection frame, i.e. not lost
    anchor: tuple[np.ndarray, np.ndarray] | None = None  # filter state after the last detection

    @property
    def confirmed(self) -> bool:
        return self.id != UNTRACKED

    def measure(self, box: np.ndarray, keypoints: np.ndarray, score: float, reupdate: bool = False) -> None:
        """Correct the filter with a detection; after missed frames, with ``reupdate``, re-run it from the last one.

        The re-update (OC-SORT's observation-centric re-update) replays the filter from its state at the
        last detection through boxes interpolated to this one, so the velocity learnt while the person
        was hidden comes from the two observations, not from the drift of the prediction.
        """
        box = np.asarray(box, dtype=np.float64)
        gap = self.missed
        if reupdate and gap > 1 and self.anchor is not None:
            self.kalman.restore(self.anchor)
            for step in range(1, gap):
                self.kalman.predict()
                self.kalman.update(self.box + (box - self.box) * step / gap, self.score)
            self.kalman.predict()
        self.kalman.update(box, score)
        self.box, self.keypoints, self.score = box, keypoints.copy(), float(score)
        self.anchor = self.kalman.state()


def pose_box(track: Track, keypoints: np.ndarray, threshold: float) -> np.ndarray | None:
    """The box implied by a pose measured near a track, or None if too few joints are confident in both.

    The track's last box is moved by the median shift of the joints confident in both poses and scaled
    by the change in their spread; boxes derived from keypoints alone would not match detector boxes.
    """
    common = (keypoints[:, 2] > threshold) & (track.keypoints[:, 2] > threshold)
    if common.sum() < MIN_POSE_KEYPOINTS:
        return None
    now, before = keypoints[common, :2], track.keypoints[common, :2]
    shift = np.median(now - before, axis=0)
    spread_now = np.linalg.norm(now - now.mean(axis=0), axis=1).mean()
    spread_before = np.linalg.norm(before - before.mean(axis=0), axis=1).mean()
    scale = float(np.clip(spread_now / max(spread_before, 1e-6), 0.8, 1.25))
    centre = track.box[:2] + track.box[2:] / 2.0 + shift
    size = track.box[2:] * scale
    return np.concatenate([centre - size / 2.0, size])


def warp_pose(keypoints: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """A ``(K, 3)`` pose mapped by a ``(2, 3)`` affine (confidences kept)."""
    moved = keypoints.copy()
    moved[:, :2] = keypoints[:, :2] @ affine[:, :2].T + affine[:, 2]
    return moved


def warp_box(box: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """An xywh box mapped by a ``(2, 3)`` similarity map: centre moved, size scaled."""
    scale = float(np.sqrt(abs(np.linalg.det(affine[:, :2]))))
    centre = affine[:, :2] @ (box[:2] + box[2:] / 2.0) + affine[:, 2]
    size = box[2:] * scale
    return np.concatenate([centre - size / 2.0, size])


class Tracker:
    """Assigns track identities to per-frame person detections (boxes, scores and optional poses)."""

    def __init__(self, cfg: TrackerConfig | None = None) -> None:
        self.cfg = cfg or TrackerConfig()
        self.tracks: list[Track] = []
        self.frame = -1
        self.public_ids: dict[int, int] = {}  # uid -> public id of every track ever confirmed
        self._next_uid = 0
        self._next_id = 1
        self._predicted: dict[int, np.ndarray] = {}

    def predict(self, camera: np.ndarray | None = None) -> None:
        """Start the next frame: delete stale tracks and move every track's box to its prediction.

        ``camera``: the ``(2, 3)`` similarity map from the last frame's pixels to this one's (camera
        motion), applied to every track before its prediction.
        """
        self.frame += 1
        self.tracks = [t for t in self.tracks if t.missed < self.cfg.max_missed]
        self._predicted = {}
        for track in self.tracks:
            if camera is not None:
                track.kalman.warp(camera)
                track.anchor = warp_state(track.anchor, camera) if track.anchor is not None else None
                track.keypoints = warp_pose(track.keypoints, camera)
                track.box = warp_box(track.box, camera)
            self._predicted[track.uid] = track.kalman.predict()
            track.missed += 1

    def followed(self) -> tuple[list[int], np.ndarray, np.ndarray]:
        """The tracks to follow where the detector is skipped: uids, predicted ``(N, 4)`` boxes, box scores."""
        live = [t for t in self.tracks if t.tracked]
        boxes = np.array([self._predicted[t.uid] for t in live]).reshape(-1, 4)
        return [t.uid for t in live], boxes, np.array([t.score for t in live])

    def update(self, detections: PoseResult) -> np.ndarray:
        """Match one frame's detections (after :meth:`predict`); returns each detection's track uid or -1."""
        cfg = self.cfg
        scores = np.asarray(detections.box_scores, dtype=np.float64)
        uids = np.full(len(scores), UNTRACKED, dtype=np.int64)
        high = np.flatnonzero(scores >= cfg.high_score)
        low = np.flatnonzero((scores >= cfg.low_score) & (scores < cfg.high_score))
        confirmed = [t for t in self.tracks if t.confirmed]
        tentative = [t for t in self.tracks if not t.confirmed]

        matched: set[int] = set()
        high_left = self._associate(confirmed, detections, high, cfg.min_similarity, uids, matched)
        high_left = self._associate(tentative, detections, high_left, cfg.min_similarity, uids, matched)
        unmatched = [t for t in confirmed if t.uid not in matched]
        self._associate(unmatched, detections, low, cfg.low_min_similarity, uids, matched)
        recent = [t for t in confirmed if t.uid not in matched and t.missed <= RESCUE_FRAMES]
        high_left = self._associate(recent, detections, high_left, cfg.min_similarity, uids, matched, rescue=True)

        for track in self.tracks:
            track.tracked = track.uid in matched
        self.tracks = [t for t in self.tracks if t.confirmed or t.uid in matched]
        for i in high_left:
            uids[i] = self._start(detections, i)
        self._confirm()
        return uids

    def follow(self, uids: list[int], poses: PoseResult) -> None:
        """Update tracks with poses measured inside their predicted boxes (``poses`` in ``uids`` order)."""
        by_uid = {t.uid: t for t in self.tracks}
        for uid, keypoints in zip(uids, poses.keypoints, strict=True):
            track = by_uid[uid]
            predicted = self._predicted[uid]
            box = pose_box(track, keypoints, self.cfg.keypoint_threshold)
            if box is None:  # keep the last reliable pose, carried along by the prediction
                track.keypoints = move_pose(track.keypoints, track.box, predicted)
                track.box = predicted
            else:  # a reliable pose counts as seeing the person
                track.kalman.update(box, track.score)
                track.box, track.keypoints = box, keypoints.copy()
                track.hits += 1
                track.missed = 0
        self._confirm()

    def public_id(self, uid: int) -> int:
        """The public id of the track with ``uid`` (-1 if it is not confirmed, yet or ever)."""
        return self.public_ids.get(int(uid), UNTRACKED)

    def _associate(
        self,
        tracks: list[Track],
        detections: PoseResult,
        candidates: np.ndarray,
        min_similarity: float,
        uids: np.ndarray,
        matched: set[int],
        rescue: bool = False,
    ) -> np.ndarray:
        """Match ``tracks`` to the detections at ``candidates``; returns the candidates left unmatched.

        The similarity blends IoU and OKS with the predicted box and moved pose; to ``rescue`` it is
        the IoU with the track's last measured box instead (a person who turned or stopped abruptly is
        still near it), and boxes of clearly different heights (another person) never match.
        """
        if not tracks or len(candidates) == 0:
            return candidates
        predicted = np.array([self._predicted[t.uid] for t in tracks])
        if rescue:
            boxes = detections.boxes[candidates]
            last = np.array([t.box for t in tracks])
            similarity = iou_matrix(last, boxes)
            ratio = boxes[None, :, 3] / np.maximum(last[:, None, 3], 1e-6)
            similarity[(ratio < 1 / RESCUE_MAX_SCALE) | (ratio > RESCUE_MAX_SCALE)] = 0.0
        else:
            moved = np.array([move_pose(t.keypoints, t.box, p) for t, p in zip(tracks, predicted, strict=True)])
            similarity = blended_similarity(
                predicted, detections.boxes[candidates], moved, detections.keypoints[candidates],
                self.cfg.oks_weight, self.cfg.keypoint_threshold,
            )  # fmt: skip
        pairs, _, left = match(similarity, min_similarity)
        for row, col in pairs:
            track, det = tracks[row], int(candidates[col])
            track.measure(detections.boxes[det], detections.keypoints[det], detections.box_scores[det],
                          self.cfg.reupdate)  # fmt: skip
            track.hits += 1
            track.missed = 0
            uids[det] = track.uid
            matched.add(track.uid)
        return candidates[left]

    def _confirm(self) -> None:
        """Give public ids to the tentative tracks with enough hits (all of them in the first frame)."""
        for track in self.tracks:
            if not track.confirmed and (track.hits >= self.cfg.min_hits or track.first_frame == 0):
                track.id = self.public_ids[track.uid] = self._next_id
                self._next_id += 1

    def _start(self, detections: PoseResult, index: int) -> int:
        box = np.asarray(detections.boxes[index], dtype=np.float64)
        track = Track(
            uid=self._next_uid, kalman=BoxKalman(box), box=box, keypoints=detections.keypoints[index].copy(),
            score=float(detections.box_scores[index]), first_frame=self.frame,
        )  # fmt: skip
        self._next_uid += 1
        self.tracks.append(track)
        return track.uid
