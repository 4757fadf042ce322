"""The report's files read back by their own readers: OpenSim (TRC, MOT), ezc3d and c3d (C3D), Chromium (HTML);
the command's new options and their errors."""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from toppose.common.errors import run_cli
from toppose.common.plots import plots_available
from toppose.tracking.kinematics.keypoint_sets import SETS
from toppose.tracking.kinematics.opensim_files import pose2sim_name
from toppose.tracking.kinematics.synthetic import entries, squat_series, squat_set

from toppose.cli.kinematics import main
from toppose.cli.run import build_parser, request_of

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three squats (Halpe-26, 1 px jitter, a 3-frame dropout) analysed with most options on."""
    folder = tmp_path_factory.mktemp("kinematics")
    times, depth = squat_set(3, fps=30.0, period_s=1.6, depth_deg=90.0)
    series = squat_series(times, depth, SETS[26], noise_px=1.0, seed=3)
    results = entries(series, times, track_id=2)
    del results[40:43]
    (folder / "results.json").write_text(json.dumps(results))
    args = [str(folder / "results.json"), "-o", str(folder / "report"), "--filter", "butterworth:cutoff=5",
            "--outliers", "--fill-gaps", "3", "--height", "2=1.75", "--reps", "knee", "--floor-angle", "0"]  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, args)
    assert exit_info.value.code == 0
    return folder / "report"


def rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text().splitlines()))


def test_csv_marks_and_repetitions(report: Path) -> None:
    track = rows(report / "track_2.csv")
    assert len(track) == 204 and [r["added_row"] for r in track[40:43]] == ["1"] * 3
    assert all(r["filled"] for r in track[40:43]) and "left_knee_speed_m_s" in track[0]
    assert {r["swapped_legs"] for r in track} == {"0"}
    reps = rows(report / "repetitions.csv")
    assert len(reps) == 3 and all(float(r["range_deg"]) == pytest.approx(90.0, abs=4.0) for r in reps)
    summary = rows(report / "summary.csv")
    assert all("metres: 0.00" in r["scale"] and r["m_per_px_sd_pct"] for r in summary)


def test_opensim_reads_the_trc_and_mot(report: Path) -> None:
    opensim = pytest.importorskip("opensim", reason="opensim is not installed (pip install opensim)")
    opensim.Logger.removeFileSink()  # no opensim.log in the working folder
    track = rows(report / "track_2.csv")
    table = opensim.TimeSeriesTableVec3(str(report / "track_2_m.trc"))
    labels = list(table.getColumnLabels())
    assert labels[:3] == ["Nose", "LEye", "REye"] and "LBigToe" in labels and "Hip" in labels
    assert table.getNumRows() == len(track) and table.getTableMetaDataAsString("Units") == "m"
    assert list(table.getIndependentColumn()) == pytest.approx([float(r["time_s"]) for r in track], abs=1e-4)
    pixels = opensim.TimeSeriesTableVec3(str(report / "track_2.trc"))
    assert pixels.getTableMetaDataAsString("Units") == "px"
    ankle = pixels.getDependentColumn("LAnkle")
    results = json.loads((report.parent / "results.json").read_text())
    assert abs(ankle[0][0] - results[0]["keypoints"][3 * 15]) < 3.0  # filtered, x as in the image
    assert ankle[0][1] == pytest.approx(-results[0]["keypoints"][3 * 15 + 1], abs=3.0)  # y up: minus the row
    angles = opensim.TimeSeriesTable(str(report / "track_2.mot"))
    assert angles.getNumRows() == len(track) and "left_knee" in list(angles.getColumnLabels())
    knee = angles.getDependentColumn("left_knee").to_numpy()
    assert knee == pytest.approx([float(r["left_knee_deg"]) for r in track], abs=1e-3)
    assert "metres" in angles.getTableMetaDataAsString("scale")
    storage = opensim.Storage(str(report / "track_2.mot"))  # the older reader: no gaps in this track
    assert storage.getSize() == len(track) and storage.isInDegrees()


@pytest.mark.filterwarnings("ignore:No analog data found:UserWarning")
def test_c3d_readers_read_the_c3d(report: Path) -> None:
    ezc3d = pytest.importorskip("ezc3d", reason="ezc3d (the biomech extra) is not installed")
    trc = report / "track_2_m.trc"
    trc_rows = [line.split("\t") for line in trc.read_text().splitlines()[6:]]
    c3d = ezc3d.c3d(str(report / "track_2.c3d"))
    labels = c3d["parameters"]["POINT"]["LABELS"]["value"]
    points = c3d["data"]["points"]
    assert labels == trc.read_text().splitlines()[3].split("\t")[2::3][: len(labels)]
    assert c3d["parameters"]["POINT"]["UNITS"]["value"] == ["m"] and points.shape[2] == len(trc_rows)
    assert points[0, labels.index("LKnee"), 5] == pytest.approx(float(trc_rows[5][2 + 3 * labels.index("LKnee")]),
                                                                 abs=1e-5)  # fmt: skip
    assert "metres" in c3d["parameters"]["TOPPOSE"]["SCALE"]["value"][0]
    if importlib.util.find_spec("c3d") is None:
        return
    import c3d as py_c3d

    with open(report / "track_2.c3d", "rb") as handle:
        reader = py_c3d.Reader(handle)
        frames = list(reader.read_frames())
        assert [label.strip() for label in reader.point_labels] == labels
    assert len(frames) == points.shape[2]
    assert frames[5][1][labels.index("LKnee"), 0] == pytest.approx(points[0, labels.index("LKnee"), 5], abs=1e-5)


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium (apt-get install chromium)")
def test_html_report_renders_in_chromium(report: Path, tmp_path: Path) -> None:
    html = (report / "report.html").read_text()
    assert 'src="http' not in html and "Repetitions" in html and "left_knee" in html  # self-contained
    shot = tmp_path / "report.png"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2600", f"--screenshot={shot}",
               (report / "report.html").as_uri()]  # fmt: skip
    subprocess.run(command, capture_output=True, timeout=60, check=False)
    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (2600, 1200)
    table_lines = (np.abs(np.diff(image[..., 1].astype(int), axis=0)) > 60).mean(axis=1) > 0.3  # table borders
    assert table_lines.sum() >= 10
    if plots_available():
        hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
        assert ((hsv[..., 1] > 120) & (hsv[..., 2] > 80)).mean() > 0.002  # the coloured angle curves


def test_pose2sim_marker_names() -> None:
    assert [pose2sim_name(n) for n in ("left_big_toe", "nose", "right_small_toe", "neck", "face-3")] == [
        "LBigToe", "Nose", "RSmallToe", "Neck", "Face3"]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--filter", "wiener"], "--filter: unknown method 'wiener'"),
        (["--height", "9=1.8"], "results.json has no track 9"),
        (["--height", "180"], "a person's height in metres"),
        (["--reps", "ankle"], "--reps ankle: COCO-17 has no left_heel, left_big_toe"),
        (["--reps", "elbw"], "--reps: no angle 'elbw'"),
        (["--focal-length", "900", "--height", "1.8"], "needs --image-size WxH"),
        (["--fov", "60"], "perspective (--focal-length, --fov) needs the person's --height"),
        (["--floor-angle", "80"], "'auto' or degrees from -45 to 45"),
        (["--formats", "csv,pdf"], "unknown pdf"),
    ],
)
def test_bad_options_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    times = np.arange(12) / 30.0
    path = tmp_path / "results.json"
    path.write_text(json.dumps(entries(squat_series(times, np.zeros(12), SETS[17]), times)))
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, [str(path), "-o", str(tmp_path / "report"), *extra])
    err = capsys.readouterr().err
    assert exit_info.value.code in (1, 2) and message in err and "Traceback" not in err, err
    assert not (tmp_path / "report" / "summary.csv").exists()


def test_run_takes_the_analysis_flags() -> None:
    args = build_parser().parse_args(["clip.mp4", "-o", "out", "--track", "--kinematics", "--filter", "median",
                                      "--height", "1.7", "--reps", "auto", "--formats", "csv,html"])  # fmt: skip
    options = request_of(args).kinematics_options
    assert (options.filter.name, options.height, options.repetitions.angle) == ("median", 1.7, "auto")
    assert options.formats == ("csv", "html")
