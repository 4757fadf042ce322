"""Motion analysis (tracking/kinematics): synthetic people with known motion, gaps, the CLI and its errors."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from rich.console import Console
from toppose.common.errors import run_cli
from toppose.common.plots import plots_available
from toppose.common.schema import KEYPOINT_NAMES
from toppose.tracking.kinematics import KinematicsOptions, write_report
from toppose.tracking.kinematics.c3d_file import c3d_available
from toppose.tracking.kinematics.motion import analyse_track, range_of_motion, rate

from toppose.cli.kinematics import main

# A person standing face on, in pixels from the mid-hip (y down). Body height as the report defines it:
# trunk (mid-shoulder to mid-hip) 50 + thigh 45 + shank 45 = 140 px.
STANDING = {
    "nose": (0, -75), "left_eye": (4, -79), "right_eye": (-4, -79), "left_ear": (8, -77), "right_ear": (-8, -77),
    "left_shoulder": (12, -50), "right_shoulder": (-12, -50), "left_elbow": (14, -20), "right_elbow": (-14, -20),
    "left_wrist": (15, 5), "right_wrist": (-15, 5), "left_hip": (12, 0), "right_hip": (-12, 0),
    "left_knee": (12, 45), "right_knee": (-12, 45), "left_ankle": (12, 90), "right_ankle": (-12, 90),
}  # fmt: skip
BODY_HEIGHT = 140.0
CENTRE = np.array([320.0, 240.0])


def keypoints(points: dict[str, Any], confidence: float = 0.9) -> np.ndarray:
    """(17, 3) keypoints of ``STANDING`` with ``points`` moved, placed at ``CENTRE``."""
    xy = np.array([points.get(name, STANDING[name]) for name in KEYPOINT_NAMES], dtype=float) + CENTRE
    return np.concatenate([xy, np.full((len(KEYPOINT_NAMES), 1), confidence)], axis=1)


def entries(poses: list[np.ndarray], times: Any = None, track_id: int = 1, frames: Any = None) -> list[dict[str, Any]]:
    """COCO keypoint results of one track, as ``run.py --track`` writes them (``times=None``: no timestamps)."""
    frames = range(len(poses)) if frames is None else frames
    out = []
    for i, (frame, pose) in enumerate(zip(frames, poses, strict=True)):
        entry = {"image_id": int(frame), "category_id": 1, "keypoints": [round(float(v), 4) for v in pose.ravel()],
                 "score": 0.9, "bbox": [0, 0, 10, 10], "track_id": track_id}  # fmt: skip
        if times is not None:
            entry["timestamp"] = float(times[i])
        out.append(entry)
    return out


def analyse(poses: list[np.ndarray], times: np.ndarray, frames: Any = None, min_confidence: float = 0.3):  # noqa: ANN201
    frames = np.arange(len(poses)) if frames is None else np.asarray(frames)
    return analyse_track(1, frames, np.asarray(times, dtype=float), np.stack(poses), min_confidence)


def read_csv(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text().splitlines()))


def bent_arm(angle_deg: float) -> dict[str, Any]:
    """The left forearm (25 px) turned from the upper arm so that the elbow's interior angle is ``angle_deg``."""
    elbow = np.array(STANDING["left_elbow"], dtype=float)
    up = np.array(STANDING["left_shoulder"], dtype=float) - elbow
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    return {"left_wrist": elbow + 25.0 * np.array([[c, -s], [s, c]]) @ (up / np.linalg.norm(up))}


def squat(phi_deg: float, lean_deg: float = 0.0) -> dict[str, Any]:
    """Both shanks tilted forward by ``phi`` and both thighs back by ``phi`` (knee at 180 - 2 phi), ankles fixed;
    the upper body follows the hips, the trunk leaning ``lean_deg`` towards the image's right."""
    phi, lean = math.radians(phi_deg), math.radians(lean_deg)
    points: dict[str, Any] = {}
    for side in ("left", "right"):
        ankle = np.array(STANDING[f"{side}_ankle"], dtype=float)
        knee = ankle + 45.0 * np.array([math.sin(phi), -math.cos(phi)])
        points |= {f"{side}_knee": knee, f"{side}_hip": knee + 45.0 * np.array([-math.sin(phi), -math.cos(phi)])}
    drop = np.array([0.0, 90.0 - 90.0 * math.cos(phi)])
    trunk = 50.0 * np.array([math.sin(lean), -math.cos(lean)]) - np.array([0.0, -50.0])  # shoulders' move
    for name in ("nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
                 "left_elbow", "right_elbow", "left_wrist", "right_wrist"):  # fmt: skip
        points[name] = np.array(STANDING[name], dtype=float) + drop + trunk
    return points


