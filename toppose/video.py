"""Video mode of a run: poses on every frame of a video, a camera or a folder of frames, optionally tracked.

    toppose run VIDEO -o OUT [--track] [--det-every K] [--trails N] [--kinematics] [model options]

writes OUT/results.json (COCO keypoint results; ``image_id`` = frame index from 0, ``timestamp`` in
seconds, and with --track a ``track_id`` (>= 1) on every entry) and, unless --no-draw,
OUT/annotated.mp4 (same size and frame rate as the input, skeletons coloured by track, track ids
beside the people, optional trails); with --kinematics also OUT/kinematics/ (joint angles and speeds
per track, see :mod:`toppose.tracking.kinematics`). With --track, detections down to the tracker's low score
feed the two-stage matching; those below the detector threshold are only kept in the results when
they continue a track. --det-every K runs the detector on every K-th frame and in between estimates
the poses inside the tracks' predicted boxes.

:func:`process_video` runs the frame loop (:func:`toppose.loop.pose_frames`) and writes its outputs,
for callers (benchmarks) that build the source and the pipeline themselves; it returns the frames/s
and per-stage seconds::

    options = video_options(cfg, det_every=5)
    pipeline = build_pipeline(pipeline_config(cfg, options))
    report = process_video(open_source("clip.mp4"), pipeline, options)  # report.fps, report.stage_seconds
"""

from __future__ import annotations

import io
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rich.console import Console

from toppose.common.config import Config
from toppose.common.console import error_console, items_table, progress_bar, stage_rows, summary_table, warn
from toppose.common.errors import EXIT_INTERRUPTED, UserError
from toppose.common.interrupts import terminate_as_interrupt
from toppose.common.jsonio import read_json
from toppose.common.poses import PoseResult
from toppose.loop import LoopOptions, frame_entries, pipeline_config, pose_frames, tracking_config
from toppose.outputs import ResultsWriter
from toppose.pipeline import TopDownPipeline, build_pipeline
from toppose.pose.draw import palette_colour
from toppose.run_folder import write_record
from toppose.runs import PipelineBuilder, RunRequest, load_given_boxes, warn_about_boxes, warn_random_weights
from toppose.sources import CameraSource, FrameSource, is_video_input, open_source
from toppose.tracking.kinematics import report as kinematics_report
from toppose.video_sink import VideoSink

__all__ = [
    "VideoOptions", "VideoReport", "is_video_input", "pipeline_config", "process_video", "run_video", "video_options",
]  # fmt: skip

VIDEO_NAME = "annotated.mp4"
KINEMATICS_DIR = "kinematics"  # --kinematics: the motion analysis of the tracks


@dataclass
class VideoOptions(LoopOptions):
    """How :func:`process_video` runs: the loop's options and what the annotated video draws."""

    trails: int = 0  # frames of each track's path drawn behind it


@dataclass
class TrackSummary:
    """One track over the video."""

    first_frame: int
    last_frame: int
    frames: int = 0
    score_sum: float = 0.0

    @property
    def mean_score(self) -> float:
        return self.score_sum / max(self.frames, 1)


@dataclass
class VideoReport:
    """What a run did, and how fast."""

    source: str
    frames: int = 0  # frames processed
    detector_frames: int = 0  # frames the detector (or the boxes file) was consulted on
    entries: int = 0  # result entries written
    elapsed: float = 0.0  # seconds for the whole loop
    stage_seconds: dict[str, float] = field(default_factory=dict)  # read, detect, crop, pose, decode, track, draw...
    tracks: dict[int, TrackSummary] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    unreadable: int = 0
    interrupted: bool = False
    video_codec: str = ""  # what the annotated video was encoded with (h264, mp4v, MJPG)
    pose: str = ""  # the pose network and how it ran (TopDownEstimator.describe), or the detector's keypoints

    @property
    def fps(self) -> float:
        """Frames processed per second of the loop."""
        return self.frames / max(self.elapsed, 1e-9)


