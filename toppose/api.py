"""The Python API: one import, one call.

    from toppose import PoseEstimator

    estimator = PoseEstimator("fast")                 # a named setup, a config file, or a Config
    for person in estimator("photo.jpg"):             # a path or a BGR uint8 array (rgb=True for RGB)
        print(person.box, person.score, person.keypoint("left_knee"))

    for people in estimator.estimate_all(paths):      # many images, frame_batch at a time (8 on a GPU)
        ...

    for frame in estimator.track("clip.mp4"):         # a video file, a folder of frames or a camera index
        for person in frame.people:
            print(frame.timestamp, person.track_id, person.keypoints[:, :2])

The estimator is the pipeline ``run.py`` runs (:class:`toppose.pipeline.TopDownPipeline`), and
:meth:`PoseEstimator.track` iterates the same frame loop as ``run.py VIDEO --track``
(:func:`toppose.loop.pose_frames`). Bad input raises :class:`common.errors.UserError` with one line
saying what and where; weights that cannot be found raise :class:`common.errors.MissingWeightsError`.
"""

from __future__ import annotations

import copy
import itertools
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from toppose.common import checks
from toppose.common.config import Config, frame_batch
from toppose.common.images import read_image
from toppose.common.keypoint_sets import KeypointSet, set_of_size
from toppose.common.poses import PoseResult
from toppose.detector import Detections
from toppose.loop import LoopOptions, pipeline_config, pose_frames, tracking_config
from toppose.pipeline import TopDownPipeline, build_pipeline
from toppose.pose.named_setups import build_config, setup_file
from toppose.runs import RunRequest
from toppose.sources import Frame, open_source

ImageInput = str | os.PathLike[str] | np.ndarray


@dataclass(frozen=True)
class Person:
    """One person in one image: ``keypoints`` is ``(K, 3)`` x, y (image pixels), confidence, in the order of the
    setup's keypoint set (COCO-17 by default; :mod:`toppose.common.keypoint_sets`)."""

    box: np.ndarray  # (4,) x, y, width, height: the box the crop was built from
    box_score: float
    keypoints: np.ndarray
    score: float  # box score x mean confidence of the confident keypoints
    track_id: int | None = None  # >= 1 when tracked

    @property
    def keypoint_set(self) -> KeypointSet:
        """The keypoint set of ``keypoints`` (recognised by their number)."""
        found = set_of_size(len(self.keypoints))
        assert found is not None, "a person of an estimator has the keypoints of one of the sets"
        return found

    def keypoint(self, name: str) -> np.ndarray:
        """``(3,)`` x, y, confidence of the keypoint ``name`` (e.g. ``"left_knee"``, ``"left_heel"`` in Halpe-26,
        ``"right_thumb4"`` in COCO-WholeBody; ``keypoint_set.names`` lists them)."""
        return self.keypoints[self.keypoint_set.index(name)]


@dataclass(frozen=True)
class VideoFrame:
    """One frame of a video, its time stamp in seconds and the people in it."""

    index: int
    timestamp: float
    image: np.ndarray  # BGR uint8
    people: list[Person]


def people_of(poses: PoseResult, track_ids: np.ndarray | None = None) -> list[Person]:
    """A pose result as :class:`Person` objects (best score first, as given)."""
    return [
        Person(
            poses.boxes[i].copy(),
            float(poses.box_scores[i]),
            poses.keypoints[i].copy(),
            float(poses.scores[i]),
            None if track_ids is None else int(track_ids[i]),
        )  # fmt: skip
        for i in range(len(poses))
    ]


def config_of(setup: str | os.PathLike[str] | Config | None, overrides: list[tuple[str, Any, str]]) -> Config:
    """The config of a named setup, a config file or a :class:`Config` (``None``: the default setup)."""
    if isinstance(setup, Config):
        return build_config(None, overrides, base=setup)
    return build_config(None if setup is None else setup_file(setup), overrides)


