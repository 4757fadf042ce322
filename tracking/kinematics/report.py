"""The motion report of a tracked results list: summary.csv, and per track a CSV of every frame and a PNG of its
angle curves (see :func:`write_report`)."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from toppose.common.atomic import check_writable_folder, write_text
from toppose.common.console import error_console, warn
from toppose.common.errors import UserError
from toppose.common.plots import PLOTS_HINT, Panel, Series, plots_available, save_chart
from toppose.common.schema import KEYPOINT_NAMES
from toppose.tracking.kinematics.motion import (
    ANGLE_NAMES,
    JOINTS,
    SIDES,
    TRUNK_LEAN,
    TrackKinematics,
    analyse_track,
    range_of_motion,
)
from toppose.tracking.kinematics.tracks import read_tracks

SUMMARY_COLUMNS = (
    "track_id", "joint", "frames", "valid_frames", "duration_s", "body_height_px", "min_deg", "max_deg",
    "range_deg", "p5_deg", "p95_deg", "range_p5_p95_deg", "peak_angular_speed_deg_s",
)  # fmt: skip
TRACK_COLUMNS = (
    "time_s", "frame", *(f"{a}_deg" for a in ANGLE_NAMES), *(f"{a}_deg_s" for a in ANGLE_NAMES),
    *(f"{k}_speed_bh_s" for k in KEYPOINT_NAMES),
)  # fmt: skip
SIDE_STYLE = {"left": ("tab:blue", "-"), "right": ("tab:orange", "--")}


@dataclass
class KinematicsOptions:
    """What :func:`write_report` analyses: confidence threshold, frame rate without timestamps, shortest track,
    and the track ids to keep (None: all)."""

    min_confidence: float = 0.3
    fps: float | None = None
    min_frames: int = 10
    tracks: tuple[int, ...] | None = None


@dataclass
class KinematicsSummary:
    """What a report holds: the analysed tracks, the rows of summary.csv and what was left out."""

    tracks: list[TrackKinematics]
    rows: list[dict[str, Any]]
    time_source: str
    short_tracks: list[int]  # ids of the tracks with fewer than min_frames measured frames (skipped)
    interpolated: int  # tracker-filled entries, left out (not measurements)
    plots: bool  # whether the PNGs were drawn (matplotlib installed)


def _cell(value: float, digits: int = 3) -> str:
    """A CSV or table cell: the number rounded, empty for a gap."""
    return f"{value:.{digits}f}" if math.isfinite(value) else ""


def _csv(header: tuple[str, ...], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def track_csv(track: TrackKinematics) -> str:
    """One row per frame: time, frame, every angle, every angular velocity, every keypoint speed (empty: a gap)."""
    columns = [track.angles[a] for a in ANGLE_NAMES] + [track.angular_velocity[a] for a in ANGLE_NAMES]
    rows = [
        [_cell(track.times[i], 4), str(track.frames[i]), *(_cell(c[i]) for c in columns), *map(_cell, track.speeds[i])]
        for i in range(len(track.frames))
    ]
    return _csv(TRACK_COLUMNS, rows)


def _peak(values: np.ndarray) -> float:
    """The largest magnitude among the finite values, NaN where there are none."""
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size else float("nan")


def summary_rows(track: TrackKinematics) -> list[dict[str, Any]]:
    """The rows of summary.csv for one track, one per angle (keys: :data:`SUMMARY_COLUMNS`)."""
    rows = []
    for name in ANGLE_NAMES:
        angle, spread = track.angles[name], range_of_motion(track.angles[name])
        values = (
            track.track_id, name, len(angle), int(np.isfinite(angle).sum()), float(track.times[-1] - track.times[0]),
            track.body_height, spread.minimum, spread.maximum, spread.full, spread.p5, spread.p95, spread.robust,
            _peak(track.angular_velocity[name]),
        )  # fmt: skip
        rows.append(dict(zip(SUMMARY_COLUMNS, values, strict=True)))
    return rows


def _with_breaks(times: np.ndarray, values: np.ndarray, broken: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A NaN between rows that are not linked, so no line is drawn across a missing stretch."""
    at = np.flatnonzero(broken[1:]) + 1
    return np.insert(times, at, (times[at - 1] + times[at]) / 2), np.insert(values, at, np.nan)


