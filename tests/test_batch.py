"""toppose batch on a local Ray cluster: each item's outputs equal a single-process ``toppose run``'s exactly; a worker
killed mid-item is retried; an interrupted driver's rerun does only the rest; a corrupt video fails alone.

Tiny inputs (a few frames, one given box each) and SimpleBaseline-18 with random weights keep it quick; Ray starts
once for the module (the tests without Ray run where it is not installed).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from toppose.common.config import CONFIG_DIR
from toppose.common.errors import UserError, run_cli
from toppose.pose.models import SimpleBaseline

from tests.clips import SMALL_NETWORK
from toppose.batch.cluster import process_state_kept
from toppose.batch.items import read_specs
from toppose.cli import batch, run

# Video frames of 128x96: at some sizes (64x48, 160x128) libx264 through PyAV encodes the same frames differently from
# one process to the next, so annotated.mp4 is not reproducible there, in toppose run as in the batch. Images: 64x48.
VIDEO_SIZE, IMAGE_SIZE = (128, 96), (64, 48)  # width, height
FRAMES = {"walk": 6, "jump": 5, "long": 30}  # videos and their frames


def frames(count: int, seed: int, size: tuple[int, int]) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    images = []
    for t in range(count):
        image = rng.integers(0, 60, (size[1], size[0], 3), dtype=np.uint8)
        cv2.rectangle(image, (12 + t % 5, 6), (40 + t % 5, 44), (200, 180, 160), -1)
        images.append(image)
    return images


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Videos, image folders, one box per frame or image (ids 0..59), SimpleBaseline-18 at 64x96 (tests/clips.py)
    with random weights."""
    tmp = tmp_path_factory.mktemp("batch")
    for seed, (name, count) in enumerate(FRAMES.items()):
        writer = cv2.VideoWriter(str(tmp / f"{name}.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, VIDEO_SIZE)
        for image in frames(count, seed, VIDEO_SIZE):
            writer.write(image)
        writer.release()
    for seed, (name, count) in enumerate({"stills": 5, "crowd": 2}.items(), start=10):
        (tmp / name).mkdir()
        for i, image in enumerate(frames(count, seed, IMAGE_SIZE)):
            cv2.imwrite(str(tmp / name / f"{chr(97 + i)}.png"), image)
    (tmp / "broken.mp4").write_bytes(b"not a video" * 100)
    (tmp / "empty").mkdir()
    boxes = [{"image_id": i, "category_id": 1, "bbox": [12, 6, 30, 38], "score": 0.9} for i in range(60)]
    (tmp / "dets.json").write_text(json.dumps(boxes))
    config = (CONFIG_DIR / "simplebaseline_res18_256x192.toml").read_text()
    for old, new in SMALL_NETWORK:
        config = config.replace(old, new)
    (tmp / "small.toml").write_text(config)
    torch.manual_seed(0)
    torch.save(SimpleBaseline("resnet18").state_dict(), tmp / "res18.pth")
    return {"dir": tmp, "model": ["--config", str(tmp / "small.toml"), "--pose-weights", str(tmp / "res18.pth"),
                                  "--boxes", str(tmp / "dets.json"), "--no-flip"]}  # fmt: skip


@pytest.fixture(scope="module")
def ray_cluster() -> Any:
    ray = pytest.importorskip("ray", reason="toppose batch needs Ray: pip install 'toppose[distributed]'")
    with process_state_kept():  # the rest of the suite gets the process's own print and signal handlers back
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        yield ray
        ray.shutdown()


@pytest.fixture(scope="module")
def references(data: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each input through a single-process ``toppose run``, with the options the batch tests give it."""
    tmp, out = data["dir"], tmp_path_factory.mktemp("references")
    options = {"walk": ["--track", "--kinematics"], "jump": [], "long": [], "stills": [], "crowd": ["--no-draw"]}
    for name, extra in options.items():
        source = tmp / (name if (tmp / name).is_dir() else f"{name}.mp4")
        assert run.main([str(source), "-o", str(out / name), *data["model"], *extra]) == 0
    return {name: out / name for name in options}


def manifest(data: dict[str, Any]) -> Path:
    """A JSON-lines manifest with per-item options; the stills folder goes in as a glob on the command line."""
    rows = [{"path": "walk.mp4", "track": True, "kinematics": True}, {"path": "jump.mp4"}, {"path": "broken.mp4"},
            {"path": "crowd", "draw": False}, {"path": "empty"}]  # fmt: skip
    path = data["dir"] / "list.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def files_of(folder: Path) -> dict[str, bytes]:
    """Every output file of a run folder by its relative path (the lock, which names the process, left out)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".toppose.lock"}  # fmt: skip


def assert_same_outputs(batch_item: Path, reference: Path) -> None:
    ours, theirs = files_of(batch_item), files_of(reference)
    assert sorted(ours) == sorted(theirs)
    assert [name for name in ours if ours[name] != theirs[name]] == []


def done_lines(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "done.jsonl").read_text().splitlines()]


def summary_value(summary: str, row: str) -> str:
    """A value of the summary table printed on stdout."""
    found = [line.split("│")[2].strip() for line in summary.splitlines() if f"│ {row} " in line]
    assert len(found) == 1
    return found[0]


def error_lines(err: str) -> list[str]:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.startswith("error: ")]


