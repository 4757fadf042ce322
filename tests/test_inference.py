"""Top-down inference: the crop -> heatmap -> image path, batching, flip test, scoring and NMS."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from toppose.common.config import Config
from toppose.common.errors import UserError
from toppose.common.poses import PoseResult
from toppose.common.schema import NUM_KEYPOINTS
from toppose.pose import precision
from toppose.pose.codecs.heatmap import encode
from toppose.pose.inference import TopDownEstimator, instance_scores
from toppose.pose.models import RTMPose, SimpleBaseline, build_network
from toppose.pose.models.inputs import IMAGENET_MEAN, IMAGENET_STD, inference_copy, network_input
from torch import nn


class CentrePeak(nn.Module):
    """Stands in for a network: every heatmap peaks at the heatmap's exact centre (a flip-invariant point)."""

    def __init__(self, heatmap_size: tuple[int, int]) -> None:
        super().__init__()
        width, height = heatmap_size
        centre = np.full((1, NUM_KEYPOINTS, 2), [(width - 1) / 2, (height - 1) / 2])
        self.register_buffer("maps", torch.from_numpy(encode(centre, np.ones((1, NUM_KEYPOINTS)), heatmap_size)[0]))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.maps.expand(len(images), -1, -1, -1)


@pytest.fixture
def frame() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)


def test_keypoints_land_on_box_centres(frame: np.ndarray) -> None:
    cfg = Config()
    estimator = TopDownEstimator(CentrePeak(cfg.model.heatmap_size), cfg)
    boxes = np.array([[10.0, 20.0, 50.0, 120.0], [200.5, 30.25, 80.0, 60.0]])
    result = estimator.estimate(frame, boxes, np.array([0.9, 0.8]), nms=False)
    centres = boxes[:, :2] + boxes[:, 2:] / 2
    np.testing.assert_allclose(result.keypoints[..., :2], np.repeat(centres[:, None], NUM_KEYPOINTS, 1), atol=1e-6)
    # The peak sits between pixels, so the sampled maximum (the confidence) is exp(-0.5 / (2 sigma^2)).
    confidence = np.exp(-0.5 / (2 * cfg.codec.sigma**2))
    np.testing.assert_allclose(result.keypoints[..., 2], confidence, atol=1e-6)
    np.testing.assert_allclose(result.scores, np.array([0.9, 0.8]) * confidence)
    assert set(estimator.timer.seconds) == {"crop", "pose", "decode"}


def test_without_nms_people_keep_the_order_of_their_boxes(frame: np.ndarray) -> None:
    """The tracker follows its tracks with poses estimated in its boxes: row i must be box i, whatever the scores."""
    cfg = Config()
    estimator = TopDownEstimator(CentrePeak(cfg.model.heatmap_size), cfg)
    boxes = np.array([[10.0, 20.0, 50.0, 120.0], [200.5, 30.25, 80.0, 60.0], [100.0, 100.0, 40.0, 40.0]])
    scores = np.array([0.2, 0.9, 0.5])
    unsorted = estimator.estimate(frame, boxes, scores, nms=False)
    np.testing.assert_array_equal(unsorted.boxes, boxes)
    np.testing.assert_array_equal(unsorted.box_scores, scores)
    with_nms = estimator.estimate(frame, boxes, scores)
    assert list(with_nms.box_scores) == [0.9, 0.5, 0.2]  # OKS-NMS ranks by score (these poses do not overlap)


def test_no_boxes_gives_empty_result(frame: np.ndarray) -> None:
    cfg = Config()
    result = TopDownEstimator(CentrePeak(cfg.model.heatmap_size), cfg).estimate(frame, np.zeros((0, 4)))
    assert len(result) == 0 and result.keypoints.shape == (0, NUM_KEYPOINTS, 3)