def plot_track(track: TrackKinematics, path: Path) -> None:
    """The angle curves of one track over time, a panel per joint (left and right together), gaps as breaks."""

    def series(label: str, name: str, colour: str, style: str) -> Series:
        return Series(label, *_with_breaks(track.times, track.angles[name], track.breaks), colour, style)

    panels = [
        Panel(f"{joint} ({'-'.join(stems)})", "time (s)", "degrees",
              [series(side, f"{side}_{joint}", *SIDE_STYLE[side]) for side in SIDES], y_range=(0, 185),
              y_ticks=range(0, 181, 45))
        for joint, stems in JOINTS.items()
    ]  # fmt: skip
    lean = Panel("trunk lean (+: shoulders to the image's right)", "time (s)", "degrees",
                 [series("trunk", TRUNK_LEAN, "tab:green", "-")])  # fmt: skip
    title = f"track {track.track_id}: joint angles (interior, 180 = straight); breaks: low confidence or not seen"
    save_chart(path, [*panels, lean], title=title, size=(10.0, 2.2), share_x=True)


def write_report(
    entries: Any, out_dir: str | Path, options: KinematicsOptions | None = None, source: str = "results",
    console: Console | None = None,
) -> KinematicsSummary:  # fmt: skip
    """Analyse a tracked results list and write ``out_dir``/summary.csv, track_<id>.csv and track_<id>.png.

    Bad entries and unknown ``options.tracks`` are a :class:`UserError` naming ``source``. Without
    matplotlib the CSVs are still written and ``console`` gets one warning line.
    """
    options = options or KinematicsOptions()
    console = console or error_console()
    out_dir = Path(out_dir)
    check_writable_folder(out_dir)
    results = read_tracks(entries, source, options.fps)
    tracks = results.tracks
    if options.tracks is not None:
        unknown = sorted(set(options.tracks) - {t.track_id for t in tracks})
        if unknown:
            raise UserError(f"{source}: no track {', '.join(map(str, unknown))} (its tracks: "
                            f"{', '.join(str(t.track_id) for t in tracks) or 'none'})")  # fmt: skip
        tracks = [t for t in tracks if t.track_id in options.tracks]
    short = [t.track_id for t in tracks if len(t.frames) < options.min_frames]
    analysed = [
        analyse_track(t.track_id, t.frames, t.times, t.keypoints, options.min_confidence)
        for t in tracks
        if len(t.frames) >= options.min_frames
    ]
    summary = KinematicsSummary(analysed, [], results.time_source, short, results.interpolated, plots_available())
    if not analysed:
        warn(console, f"no track has {options.min_frames} measured frames or more: the report is empty")
    elif not summary.plots:
        warn(console, f"plots need matplotlib ({PLOTS_HINT}): writing the CSV files only")
    try:
        for track in analysed:
            if not math.isfinite(track.body_height):
                warn(console, f"track {track.track_id}: no frame shows the shoulders, hips and a leg confidently: "
                              "no body-height scale, keypoint speeds left empty")  # fmt: skip
            write_text(out_dir / f"track_{track.track_id}.csv", track_csv(track))
            if summary.plots:
                plot_track(track, out_dir / f"track_{track.track_id}.png")
            summary.rows += summary_rows(track)
        cells = [[_cell(row[c]) if isinstance(row[c], float) else str(row[c]) for c in SUMMARY_COLUMNS]
                 for row in summary.rows]  # fmt: skip
        write_text(out_dir / "summary.csv", _csv(SUMMARY_COLUMNS, cells))
    except OSError as err:
        raise UserError(f"cannot write the report to {out_dir}: {err.strerror or err}") from None
    return summary


def summary_table(summary: KinematicsSummary) -> Table:
    """Range of motion (degrees) and peak angular speed per track and joint, for the console."""
    table = Table(title="motion analysis: angles in degrees (valid: frames with the joint seen)", title_justify="left")
    for name in ("track", "joint", "valid", "min", "max", "p5-p95", "peak deg/s"):
        table.add_column(name, justify="left" if name in ("track", "joint") else "right", no_wrap=True)
    for row in summary.rows:
        first = row["joint"] == ANGLE_NAMES[0]
        table.add_row(
            f"{row['track_id']} ({row['duration_s']:.1f} s)" if first else "", row["joint"],
            f"{row['valid_frames']}/{row['frames']}", _cell(row["min_deg"], 1), _cell(row["max_deg"], 1),
            _cell(row["range_p5_p95_deg"], 1), _cell(row["peak_angular_speed_deg_s"], 0),
            end_section=row["joint"] == ANGLE_NAMES[-1],
        )  # fmt: skip
    return table