def run_batch_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(batch.main, argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_outputs_equal_single_process_runs_and_a_rerun_does_only_what_is_missing(
    ray_cluster: Any, data: dict[str, Any], references: dict[str, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "out"
    argv = [str(manifest(data)), str(data["dir"] / "st*"), "-o", str(out), *data["model"], "--workers", "2",
            "--shard-size", "2"]  # fmt: skip
    code, summary, err = run_batch_cli(argv, capsys)
    assert code == 1 and error_lines(err) == [f"error: 2 of 6 items failed (listed above and in {out / 'failed.json'})"]
    for name in ("walk", "jump", "crowd", "stills"):  # stills: 5 images in shards of 2, over both workers
        assert_same_outputs(out / name, references[name])
    failed = {f["name"]: f for f in json.loads((out / "failed.json").read_text())}  # each alone
    assert sorted(failed) == ["broken", "empty"] and {f["attempts"] for f in failed.values()} == {1}
    assert failed["broken"]["error"].startswith(f"cannot open video {data['dir'] / 'broken.mp4'}")
    assert failed["empty"]["error"] == f"no images found in {data['dir'] / 'empty'}"
    lines = {line["name"]: line for line in done_lines(out)}
    assert sorted(lines) == ["crowd", "jump", "stills", "walk"]
    assert (lines["walk"]["frames"], lines["stills"]["frames"], lines["crowd"]["frames"]) == (6, 5, 2)
    assert lines["walk"]["people"] == len(json.loads((out / "walk" / "results.json").read_text()))
    assert lines["walk"]["options"]["track"] and not lines["jump"]["options"]["track"]
    assert lines["stills"]["setup_sha256"] == json.loads((out / "stills" / "run.json").read_text())["setup_sha256"]

    (out / "jump" / "results.json").unlink()  # a done item whose outputs are gone is done again
    code, summary, err = run_batch_cli(argv, capsys)  # again: only that one and the two bad ones are tried
    assert code == 1 and [line["name"] for line in done_lines(out)][4:] == ["jump"]
    assert (summary_value(summary, "done before (skipped)"), summary_value(summary, "done now")) == ("3", "1")
    assert_same_outputs(out / "jump", references["jump"])

    code, _, err = run_batch_cli([*argv, "--set", "crop.padding=1.5"], capsys)  # another setup into the same OUT
    assert code == 1 and "was done with another setup (crop.padding: 1.25 -> 1.5)" in error_lines(err)[0]


def wait_for(found: Any, what: str) -> Any:
    """``found()``'s first true value, looked for every 5 ms for at most a minute."""
    deadline = time.monotonic() + 60
    while not (value := found()):
        assert time.monotonic() < deadline, f"no {what} within a minute"
        time.sleep(0.005)
    return value


def live_worker_pids() -> list[int]:
    """The pids of the batch's live workers, from Ray's actor table."""
    from ray._private import state

    return [a["Pid"] for a in state.actors().values() if a["ActorClassName"] == "Worker" and a["State"] == "ALIVE"]


def test_a_worker_killed_mid_item_is_retried_to_the_same_outputs(
    ray_cluster: Any, data: dict[str, Any], references: dict[str, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "out"
    killed: list[int] = []

    def kill_mid_item() -> None:
        pid = wait_for(live_worker_pids, "worker")[0]
        # the item's outputs are being written: it is under way
        wait_for(lambda: any(p.name.startswith(".toppose-") for p in (out / "long").glob(".*")), "output")
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    killer = threading.Thread(target=kill_mid_item, daemon=True)
    killer.start()
    code, _, err = run_batch_cli([str(data["dir"] / "long.mp4"), "-o", str(out), *data["model"], "--workers", "1"],
                                 capsys)  # fmt: skip
    killer.join(timeout=1)
    assert killed and code == 0
    assert "long: its worker died" in err and "trying again (2 of 3)" in err
    assert [(line["name"], line["attempts"]) for line in done_lines(out)] == [("long", 2)]
    assert_same_outputs(out / "long", references["long"])


def test_an_interrupted_driver_keeps_what_is_done_and_a_rerun_does_the_rest(
    ray_cluster: Any, data: dict[str, Any], references: dict[str, Path], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    out = tmp_path / "out"
    argv = [str(data["dir"] / "jump.mp4"), str(data["dir"] / "stills"), "-o", str(out), *data["model"],
            "--workers", "1", "--shard-size", "1"]  # fmt: skip
    journal = out / "stills" / "results.journal.jsonl"
    address = ray_cluster.get_runtime_context().gcs_address
    driver = subprocess.Popen([sys.executable, "-c", "from toppose.cli import main; main()", "batch", *argv,
                               "--address", address], stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for(lambda: driver.poll() is not None or journal.is_file() and len(journal.read_text().splitlines()) >= 2,
             "journaled shard")  # fmt: skip
    driver.send_signal(signal.SIGINT)  # the video is done, the folder's shards under way
    _, err = driver.communicate(timeout=60)
    assert driver.returncode == 130 and "Traceback" not in err and "the same command does the rest" in err
    assert [line["name"] for line in done_lines(out)] == ["jump"]
    kept = len(journal.read_text().splitlines())
    assert 2 <= kept < 5 and not (out / "stills" / "results.json").exists()

    code, summary, _ = run_batch_cli(argv, capsys)  # only the folder's images not journaled
    assert code == 0 and summary_value(summary, "frames") == str(5 - kept)
    assert [line["name"] for line in done_lines(out)] == ["jump", "stills"] and not journal.exists()
    for name in ("jump", "stills"):
        assert_same_outputs(out / name, references[name])


def test_without_ray_the_command_says_how_to_install_it(
    data: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray fails
    code, _, err = run_batch_cli([str(data["dir"] / "jump.mp4"), "-o", str(tmp_path / "out"), *data["model"]], capsys)
    assert code == 2 and error_lines(err) == [
        "error: toppose batch runs on Ray, which is not installed: pip install 'toppose[distributed]'"]  # fmt: skip
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("flags", "code", "problem"),
    [
        (
            ["--gpus-per-worker", "0.5"],
            1,
            "error: --gpus-per-worker gives each worker a GPU, but the setup runs on the cpu: add --device cuda",
        ),  # fmt: skip
        (["--gpus-per-worker", "nan"], 2, "argument --gpus-per-worker: must be a finite number >= 0, got nan"),
        (["--shard-size", "0"], 2, "argument --shard-size: must be at least 1, got 0"),
    ],
)
def test_bad_cluster_options_are_one_line(
    flags: list[str], code: int, problem: str, data: dict[str, Any], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    pytest.importorskip("ray", reason="toppose batch needs Ray: pip install 'toppose[distributed]'")
    argv = [str(data["dir"] / "jump.mp4"), "-o", str(tmp_path / "out"), *data["model"], *flags]
    exit_code, _, err = run_batch_cli(argv, capsys)
    assert exit_code == code and "Traceback" not in err and problem in err.splitlines()[-1]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        ('{"path": "a.mp4", "colour": "red"}', "line 1: unknown column 'colour'"),
        ('{"name": "a"}', "line 1: no path"),
        ('\n{"path": "a.mp4", "det_every": 0}', "line 2: det_every: must be at least 1, got 0"),
        ('{"path": "a.mp4", "track": "maybe"}', "line 1: track must be true or false, got 'maybe'"),
        ('{"path": "a.mp4", "max_frames": 2.5}', "line 1: max_frames must be a whole number, got 2.5"),
        ('{"path": "a.mp4", "setup": "fast", "config": "x.toml"}', "line 1: setup and config both name a setup"),
        (
            '{"path": "a.mp4", "kinematics": true}',
            "line 1: --det-every, --trails, --no-smooth, --camera-motion and --kinematics need --track",
        ),  # fmt: skip
        ('{"path": "a.mp4"}\n{"path": "b/a.avi"}', "two inputs would write"),
        ('{"path": "a.mp4", "name": ".hidden"}', "'.hidden' cannot name an output folder"),
        ("[1, 2]", "line 1: not a JSON object"),
        ("", "lists no inputs"),
    ],
)
def test_a_bad_manifest_is_one_line(rows: str, problem: str, tmp_path: Path) -> None:
    (tmp_path / "a.mp4").write_bytes(b"")
    path = tmp_path / "list.jsonl"
    path.write_text(rows)
    with pytest.raises(UserError) as error:
        read_specs([str(path)], tmp_path / "out", {})
    assert problem in str(error.value) and "\n" not in str(error.value)


def test_a_csv_manifest_with_options_relative_to_its_folder(tmp_path: Path) -> None:
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "list.csv").write_text("path,name,track,det_every,fps,boxes\nmatch.mp4,,yes,3,,dets.json\n"
                                                 "../photos,pics,,,12.5,\n")  # fmt: skip
    specs = read_specs([str(tmp_path / "clips" / "list.csv")], tmp_path / "out", {"track": False})
    assert [(s.name, s.request.input, s.request.out) for s in specs] == [
        ("match", tmp_path / "clips" / "match.mp4", tmp_path / "out" / "match"),
        ("pics", tmp_path / "clips" / ".." / "photos", tmp_path / "out" / "pics"),
    ]  # fmt: skip
    assert (specs[0].request.track, specs[0].request.det_every, specs[0].request.boxes) == (
        True, 3, tmp_path / "clips" / "dets.json")  # fmt: skip
    assert (specs[1].request.track, specs[1].request.fps, specs[1].request.boxes) == (False, 12.5, None)


def test_a_glob_that_matches_nothing_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no file or folder matches"):
        read_specs([str(tmp_path / "*.mp4")], tmp_path / "out", {})


def test_a_batch_gives_the_process_its_print_and_signal_handlers_back() -> None:
    """Ray replaces ``builtins.print`` and the SIGTERM handler of the process it runs in; they are restored after."""
    import builtins
    import signal

    before = builtins.print, signal.getsignal(signal.SIGTERM)
    with process_state_kept():
        builtins.print = lambda *args, **kwargs: None
        signal.signal(signal.SIGTERM, lambda signum, frame: None)
    assert (builtins.print, signal.getsignal(signal.SIGTERM)) == before
