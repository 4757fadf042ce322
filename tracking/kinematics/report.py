"""The motion report of a tracked results list (see :func:`write_report` and docs/motion-analysis.md).

Per run: summary.csv (per track and angle), repetitions.csv and gait_events.csv (where counted or found), and
report.html (everything, one self-contained file); per track: track_<id>.csv (every frame), track_<id>.png and
track_<id>_segments.png (angle curves), track_<id>.trc (markers in pixels) and track_<id>_m.trc (in metres,
where a height is given), track_<id>.mot (angles) and track_<id>.c3d (markers; needs ezc3d).
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from toppose.common.atomic import check_writable_folder, write_bytes, write_text
from toppose.common.console import error_console, warn
from toppose.common.errors import UserError
from toppose.common.plots import PLOTS_HINT, plots_available
from toppose.tracking.kinematics import charts, html_report
from toppose.tracking.kinematics.angles import BY_NAME, JOINTS, SIDES, available
from toppose.tracking.kinematics.c3d_file import C3D_HINT, c3d_available, write_c3d
from toppose.tracking.kinematics.keypoint_sets import KeypointSet
from toppose.tracking.kinematics.motion import TrackKinematics, analyse_track, range_of_motion, repetition_angle
from toppose.tracking.kinematics.notes import floor_note, scale_note
from toppose.tracking.kinematics.opensim_files import markers, mot_text, trc_text
from toppose.tracking.kinematics.options import KinematicsOptions
from toppose.tracking.kinematics.tracks import read_tracks

__all__ = ["KinematicsOptions", "KinematicsSummary", "summary_table", "write_report"]

SUMMARY_COLUMNS = (
    "track_id", "joint", "frames", "valid_frames", "duration_s", "body_height_px", "min_deg", "max_deg",
    "range_deg", "p5_deg", "p95_deg", "range_p5_p95_deg", "peak_angular_speed_deg_s", "kind", "definition",
    "floor_angle_deg", "m_per_px", "m_per_px_sd_pct", "scale",
)  # fmt: skip
REPETITION_COLUMNS = (
    "track_id", "angle", "repetition", "start_s", "turn_s", "end_s", "range_deg", "time_out_s", "time_back_s",
    "peak_angular_speed_deg_s", "low_deg", "high_deg", "start_zone", "chosen",
)  # fmt: skip
GAIT_COLUMNS = ("track_id", "foot", "event", "time_s", "frame", "cadence_steps_min")


@dataclass
class KinematicsSummary:
    """What a report holds: the analysed tracks, the rows of summary.csv and what was left out."""

    tracks: list[TrackKinematics]
    rows: list[dict[str, Any]]
    time_source: str
    short_tracks: list[int]  # ids of the tracks with fewer than min_frames measured frames (skipped)
    interpolated: int  # tracker-filled entries, left out (not measurements)
    plots: bool  # whether the PNGs were drawn (matplotlib installed)
    keypoint_set: KeypointSet | None = None
    omitted: dict[str, str] = field(default_factory=dict)  # angle -> why the set cannot measure it
    written: list[str] = field(default_factory=list)  # the kinds of file written


def _cell(value: Any, digits: int = 3) -> str:
    """A CSV or table cell: a number rounded (empty for a gap), anything else as text."""
    if isinstance(value, float | np.floating):
        return f"{value:.{digits}f}" if math.isfinite(value) else ""
    return str(value)


def _csv(header: tuple[str, ...] | list[str], rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue()


def _names(mask: np.ndarray, kind: KeypointSet) -> str:
    return ";".join(kind.names[i] for i in np.flatnonzero(mask))


def track_columns(track: TrackKinematics) -> dict[str, list[str]]:
    """The columns of track_<id>.csv, by name (empty cells: gaps)."""
    rows = range(len(track.frames))
    columns = {"time_s": [_cell(t, 4) for t in track.times], "frame": [str(f) for f in track.frames]}
    columns |= {f"{a}_deg": [_cell(v) for v in values] for a, values in track.angles.items()}
    columns |= {f"{a}_deg_s": [_cell(v) for v in values] for a, values in track.angular_velocity.items()}
    body = track.kind.body
    columns |= {f"{k}_speed_bh_s": [_cell(v) for v in track.speeds[:, i]] for i, k in enumerate(body)}
    if track.speeds_m_s is not None:
        columns |= {f"{k}_speed_m_s": [_cell(v) for v in track.speeds_m_s[:, i]] for i, k in enumerate(body)}
        columns["m_per_px"] = [_cell(v, 6) for v in track.scale.m_per_px]
        if track.scale.distance_m is not None:
            columns["distance_m"] = [_cell(v) for v in track.scale.distance_m]
    columns["added_row"] = [str(int(track.added[i])) for i in rows]
    columns["filled"] = [_names(track.filled[i], track.kind) for i in rows]
    columns["outliers"] = [_names(track.outliers[i], track.kind) for i in rows]
    columns |= {f"swapped_{group}": [str(int(v)) for v in flags] for group, flags in track.swapped.items()}
    return columns


def track_csv(track: TrackKinematics) -> str:
    """One row per frame: time, frame, every angle, its angular velocity, every body point's speed, and the marks."""
    columns = track_columns(track)
    return _csv(list(columns), [list(row) for row in zip(*columns.values(), strict=True)])


