"""A run over any input: what to run (:class:`RunRequest`), and the checks and warnings shared by the image and the
video mode (:mod:`toppose.runner` runs a request).

The command line (``toppose run``, ``python run.py``) builds a request from its flags; the Python API and the
batch tools build it directly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from toppose.common import checks
from toppose.common.config import Config
from toppose.common.console import warn
from toppose.common.errors import UserError
from toppose.detector.boxes_file import BoxesByImage, boxes_outside, load_boxes
from toppose.pipeline import TopDownPipeline
from toppose.sources import Input, is_camera_index, is_video_input
from toppose.tracking.kinematics.options import KinematicsOptions

LISTED = 3  # boxes (or frames) named in a warning; the rest are counted
# How a run gets its pipeline, with build_pipeline's signature (cfg, boxes=..., pose=...); None: build_pipeline. The
# batch workers pass one that reuses the networks an earlier run in the same process loaded.
PipelineBuilder = Callable[..., TopDownPipeline]


@dataclass
class RunRequest:
    """What one run does: its input, its output folder, and the options of the image and the video mode."""

    input: Input
    out: Path
    boxes: Path | None = None  # COCO detection results used instead of the detector
    ann: Path | None = None  # image mode: a COCO annotation file giving the image ids
    resume: bool = False  # image mode: continue an interrupted run into ``out``
    draw: bool = True  # annotated images or video
    pose: str = "network"  # "network", or "rcnn": Keypoint R-CNN's own keypoints
    track: bool = False
    det_every: int | None = None  # with track: the detector on every K-th frame (None: the setup's)
    trails: int = 0
    smooth: bool = True
    camera_motion: bool = False
    kinematics: bool = False
    kinematics_options: KinematicsOptions | None = None  # with kinematics: the analysis's options (None: defaults)
    fps: float | None = None  # frame rate of image frames or a camera
    max_frames: int | None = None

    @property
    def video_mode(self) -> bool:
        """Videos and cameras always, folders of frames when tracking."""
        return self.track or is_video_input(self.input)

    def check_values(self) -> None:
        """Each option within its range, checked as the command line checks its flags (:mod:`toppose.common.checks`)."""
        if is_camera_index(self.input):
            checks.camera_index(
                int(self.input if isinstance(self.input, int) else os.fspath(self.input)), "camera index"
            )
        if self.det_every is not None:
            checks.int_at_least(self.det_every, 1, "det_every")
        if self.max_frames is not None:
            checks.int_at_least(self.max_frames, 1, "max_frames")
        if self.fps is not None:
            checks.positive_number(self.fps, "fps")
        checks.int_at_least(self.trails, 0, "trails")

    def check(self) -> None:
        """The request's values and their consistency; one :class:`UserError` line for the first problem."""
        self.check_values()
        path_input = isinstance(self.input, str | os.PathLike) and not is_camera_index(self.input)
        if path_input and not Path(self.input).exists():
            raise UserError(f"no such file, folder or camera: {self.input}")
        if self.video_mode:
            if self.ann is not None:
                raise UserError("--ann applies to image folders; video frames are numbered from 0")
            if self.resume:
                raise UserError("--resume applies to image folders; a video run starts from its first frame")
        tracked_only = self.det_every is not None or self.trails or not self.smooth or self.camera_motion
        if not self.track and (tracked_only or self.kinematics):
            raise UserError("--det-every, --trails, --no-smooth, --camera-motion and --kinematics need --track")


def load_given_boxes(request: RunRequest, cfg: Config, console: Console) -> BoxesByImage | None:
    """The boxes file of the request (``None``: none given), its problems warned about."""
    if request.boxes is None:
        return None
    boxes = load_boxes(request.boxes, min_score=cfg.detector.score_threshold, max_people=cfg.detector.max_people)
    for problem in boxes.problems:
        warn(console, problem)
    return boxes


def warn_random_weights(request: RunRequest, cfg: Config, console: Console) -> None:
    """Say so when the pose network will run with random weights: its keypoints then mean nothing."""
    if request.pose == "network" and not cfg.model.weights:
        warn(console, "the pose network has random weights (model.weights is empty): its keypoints mean nothing")


def warn_about_boxes(
    boxes: BoxesByImage, size: Sequence[int], console: Console, image: tuple[str, int] | None = None
) -> None:
    """Warn where given boxes lie wholly outside frames of ``size`` (width, height): those of one ``image`` (its
    name and id), listing the boxes, or (``None``) every frame of a video, listing the frames."""
    if image is not None:
        found = boxes_outside(boxes.get(image[1]), *size)
        listed = ", ".join(str(box) for box in found[:LISTED]) + (" ..." if len(found) > LISTED else "")
        if found:
            warn(console, f"{image[0]}: {len(found)} boxes lie outside its {size[0]}x{size[1]} image: {listed}")
        return
    frames = sorted(i for i, detections in boxes.items() if boxes_outside(detections, *size))
    if frames:
        listed = ", ".join(str(i) for i in frames[:5]) + (" ..." if len(frames) > 5 else "")
        warn(console, f"boxes lie outside the {size[0]}x{size[1]} frame in {len(frames)} frame(s): {listed}")
