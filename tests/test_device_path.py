"""The device path (crops, flip test and decoding as tensors, for CUDA), run on CPU tensors: it equals the
OpenCV/NumPy path."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from toppose.common.config import CONVENTIONS, Config, DetectorConfig
from toppose.common.errors import UserError
from toppose.common.schema import NUM_KEYPOINTS, PERSON_CATEGORY_ID
from toppose.detector import torchvision_detector
from toppose.pose import geometry
from toppose.pose.checkpoints import build_pose_model
from toppose.pose.codecs import HeatmapCodec, SimCCCodec, build_codec
from toppose.pose.codecs.heatmap import encode
from toppose.pose.inference import TopDownEstimator
from toppose.pose.setup import apply_weights_setup
from torch import nn
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.ssd import SSD

BOXES = np.array([[10.0, 20.0, 50.0, 120.0], [200.5, 30.25, 80.0, 60.0], [-30.0, -10.0, 100.0, 300.0]])


@pytest.fixture
def frame() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)


def _random_heatmaps(count: int, size: tuple[int, int], seed: int) -> np.ndarray:
    """Gaussian peaks at random sub-pixel points (some off the map), with noise: DARK has real work to do."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(-2.0, np.asarray(size) + 1.0, (count, NUM_KEYPOINTS, 2))
    maps = encode(points, np.ones((count, NUM_KEYPOINTS)), size, sigma=2.0)[0]
    return (maps + rng.uniform(0.0, 0.05, maps.shape)).astype(np.float32)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_torch_crops_equal_opencv_crops_within_one_grey_level(frame: np.ndarray, convention: str) -> None:
    centers, sizes = geometry.box_to_center_size(BOXES, 0.75)
    matrices = geometry.crop_matrices(centers, sizes, (192, 256), convention)
    rotated = geometry.crop_matrix(centers[0], sizes[0], (192, 256), 30.0, convention=convention)
    matrices = np.concatenate([matrices, geometry.mirror_matrix(matrices, 192, convention), rotated[None]])
    expected = geometry.warp_crops(frame, matrices, (192, 256)).astype(np.float64)
    crops = geometry.warp_crops_torch(torch.from_numpy(frame), matrices, (192, 256)).permute(0, 2, 3, 1).numpy()
    difference = np.abs(crops - expected)
    assert difference.max() <= 1.0
    assert (difference > 0).mean() < 0.005  # OpenCV's 1/32-pixel weights round a few pixels the other way
    assert (expected[-1] > 0).mean() > 0.5  # the zero border is not all there is


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_torch_mirror_equals_numpy_mirror(convention: str) -> None:
    array = np.random.default_rng(1).random((2, 3, 5, 6))
    np.testing.assert_array_equal(
        geometry.mirror_torch(torch.from_numpy(array), 3, convention), geometry.mirror(array, 3, convention)
    )


@pytest.mark.parametrize("method", ["dark", "argmax"])
def test_torch_heatmap_decoding_equals_numpy(method: str) -> None:
    codec = HeatmapCodec((48, 64), decode_method=method)
    maps = _random_heatmaps(4, codec.grid_size, seed=2)
    maps[0, 0] = 0.0  # no peak: the integer peak, score 0
    coords, scores = codec.decode((maps,))
    torch_coords, torch_scores = codec.decode_tensors((torch.from_numpy(maps),))
    np.testing.assert_allclose(torch_coords.numpy(), coords, rtol=0, atol=1e-4)
    np.testing.assert_allclose(torch_scores.numpy(), scores, rtol=0, atol=1e-7)
    assert method == "argmax" or np.abs(coords - np.round(coords)).max() > 0.1  # sub-pixel offsets were tested


def test_torch_simcc_decoding_equals_numpy_exactly() -> None:
    codec = SimCCCodec((192, 256))
    rng = np.random.default_rng(3)
    simcc = tuple(rng.random((4, NUM_KEYPOINTS, n)).astype(np.float32) for n in codec.grid_size)
    simcc[0][0, 0, [5, 9]] = 2.0  # a tie: the first maximum wins, as numpy's
    coords, scores = codec.decode(simcc)
    torch_coords, torch_scores = codec.decode_tensors(tuple(torch.from_numpy(o) for o in simcc))
    np.testing.assert_array_equal(torch_coords.numpy(), coords)
    np.testing.assert_array_equal(torch_scores.numpy(), scores)
    assert coords[0, 0, 0] == 5


class FixedOutputs(nn.Module):
    """Stands in for a network: fixed outputs per batch position (so mirrored crops get other ones), and
    it keeps the inputs it saw."""

    def __init__(self, outputs: tuple[np.ndarray, ...]) -> None:
        super().__init__()
        self.outputs = [torch.from_numpy(o) for o in outputs]
        self.inputs: list[torch.Tensor] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        self.inputs.append(images.clone())
        out = tuple(o[: len(images)] for o in self.outputs)
        return out if len(out) > 1 else out[0]


def _setup(codec_type: str, convention: str, flip: bool) -> tuple[Config, tuple[np.ndarray, ...]]:
    cfg = Config()
    cfg.codec.type, cfg.codec.convention, cfg.inference.flip_test = codec_type, convention, flip
    grid = build_codec(cfg).grid_size
    count = 2 * len(BOXES)
    if codec_type == "heatmap":
        return cfg, (_random_heatmaps(count, grid, seed=4),)
    rng = np.random.default_rng(5)
    return cfg, tuple(rng.random((count, NUM_KEYPOINTS, n)).astype(np.float32) for n in grid)


