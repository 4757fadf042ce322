"""Video mode end to end: a generated clip with ground-truth boxes through run.py --track, and bad video inputs.

The pose network has random weights, so its keypoints are noise: identities must come from the
boxes (IoU with the predicted box), and with ground-truth boxes they must be perfect.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import signal
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import cv2
import numpy as np
import pytest
from rich.console import Console
from toppose.common.config import Config, load_config
from toppose.common.errors import run_cli
from toppose.detector.boxes_file import load_boxes
from toppose.pose.results import load_results
from toppose.tracking.association import iou_matrix
from toppose.tracking.tracker import Tracker

import toppose.video
import toppose.video_sink
from benchmarks.sequences import Sequence, make_sequence, render_frames
from tests.clips import make_clip, write_video
from toppose.cli import run
from toppose.cli.run import add_video_arguments
from toppose.pipeline import build_pipeline
from toppose.runs import RunRequest, load_given_boxes, warn_about_boxes
from toppose.sources import Frame, FrameSource, is_video_input, open_source
from toppose.video import pipeline_config, process_video, video_options
from toppose.video_sink import VideoSink, h264_encoder_available

FRAMES = 24
FIELDS = ("image_id", "category_id", "keypoints", "score", "bbox", "box_score", "timestamp", "track_id")


def run_main(argv: list[str]) -> int:
    """``toppose run argv``, in-process."""
    return run.main(argv)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 24-frame clip of people crossing (mp4 and MJPG avi), its ground-truth boxes file, a small random network."""
    setup = (("flip_test = true", "flip_test = false"),)
    return make_clip(tmp_path_factory.mktemp("video"), 0, FRAMES, {"clip.mp4": "mp4v", "clip.avi": "MJPG"}, setup)


def model_args(clip: dict) -> list[str]:
    tmp = clip["dir"]
    return ["--boxes", str(tmp / "dets.json"), "--config", str(tmp / "small.toml"), "--pose-weights",
            str(tmp / "res18.pth")]  # fmt: skip


def truth_of(sequence: Sequence, entry: dict) -> int:
    """The ground-truth id whose box the entry's box overlaps most (IoU above 0.5)."""
    people = sequence.truth[entry["image_id"]]
    overlap = iou_matrix(np.array([entry["bbox"]]), people.boxes)[0]
    assert overlap.max() > 0.5
    return int(people.ids[overlap.argmax()])


def check_identities(sequence: Sequence, entries: list[dict], tentative: int | None = 2) -> None:
    """One track per person and one person per track.

    Every entry has a track id >= 1; with ``tentative`` frames, every person gets a track and a person who
    comes after the first frame is left out in that many first frames only (as ByteTrack reports).
    """
    tracks: dict[int, set[int]] = {}
    people: dict[int, set[int]] = {}
    first_seen = {int(i): t for t in reversed(range(len(sequence.truth))) for i in sequence.truth[t].ids}
    for entry in sorted(entries, key=lambda e: e["image_id"]):
        person = truth_of(sequence, entry)
        assert entry["track_id"] >= 1
        late = first_seen[person] > 0
        assert tentative is None or not late or entry["image_id"] - first_seen[person] >= tentative
        tracks.setdefault(person, set()).add(entry["track_id"])
        people.setdefault(entry["track_id"], set()).add(person)
    assert all(len(ids) == 1 for ids in tracks.values()) and all(len(p) == 1 for p in people.values())
    if tentative is not None:
        seen = {e["image_id"] for e in entries}
        assert set(tracks) == {int(i) for t in seen for i in sequence.truth[t].ids}


