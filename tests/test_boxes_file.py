"""COCO detection-results files as person boxes."""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools.coco import COCO
from rich.console import Console
from toppose.common.config import Config, DetectorConfig
from toppose.common.errors import UserError
from toppose.detector import Detections, boxes_outside, load_boxes
from toppose.eval.coco import person_boxes


def _write(tmp_path: Path, content: object) -> Path:
    path = tmp_path / "detections.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def test_person_boxes_grouped_per_image_best_first(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            {"image_id": 7, "category_id": 1, "bbox": [10, 20, 30, 60], "score": 0.4},
            {"image_id": 7, "category_id": 18, "bbox": [0, 0, 5, 5], "score": 0.99},
            {"image_id": 7, "category_id": 1, "bbox": [1.5, 2, 3, 4], "score": 0.9},
            {"image_id": 9, "category_id": 1, "bbox": [0, 0, 0, 0], "score": 0.05},
            {"image_id": 11, "category_id": 3, "bbox": [0, 0, 5, 5], "score": 0.8},
        ],
    )
    boxes = load_boxes(path)
    assert sorted(boxes) == [7, 9]
    np.testing.assert_array_equal(boxes[7].boxes, [[1.5, 2, 3, 4], [10, 20, 30, 60]])
    np.testing.assert_array_equal(boxes[7].scores, [0.9, 0.4])
    assert boxes[7].boxes.dtype == np.float64 and boxes[7].keypoints is None
    empty = boxes.get(11)
    assert isinstance(empty, Detections) and empty.boxes.shape == (0, 4) and len(empty) == 0
    assert len(boxes.get(12345)) == 0 and boxes.get(7) is boxes[7]
    assert sorted(load_boxes(path, min_score=0.1)) == [7]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('[{"image_id": 1,', "malformed JSON"),
        ({"annotations": []}, "expected a list of COCO detection results, got a JSON dict"),
        ([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}, 3], "entry 1: expected an object"),
        ([{"category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}], "entry 0: 'image_id' must be an integer"),
        ([{"image_id": True, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 0.5}], "'image_id' must be an integer"),
        ([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1], "score": 0.5}], "entry 0: 'bbox' must be"),
        ([{"image_id": 1, "category_id": 1, "bbox": [0, 0, "1", 1], "score": 0.5}], "'bbox' must be"),
        ([{"image_id": 1, "category_id": 1, "bbox": [0, 0, -1, 1], "score": 0.5}], "negative width or height"),
        ([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": "high"}], "'score' must be a finite"),
        ([{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1]}], "entry 0: 'score' must be a finite number"),
        ('[{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": NaN}]', "'score' must be a finite"),
        ('[{"image_id": 1, "category_id": 1, "bbox": [0, 0, Infinity, 1], "score": 1}]', "'bbox' must be"),
        ([{"image_id": 1, "category_id": 1, "bbox": [1e308, 0, 1.7e308, 100], "score": 1}], "beyond 1e\\+06 pixels"),
        ([{"image_id": 1, "category_id": 1, "bbox": [-2e6, 0, 1, 1], "score": 1}], "entry 0: 'bbox' .* beyond"),
    ],
)
def test_malformed_files_name_file_and_entry(tmp_path: Path, content: object, message: str) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(UserError, match=message) as info:
        load_boxes(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="detection results file not found: .*absent.json"):
        load_boxes(tmp_path / "absent.json")


def test_zero_area_boxes_are_named_and_boxes_outside_an_image_found(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        [
            {"image_id": 1, "category_id": 1, "bbox": [0, 0, 0, 5], "score": 0.9},
            {"image_id": 1, "category_id": 1, "bbox": [0.2, 0.2, 0.5, 0.5], "score": 0.8},
            {"image_id": 2, "category_id": 1, "bbox": [3, 3, 4, 0], "score": 0.7},
            {"image_id": 2, "category_id": 1, "bbox": [1, 0, 5, 5], "score": 0.6},
        ],
    )
    boxes = load_boxes(path)
    assert boxes.problems == [f"{path}: zero-area person boxes find nobody (entries 0, 2)"]
    assert boxes_outside(boxes[1], 1, 1) == [[0.0, 0.0, 0.0, 5.0]]
    assert boxes_outside(boxes[2], 1, 1) == [[3.0, 3.0, 4.0, 0.0], [1.0, 0.0, 5.0, 5.0]]
    assert boxes_outside(boxes[2], 10, 10) == []
    assert (
        load_boxes(_write(tmp_path, [{"image_id": 1, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1}])).problems
        == []
    )


def _crowd(image_id: int, scores: list[float]) -> list[dict[str, object]]:
    return [{"image_id": image_id, "category_id": 1, "bbox": [i, i, 10, 20], "score": s} for i, s in enumerate(scores)]


def test_people_per_image_are_bounded_as_the_detector_s(tmp_path: Path) -> None:
    crowds = _crowd(1, [0.1 * (i % 10) for i in range(50)]) + _crowd(2, [0.5, 0.7]) + _crowd(3, [0.9] * 9)
    path = _write(tmp_path, crowds)
    boxes = load_boxes(path, max_people=8)
    assert [len(boxes[i]) for i in (1, 2, 3)] == [8, 2, 8]
    np.testing.assert_array_equal(boxes[1].scores, [0.9] * 5 + [0.8] * 3)
    np.testing.assert_array_equal(boxes[3].boxes[:, 0], np.arange(8))  # equal scores: the file's order
    assert boxes.problems == [
        f"{path}: 2 image(s) have more than 8 person boxes; each keeps its 8 best-scoring (detector.max_people)"
    ]
    assert len(load_boxes(path, max_people=0)[1]) == 50 and load_boxes(path, max_people=0).problems == []
    assert len(load_boxes(path)[1]) == DetectorConfig.max_people == 30  # the detector's default bound


@settings(max_examples=30, deadline=None)
@given(
    scores=st.lists(st.floats(0, 1), min_size=0, max_size=40),
    max_people=st.integers(0, 45),
)
def test_the_best_boxes_are_kept(scores: list[float], max_people: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        boxes = load_boxes(_write(Path(folder), _crowd(5, scores)), max_people=max_people)
    expected = sorted(scores, reverse=True)[: max_people or None]
    np.testing.assert_array_equal(boxes.get(5).scores, expected)
    assert len(boxes.problems) == (0 < max_people < len(scores))


def test_eval_bounds_the_boxes_with_the_setting(tmp_path: Path) -> None:
    cfg = Config()
    cfg.detector.max_people, cfg.detector.score_threshold = 3, 0.0
    console = Console(file=io.StringIO(), width=400)
    boxes = person_boxes(COCO(), [1], cfg, console, _write(tmp_path, _crowd(1, [0.5] * 7)))
    assert len(boxes.get(1)) == 3 and "detector.max_people" in console.file.getvalue()
