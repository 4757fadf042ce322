"""The frame loop: poses on every frame of a source, optionally tracked, one frame at a time.

:func:`pose_frames` is what ``run.py VIDEO`` (:func:`toppose.video.process_video`) and the Python API
(:meth:`toppose.api.PoseEstimator.track`) iterate. With tracking, the detector runs on every
``det_every``-th frame; in between the poses are estimated inside the tracks' predicted boxes.
"""

from __future__ import annotations

import copy
import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from toppose.common.config import Config, frame_batch
from toppose.common.errors import UserError
from toppose.common.poses import PoseResult
from toppose.pipeline import TopDownPipeline
from toppose.pose.inference import StageTimer
from toppose.pose.results import to_coco_entries
from toppose.sources import Frame, FrameSource
from toppose.tracking.camera import CameraMotion
from toppose.tracking.online import PoseTracker, TrackingConfig


@dataclass
class LoopOptions:
    """How :func:`pose_frames` runs."""

    track: bool = True
    det_every: int = 1  # detector on every K-th frame; between, poses at the tracks' predicted boxes
    max_frames: int | None = None
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    # with the detector on every frame: frames read and run through the networks together (None: the setup's
    # inference.frame_batch, see common.config.frame_batch)
    frame_batch: int | None = None
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

    With the detector on every frame, frames are read in chunks of ``options.frame_batch`` (by default the
    setup's, see :func:`common.config.frame_batch`: 1 on a CPU or camera) and each chunk goes
    through the pipeline at once (:meth:`TopDownPipeline.process_frames`), then through the tracker frame by
    frame: the same poses and tracks as one frame at a time, up to ``frame_batch`` frames later. Reading is
    timed into ``pipeline.timer`` as stage ``"read"``, tracking as ``"track"``; the pipeline times its own
    stages. Closing the iterator releases the source.
    """
    if options.det_every > 1 and (not options.track or pipeline.estimator is None):
        raise UserError("--det-every needs --track and the pose network (not --pose rcnn)")
    chunk_size = options.frame_batch or frame_batch(pipeline.cfg.inference, source.live)
    tracker = PoseTracker(options.tracking) if options.track else None
    camera = CameraMotion() if options.track and options.camera_motion else None
    frames = source.frames()
    try:
        if options.det_every > 1:
            yield from _followed_frames(frames, pipeline, tracker, camera, options)
        else:
            yield from _detected_frames(frames, pipeline, tracker, camera, options, chunk_size)
    finally:
        frames.close()


def read_chunk(frames: Iterator[Frame], count: int, timer: StageTimer) -> list[Frame]:
    """The next ``count`` frames (fewer at the end of the source), timed as stage ``"read"`` (one call a frame)."""
    started = time.perf_counter()
    chunk = list(itertools.islice(frames, count))
    if chunk:
        timer.add("read", started, len(chunk))
    return chunk


def _detected_frames(
    frames: Iterator[Frame],
    pipeline: TopDownPipeline,
    tracker: PoseTracker | None,
    camera: CameraMotion | None,
    options: LoopOptions,
    chunk_size: int,
) -> Iterator[FramePoses]:
    """The detector on every frame: chunks of ``chunk_size`` frames through the pipeline, then the tracker."""
    count = 0
    while options.max_frames is None or count < options.max_frames:
        left = chunk_size if options.max_frames is None else options.max_frames - count
        chunk = read_chunk(frames, min(chunk_size, left), pipeline.timer)
        if not chunk:
            return
        found = pipeline.process_frames([frame.image for frame in chunk], [frame.index for frame in chunk])
        for frame, poses in zip(chunk, found, strict=True):
            if tracker is None:
                yield FramePoses(frame, poses, None, True)
                continue
            _predict(pipeline, tracker, frame, camera)
            started = time.perf_counter()
            tracked = tracker.update(frame.index, poses)
            pipeline.timer.add("track", started)
            yield FramePoses(frame, tracked.poses, tracked.track_ids, True)
        count += len(chunk)


def _followed_frames(
    frames: Iterator[Frame],
    pipeline: TopDownPipeline,
    tracker: PoseTracker,
    camera: CameraMotion | None,
    options: LoopOptions,
) -> Iterator[FramePoses]:
    """The detector on every ``det_every``-th frame, and in between poses at the tracks' predicted boxes: one
    frame at a time, as each frame's boxes come from the tracks as the frame before left them."""
    since_detection = options.det_every
    count = 0
    while options.max_frames is None or count < options.max_frames:
        chunk = read_chunk(frames, 1, pipeline.timer)
        if not chunk:
            return
        frame = chunk[0]
        since_detection += 1
        detect = since_detection >= options.det_every
        if detect:
            since_detection = 0
        uids, boxes, scores = _predict(pipeline, tracker, frame, camera)
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
        yield FramePoses(frame, tracked.poses, tracked.track_ids, detect)
        count += 1


def _predict(
    pipeline: TopDownPipeline, tracker: PoseTracker, frame: Frame, camera: CameraMotion | None
) -> tuple[list[int], np.ndarray, np.ndarray]:
    """The tracks moved to ``frame`` (with the camera's motion where ``camera`` estimates it), timed as ``"track"``."""
    started = time.perf_counter()
    predicted = tracker.predict(camera(frame.image) if camera is not None else None)
    pipeline.timer.add("track", started)
    return predicted


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