def test_batch_size_does_not_change_results(frame: np.ndarray) -> None:
    torch.manual_seed(0)
    cfg = Config()
    cfg.model.input_size, cfg.model.heatmap_size = (96, 128), (24, 32)
    model = SimpleBaseline("resnet18", deconv_channels=32)
    boxes = np.array([[10.0, 20.0, 50.0, 120.0], [150.0, 30.0, 80.0, 160.0], [60.0, 60.0, 40.0, 90.0]])
    results = []
    for batch_size in (1, 2, 16):
        cfg.inference.batch_size = batch_size
        results.append(TopDownEstimator(model, cfg).estimate(frame, boxes, nms=False))
    for other in results[1:]:
        np.testing.assert_allclose(other.keypoints, results[0].keypoints, atol=1e-4)


def test_instance_scores_use_confident_keypoints_only() -> None:
    keypoint_scores = np.array([[0.9] * 10 + [0.1] * 7, [0.1] * 17])
    np.testing.assert_allclose(instance_scores(np.array([0.5, 1.0]), keypoint_scores, 0.2), [0.45, 0.0])


def test_duplicate_boxes_are_suppressed(frame: np.ndarray) -> None:
    cfg = Config()
    estimator = TopDownEstimator(CentrePeak(cfg.model.heatmap_size), cfg)
    boxes = np.array([[10.0, 20.0, 50.0, 120.0], [10.5, 20.0, 50.0, 120.0], [200.0, 30.0, 80.0, 160.0]])
    result = estimator.estimate(frame, boxes, np.array([0.7, 0.9, 0.8]))
    assert isinstance(result, PoseResult)
    np.testing.assert_allclose(result.box_scores, [0.9, 0.8])


def test_optimized_copy_matches_model(frame: np.ndarray) -> None:
    torch.manual_seed(0)
    cfg = Config()
    cfg.model.input_size, cfg.model.heatmap_size = (96, 128), (24, 32)
    model = SimpleBaseline("resnet18", deconv_channels=32)
    for module in model.modules():  # non-trivial batch-norm statistics, so folding them is tested
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    boxes = np.array([[10.0, 20.0, 50.0, 120.0], [150.0, 30.0, 80.0, 160.0]])
    plain = TopDownEstimator(model, cfg).estimate(frame, boxes, nms=False)
    optimized = TopDownEstimator(model, cfg, optimize=True)
    np.testing.assert_allclose(optimized.estimate(frame, boxes, nms=False).keypoints, plain.keypoints, atol=1e-3)
    assert model.training is False and isinstance(model.bn1, nn.BatchNorm2d), "the original stays as it was"


def test_bf16_autocast_stays_close_to_fp32(frame: np.ndarray) -> None:
    torch.manual_seed(0)
    cfg = Config()
    cfg.model.input_size, cfg.model.heatmap_size = (96, 128), (24, 32)
    model = SimpleBaseline("resnet18", deconv_channels=32)
    boxes = np.array([[10.0, 20.0, 50.0, 120.0]])
    full = TopDownEstimator(model, cfg, optimize=True)
    cfg_bf16 = Config()
    cfg_bf16.model, cfg_bf16.inference.precision = cfg.model, "bf16"
    half = TopDownEstimator(model, cfg_bf16, optimize=True)
    crops_bgr = np.stack([frame[:128, :96]] * 2)
    (reference,) = full.network_outputs(crops_bgr)
    (lowered,) = half.network_outputs(crops_bgr)
    assert np.abs(lowered - reference).max() < 0.02 * np.abs(reference).max()
    assert len(half.estimate(frame, boxes)) == 1


