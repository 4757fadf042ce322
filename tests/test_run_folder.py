"""The output folder of a run: a killed folder run resumed to exactly the uninterrupted run's results, one run
at a time into a folder, a resume refused under another setup, earlier outputs warned about alike."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from toppose.common.atomic import is_temporary
from toppose.common.errors import run_cli
from toppose.pose.models.simplebaseline import SimpleBaseline

from toppose.cli import run
from toppose.run_folder import Journal

ROOT = Path(__file__).resolve().parent.parent
RES18 = str(ROOT / "configs" / "simplebaseline_res18_256x192.toml")
# A run whose every image takes at least 0.4 s longer, so that a test can act while it is under way.
SLOW_RUN = (
    "import sys, time\n"
    "import toppose.images as images\n"
    "record = images.record_image\n"
    "images.record_image = lambda *args: time.sleep(0.4) or record(*args)\n"
    "from toppose.cli import main\n"
    "main(['run', *sys.argv[1:]])\n"
)


@pytest.fixture(scope="module")
def folder(synthetic_coco: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("run_folder")
    annotations = json.loads((synthetic_coco / "annotations.json").read_text())
    boxes = [{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 1.0}
             for a in annotations["annotations"]]  # fmt: skip
    (tmp / "dets.json").write_text(json.dumps(boxes))
    torch.manual_seed(0)
    torch.save(SimpleBaseline("resnet18").state_dict(), tmp / "res18.pth")
    return {"images": synthetic_coco / "images", "ann": synthetic_coco / "annotations.json",
            "dets": tmp / "dets.json", "weights": tmp / "res18.pth"}  # fmt: skip


def args(ws: dict[str, Path], out: Path, *more: str) -> list[str]:
    return [str(ws["images"]), "-o", str(out), "--config", RES18, "--pose-weights", str(ws["weights"]),
            "--boxes", str(ws["dets"]), "--ann", str(ws["ann"]), "--no-flip", *more]  # fmt: skip


def slow_run(ws: dict[str, Path], out: Path, *more: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", SLOW_RUN, *args(ws, out, *more)], cwd=ROOT, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip


def journaled_images(out: Path) -> int:
    journal = out / "results.journal.jsonl"
    return len(journal.read_text().splitlines()) if journal.is_file() else 0


def wait_for(condition, seconds: float = 120.0) -> None:  # noqa: ANN001 - a callable of no arguments
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the run did not get there in time"
        time.sleep(0.05)


def sorted_entries(path: Path) -> list[dict]:
    return sorted(json.loads(path.read_text()), key=lambda e: (e["file_name"], e["bbox"]))


def test_a_killed_folder_run_resumes_to_the_uninterrupted_results(folder: dict[str, Path], tmp_path: Path) -> None:
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    assert run.main(args(folder, whole, "--no-draw")) == 0
    process = slow_run(folder, killed)
    wait_for(lambda: journaled_images(killed) >= 3)
    process.send_signal(signal.SIGKILL)  # as an out-of-memory kill: no handler runs
    process.wait()
    assert not (killed / "results.json").exists()
    done = journaled_images(killed)
    assert 3 <= done < 12
    assert run.main(args(folder, killed, "--resume")) == 0
    expected, resumed = sorted_entries(whole / "results.json"), sorted_entries(killed / "results.json")
    assert [(e["file_name"], e["image_id"]) for e in resumed] == [(e["file_name"], e["image_id"]) for e in expected]
    np.testing.assert_allclose([e["keypoints"] for e in resumed], [e["keypoints"] for e in expected], atol=1e-6)
    assert not (killed / "results.journal.jsonl").exists()  # its results are in results.json now
    assert not [p for p in killed.rglob("*") if is_temporary(p.name)]  # the killed run's temporaries cleared
    assert len(list((killed / "images").iterdir())) == 12  # every annotated image, once


def test_a_second_run_into_a_busy_folder_is_refused(
    folder: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    first = slow_run(folder, out, "--no-draw")
    try:
        wait_for(lambda: journaled_images(out) >= 1)
        with pytest.raises(SystemExit) as exit_info:
            run_cli(run.main, args(folder, out, "--no-draw"))
        err = capsys.readouterr().err
        assert exit_info.value.code == 1 and "Traceback" not in err
        assert f"error: {out} is in use by another run (pid {first.pid}:" in err
        assert journaled_images(out) < 12  # the first run was not disturbed ...
    finally:
        assert first.wait(timeout=120) == 0, first.stderr.read()  # ... and finishes as if alone
    assert len(json.loads((out / "results.json").read_text())) == len(json.loads(folder["dets"].read_text()))


def test_resume_under_another_setup_is_one_error_line(
    folder: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert run.main(args(folder, out, "--no-draw")) == 0
    before = (out / "results.json").read_bytes()
    with pytest.raises(SystemExit) as exit_info:
        run_cli(run.main, [*args(folder, out, "--no-draw", "--resume"), "--padding", "1.5"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        f"error: cannot resume: {out} was written with another setup (crop.padding: 1.25 -> 1.5); "
        "resume with the same setup, or write to another folder"
    ]
    assert (out / "results.json").read_bytes() == before
    record = json.loads((out / "run.json").read_text())
    assert record["fields"]["model.weights"] == str(folder["weights"]) and len(record["setup_sha256"]) == 64
    assert run.main(args(folder, out, "--no-draw", "--resume", "--batch-size", "3")) == 0  # how it runs: allowed


def test_a_failed_run_into_a_new_folder_leaves_nothing(folder: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "new"
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    with pytest.raises(SystemExit):
        run_cli(run.main, [*args(folder, out), "--boxes", str(bad)])
    assert not out.exists()


def test_an_image_whose_drawing_cannot_be_written_fails_alone(
    folder: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A write failure is that image's: the others are drawn, every image's results are kept, the run ends well."""
    out = tmp_path / "out"
    first = sorted(p.name for p in folder["images"].iterdir())[0]
    (out / "images" / first).mkdir(parents=True)  # a folder where its drawing should go: the rename fails
    assert run.main(args(folder, out)) == 0
    captured = capsys.readouterr()
    assert f"warning: {first}: annotated image not written: cannot write {out / 'images' / first}" in captured.err
    assert "annotated images not written" in captured.out
    names = {e["file_name"] for e in json.loads((out / "results.json").read_text())}
    assert first in names and len(names) == 12
    assert len([p for p in (out / "images").iterdir() if p.is_file()]) == 11


