"""The image/folder CLI (run.py) on synthetic data: outputs, image ids, bad inputs, atomic results."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import toppose.common.atomic
import torch
from toppose.common.atomic import is_temporary
from toppose.common.errors import run_cli
from toppose.common.schema import NUM_KEYPOINTS
from toppose.pose.models import SimpleBaseline
from toppose.pose.results import load_results

import toppose.images
import toppose.sources
from toppose import images
from toppose.cli import run

ROOT = Path(__file__).resolve().parent.parent
RES18 = str(ROOT / "configs" / "simplebaseline_res18_256x192.toml")


@pytest.fixture(scope="module")
def workspace(synthetic_coco: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Ground-truth boxes as a COCO detection file, random ResNet-18 weights, a small image folder."""
    tmp = tmp_path_factory.mktemp("run")
    annotations = json.loads((synthetic_coco / "annotations.json").read_text())
    detections = [
        {"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 1.0}
        for a in annotations["annotations"]
    ]
    (tmp / "dets.json").write_text(json.dumps(detections))
    torch.manual_seed(0)
    torch.save(SimpleBaseline("resnet18").state_dict(), tmp / "res18.pth")
    small = tmp / "small"
    small.mkdir()
    for path in sorted((synthetic_coco / "images").glob("*.jpg"))[:3]:
        shutil.copy(path, small / path.name)
    return {"images": synthetic_coco / "images", "ann": synthetic_coco / "annotations.json", "small": small,
            "dets": tmp / "dets.json", "weights": tmp / "res18.pth"}  # fmt: skip


def base_args(ws: dict[str, Path], out: Path, images: Path | None = None) -> list[str]:
    return [str(images or ws["images"]), "-o", str(out), "--config", RES18,
            "--pose-weights", str(ws["weights"]), "--boxes", str(ws["dets"])]  # fmt: skip


def run_cli_captured(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``run.py argv`` in-process through ``run_cli``: exit code, stdout, stderr."""
    with pytest.raises(SystemExit) as exit_info:
        run_cli(run.main, argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def assert_one_error_line(code: int, err: str, expected_code: int = 1) -> str:
    assert code == expected_code
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1
    return errors[0]


def test_folder_with_ground_truth_boxes(workspace: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run.main([*base_args(workspace, out), "--ann", str(workspace["ann"])]) == 0
    entries = load_results(out / "results.json", required=("image_id", "category_id", "keypoints", "score", "bbox"))
    annotations = json.loads(workspace["ann"].read_text())
    ids_by_name = {image["file_name"]: image["id"] for image in annotations["images"]}
    people = {}
    for a in annotations["annotations"]:
        people[a["image_id"]] = people.get(a["image_id"], 0) + 1
    found = {}
    for entry in entries:
        assert entry["image_id"] == ids_by_name[entry["file_name"]]
        assert len(entry["keypoints"]) == 3 * NUM_KEYPOINTS and len(entry["bbox"]) == 4
        assert 0.0 <= entry["score"] <= 1.0
        found[entry["image_id"]] = found.get(entry["image_id"], 0) + 1
    assert found == people  # one entry per ground-truth box
    for name in ids_by_name:
        annotated = cv2.imread(str(out / "images" / name))
        assert annotated is not None and annotated.shape == cv2.imread(str(workspace["images"] / name)).shape


def test_image_ids_without_ann_follow_sorted_order(
    workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert run.main([*base_args(workspace, out, workspace["small"]), "--no-draw", "--no-flip"]) == 0
    entries = load_results(out / "results.json")
    names = sorted(p.name for p in workspace["small"].iterdir())
    assert {(e["file_name"], e["image_id"]) for e in entries} == {(n, i + 1) for i, n in enumerate(names)}
    assert not (out / "images").exists()
    out_text = capsys.readouterr().out
    assert "1..N in sorted path order" in out_text  # the rule, in the summary
    assert ", fp32, no flip" in out_text  # the pose network and its arithmetic


def test_single_image_input(workspace: dict[str, Path], tmp_path: Path) -> None:
    image = sorted(workspace["small"].iterdir())[1]
    out = tmp_path / "out"
    assert run.main([*base_args(workspace, out, image), "--ann", str(workspace["ann"])]) == 0
    assert {e["file_name"] for e in load_results(out / "results.json")} == {image.name}
    assert (out / "images" / image.name).is_file()


def test_subprocess_run(workspace: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "run.py", *base_args(workspace, out, workspace["small"]), "--no-flip"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "images processed" in proc.stdout and "3 of 3" in proc.stdout
    assert len(list((out / "images").iterdir())) == 3
    assert load_results(out / "results.json")


@pytest.mark.parametrize(
    ("stems", "expected"),
    [
        (["000000000785", "000000397133"], [785, 397133]),  # COCO style: the number
        (["b", "a"], [1, 2]),  # otherwise the order given (sorted paths)
        (["7", "x"], [1, 2]),  # all or nothing: a partial rule could collide
        (["a/7", "b/07"], [1, 2]),  # the same number twice
    ],
)
def test_assign_image_ids(stems: list[str], expected: list[int]) -> None:
    assert images.assign_image_ids([Path(f"{s}.jpg") for s in stems]) == expected


@pytest.mark.parametrize(
    ("names", "rule", "warning"),
    [
        (["000000000785.jpg", "000000397133.jpg"], "file name numbers", None),
        (["b.jpg", "a.jpg"], "1..N in sorted path order", None),
        (
            ["7.jpg", "x.jpg"],
            "1..N in sorted path order",
            "not the numbers in the file names: 1 of 2 names are not (e.g. x.jpg)",
        ),
        (["a/7.jpg", "b/07.jpg"], "1..N in sorted path order", "not the numbers in the file names: some repeat"),
    ],
)
def test_image_id_rule_is_stated_and_a_mixed_folder_warned_about(
    names: list[str], rule: str, warning: str | None
) -> None:
    stated, surprise = images.image_id_rule([Path(n) for n in names], with_ann=False)
    assert stated == rule
    assert surprise == warning or (warning is not None and surprise.endswith(warning))
    assert images.image_id_rule([Path(n) for n in names], with_ann=True) == ("from --ann", None)


def test_assign_image_ids_from_annotations() -> None:
    ann = {"a/1.jpg": 10, "2.jpg": 20}
    paths = [Path("a/1.jpg"), Path("b/2.jpg"), Path("c.jpg")]
    assert images.assign_image_ids(paths, ann) == [10, 20, None]


def test_bad_files_are_skipped_and_listed(
    workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "mixed"
    shutil.copytree(workspace["small"], folder)
    (folder / "notes.txt").write_text("not an image")
    (folder / "zz_broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    out = folder / "out"  # inside the input folder: its files must not be read back as inputs
    code, stdout, stderr = run_cli_captured([*base_args(workspace, out, folder), "--no-flip"], capsys)
    assert code == 0
    warnings = [line for line in stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 2 and "notes.txt" in warnings[0] and "zz_broken.jpg" in warnings[1]
    assert "3 of 4" in stdout and "notes.txt" in stdout and "zz_broken.jpg" in stdout
    assert len(list((out / "images").iterdir())) == 3

    code, stdout, stderr = run_cli_captured([*base_args(workspace, out, folder), "--no-flip", "--no-draw"], capsys)
    assert code == 0 and "3 of 4" in stdout
    warnings = [line for line in stderr.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 4  # the two files, and the earlier run's outputs: still there, not redrawn
    assert f"warning: {out / 'images'} still holds 3 annotated images of an earlier run" in warnings


def test_missing_input_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli_captured([str(tmp_path / "nowhere"), "-o", str(tmp_path / "out")], capsys)
    assert "nowhere" in assert_one_error_line(code, err)


def test_missing_input_subprocess(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "run.py", str(tmp_path / "nowhere"), "-o", str(tmp_path / "out")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert_one_error_line(proc.returncode, proc.stderr)


@pytest.mark.parametrize("content", [None, {"notes.txt": b"hello"}, {"broken.png": b"\x89PNG nonsense"}])
def test_folder_without_usable_images_fails(
    workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], content: dict | None
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name, data in (content or {}).items():
        (folder / name).write_bytes(data)
    code, _, err = run_cli_captured(base_args(workspace, tmp_path / "out", folder), capsys)
    assert_one_error_line(code, err)
    assert not (tmp_path / "out" / "results.json").exists()


def test_malformed_boxes_file(workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "dets.json"
    bad.write_text('[{"image_id": 1, "bbox": [1, 2')
    argv = [str(workspace["small"]), "-o", str(tmp_path / "out"), "--config", RES18, "--boxes", str(bad)]
    code, _, err = run_cli_captured(argv, capsys)
    assert "dets.json" in assert_one_error_line(code, err)


def test_garbage_pose_weights(workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    garbage = tmp_path / "weights.pth"
    garbage.write_bytes(b"definitely not a checkpoint" * 10)
    argv = [*base_args(workspace, tmp_path / "out", workspace["small"]), "--pose-weights", str(garbage)]
    code, _, err = run_cli_captured(argv, capsys)
    assert "weights.pth" in assert_one_error_line(code, err)


def test_missing_pretrained_weights_exit_2(
    workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise OSError("network is unreachable")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    argv = [str(workspace["small"]), "-o", str(tmp_path / "out"), "--boxes", str(workspace["dets"])]  # the default
    code, _, err = run_cli_captured(argv, capsys)
    assert "rtmpose-m_simcc-aic-coco_pt-aic-coco_420e-256x192-63eb25f7" in assert_one_error_line(code, err, 2)


def test_output_path_that_is_a_file(
    workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.write_text("")
    code, _, err = run_cli_captured(base_args(workspace, out, workspace["small"]), capsys)
    assert "not a folder" in assert_one_error_line(code, err)


def test_failed_results_write_keeps_the_earlier_file(
    workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    earlier = '[{"earlier": true}]'
    (out / "results.json").write_text(earlier)

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    def results_on_a_full_disk(path: Path, obj: object) -> None:
        monkeypatch.setattr(toppose.common.atomic.os, "fsync", disk_full)  # the results are half written then
        toppose.common.atomic.write_json(path, obj)

    monkeypatch.setattr(toppose.images, "write_json", results_on_a_full_disk)
    code, _, err = run_cli_captured([*base_args(workspace, out, workspace["small"]), "--no-draw"], capsys)
    assert "results.json" in assert_one_error_line(code, err)
    assert (out / "results.json").read_text() == earlier
    assert not any(is_temporary(p.name) for p in out.iterdir())  # no temporary file left behind
    assert (out / "results.journal.jsonl").is_file()  # the images done, kept for --resume


def test_huge_box_is_one_error_line(
    workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [1e308, 0, 1.7e308, 100], "score": 0.9}]))
    argv = [str(workspace["small"]), "-o", str(tmp_path / "out"), "--config", RES18, "--boxes", str(dets)]
    code, _, err = run_cli_captured(argv, capsys)
    assert "entry 0: 'bbox'" in assert_one_error_line(code, err)
    assert not (tmp_path / "out").exists()


def test_degenerate_boxes_and_boxes_outside_the_image_are_named(
    workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    cv2.imwrite(str(folder / "1.png"), np.zeros((1, 1, 3), np.uint8))
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": 1, "category_id": 1, "bbox": [5, 5, 10, 20], "score": 0.9},
                                {"image_id": 1, "category_id": 1, "bbox": [0, 0, 0, 0], "score": 0.8}]))  # fmt: skip
    out = tmp_path / "out"
    argv = [str(folder), "-o", str(out), "--config", RES18, "--pose-weights", str(workspace["weights"]),
            "--boxes", str(dets), "--no-draw"]  # fmt: skip
    code, _, err = run_cli_captured(argv, capsys)
    assert code == 0 and "Traceback" not in err
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert f"warning: {dets}: zero-area person boxes find nobody (entry 1)" in warnings
    assert "warning: 1.png: 2 boxes lie outside its 1x1 image: [5.0, 5.0, 10.0, 20.0], [0.0, 0.0, 0.0, 0.0]" in warnings
    entries = json.loads((out / "results.json").read_text(), parse_constant=lambda name: pytest.fail(name))
    assert len(entries) == 2


def test_unwritable_output_fails_before_any_work(
    workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_work(*args: object, **kwargs: object) -> None:
        raise AssertionError("the pipeline was built before the output folder was checked")

    monkeypatch.setattr(images, "build_pipeline", no_work)
    (tmp_path / "file").write_text("")
    for out in (tmp_path / "file", tmp_path / "file" / "out"):
        code, _, err = run_cli_captured([*base_args(workspace, out, workspace["small"]), "--no-draw"], capsys)
        assert str(out) in assert_one_error_line(code, err)


def test_interrupted_folder_run_keeps_its_results_and_resumes(
    workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    argv = [*base_args(workspace, out, workspace["small"]), "--ann", str(workspace["ann"]), "--no-flip"]
    names = sorted(p.name for p in workspace["small"].iterdir())
    read: list[str] = []

    def read_then_stop(path: Path) -> np.ndarray:
        read.append(path.name)
        if len(read) == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # the second image: the job is killed while it is read
        return cv2.imread(str(path))

    monkeypatch.setattr(toppose.sources, "read_image", read_then_stop)
    code, _, err = run_cli_captured(argv, capsys)
    assert code == 130 and "Traceback" not in err
    assert f"interrupted after 1 of 3 images: {out / 'results.json'} holds the images done" in err
    first = load_results(out / "results.json")
    assert {e["file_name"] for e in first} == {names[0]}
    assert sorted(p.name for p in (out / "images").iterdir()) == [names[0]]

    monkeypatch.setattr(toppose.sources, "read_image", lambda path: read.append(path.name) or cv2.imread(str(path)))
    code, stdout, err = run_cli_captured([*argv, "--resume"], capsys)
    assert code == 0 and "warning" not in err
    assert read[2:] == names[1:]  # the image done before is not read again
    assert "images kept from the resumed run" in stdout and "2 of 3" in stdout
    resumed = load_results(out / "results.json")
    assert {e["file_name"] for e in resumed} == set(names)
    assert [e for e in resumed if e["file_name"] == names[0]] == first

    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(workspace["small"] / names[0], other / "renamed.jpg")
    code, _, err = run_cli_captured([*base_args(workspace, out, other), "--resume"], capsys)
    assert "cannot resume" in assert_one_error_line(code, err)


def test_a_run_over_an_earlier_output_folder_says_what_is_left_of_it(
    workspace: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code, _, _ = run_cli_captured([*base_args(workspace, out, workspace["small"]), "--no-flip"], capsys)
    assert code == 0
    fewer = tmp_path / "fewer"
    fewer.mkdir()
    shutil.copy(sorted(workspace["small"].iterdir())[0], fewer)
    code, _, err = run_cli_captured([*base_args(workspace, out, fewer), "--no-flip"], capsys)
    assert code == 0
    assert f"warning: {out} holds the outputs of an earlier run" in err
    assert f"warning: {out / 'images'} still holds 2 annotated images of an earlier run" in err
