"""Person detector: post-processing, frame conversion, architectures, weights loading, the offline error."""

from __future__ import annotations

import copy
import os
import subprocess
import sys
import urllib.error
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from toppose.common.config import DetectorConfig
from toppose.common.errors import MissingWeightsError, UserError
from toppose.detector import (
    ARCHITECTURES,
    Detections,
    PersonDetector,
    build_detector,
    default_weights_file,
    folding,
    person_detections,
    torchvision_detector,
)
from toppose.pose.inference import instance_scores
from torch import nn
from torchvision.models import WeightsEnum

from toppose.pipeline import detections_to_pose_result

ROOT = Path(__file__).resolve().parent.parent
FAST = "fasterrcnn_mobilenet_v3_large_320_fpn"
SSDLITE = "ssdlite320_mobilenet_v3_large"


def fake_output(boxes: list, labels: list, scores: list, keypoints: bool = False) -> dict[str, torch.Tensor]:
    """A torchvision-style detector output for one image (boxes as x1, y1, x2, y2)."""
    n = len(scores)
    output = {
        "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(n, 4),
        "labels": torch.tensor(labels, dtype=torch.int64),
        "scores": torch.tensor(scores, dtype=torch.float32),
    }
    if keypoints:
        xy = torch.arange(n * 17 * 2, dtype=torch.float32).reshape(n, 17, 2)
        output["keypoints"] = torch.cat([xy, torch.ones(n, 17, 1)], dim=-1)
        output["keypoints_scores"] = torch.linspace(-5, 5, n * 17).reshape(n, 17)
    return output


def test_post_processing_keeps_people_above_threshold_after_nms() -> None:
    cfg = DetectorConfig(score_threshold=0.5, nms_threshold=0.5, max_people=30)
    output = fake_output(
        boxes=[[0, 0, 10, 20], [1, 0, 11, 20], [50, 50, 60, 80], [0, 0, 10, 20], [100, 0, 110, 10]],
        labels=[1, 1, 1, 3, 1],
        scores=[0.8, 0.9, 0.6, 0.99, 0.4],
    )
    det = person_detections(output, cfg)
    # box 1 suppresses its overlapping, lower-scored twin; the car (label 3) and the 0.4 person go.
    np.testing.assert_allclose(det.scores, [0.9, 0.6], rtol=1e-6)
    np.testing.assert_allclose(det.boxes, [[1, 0, 10, 20], [50, 50, 10, 30]])
    assert det.boxes.dtype == np.float64 and det.scores.dtype == np.float64
    assert det.keypoints is None and det.keypoint_logits is None


def test_nms_is_class_agnostic_over_people_and_max_people_caps() -> None:
    boxes = [[i * 100, 0, i * 100 + 50, 90] for i in range(5)]
    output = fake_output(boxes, [1] * 5, [0.6, 0.9, 0.7, 0.8, 0.95])
    det = person_detections(output, DetectorConfig(score_threshold=0.0, max_people=3))
    np.testing.assert_allclose(det.scores, [0.95, 0.9, 0.8], rtol=1e-6)
    assert len(person_detections(output, DetectorConfig(score_threshold=0.0, max_people=0))) == 5
    overlapping = fake_output([[0, 0, 50, 90], [2, 0, 52, 90]], [1, 1], [0.7, 0.8])
    assert len(person_detections(overlapping, DetectorConfig(score_threshold=0.0, nms_threshold=0.5))) == 1
    assert len(person_detections(overlapping, DetectorConfig(score_threshold=0.0, nms_threshold=0.99))) == 2


