"""The frame loop: poses on every frame of a source, optionally tracked, one frame at a time.

:func:`pose_frames` is what ``run.py VIDEO`` (:func:`toppose.video.process_video`) and the Python API
(:meth:`toppose.api.PoseEstimator.track`) iterate. With tracking, the detector runs on every
``det_every``-th frame; in between the poses are estimated inside the tracks' predicted boxes.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toppose.common.config import Config
from toppose.common.errors import UserError
from toppose.common.poses import PoseResult
from toppose.pipeline import TopDownPipeline
from toppose.pose.results import to_coco_entries
from toppose.sources import Frame, FrameSource
from toppose.tracking.camera import CameraMotion
from toppose.tracking.online import PoseTracker, TrackedFrame, TrackingConfig


@dataclass
class LoopOptions:
    """How :func:`pose_frames` runs."""

    track: bool = True
    det_every: int = 1  # detector on every K-th frame; between, poses at the tracks' predicted boxes
    max_frames: int | None = None
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    camera_motion: bool = False  # compensate the camera's motion in the tracks' prediction (panning, handheld)


@dataclass
class FramePoses:
    """One frame and the people found in it; ``track_ids`` (one per person, >= 1) when tracking."""

    frame: Frame
    poses: PoseResult
    track_ids: np.ndarray | None
    detected: bool  # whether the detector ran on this frame


def pose_frames(source: FrameSource, pipeline: TopDownPipeline, options: LoopOptions) -> Iterator[FramePoses]:
    """The poses of every frame of ``source`` (up to ``options.max_frames``), in stream order.

    Reading is timed into ``pipeline.timer`` as stage ``"read"``, tracking as ``"track"``; the pipeline
    times its own stages. Closing the iterator releases the source.
    """
    if options.det_every > 1 and (not options.track or pipeline.estimator is None):
        raise UserError("--det-every needs --track and the pose network (not --pose rcnn)")
    timer = pipeline.timer
    tracker = PoseTracker(options.tracking) if options.track else None
    camera = CameraMotion() if options.track and options.camera_motion else None
    since_detection = options.det_every
    frames = source.frames()
    count = 0
    try:
        while options.max_frames is None or count < options.max_frames:
            started = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                return
            timer.add("read", started)
            since_detection += 1
            detect = since_detection >= options.det_every
            if detect:
                since_detection = 0
            if tracker is None:
                yield FramePoses(frame, pipeline.process(frame.image, frame.index), None, detect)
            else:
                tracked = _track_frame(pipeline, tracker, frame, detect, camera)
                yield FramePoses(frame, tracked.poses, tracked.track_ids, detect)
            count += 1
    finally:
        frames.close()


def _track_frame(
    pipeline: TopDownPipeline, tracker: PoseTracker, frame: Frame, detect: bool, camera: CameraMotion | None
) -> TrackedFrame:
    """Predict the tracks (moved with the camera where ``camera`` estimates its motion), then detect and
    match, or follow them with poses at their predicted boxes."""
    started = time.perf_counter()
    uids, boxes, scores = tracker.predict(camera(frame.image) if camera is not None else None)
    pipeline.timer.add("track", started)
    if detect:
        poses = pipeline.process(frame.image, frame.index)
        started = time.perf_counter()
        tracked = tracker.update(frame.index, poses)
    else:
        poses = PoseResult.empty()
        if uids:
            poses = pipeline.estimator.estimate(frame.image, boxes, scores, nms=False)  # in the tracks' order
        started = time.perf_counter()
        tracked = tracker.follow(frame.index, uids, poses)
    pipeline.timer.add("track", started)
    return tracked


def tracking_config(cfg: Config, smooth: bool = True) -> TrackingConfig:
    """The tracker's settings under a model setup: its confident level is the detector threshold."""
    tracking = TrackingConfig(smooth=smooth)
    threshold = cfg.detector.score_threshold
    tracking.tracker.high_score = threshold
    tracking.tracker.low_score = min(tracking.tracker.low_score, threshold)
    tracking.tracker.keypoint_threshold = cfg.inference.keypoint_score_threshold
    return tracking


def pipeline_config(cfg: Config, options: LoopOptions) -> Config:
    """The setup to build the pipeline from: when tracking, detections down to the tracker's low score are kept."""
    run_cfg = copy.deepcopy(cfg)
    if options.track:  # low-score detections feed the second matching stage
        run_cfg.detector.score_threshold = options.tracking.tracker.low_score
    return run_cfg


def frame_entries(done: FramePoses) -> list[dict[str, Any]]:
    """The COCO keypoint result entries of one frame: ``image_id`` the frame index, ``timestamp`` in
    seconds, and ``track_id`` when tracking."""
    entries = to_coco_entries(done.poses, done.frame.index, timestamp=round(done.frame.timestamp, 6))
    if done.track_ids is not None:
        for entry, track_id in zip(entries, done.track_ids, strict=True):
            entry["track_id"] = int(track_id)
    return entries