def _peak(values: np.ndarray) -> float:
    """The largest magnitude among the finite values, NaN where there are none."""
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size else float("nan")


def summary_rows(track: TrackKinematics) -> list[dict[str, Any]]:
    """The rows of summary.csv for one track, one per angle (keys: :data:`SUMMARY_COLUMNS`)."""
    scale = track.scale
    m_per_px = float(np.nanmedian(scale.m_per_px)) if scale else math.nan
    sd = 100 * scale.relative_sd if scale else math.nan
    rows = []
    for name, angle in track.angles.items():
        spread, definition = range_of_motion(angle), BY_NAME[name]
        values = (
            track.track_id, name, len(angle), int(np.isfinite(angle).sum()), float(track.times[-1] - track.times[0]),
            track.body_height, spread.minimum, spread.maximum, spread.full, spread.p5, spread.p95, spread.robust,
            _peak(track.angular_velocity[name]), definition.kind, definition.definition, track.floor.angle_deg,
            m_per_px, sd, scale_note(track),
        )  # fmt: skip
        rows.append(dict(zip(SUMMARY_COLUMNS, values, strict=True)))
    return rows


def repetition_rows(track: TrackKinematics) -> list[list[str]]:
    """The rows of repetitions.csv for one track."""
    reps = track.repetitions
    if reps is None:
        return []
    return [
        [str(track.track_id), reps.angle, str(i), *(_cell(v) for v in (r.start_s, r.turn_s, r.end_s, r.range_deg,
         r.time_out_s, r.time_back_s, r.peak_speed_deg_s, reps.low, reps.high)), reps.start_zone, reps.chosen]
        for i, r in enumerate(reps.reps, 1)
    ]  # fmt: skip


def gait_rows(track: TrackKinematics) -> list[list[str]]:
    """The rows of gait_events.csv for one track."""
    if track.gait is None:
        return []
    cadence = _cell(track.gait.cadence_steps_min, 1)
    return [[str(track.track_id), e.foot, e.event, _cell(e.time_s, 4), str(e.frame), cadence]
            for e in track.gait.events]  # fmt: skip


def _check_options(options: KinematicsOptions, kind: KeypointSet, ids: list[int], source: str) -> None:
    unknown = sorted(set(options.heights) - set(ids))
    if unknown:
        raise UserError(f"--height: {source} has no track {', '.join(map(str, unknown))}")
    reps = options.repetitions
    if reps is None or reps.angle == "auto":
        return
    measured = {a.name for a in available(kind)[0]}
    wanted = [reps.angle] if reps.angle not in JOINTS else [f"{side}_{reps.angle}" for side in SIDES]
    if reps.angle not in BY_NAME and reps.angle not in JOINTS:
        raise UserError(f"--reps: no angle {reps.angle!r} (a joint such as knee, an angle such as left_knee, "
                        "or auto)")  # fmt: skip
    if not set(wanted) <= measured:
        raise UserError(f"--reps {reps.angle}: {available(kind)[1][wanted[0]]}")


def _write_track(track: TrackKinematics, out_dir: Path, options: KinematicsOptions,
                 charts_png: dict[str, bytes]) -> None:  # fmt: skip
    stem = out_dir / f"track_{track.track_id}"
    formats = options.formats
    if "csv" in formats:
        write_text(stem.with_suffix(".csv"), track_csv(track))
    if "png" in formats:
        for suffix, png in charts_png.items():
            write_bytes(out_dir / f"track_{track.track_id}{suffix}.png", png)
    labels, positions = markers(track.xy, track.kind)
    pixels = positions * [1.0, -1.0]
    notes = {"scale": scale_note(track), "floor": floor_note(track), "filter": str(options.filter)}
    if "trc" in formats:
        write_text(
            stem.with_suffix(".trc"),
            trc_text(
                f"{stem.name}.trc",
                track.frames,
                track.times,
                labels,
                pixels,
                "px",
                "x = image column, y = -image row; " + notes["floor"],
            ),
        )
        if track.metres is not None:
            metres = markers(track.metres, track.kind)[1]
            write_text(
                out_dir / f"{stem.name}_m.trc",
                trc_text(f"{stem.name}_m.trc", track.frames, track.times, labels, metres, "m", notes["scale"]),
            )
    if "mot" in formats:
        write_text(stem.with_suffix(".mot"), mot_text(stem.name, track.times, track.angles, notes))
    if "c3d" in formats and c3d_available():
        metres = track.metres is not None
        data = markers(track.metres, track.kind)[1] if metres else pixels
        rate = 1 / float(np.median(np.diff(track.times))) if len(track.times) > 1 else 0.0
        write_c3d(stem.with_suffix(".c3d"), track.frames, rate, labels, data, "m" if metres else "px",
                  {"SCALE": notes["scale"], "FLOOR": notes["floor"]})  # fmt: skip


