"""OpenSim's text files: TRC (marker trajectories) and MOT (angles), as its TRCFileAdapter and STO readers read them.

TRC markers carry Pose2Sim's names (``LShoulder``, ``RBigToe``, ``Neck``, ``Hip``; ``Neck`` and ``Hip`` added as
the mid-shoulder and mid-hip where the set has no such points), so Pose2Sim's OpenSim models and setup files
scale and run inverse kinematics on them. Coordinates: x to the right (along the floor in metres), y up, z 0
(the image has no depth). A gap is ``NaN``. The first header line names how the coordinates were scaled.

MOT files hold one column per angle, in degrees, after ``time``. OpenSim 4's ``TimeSeriesTable`` reads a gap
(``NaN``) as NaN; the older ``Storage`` class stops at the first row holding one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from toppose.tracking.kinematics.angles import point
from toppose.tracking.kinematics.keypoint_sets import KeypointSet


def pose2sim_name(name: str) -> str:
    """``left_big_toe`` -> ``LBigToe``, ``nose`` -> ``Nose``: Pose2Sim's marker names."""
    side, _, rest = name.partition("_")
    prefix = {"left": "L", "right": "R"}.get(side)
    words = rest if prefix else name
    return (prefix or "") + "".join(word.capitalize() for word in words.replace("-", "_").split("_"))


def markers(xy: np.ndarray, kind: KeypointSet) -> tuple[list[str], np.ndarray]:
    """(names, (T, M, 2) positions) of the markers: the set's (no face) and the ``neck``/``hip`` stand-ins."""
    names = list(kind.markers) + [n for n in ("neck", "hip") if n not in kind.index]
    return [pose2sim_name(n) for n in names], np.stack([point(xy, kind, n) for n in names], axis=1)


def _number(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if np.isfinite(value) else "NaN"


def trc_text(
    name: str, frames: np.ndarray, times: np.ndarray, labels: Sequence[str], positions: np.ndarray, units: str,
    note: str,
) -> str:  # fmt: skip
    """A TRC file: ``positions`` (T, M, 2) x right, y up in ``units``; ``note`` (one line) after the file name."""
    rate = 1 / float(np.median(np.diff(times))) if len(times) > 1 else 0.0
    lines = [
        f"PathFileType\t4\t(X/Y/Z)\t{name}\t{note}",
        "DataRate\tCameraRate\tNumFrames\tNumMarkers\tUnits\tOrigDataRate\tOrigDataStartFrame\tOrigNumFrames",
        f"{rate:.6g}\t{rate:.6g}\t{len(times)}\t{len(labels)}\t{units}\t{rate:.6g}\t{int(frames[0]) + 1}\t{len(times)}",
        "Frame#\tTime\t" + "".join(f"{label}\t\t\t" for label in labels),
        "\t\t" + "\t".join(f"X{i}\tY{i}\tZ{i}" for i in range(1, len(labels) + 1)),
        "",
    ]
    digits = 6 if units == "m" else 3
    for frame, time, row in zip(frames, times, positions, strict=True):
        cells = [c for x, y in row for c in (_number(x, digits), _number(y, digits), _number(0.0, digits))]
        lines.append(f"{int(frame) + 1}\t{time:.6f}\t" + "\t".join(cells))
    return "\n".join(lines) + "\n"


def mot_text(name: str, times: np.ndarray, columns: dict[str, np.ndarray], notes: dict[str, str]) -> str:
    """A MOT file of angles in degrees; ``notes`` become ``key=value`` header lines."""
    header = [name, "version=1", f"nRows={len(times)}", f"nColumns={len(columns) + 1}", "inDegrees=yes"]
    header += [f"{key}={value}" for key, value in notes.items()]
    lines = [*header, "endheader", "\t".join(["time", *columns])]
    values = list(columns.values())
    lines += [f"{t:.6f}\t" + "\t".join(_number(v[i], 4) for v in values) for i, t in enumerate(times)]
    return "\n".join(lines) + "\n"