class PoseEstimator:
    """People and their keypoints in images and videos, from a setup and its weights.

    ``setup`` is a named setup (``"fast"``, ``"balanced"``, ``"accurate"``), a config file, a
    :class:`Config`, or ``None`` for the default (``configs/rtmpose_m_256x192.toml``). ``weights`` (a
    registry name or a checkpoint file) replaces the setup's pose weights; what the weights record or
    imply (family, input size, convention, channel order, codec) completes the setup. ``settings``
    overrides any config field by its dotted name, e.g. ``{"inference.batch_size": 8}``.
    """

    def __init__(
        self,
        setup: str | os.PathLike[str] | Config | None = None,
        *,
        weights: str | os.PathLike[str] | None = None,
        device: str | None = None,
        precision: str | None = None,
        flip_test: bool | None = None,
        settings: Mapping[str, Any] | None = None,
        pretrained_detector: bool = True,
    ) -> None:
        overrides = [
            ("model.weights", None if weights is None else os.fspath(weights), "weights"),
            ("inference.device", device, "device"),
            ("inference.precision", precision, "precision"),
            ("inference.flip_test", flip_test, "flip_test"),
            *((dotted, value, f"settings[{dotted!r}]") for dotted, value in (settings or {}).items()),
        ]
        self.config = config_of(setup, overrides)
        self.pipeline: TopDownPipeline = build_pipeline(self.config, pretrained_detector=pretrained_detector)

    def __call__(self, image: ImageInput, boxes: np.ndarray | None = None, rgb: bool = False) -> list[Person]:
        """The people in ``image``: a file path, or an ``(H, W, 3)`` uint8 array in BGR order (``rgb=True``: RGB).

        ``boxes`` (``(N, 4)`` x, y, width, height, or ``(N, 5)`` with a box score in [0, 1] after them) skips the
        detector: one pose per box, checked as a boxes file's are (:func:`toppose.common.checks.person_boxes`).
        """
        frame = as_bgr(image, rgb)
        if boxes is None:
            return people_of(self.pipeline.process(frame))
        xywh, scores = checks.person_boxes(boxes)
        scores = np.ones(len(xywh)) if scores is None else scores
        return people_of(self.pipeline.estimate(frame, Detections(xywh, scores)))

    def estimate_all(self, images: Iterable[ImageInput], rgb: bool = False) -> Iterator[list[Person]]:
        """The people in each of ``images`` (paths or arrays, as :meth:`__call__` takes them), in order, as they are
        done: images are read and run through the networks ``inference.frame_batch`` at a time (by default 8 on a
        GPU, 1 on a CPU; see :func:`toppose.common.config.frame_batch`), so no more than that are held at once."""
        count = frame_batch(self.config.inference)
        pending = iter(images)
        while chunk := [as_bgr(image, rgb) for image in itertools.islice(pending, count)]:
            for poses in self.pipeline.process_frames(chunk, [0] * len(chunk)):
                yield people_of(poses)

    def track(
        self,
        source: str | os.PathLike[str] | int,
        *,
        det_every: int | None = None,
        camera_motion: bool = False,
        smooth: bool = True,
        fps: float | None = None,
        max_frames: int | None = None,
    ) -> Iterator[VideoFrame]:
        """The tracked people of every frame of a video file, a folder of frames or a camera (an index).

        Tracks carry ids >= 1 and smoothed keypoints, as in ``run.py VIDEO --track``; ``det_every`` runs
        the detector on every K-th frame only (default: the setup's ``video.det_every``).
        """
        request = RunRequest(source, Path(), track=True, det_every=det_every, fps=fps, max_frames=max_frames,
                             smooth=smooth, camera_motion=camera_motion)  # fmt: skip
        request.check_values()  # as the command line checks them
        every = self.config.video.det_every if det_every is None else det_every
        options = LoopOptions(
            track=True, det_every=every, max_frames=max_frames, tracking=tracking_config(self.config, smooth),
            camera_motion=camera_motion,
        )  # fmt: skip
        pipeline = self.pipeline
        if pipeline.detector is not None:  # low-score boxes feed the tracker's second matching
            run_cfg = pipeline_config(self.config, options)
            detector = copy.copy(pipeline.detector)
            detector.cfg = run_cfg.detector
            pipeline = TopDownPipeline(run_cfg, pipeline.estimator, detector)
        for done in pose_frames(open_source(source, fps), pipeline, options):
            frame: Frame = done.frame
            yield VideoFrame(frame.index, frame.timestamp, frame.image, people_of(done.poses, done.track_ids))


def as_bgr(image: ImageInput, rgb: bool = False) -> np.ndarray:
    """A BGR uint8 frame from a path or an array (grey, BGR, or RGB with ``rgb``)."""
    if isinstance(image, str | os.PathLike):
        return read_image(image)
    image = checks.image_array(image)
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(image[..., ::-1] if rgb else image)
