"""Frames run through the networks together (``inference.frame_batch``) give each frame's own results: the
estimator over several frames' crops, the pipeline with a batched detector, the tracked video loop, and image
folders, against one frame at a time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from toppose.common.config import Config, ConfigError, DetectorConfig, frame_batch, load_config
from toppose.common.poses import PoseResult
from toppose.detector.detections import Detections
from toppose.detector.torchvision_detector import build_detector
from toppose.pose.checkpoints import build_pose_model
from toppose.pose.inference import TopDownEstimator

from tests.clips import make_clip
from toppose.cli import run
from toppose.loop import LoopOptions, pose_frames
from toppose.pipeline import TopDownPipeline
from toppose.sources import FrameSource, open_source

PEOPLE = (3, 0, 5, 2, 7)  # a frame with nobody among them
FLOAT_ROUNDING = 1e-4  # pixels: a batch of another size may sum in another order


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in PEOPLE]


@pytest.fixture(scope="module")
def boxes() -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    return [rng.uniform(0, 150, (n, 4)) + [0, 0, 30, 60] for n in PEOPLE]


def rtmpose_t(flip: bool = True, batch_size: int = 8) -> Config:
    cfg = Config()
    cfg.model.family, cfg.model.backbone, cfg.model.weights, cfg.codec.type = "rtmpose", "cspnext_t", "", "simcc"
    cfg.model.input_size, cfg.model.heatmap_size = (96, 128), (24, 32)  # small crops: a quick test
    cfg.inference.flip_test, cfg.inference.batch_size = flip, batch_size
    return cfg


def estimator(cfg: Config, device_path: bool = False) -> TopDownEstimator:
    torch.manual_seed(0)
    model = build_pose_model(cfg.model, weights="", split_ratio=cfg.codec.split_ratio)
    return TopDownEstimator(model, cfg, optimize=True, device_path=device_path)


def assert_same_poses(batched: list[PoseResult], alone: list[PoseResult]) -> None:
    assert [len(r) for r in batched] == [len(r) for r in alone]
    for many, one in zip(batched, alone, strict=True):
        np.testing.assert_array_equal(many.boxes, one.boxes)
        np.testing.assert_array_equal(many.box_scores, one.box_scores)
        np.testing.assert_allclose(many.keypoints, one.keypoints, rtol=0, atol=FLOAT_ROUNDING)
        np.testing.assert_allclose(many.scores, one.scores, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("flip", "device_path", "nms"), [(True, False, True), (False, False, False), (True, True, True)]
)
def test_frames_estimated_together_are_each_frames_own_estimate(
    frames: list[np.ndarray], boxes: list[np.ndarray], flip: bool, device_path: bool, nms: bool
) -> None:
    pose = estimator(rtmpose_t(flip), device_path)
    scores = [np.linspace(1.0, 0.5, len(b)) for b in boxes]
    alone = [pose.estimate(f, b, s, nms=nms) for f, b, s in zip(frames, boxes, scores, strict=True)]
    batched = pose.estimate_frames(frames, boxes, scores, nms=nms)
    assert_same_poses(batched, alone)
    assert sum(len(r) for r in batched) > 10 and len(batched[1]) == 0


def test_a_network_function_sees_every_frames_crops_in_one_call(
    frames: list[np.ndarray], boxes: list[np.ndarray]
) -> None:
    """The oracle's door: one call with the crops of all frames in frame then box order, mirrored ones after."""
    pose = estimator(rtmpose_t(flip=True))
    calls: list[tuple[int, np.ndarray]] = []

    def network_fn(crops: np.ndarray, matrices: np.ndarray, mirrored: np.ndarray):  # noqa: ANN202
        calls.append((len(crops), mirrored.copy()))
        return pose.network_outputs(crops)

    batched = pose.estimate_frames(frames, boxes, network_fn=network_fn)
    assert len(calls) == 1 and calls[0][0] == 2 * sum(PEOPLE) and calls[0][1].sum() == sum(PEOPLE)
    assert_same_poses(batched, [pose.estimate(f, b) for f, b in zip(frames, boxes, strict=True)])


def test_frames_without_anybody_give_empty_results(frames: list[np.ndarray]) -> None:
    pose = estimator(rtmpose_t())
    results = pose.estimate_frames(frames[:2], [np.zeros((0, 4)), np.zeros((0, 4))])
    assert [len(r) for r in results] == [0, 0] and results[0].keypoints.shape[1:] == (17, 3)
    with pytest.raises(ValueError, match="one boxes array"):
        pose.estimate_frames(frames[:2], [np.zeros((0, 4))])