def test_arm_rotating_at_a_known_rate() -> None:
    # The left elbow opening from 40 to 130 degrees at 90 deg/s, filmed at 30 frames/s; the right arm still.
    times = np.arange(31) / 30.0
    truth = 40.0 + 90.0 * times
    track = analyse([keypoints(bent_arm(a)) for a in truth], times)
    elbow, velocity = track.angles["left_elbow"], track.angular_velocity["left_elbow"]
    assert elbow == pytest.approx(truth, abs=1e-9)
    assert np.isnan(velocity[[0, -1]]).all()  # no central difference at the ends
    assert velocity[1:-1] == pytest.approx(np.full(29, 90.0), rel=1e-9)
    assert track.angular_velocity["right_elbow"][1:-1] == pytest.approx(np.zeros(29), abs=1e-9)
    spread = range_of_motion(elbow)
    assert (spread.minimum, spread.maximum, spread.full) == pytest.approx((40.0, 130.0, 90.0))
    assert (spread.p5, spread.p95) == pytest.approx((44.5, 125.5))  # 5th / 95th percentiles of an even sweep


def test_squat_of_known_depth() -> None:
    # Down to a 90-degree knee and back up in 2 s (shanks forward and thighs back by up to 45 degrees), at 30 f/s.
    times = np.arange(61) / 30.0
    phi = 45.0 * np.sin(np.pi * times / 2.0) ** 2
    track = analyse([keypoints(squat(p)) for p in phi], times)
    for side in ("left", "right"):
        knee = range_of_motion(track.angles[f"{side}_knee"])
        assert knee.minimum == pytest.approx(90.0, abs=1e-6) and knee.maximum == pytest.approx(180.0, abs=1e-6)
        assert knee.full == pytest.approx(90.0, abs=1e-6)
        assert range_of_motion(track.angles[f"{side}_hip"]).minimum == pytest.approx(135.0, abs=1e-6)
    # Knee angle 180 - 2 phi: its rate, -2 dphi/dt, within 1 % of the peak (second-order differences at 30 f/s).
    expected = -2 * 45.0 * np.pi / 2.0 * np.sin(np.pi * times)
    assert np.nanmax(np.abs(track.angular_velocity["left_knee"] - expected)) < 0.01 * 90.0 * np.pi / 2.0
    assert np.allclose(track.angles["trunk_lean"], 0.0, atol=1e-9)
    assert track.body_height == pytest.approx(BODY_HEIGHT)  # segment lengths: the squat does not shorten it


def test_trunk_lean_sign_and_wrap() -> None:
    lean = analyse([keypoints(squat(10.0, lean_deg=20.0)), keypoints(squat(10.0, lean_deg=-30.0))], [0.0, 0.1])
    assert lean.angles["trunk_lean"] == pytest.approx([20.0, -30.0])  # +: shoulders towards the image's right
    # A cartwheel: the lean turns through 180 (upside down) at 100 deg/s, no jump of 360 in the rate.
    angles = np.array([170.0, 180.0, -170.0, -160.0])
    assert rate(angles, np.arange(4) / 10.0, np.array([True, False, False, False]), period=360.0)[1:-1] == (
        pytest.approx([100.0, 100.0])
    )


def test_translation_speed_in_body_heights_per_second() -> None:
    times = np.arange(50) / 25.0
    poses = [keypoints({name: np.array(xy) + [280.0 * t, 0.0] for name, xy in STANDING.items()}) for t in times]
    track = analyse(poses, times)
    assert track.body_height == pytest.approx(BODY_HEIGHT)
    assert np.isnan(track.speeds[[0, -1]]).all()
    assert track.speeds[1:-1] == pytest.approx(np.full((48, 17), 2.0), rel=1e-6)  # 280 px/s over 140 px


def test_rates_come_from_timestamps_not_frame_counts() -> None:
    # Dropped frames: consecutive frame indices, some steps twice as long; then a 1 s pause and a missing frame.
    steps = np.tile([1 / 30, 2 / 30, 1 / 30, 1 / 30], 6)
    times = np.concatenate([[0.0], np.cumsum(steps)])
    times[16:] += 1.0  # a time jump between rows 15 and 16
    frames = np.arange(len(times))
    frames[21:] += 1  # the track was not seen in one frame
    truth = 40.0 + 30.0 * times + 10.0 * times**2  # accelerating: d/dt = 30 + 20 t (under 180 throughout)
    track = analyse([keypoints(bent_arm(a)) for a in truth], times, frames)
    velocity = track.angular_velocity["left_elbow"]
    linked = np.ones(len(times), dtype=bool)
    linked[[0, 15, 16, 20, 21, len(times) - 1]] = False  # ends, and both sides of the jump and of the missing frame
    assert np.isnan(velocity[~linked]).all()
    assert velocity[linked] == pytest.approx(30.0 + 20.0 * times[linked], rel=1e-6)  # exact for a parabola


