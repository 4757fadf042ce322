"""Before filtering: outliers rejected (Hampel) and short gaps filled, each on request and marked.

- ``--outliers hampel:window=7,sigmas=3``: a keypoint is an outlier in a frame where its x or y is further
  from the median of the ``window`` frames around it than ``sigmas`` robust standard deviations of those
  frames' own distances from their medians (1.4826 x their median absolute value, at least 1 pixel): a Hampel
  filter on the residuals, so steady motion does not widen it. It becomes a gap (counted per track).
- ``--fill-gaps N``: runs of up to N missing frames (the track not seen, or an entry left out) get rows of
  their own, times interpolated over the frame index, and a keypoint missing for up to N frames with
  measurements on both sides (no break between) is interpolated there (shape-preserving cubic, scipy
  ``PchipInterpolator``). Filled values are marked; longer gaps stay gaps.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.interpolate import PchipInterpolator
from toppose.tracking.kinematics.specs import Spec, parse_spec

OUTLIERS = {"hampel": {"window": 7, "sigmas": 3.0}}
MAD_TO_SD = 1.4826  # the median absolute deviation of a normal distribution, in standard deviations
MIN_SPREAD_PX = 1.0


def parse_outliers(text: str) -> Spec:
    """An ``--outliers`` value as a checked :class:`Spec`."""
    return parse_spec(text, OUTLIERS, "--outliers")


def _windows(values: np.ndarray, half: int) -> np.ndarray:
    """(T, ..., 2 half + 1) the values around each frame along time, NaN beyond the ends."""
    padded = np.pad(values, ((half, half),) + ((0, 0),) * (values.ndim - 1), constant_values=np.nan)
    return sliding_window_view(padded, 2 * half + 1, axis=0)


def hampel(xy: np.ndarray, spec: Spec) -> np.ndarray:
    """(T, K) bool: the keypoints of (T, K, 2) ``xy`` (NaN: missing) that are Hampel outliers."""
    half = int(spec.params["window"]) // 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN window: a NaN median, no outlier
        residual = xy - np.nanmedian(_windows(xy, half), axis=-1)
        spread = MAD_TO_SD * np.nanmedian(np.abs(_windows(residual, half)), axis=-1)
    limit = spec.params["sigmas"] * np.maximum(spread, MIN_SPREAD_PX)
    return (np.abs(residual) > limit).any(axis=-1)


def add_missing_frames(
    frames: np.ndarray, times: np.ndarray, values: np.ndarray, max_gap: int, jumps: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Rows for runs of up to ``max_gap`` missing frames (not across a time jump): frames, times (linear in the
    frame index), values (NaN there) and a (T',) bool marking the added rows."""
    steps = np.diff(frames)
    add = (steps > 1) & (steps <= max_gap + 1) & ~jumps[1:]
    if not add.any():
        return frames, times, values, np.zeros(len(frames), dtype=bool)
    new_frames = np.concatenate([frames] + [np.arange(frames[i] + 1, frames[i + 1]) for i in np.flatnonzero(add)])
    order = np.argsort(new_frames, kind="stable")
    new_frames = new_frames[order]
    new_times = np.interp(new_frames, frames, times)
    added = ~np.isin(new_frames, frames)
    new_values = np.full((len(new_frames), *values.shape[1:]), np.nan)
    new_values[~added] = values
    return new_frames, new_times, new_values, added


def fill_gaps(values: np.ndarray, times: np.ndarray, broken: np.ndarray, max_gap: int) -> np.ndarray:
    """(T, ...) bool of the values filled in place: each column's runs of at most ``max_gap`` NaN with finite
    values on both sides and no break from one side to the other, interpolated over time."""
    flat = values.reshape(len(values), -1)
    filled = np.zeros(flat.shape, dtype=bool)
    segment = np.cumsum(broken)
    for column in range(flat.shape[1]):
        for part in np.unique(segment):
            rows = np.flatnonzero(segment == part)
            series = flat[rows, column]
            finite = np.isfinite(series)
            if finite.sum() < 2 or finite.all():
                continue
            gap = ~finite & (np.cumsum(finite) > 0) & (np.cumsum(finite[::-1])[::-1] > 0)  # inside, not at the ends
            run_id = np.cumsum(~gap)
            lengths = np.bincount(run_id[gap], minlength=run_id.max() + 1)
            short = gap & (lengths[run_id] <= max_gap)
            if short.any():
                curve = PchipInterpolator(times[rows][finite], series[finite])
                flat[rows[short], column] = curve(times[rows][short])
                filled[rows[short], column] = True
    return filled.reshape(values.shape)
