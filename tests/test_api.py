"""The Python API (``from toppose import PoseEstimator``) gives what the command line gives."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from toppose.common.errors import UserError
from toppose.common.schema import KEYPOINT_NAMES
from toppose.detector.boxes_file import load_boxes
from toppose.pose.results import load_results

from tests.clips import make_clip
from toppose import Person, PoseEstimator
from toppose.cli import run
from toppose.pipeline import TopDownPipeline

FRAMES = 16
SMALL_DETECTOR = (('name = "keypointrcnn_resnet50_fpn"', 'name = "fasterrcnn_mobilenet_v3_large_320_fpn"'),)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A clip of people crossing (see :func:`tests.clips.make_clip`) and its first frame as 0.png."""
    clip = make_clip(tmp_path_factory.mktemp("api"), 1, FRAMES, {"clip.mp4": "mp4v"}, SMALL_DETECTOR)
    cv2.imwrite(str(clip["dir"] / "0.png"), clip["frames"][0])
    return clip


def estimator_of(clip: dict) -> PoseEstimator:
    return PoseEstimator(clip["dir"] / "small.toml", weights=clip["dir"] / "res18.pth", pretrained_detector=False)


def cli_args(clip: dict) -> list[str]:
    tmp = clip["dir"]
    return ["--boxes", str(tmp / "dets.json"), "--config", str(tmp / "small.toml"), "--pose-weights",
            str(tmp / "res18.pth"), "--no-draw"]  # fmt: skip


def test_an_image_gives_the_people_run_py_writes(clip: dict, tmp_path: Path) -> None:
    estimator = estimator_of(clip)
    truth = np.round(clip["sequence"].truth[0].boxes, 2)  # as dets.json holds them
    people = estimator(clip["dir"] / "0.png", boxes=truth)
    assert run.main([str(clip["dir"] / "0.png"), "-o", str(tmp_path), *cli_args(clip)]) == 0
    entries = load_results(tmp_path / "results.json")
    assert len(people) == len(entries) == len(truth)
    for person, entry in zip(people, entries, strict=True):
        assert isinstance(person, Person) and person.keypoints.shape == (len(KEYPOINT_NAMES), 3)
        np.testing.assert_allclose(person.keypoints.reshape(-1), entry["keypoints"], atol=1e-3)
        assert person.score == pytest.approx(entry["score"], abs=1e-5) and person.track_id is None
        np.testing.assert_array_equal(person.keypoint("left_knee"), person.keypoints[KEYPOINT_NAMES.index("left_knee")])
    # an array in BGR, or in RGB with rgb=True, is the same image
    frame = clip["frames"][0]
    same = estimator(frame, boxes=truth)
    also = estimator(np.ascontiguousarray(frame[..., ::-1]), boxes=truth, rgb=True)
    for a, b, c in zip(people, same, also, strict=True):
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
        np.testing.assert_array_equal(a.keypoints, c.keypoints)


def test_tracking_a_video_gives_the_frames_run_py_writes(clip: dict, tmp_path: Path) -> None:
    """The same frame loop as ``run.py VIDEO --track``: the same track ids and keypoints, frame by frame."""
    assert run.main([str(clip["dir"] / "clip.mp4"), "--track", "-o", str(tmp_path), *cli_args(clip)]) == 0
    written = load_results(tmp_path / "results.json")
    estimator = estimator_of(clip)
    boxes = load_boxes(clip["dir"] / "dets.json")
    estimator.pipeline = TopDownPipeline(estimator.config, estimator.pipeline.estimator, boxes=boxes)
    frames = list(estimator.track(clip["dir"] / "clip.mp4"))
    assert [f.index for f in frames] == list(range(FRAMES))
    assert frames[1].timestamp == pytest.approx(1 / clip["sequence"].fps, abs=1e-3)
    people = [(f.index, p) for f in frames for p in f.people]
    assert len(people) == len(written) > FRAMES
    for (index, person), entry in zip(people, written, strict=True):
        assert index == entry["image_id"] and person.track_id == entry["track_id"] >= 1
        np.testing.assert_allclose(person.keypoints.reshape(-1), entry["keypoints"], atol=1e-3)


def test_bad_inputs_are_one_line(clip: dict) -> None:
    estimator = estimator_of(clip)
    with pytest.raises(UserError, match="uint8"):
        estimator(np.zeros((32, 32, 3), dtype=np.float32))
    with pytest.raises(UserError, match=r"\(H, W, 3\)"):
        estimator(np.zeros((32, 32, 4), dtype=np.uint8))
    with pytest.raises(UserError, match="image not found"):
        estimator(clip["dir"] / "missing.png")
    with pytest.raises(UserError, match="width and height > 0"):
        estimator(clip["frames"][0], boxes=[[0, 0, 0, 10]])
    with pytest.raises(KeyError, match="unknown keypoint 'elbow'"):
        estimator(clip["frames"][0], boxes=[[10, 10, 40, 80]])[0].keypoint("elbow")
    with pytest.raises(UserError, match="expected one of fast, balanced, accurate"):
        PoseEstimator("fastest")
    with pytest.raises(UserError, match=r"batch_size"):
        PoseEstimator(clip["dir"] / "small.toml", settings={"inference.batch_size": 0}, pretrained_detector=False)


def test_a_grey_image_is_read_as_three_channels(clip: dict) -> None:
    estimator = estimator_of(clip)
    grey = cv2.cvtColor(clip["frames"][0], cv2.COLOR_BGR2GRAY)
    box = clip["sequence"].truth[0].boxes[:1]
    expected = estimator(cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR), boxes=box)
    np.testing.assert_array_equal(estimator(grey, boxes=box)[0].keypoints, expected[0].keypoints)


def test_many_images_give_each_images_people(clip: dict) -> None:
    """estimate_all in chunks of 3 (the detector and the pose network over three frames at once, the last chunk
    short) gives what one call per image gives; a bad image is one line, as for one call. SSDlite with random
    weights finds boxes everywhere: plenty of people to compare."""
    settings = {"inference.frame_batch": 3, "detector.name": "ssdlite320_mobilenet_v3_large",
                "detector.score_threshold": 0.0, "detector.max_people": 5}  # fmt: skip
    estimator = PoseEstimator(clip["dir"] / "small.toml", weights=clip["dir"] / "res18.pth", pretrained_detector=False,
                              settings=settings)  # fmt: skip
    frames = clip["frames"][:7]
    detector, calls = estimator.pipeline.detector, []
    detect_batch = detector.detect_batch
    detector.detect_batch = lambda batch: calls.append(len(batch)) or detect_batch(batch)
    together = list(estimator.estimate_all(iter(frames)))
    assert calls == [3, 3, 1]
    alone = [estimator(frame) for frame in frames]
    assert [len(people) for people in together] == [len(people) for people in alone]
    assert sum(len(people) for people in alone) > 0
    for many, one in zip(together, alone, strict=True):
        for a, b in zip(many, one, strict=True):
            np.testing.assert_allclose(a.keypoints, b.keypoints, rtol=0, atol=1e-4)
            np.testing.assert_array_equal(a.box, b.box)
    with pytest.raises(UserError, match="no_such.png"):
        list(estimator.estimate_all([frames[0], clip["dir"] / "no_such.png"]))