def test_low_confidence_joints_are_gaps_never_filled(tmp_path: Path) -> None:
    times = np.arange(30) / 30.0
    poses = [keypoints(bent_arm(40.0 + 90.0 * t)) for t in times]
    for pose in poses[10:15]:
        pose[KEYPOINT_NAMES.index("left_wrist"), 2] = 0.1
    results = entries(poses, times)
    results[20]["interpolated"] = True  # a tracker-filled entry: not a measurement
    write_report(results, tmp_path, KinematicsOptions(min_confidence=0.3))
    rows = read_csv(tmp_path / "track_1.csv")
    assert [int(r["frame"]) for r in rows] == [f for f in range(30) if f != 20]
    by_frame = {int(r["frame"]): r for r in rows}
    for frame in range(10, 15):
        assert by_frame[frame]["left_elbow_deg"] == "" and by_frame[frame]["left_wrist_speed_bh_s"] == ""
        assert by_frame[frame]["right_elbow_deg"] != "" and by_frame[frame]["left_shoulder_deg"] != ""
    for frame in (9, 15, 19, 21):  # beside the gap, beside the left-out frame: no rate
        assert by_frame[frame]["left_elbow_deg_s"] == "" and by_frame[frame]["left_elbow_deg"] != ""
    assert float(by_frame[16]["left_elbow_deg_s"]) == pytest.approx(90.0, rel=1e-3)
    summary = read_csv(tmp_path / "summary.csv")
    left = next(r for r in summary if r["joint"] == "left_elbow")
    assert (int(left["frames"]), int(left["valid_frames"])) == (29, 24)


def test_no_body_scale_leaves_speeds_empty(tmp_path: Path) -> None:
    poses = [keypoints({}) for _ in range(12)]
    for pose in poses:
        pose[[KEYPOINT_NAMES.index(f"{side}_ankle") for side in ("left", "right")], 2] = 0.0  # legs never whole
    console = Console(file=io.StringIO(), width=200)
    summary = write_report(entries(poses, np.arange(12) / 30.0), tmp_path, console=console)
    assert math.isnan(summary.tracks[0].body_height)
    assert "track 1: no frame shows the shoulders, hips and a leg confidently" in console.file.getvalue()
    rows = read_csv(tmp_path / "track_1.csv")
    assert all(r["nose_speed_bh_s"] == "" for r in rows) and all(r["left_elbow_deg"] != "" for r in rows)


def test_command_writes_csv_and_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    times = np.round(5.0 + np.arange(45) / 30.0, 3)  # a track from 5 s on; run.py writes milliseconds
    long = entries([keypoints(squat(45.0 * math.sin(math.pi * t / 1.5) ** 2)) for t in times], times, track_id=3)
    short = entries([keypoints({})] * 5, times[:5], track_id=7)
    results = tmp_path / "results.json"
    results.write_text(json.dumps(long + short))
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, [str(results), "-o", str(tmp_path / "report")])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0 and "motion analysis" in out and "video timestamps" in out
    written = {p.name for p in (tmp_path / "report").iterdir()}
    assert {"summary.csv", "report.html", "track_3.csv", "track_3.trc", "track_3.mot"} <= written
    assert ({"track_3.png", "track_3_segments.png"} <= written) == plots_available()
    assert ("track_3.c3d" in written) == c3d_available() and not any("7" in name for name in written)
    summary = read_csv(tmp_path / "report" / "summary.csv")
    first = [
        "left_elbow",
        "right_elbow",
        "left_shoulder",
        "right_shoulder",
        "left_hip",
        "right_hip",
        "left_knee",
        "right_knee",
        "trunk_lean",
    ]  # the first report's angles, in its order
    assert [r["joint"] for r in summary][:9] == first
    assert {r["kind"] for r in summary} == {"joint", "lean", "segment"} and len(summary) == 9 + 11
    knee = next(r for r in summary if r["joint"] == "left_knee")
    assert float(knee["min_deg"]) == pytest.approx(90.0, abs=0.5) and float(knee["range_deg"]) == pytest.approx(
        90.0, abs=0.5
    )
    assert float(knee["body_height_px"]) == pytest.approx(BODY_HEIGHT, abs=0.01)
    assert [float(r["time_s"]) for r in read_csv(tmp_path / "report" / "track_3.csv")] == pytest.approx(times)
    if plots_available():
        png = cv2.imread(str(tmp_path / "report" / "track_3.png"))
        assert png is not None and png.shape[0] > 600 and png.shape[1] > 600
        hsv = cv2.cvtColor(png, cv2.COLOR_BGR2HSV)
        assert ((hsv[..., 1] > 120) & (hsv[..., 2] > 80)).mean() > 0.002  # coloured curves, not a blank page