class _Trails:
    """The recent box-bottom centres of each track, drawn as fading polylines."""

    def __init__(self, length: int) -> None:
        self.length = length
        self.points: dict[int, deque[tuple[int, np.ndarray]]] = {}

    def add(self, frame: int, track_ids: np.ndarray, boxes: np.ndarray) -> None:
        for track_id, box in zip(track_ids, boxes, strict=True):
            if track_id >= 0:
                path = self.points.setdefault(int(track_id), deque(maxlen=self.length))
                path.append((frame, np.array([box[0] + box[2] / 2, box[1] + box[3]])))
        self.points = {k: v for k, v in self.points.items() if v and v[-1][0] > frame - self.length}

    def draw(self, image: np.ndarray) -> None:
        thickness = max(1, round(2 * max(image.shape[:2]) / 640))
        for track_id, path in self.points.items():
            points = np.array([p for _, p in path])
            if len(points) > 1:
                cv2.polylines(image, [np.round(points * 16).astype(np.int32)], False, palette_colour(track_id),
                              thickness, cv2.LINE_AA, 4)  # fmt: skip


def _annotate(pipeline: TopDownPipeline, image: np.ndarray, poses: PoseResult, ids: np.ndarray | None) -> np.ndarray:
    if ids is None:
        return pipeline.draw(image, poses)
    return pipeline.draw(image, poses, [str(i) for i in ids], [palette_colour(int(i)) for i in ids])


def process_video(
    source: FrameSource,
    pipeline: TopDownPipeline,
    options: VideoOptions,
    results_path: Path | None = None,
    video_path: Path | None = None,
    console: Console | None = None,
) -> VideoReport:
    """Run ``pipeline`` (and the tracker) over every frame of ``source``.

    Writes the results JSON and the annotated video where their paths are given (atomically, once
    complete); shows progress and warnings on ``console`` if given. Stage times accumulate in
    ``pipeline.timer`` and are returned in the report with the frames/s of the whole loop. Ctrl-C
    (or SIGTERM within :func:`common.interrupts.terminate_as_interrupt`) ends the loop early: the
    outputs then hold the frames done and ``report.interrupted`` is set.
    """
    report = VideoReport(source.name, pose=pipeline.describe_pose())
    timer = pipeline.timer
    trails = _Trails(options.trails) if options.trails > 0 and options.track else None
    total = source.expected_frames if options.max_frames is None else options.max_frames
    with ExitStack() as stack:
        results = ResultsWriter(results_path, stack) if results_path is not None else None
        sink = VideoSink(video_path, source.fps, source.size, stack) if video_path is not None else None
        if sink is not None:
            report.video_codec = sink.codec
            if sink.note is not None and console is not None:
                warn(console, sink.note)
        progress = stack.enter_context(progress_bar(console or Console(file=io.StringIO()), "frames"))
        task = progress.add_task("", total=total, item="")
        frames = pose_frames(source, pipeline, options)
        stack.callback(frames.close)
        started = time.perf_counter()
        try:
            for done in frames:
                frame, poses, ids = done.frame, done.poses, done.track_ids
                report.detector_frames += done.detected
                _record(report, frame.index, poses, ids)
                annotated = None
                if sink is not None:
                    annotated = _annotate(pipeline, frame.image, poses, ids)
                    if trails is not None:
                        draw_started = time.perf_counter()
                        trails.add(frame.index, ids, poses.boxes)
                        trails.draw(annotated)
                        timer.add("draw", draw_started)
                write_started = time.perf_counter()
                if results is not None:
                    results.write(frame_entries(done))
                if annotated is not None:
                    sink.write(annotated)
                timer.add("write", write_started)
                report.frames += 1
                report.elapsed = time.perf_counter() - started
                progress.update(task, advance=1, item=f"{report.fps:.1f} frames/s")
        except KeyboardInterrupt:
            report.interrupted = True  # keep the frames done: the outputs are closed and renamed as usual
        report.elapsed = time.perf_counter() - started
    report.stage_seconds = dict(timer.seconds)
    report.problems = list(source.problems)
    report.unreadable = source.unreadable
    return report


def _record(report: VideoReport, frame: int, poses: PoseResult, ids: np.ndarray | None) -> None:
    report.entries += len(poses)
    if ids is None:
        return
    for track_id, score in zip(ids, poses.scores, strict=True):
        if track_id < 0:
            continue
        summary = report.tracks.setdefault(int(track_id), TrackSummary(frame, frame))
        summary.last_frame = frame
        summary.frames += 1
        summary.score_sum += float(score)