def test_tracked_video_with_ground_truth_boxes(clip: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_main([str(clip["dir"] / "clip.mp4"), "-o", str(out), "--track", "--trails", "8", *model_args(clip)]) == 0
    entries = load_results(out / "results.json", required=FIELDS)
    sequence = clip["sequence"]
    late = {int(i) for frame in sequence.truth[1:] for i in frame.ids} - set(sequence.truth[0].ids.tolist())
    # everyone, in every frame, but the two tentative frames of people who come later
    assert len(entries) == sum(len(frame.ids) for frame in sequence.truth) - 2 * len(late)
    assert {e["image_id"] for e in entries} == set(range(FRAMES))
    for entry in entries:
        assert entry["timestamp"] == pytest.approx(entry["image_id"] / sequence.fps, abs=1e-3)
    check_identities(sequence, entries)

    video = cv2.VideoCapture(str(out / "annotated.mp4"))
    assert video.isOpened()
    assert video.get(cv2.CAP_PROP_FPS) == pytest.approx(sequence.fps)
    codec = int(video.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
    assert codec == ("h264" if h264_encoder_available() else "FMP4")  # FMP4: how FFmpeg names mp4v
    assert (video.get(cv2.CAP_PROP_FRAME_WIDTH), video.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (640, 360)
    decoded = 0
    while video.read()[0]:
        decoded += 1
    assert decoded == FRAMES
    assert sorted(p.name for p in out.iterdir()) == [".toppose.lock", "annotated.mp4", "results.json", "run.json"]


def test_kinematics_in_the_same_run(clip: dict, tmp_path: Path) -> None:
    """``--kinematics`` writes the motion analysis of the tracks just written, one CSV row per tracked frame."""
    out = tmp_path / "out"
    assert run_main([str(clip["dir"] / "clip.mp4"), "-o", str(out), "--track", "--kinematics", "--no-draw",
                     *model_args(clip)]) == 0  # fmt: skip
    entries = load_results(out / "results.json", required=FIELDS)
    frames: dict[int, list[int]] = {}
    for entry in entries:
        frames.setdefault(entry["track_id"], []).append(entry["image_id"])
    report = out / "kinematics"
    long_tracks = sorted(t for t, f in frames.items() if len(f) >= 10)
    assert long_tracks and (report / "summary.csv").is_file()
    for track_id in long_tracks:
        rows = list(csv.DictReader((report / f"track_{track_id}.csv").open()))
        assert [int(r["frame"]) for r in rows] == sorted(frames[track_id])
        assert [float(r["time_s"]) for r in rows] == pytest.approx(
            [f / clip["sequence"].fps for f in sorted(frames[track_id])], abs=1e-4
        )


def test_detector_every_kth_frame_follows_tracks_between(clip: dict) -> None:
    """The loop as a benchmark calls it: frames/s and stage times, the detector on every 4th frame only."""
    cfg = load_config(clip["dir"] / "small.toml")
    cfg.model.weights = str(clip["dir"] / "res18.pth")
    options = video_options(cfg, det_every=4)
    pipeline = build_pipeline(pipeline_config(cfg, options), boxes=load_boxes(clip["dir"] / "dets.json"))
    report = process_video(open_source(clip["dir"] / "clip.avi"), pipeline, options, clip["dir"] / "k4.json")
    assert report.frames == FRAMES and report.detector_frames == FRAMES // 4
    assert report.fps > 0 and {"read", "detect", "pose", "track", "write"} <= set(report.stage_seconds)
    assert pipeline.timer.calls["detect"] == FRAMES // 4
    entries = load_results(clip["dir"] / "k4.json", required=FIELDS)
    followed = [e for e in entries if e["image_id"] % 4 and e["track_id"] >= 0]
    assert followed  # people are followed on the frames without detection, their boxes staying on them
    # The random network's poses are never reliable, so the late-comer is not confirmed by following;
    # the two people of the first frame keep their tracks throughout.
    check_identities(clip["sequence"], entries, tentative=None)
    assert [(t.first_frame, t.last_frame, t.frames) for t in report.tracks.values()] == [(0, FRAMES - 1, FRAMES)] * 2


def test_folder_of_frames_without_tracking(clip: dict, tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(clip["frames"][:6]):
        cv2.imwrite(str(folder / f"frame_{i:04d}.png"), frame)
    (folder / "notes.txt").write_text("not a frame")
    (folder / "frame_0006.png").write_bytes(b"broken")
    assert not is_video_input(folder)
    out = tmp_path / "out"
    assert run_main([str(folder), "-o", str(out), "--track", "--fps", "10", *model_args(clip)]) == 0
    entries = load_results(out / "results.json", required=FIELDS)
    assert {e["image_id"] for e in entries} == set(range(6))
    assert all(e["timestamp"] == pytest.approx(e["image_id"] / 10) for e in entries)
    assert cv2.VideoCapture(str(out / "annotated.mp4")).get(cv2.CAP_PROP_FRAME_COUNT) == 6


def test_video_without_tracking_has_no_track_ids(clip: dict, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert is_video_input(clip["dir"] / "clip.mp4") and is_video_input("0") and not is_video_input("a.json")
    assert (
        run_main([str(clip["dir"] / "clip.mp4"), "-o", str(out), "--no-draw", "--max-frames", "5", *model_args(clip)])
        == 0
    )
    entries = json.loads((out / "results.json").read_text())
    assert {e["image_id"] for e in entries} == set(range(5)) and all("track_id" not in e for e in entries)
    assert not (out / "annotated.mp4").exists()


def run_cli_captured(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(run_main, argv)
    return exit_info.value.code, capsys.readouterr().err


def damaged(clip: dict, tmp_path: Path, how: str) -> Path:
    """The MJPG clip with one frame's JPEG data wiped ("corrupt") or cut after 12 frames ("truncated")."""
    data = bytearray((clip["dir"] / "clip.avi").read_bytes())
    starts = [i for i in range(len(data) - 2) if data[i : i + 3] == b"\xff\xd8\xff"]
    assert len(starts) == FRAMES
    if how == "corrupt":
        data[starts[10] : starts[10] + 4000] = bytes(4000)
    else:
        data = data[: starts[12] + 500]
    path = tmp_path / f"{how}.avi"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize(("how", "warning", "frames"), [
    ("corrupt", "frame 10 could not be decoded", set(range(FRAMES)) - {10}),
    ("truncated", "video ended early: only 12 of its 24 frames", set(range(12))),
])  # fmt: skip
def test_damaged_video_keeps_going_and_reports(
    clip: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str], how: str, warning: str, frames: set[int]
) -> None:
    out = tmp_path / "out"
    assert run_main([str(damaged(clip, tmp_path, how)), "-o", str(out), "--track", *model_args(clip)]) == 0
    assert warning in capsys.readouterr().err
    entries = load_results(out / "results.json", required=FIELDS)
    assert {e["image_id"] for e in entries} == frames
    check_identities(clip["sequence"], entries)


def bad_inputs(tmp_path: Path) -> list[tuple[Path, str]]:
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("this is not a video")
    return [
        (tmp_path / "missing.mp4", "no such file, folder or camera"),
        (tmp_path / "empty.mp4", "empty.mp4"),
        (tmp_path / "text.mp4", "text.mp4"),
    ]


def test_bad_video_inputs_are_one_error_line(clip: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    header_only = tmp_path / "header.avi"
    data = (clip["dir"] / "clip.avi").read_bytes()
    header_only.write_bytes(data[: data.index(b"\xff\xd8\xff")])
    cases = [*bad_inputs(tmp_path), (header_only, "no readable frames")]
    for path, message in cases:
        code, err = run_cli_captured([str(path), "-o", str(tmp_path / "out"), "--track", *model_args(clip)], capsys)
        errors = [line for line in err.splitlines() if line.startswith("error: ")]
        assert code == 1 and "Traceback" not in err and len(errors) == 1 and message in errors[0], (path, err)
    assert not (tmp_path / "out" / "results.json").exists()


def test_bad_video_options(clip: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    video = str(clip["dir"] / "clip.mp4")
    code, err = run_cli_captured([video, "-o", str(tmp_path), "--det-every", "3", *model_args(clip)], capsys)
    assert code == 1 and "need --track" in err
    code, err = run_cli_captured([video, "-o", str(tmp_path), "--kinematics", *model_args(clip)], capsys)
    assert code == 1 and "--kinematics need --track" in err
    code, err = run_cli_captured([video, "-o", str(tmp_path), "--track", "--det-every", "0", *model_args(clip)], capsys)
    assert code == 2 and "--det-every" in err  # argparse's usage error
    code, err = run_cli_captured([video, "-o", str(tmp_path), "--resume", *model_args(clip)], capsys)
    assert code == 1 and "--resume applies to image folders" in err
    for fps in ("nan", "inf", "0", "-5"):
        code, err = run_cli_captured([video, "-o", str(tmp_path), "--fps", fps, *model_args(clip)], capsys)
        assert code == 2 and f"error: argument --fps: must be a finite number > 0, got {fps}" in err


def test_video_mode_arguments_parse() -> None:
    parser = argparse.ArgumentParser()
    add_video_arguments(parser)
    args = parser.parse_args(["--track", "--det-every", "5", "--trails", "10", "--fps", "12.5"])
    assert (args.track, args.det_every, args.trails, args.fps, args.no_smooth) == (True, 5, 10, 12.5, False)


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM"])
def test_interrupted_video_keeps_the_frames_done(
    clip: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    def interrupted_after_5(path: Path, fps: float | None = None) -> FrameSource:
        source = open_source(path, fps)
        frames = source.frames

        def stopping() -> Iterator[Frame]:
            for frame in frames():
                if frame.index == 5:
                    os.kill(os.getpid(), getattr(signal, how))  # as the user's Ctrl-C or a scheduler's kill would
                yield frame

        source.frames = stopping  # type: ignore[method-assign]
        return source

    monkeypatch.setattr(toppose.video, "open_source", interrupted_after_5)
    out = tmp_path / "out"
    code, err = run_cli_captured([str(clip["dir"] / "clip.mp4"), "-o", str(out), "--track", *model_args(clip)], capsys)
    assert code == 130 and "Traceback" not in err
    assert f"warning: interrupted after 5 frames: results.json and annotated.mp4 in {out} hold the frames done" in err
    entries = json.loads((out / "results.json").read_text())  # strict, complete JSON
    assert {e["image_id"] for e in entries} == set(range(5))
    video = cv2.VideoCapture(str(out / "annotated.mp4"))
    decoded = 0
    while video.read()[0]:
        decoded += 1
    assert decoded == 5
    assert sorted(p.name for p in out.iterdir()) == [".toppose.lock", "annotated.mp4", "results.json", "run.json"]
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is put back


@pytest.mark.parametrize("size", [(64, 48), (33, 21)])
def test_h264_video_plays_back_frame_for_frame(tmp_path: Path, size: tuple[int, int]) -> None:
    pytest.importorskip("av")
    assert h264_encoder_available()
    frames = [np.full((size[1], size[0], 3), 20 * i, np.uint8) for i in range(8)]
    with ExitStack() as stack:
        sink = VideoSink(tmp_path / "v.mp4", 12.5, size, stack)
        for frame in frames:
            sink.write(frame)
    assert (sink.codec, sink.note) == ("h264", None)
    assert (tmp_path / "v.mp4").read_bytes()[4:8] == b"ftyp" and b"moov" in (tmp_path / "v.mp4").read_bytes()[:4096]
    video = cv2.VideoCapture(str(tmp_path / "v.mp4"))
    assert video.get(cv2.CAP_PROP_FPS) == pytest.approx(12.5)
    decoded = []
    while (read := video.read())[0]:
        decoded.append(read[1])
    assert len(decoded) == len(frames)
    for got, sent in zip(decoded, frames, strict=True):  # an odd side gets one black row / column
        assert abs(float(got[: size[1], : size[0]].mean()) - float(sent.mean())) < 8  # frames are 20 apart


def test_without_h264_the_video_is_mp4v_with_a_note(
    clip: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(toppose.video_sink, "h264_encoder_available", lambda: False)
    out = tmp_path / "out"
    argv = [str(clip["dir"] / "clip.mp4"), "-o", str(out), "--max-frames", "3", *model_args(clip)]
    code, err = run_cli_captured(argv, capsys)
    assert code == 0
    assert "warning: annotated.mp4 is MPEG-4 Part 2 (mp4v), which browsers do not play" in err
    video = cv2.VideoCapture(str(out / "annotated.mp4"))
    assert int(video.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little") == b"FMP4"


def test_boxes_outside_the_frame_are_named(tmp_path: Path) -> None:
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": t, "category_id": 1, "bbox": box, "score": 0.9} for t, box in
                                [(0, [10, 10, 20, 40]), (3, [700, 10, 20, 40]), (4, [5, 5, 0, 10])]]))  # fmt: skip
    console = Console(file=io.StringIO(), width=300)
    boxes = load_given_boxes(RunRequest("clip.mp4", tmp_path, boxes=dets), Config(), console)
    warn_about_boxes(boxes, (640, 360), console)
    assert console.file.getvalue().splitlines() == [
        f"warning: {dets}: zero-area person boxes find nobody (entry 2)",
        "warning: boxes lie outside the 640x360 frame in 1 frame(s): 3",  # a zero-area box inside it is not
    ]


def test_camera_motion_reaches_the_tracker_from_the_frames(
    clip: dict, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sequence = make_sequence("panning", seed=0)
    sequence.truth = sequence.truth[:FRAMES]
    write_video(tmp_path / "pan.mp4", list(render_frames(sequence)), sequence.fps, "mp4v")
    boxes = [{"image_id": t, "category_id": 1, "bbox": [float(v) for v in box], "score": 1.0}
             for t, people in enumerate(sequence.truth) for box in people.boxes]  # fmt: skip
    (tmp_path / "dets.json").write_text(json.dumps(boxes))
    cameras = []
    predict = Tracker.predict

    def spy(self: Tracker, camera: np.ndarray | None = None) -> None:
        cameras.append(camera)
        predict(self, camera)

    monkeypatch.setattr(Tracker, "predict", spy)
    args = [*model_args(clip)[2:], "--boxes", str(tmp_path / "dets.json")]
    assert run_main([str(tmp_path / "pan.mp4"), "-o", str(tmp_path / "out"), "--track", "--camera-motion",
                     "--no-draw", *args]) == 0  # fmt: skip
    moved = [c for c in cameras if c is not None]
    assert len(moved) >= FRAMES - 2  # every frame after the first has an estimate
    assert max(abs(c[0, 2]) + abs(c[1, 2]) for c in moved) > 1.0  # the camera pans: not the identity
    check_identities(sequence, load_results(tmp_path / "out" / "results.json", required=FIELDS))