def test_the_pipeline_batches_the_detector_over_frames_of_one_size(frames: list[np.ndarray]) -> None:
    """SSDlite with random weights finds 30 boxes a frame; a frame of another size starts a new detector batch."""
    detector_cfg = DetectorConfig(name="ssdlite320_mobilenet_v3_large", score_threshold=0.0)
    torch.manual_seed(0)
    detector = build_detector(detector_cfg, pretrained=False)
    calls: list[int] = []
    detect_batch = detector.detect_batch
    detector.detect_batch = lambda batch: calls.append(len(batch)) or detect_batch(batch)  # type: ignore[method-assign]
    cfg = rtmpose_t(flip=False)
    cfg.detector = detector_cfg
    pipeline = TopDownPipeline(cfg, estimator(cfg), detector=detector)
    chunk = [frames[0], frames[1], frames[2][:200, :300].copy(), frames[3], frames[4]]
    batched = pipeline.process_frames(chunk, list(range(len(chunk))))
    assert calls == [2, 1, 2]
    calls.clear()
    alone = [pipeline.process(frame, i) for i, frame in enumerate(chunk)]
    assert calls == [1] * len(chunk)
    assert_same_poses(batched, alone)
    assert all(len(r) > 0 for r in batched)


def test_precomputed_boxes_are_looked_up_per_frame(frames: list[np.ndarray], boxes: list[np.ndarray]) -> None:
    cfg = rtmpose_t()
    given = {10 + i: Detections(b, np.full(len(b), 0.9)) for i, b in enumerate(boxes) if len(b)}
    pipeline = TopDownPipeline(cfg, estimator(cfg), boxes=given)
    ids = [10 + i for i in range(len(frames))]
    assert_same_poses(
        pipeline.process_frames(frames, ids), [pipeline.process(f, i) for f, i in zip(frames, ids, strict=True)]
    )


class _Live(FrameSource):
    """A source that says it is live (as a camera does)."""

    def __init__(self) -> None:
        super().__init__("live", 30.0, (8, 8), None)

    @property
    def live(self) -> bool:
        return True

    def frames(self):  # noqa: ANN202
        yield from ()


def test_frame_batch_by_default_is_one_on_a_cpu_or_a_camera_and_eight_on_a_gpu() -> None:
    cfg = Config()
    assert frame_batch(cfg.inference) == 1 and _Live().live
    cfg.inference.device = "cuda:1"
    assert frame_batch(cfg.inference) == 8 and frame_batch(cfg.inference, live=True) == 1
    cfg.inference.frame_batch = 3
    assert frame_batch(cfg.inference, live=True) == 3


def test_frame_batch_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "setup.toml"
    path.write_text("[inference]\nframe_batch = 65\n")
    with pytest.raises(ConfigError, match="frame_batch"):
        load_config(path)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return make_clip(tmp_path_factory.mktemp("frame_batches"), 3, 13, {"clip.avi": "MJPG"})


def tracked(
    clip: dict, frame_batch: int, det_every: int = 1, max_frames: int | None = None, chunks: list[int] | None = None
) -> list[tuple]:
    """Every frame's track ids and keypoints from the tracked loop over the clip with its true boxes; the sizes of
    the chunks of frames the pipeline was given go to ``chunks``."""
    chunks = [] if chunks is None else chunks
    cfg = load_config(clip["dir"] / "small.toml")
    cfg.model.weights = str(clip["dir"] / "res18.pth")
    truth = clip["sequence"].truth
    given = {t: Detections(people.boxes, np.ones(len(people.boxes))) for t, people in enumerate(truth)}
    model = build_pose_model(cfg.model, weights=cfg.model.weights)
    pipeline = TopDownPipeline(cfg, TopDownEstimator(model, cfg, optimize=True), boxes=given)
    options = LoopOptions(det_every=det_every, frame_batch=frame_batch, max_frames=max_frames)
    source = open_source(clip["dir"] / "clip.avi")
    assert not source.live
    process_frames = pipeline.process_frames
    pipeline.process_frames = lambda images, ids: chunks.append(len(images)) or process_frames(images, ids)
    return [(d.frame.index, d.track_ids.tolist(), d.poses.keypoints, d.detected)
            for d in pose_frames(source, pipeline, options)]  # fmt: skip