def video_options(
    cfg: Config, track: bool = True, det_every: int = 1, trails: int = 0, max_frames: int | None = None,
    smooth: bool = True, camera_motion: bool = False,
) -> VideoOptions:  # fmt: skip
    """Video options under a model setup (see :func:`toppose.loop.tracking_config`)."""
    return VideoOptions(
        track=track, det_every=det_every, max_frames=max_frames, tracking=tracking_config(cfg, smooth),
        camera_motion=camera_motion, trails=trails,
    )  # fmt: skip


def run_video(request: RunRequest, cfg: Config, record: dict[str, Any], build: PipelineBuilder | None = None) -> int:
    """Estimate (and when tracking, track) the poses of ``request.input`` with a pipeline from ``build`` and write
    ``request.out``, with the setup ``record`` (:mod:`toppose.run_folder`)."""
    out = request.out
    det_every = (request.det_every or cfg.video.det_every) if request.track else 1  # a setup's applies when tracking
    options = video_options(
        cfg, request.track, det_every, request.trails, request.max_frames, request.smooth, request.camera_motion
    )
    run_cfg = pipeline_config(cfg, options)
    console = error_console()
    source = open_source(request.input, request.fps)
    earlier_outputs(out, console)
    boxes = load_given_boxes(request, run_cfg, console)
    if boxes is not None:
        warn_about_boxes(boxes, source.size, console)
    warn_random_weights(request, cfg, console)
    pipeline = (build or build_pipeline)(run_cfg, boxes=boxes, pose=request.pose)
    video = out / VIDEO_NAME if request.draw else None
    write_record(out, record)
    with terminate_as_interrupt():
        report = process_video(source, pipeline, options, out / "results.json", video, console)
    for problem in report.problems:
        warn(console, problem)
    if report.frames == 0:
        raise UserError(f"no frame of {source.name} could be processed")
    stopped = report.interrupted and not isinstance(source, CameraSource)  # a camera runs until it is stopped
    if stopped:
        kept = "results.json" + (f" and {VIDEO_NAME}" if video is not None else "")
        warn(console, f"interrupted after {report.frames} frames: {kept} in {out} hold the frames done")
    print_video_summary(report, out, video)
    if request.kinematics:
        entries = read_json(out / "results.json", "results file")
        analysis = request.kinematics_options
        kinematics = kinematics_report.write_report(entries, out / KINEMATICS_DIR, analysis, console=console)
        Console(highlight=False).print(kinematics_report.summary_table(kinematics))
    return EXIT_INTERRUPTED if stopped else 0


def earlier_outputs(out: Path, console: Console) -> None:
    """Warn when ``out`` holds an earlier run's results or video: this run replaces them (as image runs warn)."""
    found = [name for name in ("results.json", VIDEO_NAME, KINEMATICS_DIR) if (out / name).exists()]
    if found:
        warn(console, f"{out} holds the outputs of an earlier run ({', '.join(found)}): this run replaces them")


def print_video_summary(report: VideoReport, out: Path, video: Path | None) -> None:
    """The per-track table and the run's totals on stdout."""
    console = Console(highlight=False)
    if report.tracks:
        rows = [(str(i), str(t.first_frame), str(t.last_frame), str(t.frames), f"{t.mean_score:.3f}")
                for i, t in sorted(report.tracks.items())]  # fmt: skip
        console.print(items_table("tracks", ("track", "first frame", "last frame", "frames seen", "mean score"), rows))
    rows: list[tuple[str, str]] = [
        ("source", report.source),
        ("pose", report.pose),
        ("frames processed", str(report.frames) + (" (stopped by the user)" if report.interrupted else "")),
        ("frames unreadable", str(report.unreadable)),
        ("detector frames", str(report.detector_frames)),
        ("result entries", str(report.entries)),
        *stage_rows(report.stage_seconds, report.frames, unit="frame"),
        ("throughput", f"{report.fps:.2f} frames/s"),
        ("results", str(out / "results.json")),
    ]
    if video is not None:
        rows.append(("video", f"{video} ({report.video_codec})"))
    if report.tracks:
        rows.insert(5, ("tracks", str(len(report.tracks))))
    console.print(summary_table("toppose video summary", rows))