def test_keypoints_get_sigmoid_confidence_and_keep_raw_logits() -> None:
    output = fake_output([[0, 0, 10, 20], [30, 0, 40, 20]], [1, 1], [0.6, 0.9], keypoints=True)
    det = person_detections(output, DetectorConfig(score_threshold=0.0))
    assert det.keypoints.shape == (2, 17, 3) and det.keypoint_logits.shape == (2, 17)
    raw = output["keypoints_scores"].double().numpy()[[1, 0]]  # best box first
    np.testing.assert_allclose(det.keypoint_logits, raw)
    np.testing.assert_allclose(det.keypoints[..., 2], 1.0 / (1.0 + np.exp(-raw)), rtol=1e-12)
    np.testing.assert_allclose(det.keypoints[..., :2], output["keypoints"][[1, 0], :, :2].double().numpy())
    empty = person_detections(fake_output([], [], [], keypoints=True), DetectorConfig())
    assert empty.boxes.shape == (0, 4) and empty.keypoints.shape == (0, 17, 3)


class RecordingModel(nn.Module):
    """Stands in for a torchvision detector: records its inputs, finds one person per image."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[torch.Tensor] = []

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        self.inputs = images
        return [fake_output([[1, 2, 4, 8]], [1], [0.9]) for _ in images]


def test_frames_reach_the_network_as_rgb_unit_floats() -> None:
    model = RecordingModel()
    detector = PersonDetector(model, DetectorConfig())
    frame = np.zeros((6, 5, 3), np.uint8)
    frame[..., 0] = 255  # blue in OpenCV's BGR order
    results = detector.detect_batch([frame, np.full((4, 7, 3), 51, np.uint8)])
    assert [tuple(x.shape) for x in model.inputs] == [(3, 6, 5), (3, 4, 7)]
    image = model.inputs[0]
    assert image.dtype == torch.float32
    assert torch.all(image[2] == 1.0) and torch.all(image[:2] == 0.0)  # RGB: blue is the last channel
    assert torch.allclose(model.inputs[1], torch.full((3, 4, 7), 0.2))
    assert len(results) == 2 and all(len(r) == 1 for r in results)
    np.testing.assert_allclose(detector.detect(frame).boxes, [[1, 2, 3, 6]])
    assert detector.detect_batch([]) == []
    with pytest.raises(ValueError, match="uint8 BGR frame"):
        detector.detect(np.zeros((6, 5), np.uint8))


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_every_architecture_builds_with_random_weights(name: str) -> None:
    detector = build_detector(DetectorConfig(name=name, score_threshold=0.3), pretrained=False)
    assert not detector.model.training
    if name == SSDLITE:  # one stage: no region heads, the threshold is the model's
        assert detector.model.score_thresh == 0.3
        return
    heads = detector.model.roi_heads
    assert heads.score_thresh == 0.3 and not heads.has_mask()
    assert heads.has_keypoint() == (name == "keypointrcnn_resnet50_fpn")


@pytest.mark.parametrize("name", ["keypointrcnn_resnet50_fpn", FAST, SSDLITE])
def test_random_detector_runs_on_a_small_frame(name: str) -> None:
    torch.manual_seed(0)
    detector = build_detector(DetectorConfig(name=name, score_threshold=0.0, max_people=4), pretrained=False)
    model = detector.model  # keep the random network cheap: small input, few proposals and boxes
    if name == SSDLITE:  # a fixed 320x320 input; its top 6 boxes
        model.detections_per_img = 6
    else:
        model.transform.min_size, model.transform.max_size = (96,), 128
        model.rpn._post_nms_top_n["testing"], model.roi_heads.detections_per_img = 100, 6
    frame = np.random.default_rng(0).integers(0, 256, (72, 96, 3), dtype=np.uint8)
    for det in detector.detect_batch([frame, frame[:48]]):
        assert isinstance(det, Detections) and len(det) <= 4
        assert det.boxes.shape == (len(det), 4) and det.scores.shape == (len(det),)
        assert np.all(det.boxes[:, 2:] >= 0) and np.all(np.diff(det.scores) <= 0)
        if name == "keypointrcnn_resnet50_fpn":  # two classes: random scores are high enough to pass
            assert len(det) == 4 and det.keypoints.shape == (4, 17, 3)
            assert np.all((det.keypoints[..., 2] >= 0) & (det.keypoints[..., 2] <= 1))
        else:
            assert det.keypoints is None


@pytest.fixture
def offline_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub dir; downloads fail the way they do without a network."""
    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(hub))

    def offline(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
        raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return hub


def test_default_weights_come_from_the_hub_cache_like_torchvision(
    offline_hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our weights=None build + cached state dict equals torchvision's own pretrained build (frozen BN, eps)."""
    name = "fasterrcnn_resnet50_fpn"
    torch.manual_seed(0)
    state = torchvision_detector.build_model(name, pretrained=False).state_dict()
    state = {k: torch.rand_like(v) + 0.5 if k.endswith("running_var") else v for k, v in state.items()}
    cached = offline_hub / "checkpoints" / default_weights_file(name)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")  # present in the cache: no download; its reading is replaced below
    read = mock.Mock(return_value=state)
    monkeypatch.setattr("toppose.common.weights.read_checkpoint", read)
    ours = torchvision_detector.build_model(name)  # as loaded, before build_detector folds its batch norms
    read.assert_called_once_with(cached)
    with mock.patch.object(WeightsEnum, "get_state_dict", lambda self, *args, **kwargs: state):
        reference = ARCHITECTURES[name].builder(weights=ARCHITECTURES[name].weights).eval()
    image = torch.rand(1, 3, 64, 64)
    with torch.inference_mode():
        for level, features in ours.backbone(image).items():
            torch.testing.assert_close(features, reference.backbone(image)[level], rtol=0, atol=0)


def test_offline_without_cache_is_one_line_missing_weights(offline_hub: Path) -> None:
    name = "keypointrcnn_resnet50_fpn"
    with pytest.raises(MissingWeightsError) as info:
        build_detector(DetectorConfig(name=name))
    message = str(info.value)
    file_name = default_weights_file(name)
    assert file_name == "keypointrcnn_resnet50_fpn_coco-fc266e95.pth"
    assert "\n" not in message and info.value.exit_code == 2
    assert str(offline_hub / "checkpoints" / file_name) in message
    assert "https://download.pytorch.org/models/" + file_name in message


def test_offline_cli_exits_2_with_one_error_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k.lower() not in ("no_proxy", "https_proxy", "http_proxy")}
    env.update(TORCH_HOME=str(tmp_path), HTTPS_PROXY="http://127.0.0.1:9", https_proxy="http://127.0.0.1:9")
    code = (
        "from toppose.common.errors import run_cli\n"
        "from toppose.common.config import DetectorConfig\n"
        "from toppose.detector import build_detector\n"
        f"run_cli(lambda argv: build_detector(DetectorConfig(name='{FAST}')) and 0)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in proc.stderr
    assert default_weights_file(FAST) in lines[0] and str(tmp_path / "hub" / "checkpoints") in lines[0]


def test_local_weights_file_loads_and_mismatches_are_user_errors(tmp_path: Path) -> None:
    torch.manual_seed(1)
    state = torchvision_detector.build_model(FAST, pretrained=False).state_dict()
    good = tmp_path / "finetuned.pth"
    torch.save({"model": state, "epoch": 26}, good)
    loaded = torchvision_detector.build_model(FAST, weights=str(good)).state_dict()  # as loaded, before folding
    assert all(torch.equal(loaded[k], v) for k, v in state.items())

    wrong = tmp_path / "wrong.pth"
    torch.save({"backbone.body.0.weight": torch.zeros(1), **{k: v for k, v in list(state.items())[1:]}}, wrong)
    with pytest.raises(UserError, match=r"wrong\.pth: .*missing 1 keys: backbone\.body\.0\.0\.weight") as info:
        build_detector(DetectorConfig(name=FAST, weights=str(wrong)))
    assert not isinstance(info.value, MissingWeightsError)
    extra = tmp_path / "extra.pth"
    torch.save({**state, "roi_heads.mask_head.0.weight": torch.zeros(1)}, extra)
    with pytest.raises(UserError, match=r"extra\.pth: .*unexpected keys: roi_heads\.mask_head\.0\.weight"):
        build_detector(DetectorConfig(name=FAST, weights=str(extra)))
    with pytest.raises(UserError, match="checkpoint file not found"):
        build_detector(DetectorConfig(name=FAST, weights=str(tmp_path / "absent.pth")))


def test_unknown_detector_name_lists_the_choices() -> None:
    with pytest.raises(UserError, match="unknown detector 'yolo'.*keypointrcnn_resnet50_fpn"):
        build_detector(DetectorConfig(name="yolo"), pretrained=False)


def _keypoint_detections() -> Detections:
    rng = np.random.default_rng(3)
    keypoints = np.concatenate([rng.uniform(0, 100, (3, 17, 2)), rng.uniform(0, 1, (3, 17, 1))], axis=-1)
    boxes = np.array([[0, 0, 10, 20], [5, 5, 10, 20], [50, 0, 30, 60]], dtype=np.float64)
    return Detections(boxes, np.array([0.9, 0.8, 0.7]), keypoints, np.zeros((3, 17)))


def test_rcnn_pose_result_scores_like_torchvision_or_rescored() -> None:
    det = _keypoint_detections()
    result = detections_to_pose_result(det)
    np.testing.assert_array_equal(result.scores, det.scores)
    np.testing.assert_array_equal(result.keypoints, det.keypoints)
    np.testing.assert_array_equal(result.boxes, det.boxes)
    rescored = detections_to_pose_result(det, keypoint_threshold=0.2)
    expected = instance_scores(det.scores, det.keypoints[..., 2], 0.2)
    order = np.argsort(-expected, kind="stable")
    np.testing.assert_allclose(rescored.scores, expected[order])
    np.testing.assert_array_equal(rescored.box_scores, det.scores[order])
    assert len(detections_to_pose_result(_keypoint_detections().select([]))) == 0
    with pytest.raises(UserError, match="no keypoints"):
        detections_to_pose_result(Detections.empty())


def test_keypoint_rcnn_as_a_box_detector_gives_the_same_boxes() -> None:
    cfg = DetectorConfig(name="keypointrcnn_resnet50_fpn", score_threshold=0.0, max_people=4)
    frame = np.random.default_rng(0).integers(0, 256, (72, 96, 3), dtype=np.uint8)
    found = []
    for keypoints in (True, False):
        torch.manual_seed(0)
        detector = build_detector(cfg, pretrained=False, keypoints=keypoints)
        model = detector.model
        model.transform.min_size, model.transform.max_size = (96,), 128
        model.rpn._post_nms_top_n["testing"], model.roi_heads.detections_per_img = 100, 6
        assert model.roi_heads.has_keypoint() == keypoints
        found.append(detector.detect(frame))
    assert found[0].keypoints is not None and found[1].keypoints is None
    np.testing.assert_allclose(found[1].boxes, found[0].boxes)
    np.testing.assert_allclose(found[1].scores, found[0].scores)


def test_weights_of_a_detector_trained_from_scratch_load(tmp_path: Path) -> None:
    """torchvision builds an untrained trunk with plain BatchNorm (``num_batches_tracked`` in its state dict)."""
    torch.manual_seed(2)
    scratch = torchvision_detector.ARCHITECTURES[FAST].builder(weights=None, weights_backbone=None)
    batchnorms = [m for m in scratch.backbone.body.modules() if isinstance(m, nn.BatchNorm2d)]
    assert batchnorms
    for module in batchnorms:  # statistics as training would leave them
        module.running_mean.uniform_(-1, 1)
        module.running_var.uniform_(0.5, 2)
        module.num_batches_tracked.fill_(100)
    path = tmp_path / "scratch.pth"
    torch.save({"model": scratch.state_dict()}, path)
    detector = build_detector(DetectorConfig(name=FAST, weights=str(path), score_threshold=0.0))
    frame = torch.rand(1, 3, 64, 80)
    with torch.inference_mode():
        ours = detector.model.backbone(frame)["0"]
        theirs = scratch.eval().backbone(frame)["0"]
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5)  # ours has the batch norms folded


def _random_norm_statistics(norms: list[nn.Module]) -> None:
    assert norms
    for norm in norms:
        norm.running_mean.uniform_(-0.2, 0.2)
        norm.running_var.uniform_(0.5, 2.0)
        norm.weight.data.uniform_(0.5, 1.5)
        norm.bias.data.uniform_(-0.2, 0.2)


@pytest.mark.parametrize("name", [name for name in ARCHITECTURES if name != SSDLITE])
def test_folded_trunk_gives_the_original_detections(name: str) -> None:
    """Batch norms (frozen, and the v2 models' plain ones) folded into the convolutions: no norm is left in
    the trunk, and boxes and scores match the unfolded detector's. Random norm statistics make the fold matter."""
    torch.manual_seed(0)
    model = torchvision_detector.build_model(name, pretrained=False)
    model.transform.min_size, model.transform.max_size = (96,), 128
    model.rpn._post_nms_top_n["testing"], model.roi_heads.detections_per_img = 50, 6
    model.roi_heads.score_thresh = 0.0
    _random_norm_statistics([m for m in model.backbone.body.modules() if isinstance(m, folding.NORMS)])
    original = copy.deepcopy(model)
    folding.for_inference(model)
    assert not [m for m in model.backbone.body.modules() if isinstance(m, folding.NORMS)]
    frame = torch.rand(3, 72, 96)
    with torch.inference_mode():
        ours, theirs = model([frame])[0], original([frame])[0]
        for level, features in original.backbone(frame[None]).items():  # float rounding of the largest value
            assert (model.backbone(frame[None])[level] - features).abs().max() <= 1e-5 * features.abs().max()
    assert len(theirs["scores"]) > 0
    torch.testing.assert_close(ours["boxes"], theirs["boxes"], rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(ours["scores"], theirs["scores"], rtol=1e-4, atol=1e-5)


def test_folded_ssdlite_gives_the_original_head_outputs() -> None:
    """SSDlite's trunk and head (their blocks are iterated over, so each is traced alone): no norm is left,
    and the class logits and box offsets of every anchor match the unfolded network's (its random
    scores tie, so its detections' order would not tell)."""
    torch.manual_seed(0)
    model = torchvision_detector.build_model(SSDLITE, pretrained=False)
    _random_norm_statistics([m for m in model.modules() if isinstance(m, folding.NORMS)])
    original = copy.deepcopy(model)
    folding.for_inference(model)
    assert not [m for m in model.modules() if isinstance(m, folding.NORMS)]
    images = torch.rand(1, 3, 320, 320)
    with torch.inference_mode():
        ours = model.head(list(model.backbone(images).values()))
        theirs = original.head(list(original.backbone(images).values()))
    for key in ("cls_logits", "bbox_regression"):
        assert (ours[key] - theirs[key]).abs().max() <= 1e-5 * theirs[key].abs().max()


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_torchvision_builds_the_published_network_that_ours_is(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision's builder, given the default weights (whose download is replaced by our network's state
    dict), builds the published architecture and loads that state dict strictly: the key names and
    shapes of ours are the published file's (SSDlite's reduced tail and frozen trunk norms included)."""
    monkeypatch.setattr(torchvision_detector, "_drop_mask_branch", lambda model: None)  # dropped after loading
    ours = torchvision_detector.build_model(name, pretrained=False).state_dict()
    monkeypatch.setattr(WeightsEnum, "get_state_dict", lambda self, *args, **kwargs: ours)
    arch = ARCHITECTURES[name]
    published = arch.builder(weights=arch.weights).state_dict()
    assert {k: v.shape for k, v in published.items()} == {k: v.shape for k, v in ours.items()}
