"""Numbers in and out: boxes and results files must hold finite, plausible numbers (one error line otherwise),
and every JSON written is strict (no NaN or Infinity), whatever the input."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from toppose.common.atomic import write_json
from toppose.common.config import Config
from toppose.common.errors import UserError, run_cli
from toppose.common.numbers import MAX_COORDINATE
from toppose.common.poses import PoseResult
from toppose.common.schema import NUM_KEYPOINTS
from toppose.detector import load_boxes
from toppose.pose.inference import TopDownEstimator
from toppose.pose.models import SimpleBaseline
from toppose.pose.results import load_results, to_coco_entries
from toppose.pose.training.progress import MetricsLog

import toppose.images
from toppose.cli import run
from toppose.cli.eval import main as eval_main
from toppose.pipeline import TopDownPipeline

QUICK = {"deadline": None, "suppress_health_check": [HealthCheck.function_scoped_fixture]}
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(-2e3, 2e3),
    st.integers(-(10**20), 10**20),
    st.sampled_from([0, 1, 1e308, 1.7e308, -1e308, MAX_COORDINATE, 1e-320]),
)


def _reject_constant(name: str) -> None:
    raise AssertionError(f"non-finite {name} in written JSON")


def strict_loads(text: str) -> Any:
    """Parse JSON, failing on NaN / Infinity / -Infinity."""
    return json.loads(text, parse_constant=_reject_constant)


def test_write_json_refuses_non_finite_and_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_json(tmp_path / "x.json", [{"score": math.nan}])
    assert list(tmp_path.iterdir()) == []


def test_people_with_non_finite_numbers_are_left_out_of_the_results() -> None:
    keypoints = np.ones((3, NUM_KEYPOINTS, 3))
    keypoints[1, 4, 0] = np.nan
    boxes = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, np.inf, 1]], dtype=np.float64)
    result = PoseResult(boxes, np.ones(3), keypoints, np.array([0.9, 0.8, 0.7]))
    entries = to_coco_entries(result, 5)
    assert [e["score"] for e in entries] == [0.9]
    strict_loads(json.dumps(entries))


def test_a_diverged_loss_is_logged_as_null(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "metrics.jsonl", enabled=True, keep_through_epoch=None)
    log.write({"kind": "train", "loss": math.nan, "lr": [math.inf, 1.0]})
    assert strict_loads((tmp_path / "metrics.jsonl").read_text()) == {"kind": "train", "loss": None, "lr": [None, 1.0]}


@pytest.fixture(scope="module")
def estimator() -> TopDownEstimator:
    torch.manual_seed(0)
    cfg = Config()
    cfg.model.input_size, cfg.model.heatmap_size = (96, 128), (24, 32)
    cfg.inference.flip_test = False
    return TopDownEstimator(SimpleBaseline("resnet18", deconv_channels=16), cfg)


BOX_ENTRIES = st.lists(
    st.fixed_dictionaries(
        {
            "image_id": st.just(1),
            "category_id": st.just(1),
            "bbox": st.lists(NUMBERS, min_size=4, max_size=4),
            "score": NUMBERS,
        }
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=60, **QUICK)
@given(entries=BOX_ENTRIES)
def test_any_boxes_file_is_refused_in_one_line_or_gives_strict_results(
    tmp_path: Path, estimator: TopDownEstimator, entries: list[dict[str, Any]]
) -> None:
    path = tmp_path / "dets.json"
    path.write_text(json.dumps(entries))  # Python's json writes NaN / Infinity as many tools do
    try:
        boxes = load_boxes(path)
    except UserError as err:
        assert str(err).startswith(f"{path}: entry ") and "\n" not in str(err)
        return
    detections = boxes.get(1)
    assert np.isfinite(detections.boxes).all() and (np.abs(detections.boxes) <= MAX_COORDINATE).all()
    frame = np.full((8, 8, 3), 127, dtype=np.uint8)  # a tiny image: most boxes lie outside it
    result = estimator.estimate(frame, detections.boxes, detections.scores)
    for entry in strict_loads(json.dumps(to_coco_entries(result, 1))):
        assert all(math.isfinite(v) for v in [*entry["keypoints"], *entry["bbox"], entry["score"]])


RESULT_ENTRIES = st.lists(
    st.fixed_dictionaries(
        {
            "image_id": st.sampled_from([1, 2, 3]),
            "category_id": st.just(1),
            "keypoints": st.tuples(st.floats(0, 500), NUMBERS, st.integers(0, 3 * NUM_KEYPOINTS - 1)).map(
                lambda t: [t[1] if i == t[2] else t[0] for i in range(3 * NUM_KEYPOINTS)]
            ),
            "score": NUMBERS,
        }
    ),
    min_size=1,
    max_size=3,
)


def _plausible(entry: dict[str, Any]) -> bool:
    return math.isfinite(entry["score"]) and all(
        math.isfinite(v) and abs(v) <= MAX_COORDINATE for v in entry["keypoints"]
    )


@settings(max_examples=200, **QUICK)
@given(entries=RESULT_ENTRIES)
def test_any_results_file_loads_plausible_or_is_refused_in_one_line(
    tmp_path: Path, entries: list[dict[str, Any]]
) -> None:
    path = tmp_path / "results.json"
    path.write_text(json.dumps(entries))
    try:
        load_results(path)
    except UserError as err:
        assert not all(_plausible(e) for e in entries)
        assert str(err).startswith(f"{path}: entry ") and "\n" not in str(err)
        return
    assert all(_plausible(e) for e in entries)


@settings(max_examples=8, **QUICK)
@given(entries=RESULT_ENTRIES)
def test_any_results_file_is_refused_in_one_line_or_scored_to_strict_json(
    synthetic_coco: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], entries: list[dict[str, Any]]
) -> None:
    results, metrics = tmp_path / "results.json", tmp_path / "metrics.json"
    results.write_text(json.dumps(entries))
    metrics.unlink(missing_ok=True)
    argv = ["--ann", str(synthetic_coco / "annotations.json"), "--results", str(results), "--json", str(metrics)]
    with pytest.raises(SystemExit) as exit_info:
        run_cli(eval_main, argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    finite = all(_plausible(e) for e in entries)
    if finite:
        assert exit_info.value.code == 0
        assert all(math.isfinite(v) for v in strict_loads(metrics.read_text()).values())
    else:
        assert exit_info.value.code == 1 and err.startswith(f"error: {results}: entry ") and err.count("\n") == 1
        assert not metrics.exists()


@settings(max_examples=15, **QUICK)
@given(entries=BOX_ENTRIES)
def test_any_boxes_file_through_run_py_exits_cleanly_with_strict_results(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    estimator: TopDownEstimator,
    entries: list[dict[str, Any]],
) -> None:
    monkeypatch.setattr(
        toppose.images, "build_pipeline", lambda cfg, boxes, pose: TopDownPipeline(cfg, estimator, boxes=boxes)
    )
    folder, out, dets = tmp_path / "in", tmp_path / "out", tmp_path / "dets.json"
    folder.mkdir(exist_ok=True)
    cv2.imwrite(str(folder / "1.png"), np.full((16, 12, 3), 90, np.uint8))
    dets.write_text(json.dumps(entries))
    (out / "results.json").unlink(missing_ok=True)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(run.main, [str(folder), "-o", str(out), "--boxes", str(dets), "--det-threshold", "0", "--no-draw"])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if exit_info.value.code:
        errors = [line for line in err.splitlines() if line.startswith("error:")]
        assert exit_info.value.code == 1 and len(errors) == 1 and errors[0].startswith(f"error: {dets}: entry ")
        assert not (out / "results.json").exists()
        return
    for entry in strict_loads((out / "results.json").read_text()):
        assert all(math.isfinite(v) for v in [*entry["keypoints"], *entry["bbox"], entry["score"]])
