"""report.html: the whole motion analysis in one self-contained page (charts inlined), for a coach to open or send."""

from __future__ import annotations

import base64
import math
from html import escape
from typing import TYPE_CHECKING, Any

import numpy as np
from toppose.tracking.kinematics.motion import TrackKinematics, range_of_motion
from toppose.tracking.kinematics.notes import floor_note, scale_note

if TYPE_CHECKING:
    from toppose.tracking.kinematics.options import KinematicsOptions
    from toppose.tracking.kinematics.report import KinematicsSummary

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 2px solid #ddd; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .8em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; }
th { background: #f0f0f0; } td.text, th.text { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: .5em 0; } .note { color: #666; font-size: .9em; }
"""


def _number(value: float, digits: int = 1) -> str:
    return f"{value:.{digits}f}" if isinstance(value, float | int) and math.isfinite(value) else "-"


def _table(header: list[str], rows: list[list[Any]], text_columns: int = 1) -> str:
    def cell(tag: str, i: int, value: Any) -> str:
        kind = ' class="text"' if i < text_columns else ""
        return f"<{tag}{kind}>{escape(str(value))}</{tag}>"

    head = "".join(cell("th", i, h) for i, h in enumerate(header))
    body = "".join("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _facts(track: TrackKinematics) -> str:
    swaps = ", ".join(f"{group} {int(flags.sum())}" for group, flags in track.swapped.items())
    rows = [
        ["frames", len(track.frames)],
        ["duration (s)", _number(float(track.times[-1] - track.times[0]), 2)],
        ["body height (px)", _number(track.body_height)],
        ["scale", scale_note(track)],
        ["floor", floor_note(track)],
        ["left/right swaps corrected (frames)", swaps],
        ["outliers rejected (keypoints)", int(track.outliers.sum())],
        ["gaps filled (keypoints; rows added)", f"{int(track.filled.sum())}; {int(track.added.sum())}"],
    ]
    return _table(["", ""], rows, text_columns=2)


def _ranges(track: TrackKinematics) -> str:
    rows = []
    for definition in track.definitions:
        values = track.angles[definition.name]
        spread = range_of_motion(values)
        speed = np.abs(track.angular_velocity[definition.name])
        peak = float(np.nanmax(speed)) if np.isfinite(speed).any() else math.nan
        valid = f"{int(np.isfinite(values).sum())}/{len(values)}"
        numbers = [_number(spread.minimum), _number(spread.maximum), _number(spread.robust), _number(peak, 0)]
        rows.append([definition.name, definition.definition, valid, *numbers])
    return _table(["angle", "definition", "valid", "min", "max", "p5-p95", "peak deg/s"], rows, text_columns=2)


def _repetitions(track: TrackKinematics) -> str:
    reps = track.repetitions
    if reps is None:
        return ""
    text = (f"<p>{len(reps.reps)} repetitions on <b>{escape(reps.angle)}</b> ({escape(reps.chosen)}); start "
            f"position {escape(reps.start_zone or '-')}; thresholds {_number(reps.low)} / {_number(reps.high)} deg; "
            f"at least {reps.options.min_range:g} deg and {reps.options.min_duration:g} s; "
            f"{reps.rejected} cycles too small or too short left out.</p>")  # fmt: skip
    rows = [[i, _number(r.start_s, 2), _number(r.range_deg), _number(r.time_out_s, 2), _number(r.time_back_s, 2),
             _number(r.peak_speed_deg_s, 0)] for i, r in enumerate(reps.reps, 1)]  # fmt: skip
    keys = ("range_deg", "time_out_s", "time_back_s", "peak_speed_deg_s")
    spreads = [reps.spread(k) for k in keys]
    rows.append(["mean +- SD", "", *(f"{_number(m, 2)} +- {_number(s, 2)}" for m, s in spreads)])
    header = ["#", "start (s)", "range (deg)", "time out (s)", "time back (s)", "peak deg/s"]
    return f"<h3>Repetitions</h3>{text}{_table(header, rows)}"


def _gait(track: TrackKinematics) -> str:
    gait = track.gait
    if gait is None or not gait.events:
        return ""
    rows = [[e.foot, e.event, _number(e.time_s, 3), e.frame] for e in gait.events]
    cadence = f"<p>cadence {_number(gait.cadence_steps_min)} steps per minute</p>"
    return f"<h3>Gait events</h3>{cadence}{_table(['foot', 'event', 'time (s)', 'frame'], rows, 2)}"


def _images(pictures: dict[str, bytes]) -> str:
    return "".join(f'<img alt="chart{escape(k)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
                   for k, png in pictures.items())  # fmt: skip


def render(
    summary: KinematicsSummary, options: KinematicsOptions, pictures: dict[int, dict[str, bytes]], source: str
) -> str:
    """The page: the run's settings, then per track its facts, repetitions, gait events, ranges and charts."""
    kind = summary.keypoint_set.name if summary.keypoint_set else "-"
    settings = [
        ["source", source], ["keypoint set", kind], ["time from", summary.time_source],
        ["keypoints below confidence", f"{options.min_confidence:g}: gaps"], ["filter", str(options.filter)],
        ["outliers", str(options.outliers) if options.outliers else "kept"],
        ["gaps filled up to (frames)", options.fill_gaps], ["left/right swaps", "corrected" if options.fix_swaps
                                                             else "kept"],
        ["tracks skipped (too short)", ", ".join(map(str, summary.short_tracks)) or "none"],
    ]  # fmt: skip
    omitted = "".join(f"<li>{escape(name)}: {escape(why)}</li>" for name, why in summary.omitted.items())
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Motion analysis: {escape(source)}"
        f"</title><style>{STYLE}</style></head><body><h1>Motion analysis</h1>",
        _table(["setting", "value"], settings, text_columns=2),
        f"<p class='note'>Angles left out:</p><ul class='note'>{omitted}</ul>" if omitted else "",
    ]
    if not summary.plots:
        parts.append("<p class='note'>No charts: matplotlib is not installed.</p>")
    for track in summary.tracks:
        charts = pictures.get(track.track_id, {})
        first = {k: charts[k] for k in ("_repetitions", "") if k in charts}
        parts += [f"<h2>Track {track.track_id}</h2>", _facts(track), _repetitions(track), _images(first),
                  _gait(track), "<h3>Range of motion</h3>", _ranges(track),
                  _images({k: v for k, v in charts.items() if k not in first})]  # fmt: skip
    parts.append("</body></html>\n")
    return "\n".join(parts)
