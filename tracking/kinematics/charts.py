"""The report's charts as PNG bytes: joint angles, segment angles, and the repetitions on their angle."""

from __future__ import annotations

import numpy as np
from toppose.common.plots import Panel, Series, render_chart
from toppose.tracking.kinematics.angles import JOINTS, SIDES, TRUNK_LEAN
from toppose.tracking.kinematics.motion import TrackKinematics

SIDE_STYLE = {"left": ("tab:blue", "-"), "right": ("tab:orange", "--")}


def _with_breaks(times: np.ndarray, values: np.ndarray, broken: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A NaN between rows that are not linked, so no line is drawn across a missing stretch."""
    at = np.flatnonzero(broken[1:]) + 1
    return np.insert(times, at, (times[at - 1] + times[at]) / 2), np.insert(values, at, np.nan)


def _series(track: TrackKinematics, label: str, name: str, colour: str | None, style: str = "-") -> Series:
    return Series(label, *_with_breaks(track.times, track.angles[name], track.breaks), colour, style)


def joint_chart(track: TrackKinematics) -> bytes:
    """The joint angles over time, a panel per joint (left and right together), and the trunk lean."""
    panels = [
        Panel(f"{joint} ({'-'.join(stems)})", "time (s)", "degrees",
              [_series(track, side, f"{side}_{joint}", *SIDE_STYLE[side]) for side in SIDES], y_range=(0, 185),
              y_ticks=range(0, 181, 45))
        for joint, stems in JOINTS.items()
        if f"left_{joint}" in track.angles
    ]  # fmt: skip
    lean = Panel("trunk lean (+: shoulders to the image's right)", "time (s)", "degrees",
                 [_series(track, "trunk", TRUNK_LEAN, "tab:green")])  # fmt: skip
    title = f"track {track.track_id}: joint angles (interior, 180 = straight); breaks: low confidence or not seen"
    return render_chart([*panels, lean], title=title, size=(10.0, 2.2), share_x=True)


def segment_chart(track: TrackKinematics) -> bytes:
    """The segment angles over time: legs, trunk and head, arms."""
    groups = {
        "legs (foot, shank, thigh)": ("foot", "shank", "thigh"),
        "trunk, pelvis, shoulders, head": ("trunk", "pelvis", "shoulders", "head"),
        "arms (arm, forearm, hand)": ("arm", "forearm", "hand"),
    }
    panels = []
    for title, segments in groups.items():
        series = []
        for segment in segments:
            for name, style in ((f"left_{segment}", "-"), (f"right_{segment}", "--"), (segment, "-")):
                if name in track.angles:
                    series.append(_series(track, name.replace("_", " "), name, None, style))
        if series:
            panels.append(
                Panel(title, "time (s)", "degrees", series, y_range=(-185, 185), y_ticks=range(-180, 181, 90))
            )
    title = (f"track {track.track_id}: segment angles, anticlockwise from the floor "
             f"(floor at {track.floor.angle_deg:.1f} deg in the image)")  # fmt: skip
    return render_chart(panels, title=title, size=(10.0, 2.4), share_x=True)


def repetition_chart(track: TrackKinematics, values: np.ndarray) -> bytes:
    """The repetitions' angle with its thresholds, each repetition's turning point marked."""
    reps = track.repetitions
    times = track.times
    lines = [Series(reps.angle, *_with_breaks(times, values, track.breaks), "tab:blue")]
    lines += [Series(label, [times[0], times[-1]], [level, level], "0.5", ":")
              for label, level in (("low", reps.low), ("high", reps.high))]  # fmt: skip
    turns = [r.turn_s for r in reps.reps]
    at_turns = np.interp(turns, times, np.nan_to_num(values))
    lines.append(Series("turning points", turns, at_turns, "tab:red", "o"))
    title = f"track {track.track_id}: {len(reps.reps)} repetitions on {reps.angle}"
    return render_chart([Panel(title, "time (s)", "degrees", lines)], size=(10.0, 3.0))