def test_under_autocast_the_head_of_the_inference_copy_stays_float32() -> None:
    """RTMPose's SimCC logits are decoded by argmax: in bf16 (8-bit mantissa) near-equal maxima would tie."""
    torch.manual_seed(0)
    model = RTMPose("t", (64, 96))
    images = torch.randn(2, 3, 96, 64)
    copy = inference_copy(model, torch.device("cpu"), torch.bfloat16)
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
        x_logits, _ = copy(images)
        features = copy.backbone(images)
        assert model.head(features)[0].dtype == torch.bfloat16  # what the head alone would give
    assert features.dtype == torch.bfloat16 and x_logits.dtype == torch.float32
    with torch.inference_mode():
        np.testing.assert_allclose(x_logits, model.head(features.float())[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("family", "backbone"),
    [("hrnet", "hrnet_w32"), ("vitpose", "vit_s"), ("simplebaseline", "resnet18")],
)
def test_a_bf16_estimator_gives_autocast_s_outputs_bit_for_bit(family: str, backbone: str) -> None:
    """The estimator's copy holds the autocast layers' weights in bf16 already, runs its convolutions packed
    with their ReLUs fused, and its crops are reversed to RGB by OpenCV: none of it may change a bit of what
    bf16 autocast over the fp32 copy gives. (RTMPose's fused SiLU rounds once fewer: tests/test_prepacked.py.)"""
    cfg = Config()
    cfg.model.family, cfg.model.backbone = family, backbone
    cfg.model.input_size, cfg.model.heatmap_size = (64, 96), (16, 24)
    cfg.model.num_deconv = 2 if family == "vitpose" else 3
    cfg.inference.precision = "bf16"
    torch.manual_seed(0)
    model = build_network(cfg.model).eval()
    estimator = TopDownEstimator(model, cfg, optimize=True)
    reference = inference_copy(model, torch.device("cpu"), prepack=False)
    for count in (3, 1):  # one crop and several run differently packed weights
        crops = np.random.default_rng(count).integers(0, 256, (count, 96, 64, 3), dtype=np.uint8)
        with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16):
            expected = reference(network_input(torch.from_numpy(crops), "rgb"))
        expected = expected if isinstance(expected, tuple) else (expected,)
        outputs = estimator.torch_outputs(crops)
        assert len(outputs) == len(expected)
        for got, want in zip(outputs, expected, strict=True):
            np.testing.assert_array_equal(got, want.float().numpy())


@pytest.mark.parametrize(
    ("native", "backend", "device", "expected"),
    [
        (True, "torch", "cpu", "bf16"),
        (False, "torch", "cpu", "fp32"),  # emulated bf16 is slower than fp32
        (True, "onnxruntime", "cpu", "fp32"),  # ONNX Runtime runs fp32 only
        (True, "torch", "cuda", "fp32"),
    ],
)
def test_auto_precision_is_bf16_only_under_torch_on_a_cpu_with_native_bf16(
    native: bool, backend: str, device: str, expected: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(precision, "native_bf16", lambda: native)
    cfg = Config()
    cfg.inference.precision, cfg.inference.backend, cfg.inference.device = "auto", backend, device
    assert precision.resolved_precision(cfg.inference) == expected
    assert precision.describe_precision(cfg.inference).startswith(
        f"{expected} "
    ) and "(auto)" in precision.describe_precision(cfg.inference)
    cfg.inference.precision = "fp16"  # a named precision is kept as it is
    assert precision.resolved_precision(cfg.inference) == "fp16"


def test_auto_precision_sets_the_estimators_autocast(monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = Config()
    cfg.inference.precision = "auto"
    for native, dtype in ((True, torch.bfloat16), (False, None)):
        monkeypatch.setattr(precision, "native_bf16", lambda native=native: native)
        estimator = TopDownEstimator(None, cfg)
        assert estimator.autocast_dtype == dtype and estimator.precision == ("bf16" if native else "fp32")


def test_native_bf16_is_what_torch_reports_for_this_cpu() -> None:
    assert precision.native_bf16() == (torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def test_unknown_precision_is_a_user_error() -> None:
    cfg = Config()
    cfg.inference.precision = "int4"
    with pytest.raises(UserError, match="unknown precision 'int4'"):
        TopDownEstimator(None, cfg)


@pytest.mark.parametrize("order", ["rgb", "bgr"])
def test_network_input_is_imagenet_normalized_in_the_trained_channel_order(order: str) -> None:
    crops = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 8, 6, 3), dtype=np.uint8))
    x = network_input(crops, order)
    assert x.shape == (2, 3, 8, 6) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)
    channels = crops.flip(-1) if order == "rgb" else crops  # OpenCV's BGR, reversed for an RGB-trained network
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    expected = ((channels.double() / 255 - mean.double()) / std.double()).permute(0, 3, 1, 2)
    torch.testing.assert_close(x.double(), expected, rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="unknown channel order 'rbg'"):
        network_input(crops, "rbg")
