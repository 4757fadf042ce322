"""C3D marker files through ezc3d (the ``biomech`` extra): the TRC's markers, one frame per video frame.

C3D has one frame rate and no time column, so the file holds every frame from the track's first to its last;
frames the track has no row for are gaps, as are missing markers (ezc3d writes them as NaN with a residual of
-1). ``POINT:UNITS`` is ``m`` or ``px``; the group ``TOPPOSE`` holds how the coordinates were scaled
(``SCALE``) and the floor angle (``FLOOR``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from toppose.common.atomic import atomic_path
from toppose.common.errors import MissingExtraError

C3D_HINT = "pip install 'toppose[biomech]'"


def c3d_available() -> bool:
    """Whether ezc3d can be imported."""
    try:
        import ezc3d  # noqa: F401
    except ImportError:
        return False
    return True


def write_c3d(
    path: Path, frames: np.ndarray, rate: float, labels: Sequence[str], positions: np.ndarray, units: str,
    notes: dict[str, str],
) -> None:  # fmt: skip
    """Write (T, M, 2) ``positions`` (x right, y up, z 0) at ``frames`` to ``path``, atomically."""
    try:
        import ezc3d
    except ImportError:
        raise MissingExtraError(f"C3D files need ezc3d: {C3D_HINT}") from None
    first, count = int(frames[0]), int(frames[-1] - frames[0] + 1)
    points = np.full((4, len(labels), count), np.nan)
    points[3] = 1.0
    points[0, :, frames - first] = positions[..., 0]
    points[1, :, frames - first] = positions[..., 1]
    points[2, :, frames - first] = np.where(np.isfinite(positions[..., 0]), 0.0, np.nan)
    c3d = ezc3d.c3d()
    c3d["parameters"]["POINT"]["RATE"]["value"] = [rate]
    c3d["parameters"]["POINT"]["LABELS"]["value"] = list(labels)
    c3d["parameters"]["POINT"]["UNITS"]["value"] = [units]
    c3d["data"]["points"] = points
    for key, value in notes.items():
        c3d.add_parameter("TOPPOSE", key, [value])
    with atomic_path(path, suffix=".c3d") as tmp:
        c3d.write(str(tmp))
