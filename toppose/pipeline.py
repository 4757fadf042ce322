"""The per-frame top-down flow: a frame -> person boxes -> poses, with the time of every stage.

Person boxes come from a detector or from precomputed detections (e.g. a COCO detection file);
poses from the heatmap network (``pose="network"``) or from Keypoint R-CNN's own keypoints
(``pose="rcnn"``). The pipeline knows nothing of files, folders or videos: callers feed frames
(OpenCV BGR ``uint8``) with an id, and time their own reading into ``timer`` as stage ``"read"``.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence

import numpy as np

from toppose.common.config import Config
from toppose.common.errors import UserError
from toppose.common.poses import PoseResult
from toppose.common.schema import NUM_KEYPOINTS
from toppose.detector.detections import Detections
from toppose.detector.torchvision_detector import PersonDetector, build_detector
from toppose.pose.checkpoints import build_pose_model
from toppose.pose.draw import Colour, draw_poses
from toppose.pose.inference import StageTimer, TopDownEstimator, instance_scores

POSE_SOURCES = ("network", "rcnn")  # the pose network, or Keypoint R-CNN's own keypoints


class TopDownPipeline:
    """Finds the people of a frame and estimates their poses; stage times accumulate in ``timer``.

    Exactly one of ``detector`` / ``boxes`` gives the person boxes (``boxes`` maps a frame id to its
    detections; a missing id means nobody). Without ``estimator`` the poses are the detector's own
    keypoints (Keypoint R-CNN), scored by box score.
    """

    def __init__(
        self,
        cfg: Config,
        estimator: TopDownEstimator | None,
        detector: PersonDetector | None = None,
        boxes: Mapping[int, Detections] | None = None,
    ) -> None:
        if (detector is None) == (boxes is None):
            raise ValueError("give exactly one of detector and boxes")
        self.cfg = cfg
        self.estimator = estimator
        self.detector = detector
        self.boxes = boxes
        self.timer = estimator.timer if estimator is not None else StageTimer()

    @property
    def pose_source(self) -> str:
        """``"network"`` or ``"rcnn"``."""
        return "network" if self.estimator is not None else "rcnn"

    def describe_pose(self) -> str:
        """Where the poses come from, in one line: the network and how it runs, or the detector's keypoints."""
        return self.estimator.describe() if self.estimator is not None else f"{self.cfg.detector.name} keypoints"

    def estimate(self, frame_bgr: np.ndarray, detections: Detections) -> PoseResult:
        """Poses of the detected people (stages ``"crop"``, ``"pose"``, ``"decode"``), best score first."""
        if self.estimator is not None:
            return self.estimator.estimate(frame_bgr, detections.boxes, detections.scores)
        started = time.perf_counter()
        result = detections_to_pose_result(detections)
        self.timer.add("decode", started)
        return result

    def process(self, frame_bgr: np.ndarray, frame_id: int = 0) -> PoseResult:
        """Everyone's pose in one frame; ``frame_id`` selects the precomputed boxes, if any."""
        return self.process_frames([frame_bgr], [frame_id])[0]

    def find_people(self, frames_bgr: Sequence[np.ndarray], frame_ids: Sequence[int]) -> list[Detections]:
        """The person detections of each frame (stage ``"detect"``): the precomputed boxes of its id, or the detector's,
        run once on each run of consecutive frames of one size (frames of different sizes would be padded to a common
        one, which moves the detections near the edges)."""
        started = time.perf_counter()
        if self.detector is None:
            detections = [self.boxes.get(frame_id, Detections.empty()) for frame_id in frame_ids]
        else:
            detections = []
            for _, run in itertools.groupby(frames_bgr, key=lambda frame: frame.shape):
                detections += self.detector.detect_batch(list(run))
        self.timer.add("detect", started, len(frames_bgr))
        return detections

    def process_frames(self, frames_bgr: Sequence[np.ndarray], frame_ids: Sequence[int]) -> list[PoseResult]:
        """Everyone's pose in each of several frames at once (a chunk of a video or a folder): the detector on
        batches of frames, the pose network on the crops of all of them together; each frame's result is what the
        frame gives alone (within float rounding of the batches' sizes); ``frame_ids`` select precomputed boxes."""
        detections = self.find_people(frames_bgr, frame_ids)
        if self.estimator is None:
            return [self.estimate(frame, found) for frame, found in zip(frames_bgr, detections, strict=True)]
        return self.estimator.estimate_frames(
            frames_bgr, [found.boxes for found in detections], [found.scores for found in detections]
        )

    def draw(
        self,
        frame_bgr: np.ndarray,
        result: PoseResult,
        labels: Sequence[str] | None = None,
        colours: Sequence[Colour] | None = None,
    ) -> np.ndarray:
        """An annotated copy of the frame (stage ``"draw"``); see :func:`pose.draw.draw_poses`."""
        started = time.perf_counter()
        annotated = draw_poses(frame_bgr, result, colours, self.cfg.inference.keypoint_score_threshold, labels)
        self.timer.add("draw", started)
        return annotated


