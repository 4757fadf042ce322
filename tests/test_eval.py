"""``python -m eval.coco``: every mode through ``main(argv)``, and one clear error line for bad inputs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from toppose.common.coco import METRIC_NAMES
from toppose.common.config import DetectorConfig
from toppose.common.errors import run_cli
from toppose.detector.torchvision_detector import PersonDetector, build_detector
from toppose.pose.models import SimpleBaseline

import toppose.pipeline
from toppose.cli.eval import main

SMALL_MODEL = """\
[model]
backbone = "resnet18"
input_size = [96, 128]
heatmap_size = [24, 32]
deconv_channels = 32
weights = ""
"""


def _ground_truth_as_results(ann: Path, out: Path) -> Path:
    """Every scored ground-truth person as a keypoint result with score 1."""
    data = json.loads(ann.read_text())
    entries = [
        {"image_id": a["image_id"], "category_id": 1, "keypoints": a["keypoints"], "score": 1.0}
        for a in data["annotations"]
        if a["num_keypoints"] > 0 and not a["iscrowd"]
    ]
    out.write_text(json.dumps(entries))
    return out


def _small_config(tmp_path: Path) -> Path:
    config = tmp_path / "small.toml"
    config.write_text(SMALL_MODEL)
    return config


def _metrics(path: Path) -> dict[str, float]:
    metrics = json.loads(path.read_text())
    assert list(metrics) == list(METRIC_NAMES)
    return metrics


def _cli_error(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """Run the CLI as a user would; it must fail with exit code 1 and a single ``error:`` line."""
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, argv)
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def test_ground_truth_as_results_scores_one(synthetic_coco: Path, tmp_path: Path) -> None:
    ann = synthetic_coco / "annotations.json"
    results = _ground_truth_as_results(ann, tmp_path / "gt.json")
    assert main(["--ann", str(ann), "--results", str(results), "--json", str(tmp_path / "m.json")]) == 0
    assert _metrics(tmp_path / "m.json")["AP"] == pytest.approx(1.0)


def test_ground_truth_as_results_scores_one_on_coco_mini(coco_mini: Path, tmp_path: Path) -> None:
    ann = coco_mini / "annotations" / "person_keypoints_val2017.json"
    results = _ground_truth_as_results(ann, tmp_path / "gt.json")
    assert main(["--ann", str(ann), "--results", str(results), "--json", str(tmp_path / "m.json")]) == 0
    metrics = _metrics(tmp_path / "m.json")
    assert metrics["AP"] == pytest.approx(1.0) and metrics["AR"] == pytest.approx(1.0)


def test_results_limit_and_saved_results(
    synthetic_coco: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ann = synthetic_coco / "annotations.json"
    results = _ground_truth_as_results(ann, tmp_path / "gt.json")
    saved = tmp_path / "saved.json"
    argv = ["--ann", str(ann), "--results", str(results), "--limit", "3", "--save-results", str(saved)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "AP50" in out and "ARl" in out and "images evaluated" in out
    assert {e["image_id"] for e in json.loads(saved.read_text())} == {1, 2, 3}


def test_oracle_mode_writes_metrics(synthetic_coco: Path, tmp_path: Path) -> None:
    ann = synthetic_coco / "annotations.json"
    argv = ["--ann", str(ann), "--images", str(synthetic_coco / "images"), "--oracle", "--decode", "argmax"]
    assert main([*argv, "--no-flip", "--json", str(tmp_path / "m.json")]) == 0
    assert _metrics(tmp_path / "m.json")["AP"] >= 0.95


@pytest.fixture(scope="module")
def small_weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised ResNet-18 SimpleBaseline checkpoint matching ``SMALL_MODEL``."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "pose.pth"
    torch.save(SimpleBaseline("resnet18", deconv_channels=32).state_dict(), path)
    return path


def test_gt_boxes_with_a_checkpoint_skips_missing_images(
    synthetic_coco: Path, small_weights: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for name in ("synthetic_00001.jpg", "synthetic_00003.jpg"):  # image 2 is missing on disk
        shutil.copy(synthetic_coco / "images" / name, images / name)
    argv = ["--ann", str(synthetic_coco / "annotations.json"), "--images", str(images), "--gt-boxes"]
    argv += ["--config", str(_small_config(tmp_path)), "--pose-weights", str(small_weights)]
    argv += ["--device", "cpu", "--no-flip", "--limit", "3"]
    assert main([*argv, "--json", str(tmp_path / "m.json"), "--save-results", str(tmp_path / "r.json")]) == 0
    metrics = _metrics(tmp_path / "m.json")
    assert all(0.0 <= value <= 1.0 for value in metrics.values())
    assert {e["image_id"] for e in json.loads((tmp_path / "r.json").read_text())} == {1, 3}
    captured = capsys.readouterr()
    assert "warning: skipped synthetic_00002.jpg: image not found" in captured.err
    assert "1 of 3 images skipped" in captured.err and "evaluated on the 2 processed" in captured.err
    assert "gt-boxes" in captured.out


def test_detection_file_of_ground_truth_boxes_equals_gt_boxes_mode(
    synthetic_coco: Path, small_weights: Path, tmp_path: Path
) -> None:
    ann = synthetic_coco / "annotations.json"
    detections = [
        {"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 1.0}
        for a in json.loads(ann.read_text())["annotations"]
    ]
    (tmp_path / "dets.json").write_text(json.dumps(detections))
    argv = ["--ann", str(ann), "--images", str(synthetic_coco / "images"), "--limit", "2"]
    argv += ["--config", str(_small_config(tmp_path)), "--pose-weights", str(small_weights)]
    assert main([*argv, "--gt-boxes", "--save-results", str(tmp_path / "gt.json")]) == 0
    assert main([*argv, "--boxes", str(tmp_path / "dets.json"), "--save-results", str(tmp_path / "dets_out.json")]) == 0
    from_gt = json.loads((tmp_path / "gt.json").read_text())
    assert from_gt and json.loads((tmp_path / "dets_out.json").read_text()) == from_gt


def test_detector_mode_runs_offline_with_random_detector_weights(
    synthetic_coco: Path, small_weights: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def random_detector(
        cfg: DetectorConfig, device: str = "cpu", pretrained: bool = True, keypoints: bool = True
    ) -> PersonDetector:
        return build_detector(cfg, device, pretrained=False, keypoints=keypoints)

    monkeypatch.setattr(toppose.pipeline, "build_detector", random_detector)
    argv = ["--ann", str(synthetic_coco / "annotations.json"), "--images", str(synthetic_coco / "images")]
    argv += ["--config", str(_small_config(tmp_path)), "--pose-weights", str(small_weights), "--limit", "2"]
    argv += ["--detector", "fasterrcnn_mobilenet_v3_large_fpn", "--json", str(tmp_path / "m.json")]
    assert main(argv) == 0
    assert all(0.0 <= value <= 1.0 for value in _metrics(tmp_path / "m.json").values())


def test_missing_annotation_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    err = _cli_error(["--ann", str(tmp_path / "nope.json"), "--oracle"], capsys)
    assert "annotation file not found" in err


@pytest.mark.parametrize("content", ["[1, 2, 3]", '{"images": []}', "{not json"])
def test_non_coco_annotation_file(content: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ann = tmp_path / "ann.json"
    ann.write_text(content)
    assert "not a COCO annotation file" in _cli_error(["--ann", str(ann), "--oracle"], capsys)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{broken", "malformed JSON"),
        ('{"image_id": 1}', "expected a JSON list"),
        ('[{"image_id": 1, "category_id": 1, "score": 1.0}]', "no 'keypoints' field"),
        ('[{"image_id": 1, "category_id": 1, "keypoints": [1, 2, 3], "score": 1.0}]', "must be a list of 51"),
        (
            '[{"image_id": 1, "category_id": 1, "keypoints": [' + ", ".join(['"a"'] * 51) + '], "score": 1}]',
            "'keypoints' must hold finite numbers",
        ),
        (
            '[{"image_id": 1, "category_id": 1, "keypoints": [' + ", ".join(["NaN"] * 51) + '], "score": 1}]',
            "entry 0 'keypoints' must hold finite numbers",
        ),
        (
            '[{"image_id": 1, "category_id": 1, "keypoints": [' + ", ".join(["1"] * 51) + '], "score": Infinity}]',
            "entry 0 'score' must be a finite number, got inf",
        ),
        ('[{"image_id": 99999, "category_id": 1, "keypoints": [' + ", ".join(["1"] * 51) + '], "score": 1}]', "99999"),
    ],
)
def test_malformed_results_file(
    content: str, message: str, synthetic_coco: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = tmp_path / "results.json"
    results.write_text(content)
    err = _cli_error(["--ann", str(synthetic_coco / "annotations.json"), "--results", str(results)], capsys)
    assert message in err and str(results) in err


def test_missing_results_file(synthetic_coco: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--ann", str(synthetic_coco / "annotations.json"), "--results", str(tmp_path / "none.json")]
    assert "results file not found" in _cli_error(argv, capsys)


def test_pipeline_modes_need_an_image_folder(
    synthetic_coco: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ann = str(synthetic_coco / "annotations.json")
    assert "--images is required" in _cli_error(["--ann", ann, "--gt-boxes"], capsys)
    assert "image folder not found" in _cli_error(["--ann", ann, "--images", str(tmp_path / "x"), "--oracle"], capsys)


def test_no_readable_image_is_an_error(
    synthetic_coco: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--ann", str(synthetic_coco / "annotations.json"), "--images", str(tmp_path), "--gt-boxes"]
    err = _cli_error([*argv, "--pose-weights", "", "--config", str(_small_config(tmp_path)), "--limit", "2"], capsys)
    assert "none of the 2 images" in err


def test_oracle_reports_blank_frames(synthetic_coco: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--ann", str(synthetic_coco / "annotations.json"), "--images", str(tmp_path), "--oracle", "--limit", "2"]
    assert main([*argv, "--json", str(tmp_path / "m.json")]) == 0
    assert "2 images not found: the oracle used blank frames" in capsys.readouterr().err
    assert _metrics(tmp_path / "m.json")["AP"] >= 0.9


def test_unwritable_outputs_fail_before_the_evaluation(
    synthetic_coco: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("toppose.cli.eval.load_coco", lambda path: pytest.fail("evaluated before checking the outputs"))
    (tmp_path / "file").write_text("")
    for flag in ("--json", "--save-results"):
        argv = ["--ann", str(synthetic_coco / "annotations.json"), "--oracle", flag, str(tmp_path / "file" / "m.json")]
        assert "not a folder" in _cli_error(argv, capsys)