def test_without_matplotlib_the_csvs_are_still_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)
    results = tmp_path / "results.json"
    results.write_text(json.dumps(entries([keypoints({})] * 12)))  # no timestamps: --fps
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, [str(results), "-o", str(tmp_path / "report"), "--fps", "25"])
    captured = capsys.readouterr()
    assert exit_info.value.code == 0
    assert captured.err.count("\n") == 1 + (not c3d_available()) and "pip install 'toppose[plots]'" in captured.err
    assert not any(p.suffix == ".png" for p in (tmp_path / "report").iterdir())
    assert {"summary.csv", "track_1.csv", "report.html"} <= {p.name for p in (tmp_path / "report").iterdir()}
    rows = read_csv(tmp_path / "report" / "track_1.csv")
    assert [float(r["time_s"]) for r in rows] == pytest.approx([f / 25 for f in range(12)])


def bad_inputs(tmp_path: Path) -> list[tuple[Any, list[str], int, str]]:
    """(file content, extra arguments, exit code, message): results files the command must refuse in one line."""
    good = entries([keypoints({})] * 12, np.arange(12) / 30.0)
    no_ids = [{k: v for k, v in e.items() if k != "track_id"} for e in good]
    not_finite = json.dumps(good).replace('"keypoints": [320.0', '"keypoints": [NaN', 1)
    backwards = [dict(e, timestamp=0.5 if e["image_id"] == 4 else e["timestamp"]) for e in good]
    return [
        (None, [], 1, "results file not found"),
        ("[{", [], 1, "malformed JSON"),
        ({"image_id": 0}, [], 1, "expected a JSON list"),
        (no_ids, [], 1, "no track ids: track the people first"),
        (not_finite, [], 1, "entry 0 'keypoints' must hold finite numbers"),
        ([dict(good[0], track_id=0)], [], 1, "entry 0 'track_id' must be a track id"),
        ([dict(good[0], timestamp="1.0")], [], 1, "entry 0 'timestamp' must be a finite number"),
        ([{k: v for k, v in e.items() if k != "timestamp"} for e in good], [], 1, "give the video's frame rate"),
        (good + [good[3]], [], 1, "track 1 has two entries for frame 3"),
        (backwards, [], 1, "the timestamp of frame 5 is not after the one before"),
        (good, ["--tracks", "2,9"], 1, "no track 2, 9 (its tracks: 1)"),
        (good, ["--min-confidence", "nan"], 2, "--min-confidence: expected a finite number"),
        (good, ["--fps", "0"], 2, "--fps: must be > 0"),
        (good, ["--tracks", "1,x"], 2, "--tracks: expected track ids"),
        (good, ["--min-frames", "0"], 2, "--min-frames: must be an integer >= 1"),
    ]


def test_bad_inputs_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for number, (content, extra, code, message) in enumerate(bad_inputs(tmp_path)):
        path = tmp_path / f"results_{number}.json"
        if content is not None:
            path.write_text(content if isinstance(content, str) else json.dumps(content))
        with pytest.raises(SystemExit) as exit_info:
            run_cli(main, [str(path), "-o", str(tmp_path / f"report_{number}"), *extra])
        err = capsys.readouterr().err
        assert exit_info.value.code == code and message in err and "Traceback" not in err, (message, err)
        assert err.count("error:") == 1 and (code == 2 or err.count("\n") == 1), err
        assert not (tmp_path / f"report_{number}" / "summary.csv").exists()
    (tmp_path / "a_file").write_text("")
    path.write_text(json.dumps(entries([keypoints({})] * 12, np.arange(12) / 30.0)))
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, [str(path), "-o", str(tmp_path / "a_file")])
    assert exit_info.value.code == 1 and "output path exists and is not a folder" in capsys.readouterr().err