@pytest.mark.parametrize("codec_type", ["heatmap", "simcc"])
@pytest.mark.parametrize("flip", [True, False], ids=["flip", "no-flip"])
@pytest.mark.parametrize("convention", ["legacy", "udp"])
def test_estimator_device_path_equals_host_path(
    frame: np.ndarray, codec_type: str, flip: bool, convention: str
) -> None:
    cfg, outputs = _setup(codec_type, convention, flip)
    host_net, device_net = FixedOutputs(outputs), FixedOutputs(outputs)
    host = TopDownEstimator(host_net, cfg)
    device = TopDownEstimator(device_net, cfg, device_path=True)
    assert not host.device_path and device.device_path
    expected = host.estimate(frame, BOXES, nms=False)
    result = device.estimate(frame, BOXES, nms=False)
    np.testing.assert_allclose(result.keypoints, expected.keypoints, rtol=0, atol=1e-9)
    np.testing.assert_allclose(result.scores, expected.scores, rtol=0, atol=1e-12)
    # The network saw the same crops (channel order, mirror), up to OpenCV's rounding of a few pixels.
    seen, cut = host_net.inputs[0], device_net.inputs[0]
    assert seen.shape == cut.shape == (len(BOXES) * (2 if flip else 1), 3, 256, 192)
    assert (seen - cut).abs().max() <= 1.0 / (255 * 0.224) + 1e-5 and ((seen - cut).abs() > 1e-5).float().mean() < 0.005


def test_fp16_breaks_rtmpose_where_bf16_does_not() -> None:
    """Why fp16 is refused: RTMPose's CSPNeXt features (here ~1e-10, random weights) fall out of fp16's range
    (bf16 has fp32's exponent), so the head sees zeros; keeping the head in fp32 cannot help."""
    cfg = Config()
    cfg.model.weights = "rtmpose_t_coco_256x192"
    apply_weights_setup(cfg, explicit={})
    cfg.model.input_size = (64, 96)  # small and quick: the same layers
    torch.manual_seed(0)
    model = build_pose_model(cfg.model, weights="", split_ratio=cfg.codec.split_ratio).eval()
    images = torch.randn(1, 3, 96, 64)
    with torch.inference_mode():
        reference = model(images)
        errors = {}
        for dtype in (torch.float16, torch.bfloat16):
            with torch.autocast("cpu", dtype):
                out = model(images)
            errors[dtype] = max(((o.float() - r).std() / r.std()).item() for o, r in zip(out, reference, strict=True))
    assert errors[torch.float16] > 0.5 and errors[torch.bfloat16] < 0.1


@pytest.mark.parametrize(("family", "title"), [("rtmpose", "RTMPose"), ("rtmw", "RTMW")])
def test_fp16_is_refused_for_rtmposes_trunk(family: str, title: str) -> None:
    cfg = Config()
    cfg.model.family, cfg.codec.type, cfg.inference.precision = family, "simcc", "fp16"
    with pytest.raises(UserError, match=f"fp16 breaks {title} "):
        TopDownEstimator(None, cfg)
    cfg.inference.precision = "bf16"
    TopDownEstimator(None, cfg)
    cfg.model.family, cfg.codec.type, cfg.inference.precision = "hrnet", "heatmap", "fp16"
    TopDownEstimator(None, cfg)


def test_ssd_person_postprocess_gives_torchvisions_person_boxes() -> None:
    # What post-processing reads of SSDlite (its box coder and settings); the cap counts people only in ours.
    model = SimpleNamespace(
        box_coder=BoxCoder((10.0, 10.0, 5.0, 5.0)), score_thresh=0.02, topk_candidates=300, nms_thresh=0.55,
        detections_per_img=10**6,
    )  # fmt: skip
    generator = torch.Generator().manual_seed(0)
    count = 3000
    head = {
        "cls_logits": torch.randn(2, count, 91, generator=generator),
        "bbox_regression": 0.5 * torch.randn(2, count, 4, generator=generator),
    }
    corners = 300 * torch.rand(2, count, 2, generator=generator)
    anchors = torch.cat([corners, corners + 10 + 100 * torch.rand(2, count, 2, generator=generator)], dim=-1)
    shapes = [(240, 320), (200, 150)]
    theirs = SSD.postprocess_detections(model, head, list(anchors), shapes)
    ours = torchvision_detector.ssd_person_postprocess(model, head, list(anchors), shapes)
    for mine, reference in zip(ours, theirs, strict=True):
        people = reference["labels"] == PERSON_CATEGORY_ID
        assert 10 < people.sum() < len(people)
        assert (mine["labels"] == PERSON_CATEGORY_ID).all()
        torch.testing.assert_close(mine["boxes"], reference["boxes"][people], rtol=0, atol=0)
        torch.testing.assert_close(mine["scores"], reference["scores"][people], rtol=0, atol=0)


def test_build_detector_installs_person_postprocess_on_ssd() -> None:
    cfg = DetectorConfig(name="ssdlite320_mobilenet_v3_large")
    detector = torchvision_detector.build_detector(cfg, pretrained=False)
    assert detector.model.postprocess_detections.func is torchvision_detector.ssd_person_postprocess