def build_pipeline(
    cfg: Config,
    boxes: Mapping[int, Detections] | None = None,
    pose: str = "network",
    pretrained_detector: bool = True,
) -> TopDownPipeline:
    """A pipeline on ``cfg.inference.device``: the pose network of ``cfg.model`` (``pose="network"``)
    or Keypoint R-CNN's keypoints (``pose="rcnn"``), fed by ``boxes`` or else the detector ``cfg.detector``.

    ``pretrained_detector=False`` keeps the detector's random weights (tests and speed benchmarks only).
    Unavailable weights raise :class:`common.errors.MissingWeightsError`; bad ones a :class:`UserError`.
    """
    if pose not in POSE_SOURCES:
        raise UserError(f"unknown pose source '{pose}' (choose from {', '.join(POSE_SOURCES)})")
    device = cfg.inference.device
    estimator = None
    if pose == "rcnn":
        if boxes is not None:
            raise UserError("--pose rcnn takes keypoints from the Keypoint R-CNN detector; it cannot use --boxes")
        if not cfg.detector.name.startswith("keypointrcnn"):
            raise UserError(f"--pose rcnn needs a keypointrcnn detector, not '{cfg.detector.name}'")
    else:
        model = build_pose_model(cfg.model, device=device, split_ratio=cfg.codec.split_ratio)
        estimator = TopDownEstimator(model, cfg, device, optimize=True)
    detector = None
    if boxes is None:  # Keypoint R-CNN's keypoint head runs only where its keypoints are the poses
        detector = build_detector(cfg.detector, device, pretrained_detector, keypoints=estimator is None)
    return TopDownPipeline(cfg, estimator, detector, boxes)


def detections_to_pose_result(detections: Detections, keypoint_threshold: float | None = None) -> PoseResult:
    """Keypoint R-CNN's own keypoints as a :class:`PoseResult` (keypoint confidence = sigmoid of its score).

    The instance score is the box score, as in torchvision's own COCO evaluation of Keypoint R-CNN;
    with ``keypoint_threshold`` it is rescored like the top-down estimator
    (:func:`pose.inference.instance_scores`: box score x mean confident-keypoint confidence).
    """
    if detections.keypoints is None:
        raise UserError("these detections carry no keypoints: the rcnn pose baseline needs the keypointrcnn detector")
    if len(detections) == 0:
        return PoseResult.empty()
    keypoints = detections.keypoints.reshape(-1, NUM_KEYPOINTS, 3)
    scores = detections.scores.copy()
    if keypoint_threshold is not None:
        scores = instance_scores(detections.scores, keypoints[..., 2], keypoint_threshold)
    order = np.argsort(-scores, kind="stable")
    result = PoseResult(detections.boxes.copy(), detections.scores.copy(), keypoints.copy(), scores)
    return result.select(order)