def test_a_journal_cut_just_before_its_last_newline_drops_that_line(tmp_path: Path) -> None:
    """Hypothesis found it: a cut that leaves the last line's JSON whole but not its newline is a line not
    written whole."""
    journal = Journal(tmp_path)
    journal.start([])
    journal.append("a.jpg", [{"image_id": 1, "score": 0.5}])
    journal.append("b.jpg", [{"image_id": 2, "score": 0.5}])
    journal.close()
    journal.path.write_bytes(journal.path.read_bytes()[:-1])
    assert journal.read() == [{"image_id": 1, "score": 0.5}]


@given(st.lists(st.integers(0, 5), min_size=1, max_size=6), st.data())
def test_a_journal_cut_anywhere_reads_as_its_complete_lines(people: list[int], data: st.DataObject) -> None:
    """A kill can cut the journal's last line at any byte: what is read back is every line written whole."""
    with tempfile.TemporaryDirectory() as folder:
        journal = Journal(Path(folder))
        journal.start([])
        written = []
        for i, count in enumerate(people):
            entries = [{"image_id": i, "keypoints": [float(i)] * 51, "score": 0.5, "file_name": f"{i}.jpg"}] * count
            journal.append(f"{i}.jpg", entries)
            written.append(entries)
        journal.close()
        text = journal.path.read_bytes()
        cut = data.draw(st.integers(0, len(text)))
        journal.path.write_bytes(text[:cut])
        whole_lines = text[:cut].count(b"\n")
        assert journal.read() == [e for entries in written[:whole_lines] for e in entries]
