"""The per-frame pipeline: box sources (detector or precomputed), pose sources (network or Keypoint R-CNN)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from toppose.common.config import Config
from toppose.common.errors import UserError
from toppose.common.schema import NUM_KEYPOINTS
from toppose.detector.detections import Detections
from toppose.pose.inference import TopDownEstimator
from toppose.pose.models import SimpleBaseline

from toppose.pipeline import TopDownPipeline, build_pipeline


@pytest.fixture
def frame() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8)


@pytest.fixture
def small_cfg() -> Config:
    cfg = Config()
    cfg.model.backbone, cfg.model.weights = "resnet18", ""
    cfg.model.input_size, cfg.model.heatmap_size = (64, 96), (16, 24)
    return cfg


class FakeDetector:
    """Stands in for Keypoint R-CNN: fixed detections with keypoints."""

    def __init__(self, detections: Detections) -> None:
        self.detections = detections
        self.frames = 0

    def detect_batch(self, frames_bgr: list[np.ndarray]) -> list[Detections]:
        self.frames += len(frames_bgr)
        return [self.detections for _ in frames_bgr]


def test_precomputed_boxes_feed_the_network(frame: np.ndarray, small_cfg: Config) -> None:
    torch.manual_seed(0)
    estimator = TopDownEstimator(SimpleBaseline("resnet18", deconv_channels=32), small_cfg)
    boxes = {5: Detections(np.array([[10.0, 10.0, 40.0, 90.0], [100.0, 20.0, 50.0, 90.0]]), np.array([0.9, 0.7]))}
    pipeline = TopDownPipeline(small_cfg, estimator, boxes=boxes)
    assert pipeline.pose_source == "network"
    result = pipeline.process(frame, 5)
    assert len(result) == 2 and result.keypoints.shape == (2, NUM_KEYPOINTS, 3)
    assert sorted(result.box_scores.tolist()) == [0.7, 0.9]
    assert len(pipeline.process(frame, 6)) == 0  # an id without boxes has nobody
    pipeline.draw(frame, result)
    assert {"detect", "crop", "pose", "decode", "draw"} <= set(pipeline.timer.seconds)
    assert pipeline.timer.calls["detect"] == 2 and pipeline.timer.calls["pose"] == 1


def test_rcnn_poses_are_the_detector_keypoints(frame: np.ndarray, small_cfg: Config) -> None:
    keypoints = np.random.default_rng(1).uniform(0, 100, (2, NUM_KEYPOINTS, 3))
    keypoints[..., 2] = 0.8
    detections = Detections(np.array([[0.0, 0, 50, 100], [60, 0, 50, 100]]), np.array([0.6, 0.95]), keypoints)
    detector = FakeDetector(detections)
    pipeline = TopDownPipeline(small_cfg, None, detector=detector)
    assert pipeline.pose_source == "rcnn"
    result = pipeline.process(frame)
    assert detector.frames == 1
    np.testing.assert_array_equal(result.scores, [0.95, 0.6])  # box scores, best first
    np.testing.assert_array_equal(result.keypoints, keypoints[[1, 0]])


def test_rcnn_without_keypoints_is_a_user_error(frame: np.ndarray, small_cfg: Config) -> None:
    detector = FakeDetector(Detections(np.array([[0.0, 0, 50, 100]]), np.array([0.9])))
    with pytest.raises(UserError, match="no keypoints"):
        TopDownPipeline(small_cfg, None, detector=detector).process(frame)


def test_exactly_one_box_source(small_cfg: Config) -> None:
    with pytest.raises(ValueError):
        TopDownPipeline(small_cfg, None)
    with pytest.raises(ValueError):
        TopDownPipeline(small_cfg, None, detector=FakeDetector(Detections.empty()), boxes={})


@pytest.mark.parametrize(
    ("pose", "detector_name", "boxes", "message"),
    [
        ("rcnn", "keypointrcnn_resnet50_fpn", {}, "cannot use --boxes"),
        ("rcnn", "fasterrcnn_resnet50_fpn", None, "needs a keypointrcnn detector"),
        ("heatmaps", "keypointrcnn_resnet50_fpn", {}, "unknown pose source"),
    ],
)
def test_build_rejects_inconsistent_options(
    small_cfg: Config, pose: str, detector_name: str, boxes: dict | None, message: str
) -> None:
    small_cfg.detector.name = detector_name
    with pytest.raises(UserError, match=message):
        build_pipeline(small_cfg, boxes=boxes, pose=pose)


def test_build_with_boxes_has_no_detector(small_cfg: Config, frame: np.ndarray) -> None:
    pipeline = build_pipeline(small_cfg, boxes={1: Detections(np.array([[20.0, 10, 40, 90]]), np.ones(1))})
    assert pipeline.detector is None and pipeline.estimator.optimized
    assert len(pipeline.process(frame, 1)) == 1


@pytest.mark.slow
def test_random_keypoint_rcnn_end_to_end(frame: np.ndarray, small_cfg: Config) -> None:
    small_cfg.detector.max_people, small_cfg.detector.score_threshold = 3, 0.0
    torch.manual_seed(0)
    pipeline = build_pipeline(small_cfg, pose="rcnn", pretrained_detector=False)
    model = pipeline.detector.model  # keep the random network's work small: a tiny input, 3 boxes
    model.transform.min_size, model.transform.max_size = (120,), 160
    model.roi_heads.detections_per_img = 3
    result = pipeline.process(frame)
    assert len(result) == 3 and result.keypoints.shape == (len(result), NUM_KEYPOINTS, 3)
    assert np.all((result.keypoints[..., 2] >= 0) & (result.keypoints[..., 2] <= 1))
    assert "pose" not in pipeline.timer.seconds and pipeline.timer.calls["detect"] == 1