@pytest.mark.parametrize(("det_every", "max_frames"), [(1, None), (1, 11), (3, None)])
def test_tracks_from_frame_batches_are_the_tracks_of_one_frame_at_a_time(
    clip: dict, det_every: int, max_frames: int | None
) -> None:
    """With the detector on every frame the chunks of 5 frames (the last one short) change nothing; with
    det_every > 1 the loop runs frame by frame whatever the frame batch: the pipeline sees the 5 detector frames
    of the 13 one at a time."""
    chunks: list[int] = []
    alone, batched = tracked(clip, 1, det_every, max_frames), tracked(clip, 5, det_every, max_frames, chunks)
    assert chunks == {(1, None): [5, 5, 3], (1, 11): [5, 5, 1], (3, None): [1] * 5}[det_every, max_frames]
    assert len(batched) == (max_frames or 13) and [b[:2] for b in batched] == [a[:2] for a in alone]
    assert [b[3] for b in batched] == [a[3] for a in alone]
    for many, one in zip(batched, alone, strict=True):
        np.testing.assert_allclose(many[2], one[2], rtol=0, atol=FLOAT_ROUNDING)
    assert max(max(ids, default=0) for _, ids, _, _ in batched) >= 2


def test_an_image_folder_in_frame_batches_writes_the_results_of_one_image_at_a_time(
    synthetic_coco: Path, tmp_path: Path
) -> None:
    annotations = json.loads((synthetic_coco / "annotations.json").read_text())
    dets = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 1.0}
            for a in annotations["annotations"]]  # fmt: skip
    (tmp_path / "dets.json").write_text(json.dumps(dets))
    torch.manual_seed(0)
    cfg = rtmpose_t(flip=False)
    cfg.model.backbone, cfg.model.input_size = "cspnext_s", (192, 256)  # the fast setup's
    torch.save(build_pose_model(cfg.model, weights="").state_dict(), tmp_path / "rtm.pth")
    results = {}
    for batch in (1, 4):
        out = tmp_path / f"out{batch}"
        argv = [str(synthetic_coco / "images"), "-o", str(out), "--setup", "fast", "--pose-weights",
                str(tmp_path / "rtm.pth"), "--boxes", str(tmp_path / "dets.json"), "--ann",
                str(synthetic_coco / "annotations.json"), "--no-draw", "--frame-batch", str(batch),
                "--precision", "fp32"]  # fmt: skip
        assert run.main(argv) == 0
        results[batch] = json.loads((out / "results.json").read_text())
    assert len(results[1]) >= 5
    assert [(r["image_id"], r["bbox"]) for r in results[4]] == [(r["image_id"], r["bbox"]) for r in results[1]]
    for many, one in zip(results[4], results[1], strict=True):
        np.testing.assert_allclose(many["keypoints"], one["keypoints"], rtol=0, atol=1e-3)


class BlobFinder(torch.nn.Module):
    """A network whose 17 heatmaps are the crop's brightness pooled 4x: peaked where a frame has a bright blob,
    so that decoding is well posed (a random network's flat outputs put an argmax anywhere)."""

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.avg_pool2d(inputs[:, :1], 4).expand(-1, 17, -1, -1).contiguous()


def blob_frames(count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Dark frames with one bright Gaussian blob (sigma 6 px) in the middle of each box."""
    rng = np.random.default_rng(2)
    ys, xs = np.mgrid[:240, :320]
    frames, boxes = [], []
    for n in range(count):
        box = np.array([[rng.uniform(20, 200), rng.uniform(20, 100), 60.0, 100.0]])
        cx, cy = box[0, 0] + 30.0 + rng.uniform(-5, 5), box[0, 1] + 50.0 + rng.uniform(-5, 5)
        blob = 255.0 * np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * 6.0**2))
        frames.append(np.repeat(blob[..., None], 3, axis=2).round().astype(np.uint8))
        boxes.append(box if n % 3 else np.concatenate([box, box + [5, 5, 0, 0]]))
    return frames, boxes


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (benchmarks/gpu_check.sh runs it on a GPU)")
@pytest.mark.parametrize("flip", [True, False])
def test_frames_on_the_gpu_give_the_cpus_keypoints(flip: bool) -> None:
    """Frame batches through the device path on CUDA (crops cut, network run and DARK decoded there) against the
    CPU's OpenCV/NumPy path one frame at a time: grid_sample's crops may differ from OpenCV's by a grey level."""
    cfg = Config()
    cfg.model.input_size, cfg.model.heatmap_size = (96, 128), (24, 32)
    cfg.inference.flip_test = flip
    frames, boxes = blob_frames(6)
    reference = TopDownEstimator(BlobFinder(), cfg)
    alone = [reference.estimate(f, b, nms=False) for f, b in zip(frames, boxes, strict=True)]
    on_gpu = TopDownEstimator(BlobFinder(), cfg, "cuda")
    assert on_gpu.device_path
    batched = on_gpu.estimate_frames(frames, boxes, nms=False)
    assert [len(r) for r in batched] == [len(r) for r in alone]
    for many, one in zip(batched, alone, strict=True):
        np.testing.assert_allclose(many.keypoints, one.keypoints, rtol=0, atol=0.05)