def write_report(
    entries: Any, out_dir: str | Path, options: KinematicsOptions | None = None, source: str = "results",
    console: Console | None = None,
) -> KinematicsSummary:  # fmt: skip
    """Analyse a tracked results list and write the report's files to ``out_dir`` (see the module docstring).

    Bad entries, unknown ``options.tracks`` and options the keypoint set cannot serve are a :class:`UserError`
    naming ``source``. Without matplotlib or ezc3d the other files are still written and ``console`` gets one
    warning line for each.
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
    _check_options(options, results.keypoint_set, [t.track_id for t in tracks], source)
    short = [t.track_id for t in tracks if len(t.frames) < options.min_frames]
    analysed = [
        analyse_track(t.track_id, t.frames, t.times, t.keypoints, options.min_confidence, options)
        for t in tracks
        if len(t.frames) >= options.min_frames
    ]
    drawn = bool({"png", "html"} & set(options.formats))
    summary = KinematicsSummary(analysed, [], results.time_source, short, results.interpolated,
                                plots_available() and drawn, results.keypoint_set,
                                available(results.keypoint_set)[1])  # fmt: skip
    if not analysed:
        warn(console, f"no track has {options.min_frames} measured frames or more: the report is empty")
    elif drawn and not summary.plots:
        warn(console, f"plots need matplotlib ({PLOTS_HINT}): writing the other files without them")
    if analysed and "c3d" in options.formats and not c3d_available():
        warn(console, f"C3D files need ezc3d ({C3D_HINT}): writing the other files without them")
    try:
        pictures: dict[int, dict[str, bytes]] = {}
        for track in analysed:
            if not math.isfinite(track.body_height):
                warn(console, f"track {track.track_id}: no frame shows the shoulders, hips and a leg confidently: "
                              "no body-height scale, keypoint speeds left empty")  # fmt: skip
            pictures[track.track_id] = _charts(track) if summary.plots else {}
            _write_track(track, out_dir, options, pictures[track.track_id])
            summary.rows += summary_rows(track)
        _write_tables(analysed, summary, out_dir, options)
        if "html" in options.formats:
            write_text(out_dir / "report.html", html_report.render(summary, options, pictures, source))
    except OSError as err:
        raise UserError(f"cannot write the report to {out_dir}: {err.strerror or err}") from None
    summary.written = [f for f in options.formats if analysed and (f != "c3d" or c3d_available())
                       and (f != "png" or summary.plots)]  # fmt: skip
    return summary


def _charts(track: TrackKinematics) -> dict[str, bytes]:
    """The track's charts by file suffix."""
    out = {"": charts.joint_chart(track), "_segments": charts.segment_chart(track)}
    if track.repetitions is not None:
        values, _ = repetition_angle(track.angles, track.angular_velocity, track.repetitions.angle)
        out["_repetitions"] = charts.repetition_chart(track, values)
    return out


def _write_tables(analysed: list[TrackKinematics], summary: KinematicsSummary, out_dir: Path,
                  options: KinematicsOptions) -> None:  # fmt: skip
    cells = [[_cell(row[c]) for c in SUMMARY_COLUMNS] for row in summary.rows]
    write_text(out_dir / "summary.csv", _csv(SUMMARY_COLUMNS, cells))
    if options.repetitions is not None:
        write_text(out_dir / "repetitions.csv", _csv(REPETITION_COLUMNS, [r for t in analysed for r in
                                                                          repetition_rows(t)]))  # fmt: skip
    if any(t.gait is not None and t.gait.events for t in analysed):
        write_text(out_dir / "gait_events.csv", _csv(GAIT_COLUMNS, [r for t in analysed for r in gait_rows(t)]))


def summary_table(summary: KinematicsSummary) -> Table:
    """Range of motion (degrees) and peak angular speed per track and joint, for the console."""
    table = Table(title="motion analysis: angles in degrees (valid: frames with the joint seen)", title_justify="left")
    for name in ("track", "joint", "valid", "min", "max", "p5-p95", "peak deg/s"):
        table.add_column(name, justify="left" if name in ("track", "joint") else "right", no_wrap=True)
    rows = [row for row in summary.rows if row["kind"] != "segment"]
    for index, row in enumerate(rows):
        first = index == 0 or rows[index - 1]["track_id"] != row["track_id"]
        last = index == len(rows) - 1 or rows[index + 1]["track_id"] != row["track_id"]
        table.add_row(
            f"{row['track_id']} ({row['duration_s']:.1f} s)" if first else "", row["joint"],
            f"{row['valid_frames']}/{row['frames']}", _cell(row["min_deg"], 1), _cell(row["max_deg"], 1),
            _cell(row["range_p5_p95_deg"], 1), _cell(row["peak_angular_speed_deg_s"], 0), end_section=last,
        )  # fmt: skip
    return table
