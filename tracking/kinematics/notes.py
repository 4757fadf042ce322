"""One-line notes on how a track's coordinates were scaled and its floor found, for every file of the report."""

from __future__ import annotations

import math

import numpy as np
from toppose.tracking.kinematics.motion import TrackKinematics


def scale_note(track: TrackKinematics) -> str:
    """How the track's coordinates are scaled, in one line."""
    if track.scale is None:
        return "pixels (no height given, or no frame shows the body height)"
    scale = track.scale
    return (f"metres: {float(np.nanmedian(scale.m_per_px)):.6f} m/px +- {scale.relative_sd:.1%} "
            f"({scale.method})")  # fmt: skip


def floor_note(track: TrackKinematics) -> str:
    """The floor angle and how it was found, in one line."""
    sd = f" +- {track.floor.sd_deg:.1f}" if math.isfinite(track.floor.sd_deg) else ""
    return f"{track.floor.angle_deg:.2f}{sd} deg ({track.floor.method})"
