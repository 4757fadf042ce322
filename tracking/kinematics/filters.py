"""Smoothing filters for keypoint trajectories, from scipy, statsmodels and filterpy, run on each unbroken stretch.

``--filter NAME:KEY=VALUE,...`` picks one (windows and sigmas in frames, the cut-off in Hz):

- ``butterworth`` (order=4, cutoff=6): low-pass run forwards and backwards (scipy ``sosfiltfilt``): no phase
  lag. Two passes square the gain, so each pass is designed with Winter's correction, a cut-off raised so
  that the combined gain at ``cutoff`` is -3 dB; ``order`` is each pass's.
- ``gaussian`` (sigma=1): a Gaussian kernel (scipy ``gaussian_filter1d``).
- ``median`` (window=5): a running median (scipy ``median_filter``), odd window.
- ``savgol`` (window=9, order=3): Savitzky-Golay polynomial fit (scipy ``savgol_filter``), odd window.
- ``loess`` (window=15): locally weighted linear regression over ``window`` frames (statsmodels ``lowess``;
  the ``biomech`` extra).
- ``kalman`` (trust=0.1): a constant-velocity Kalman filter and Rauch-Tung-Striebel smoother (filterpy), with
  ``trust`` the ratio of the acceleration noise (per frame squared) to the measurement noise: smaller is
  smoother.

A filter never runs across a gap (a missing value or a break in the track): each stretch between gaps is
filtered on its own, so fill short gaps first (``--fill-gaps``) to filter across them. A stretch too short for
a filter's window or padding is filtered with what fits, and one of under 3 frames is left as measured.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage, signal
from toppose.common.errors import MissingExtraError, UserError
from toppose.tracking.kinematics.specs import Spec, parse_spec

BIOMECH_HINT = "pip install 'toppose[biomech]'"
FILTERS: dict[str, dict[str, float]] = {
    "none": {},
    "butterworth": {"order": 4, "cutoff": 6.0},
    "gaussian": {"sigma": 1.0},
    "median": {"window": 5},
    "savgol": {"window": 9, "order": 3},
    "loess": {"window": 15},
    "kalman": {"trust": 0.1},
}
_INTEGERS = {"order", "window"}
_ODD = {"median", "savgol"}


def parse_filter(text: str) -> Spec:
    """A ``--filter`` value as a checked :class:`Spec` (one clear line for anything wrong)."""
    spec = parse_spec(text, FILTERS, "--filter")
    for key, value in spec.params.items():
        if key in _INTEGERS and value != int(value):
            raise UserError(f"--filter: {spec.name} {key} must be an integer, got {value:g}")
    if spec.name in _ODD and spec.params["window"] % 2 == 0:
        raise UserError(f"--filter: {spec.name} window must be odd, got {spec.params['window']:g}")
    if spec.name == "savgol" and spec.params["order"] >= spec.params["window"]:
        raise UserError("--filter: savgol order must be smaller than its window")
    if spec.name == "loess":
        lowess_function()
    return spec


def lowess_function():  # noqa: ANN201 - statsmodels' function, typed there
    """statsmodels' ``lowess``, or a :class:`MissingExtraError` saying how to install it."""
    try:
        from statsmodels.nonparametric.smoothers_lowess import lowess
    except ImportError:
        raise MissingExtraError(f"--filter loess needs statsmodels: {BIOMECH_HINT}") from None
    return lowess


def butterworth_design(order: int, cutoff: float, fs: float) -> np.ndarray:
    """Second-order sections of one pass, its cut-off raised so that two passes give -3 dB at ``cutoff``
    (Winter's correction, in the bilinear transform's warped frequencies)."""
    if cutoff >= fs / 2:
        raise UserError(f"--filter: butterworth cutoff {cutoff:g} Hz must be under half the frame rate "
                        f"({fs / 2:g} Hz)")  # fmt: skip
    correction = (math.sqrt(2) - 1) ** (1 / (2 * order))
    single = fs / math.pi * math.atan(math.tan(math.pi * cutoff / fs) / correction)
    return signal.butter(order, single, fs=fs, output="sos")


def _kalman(values: np.ndarray, trust: float) -> np.ndarray:
    from filterpy.common import Q_discrete_white_noise
    from filterpy.kalman import KalmanFilter

    kf = KalmanFilter(dim_x=2, dim_z=1)
    kf.F = np.array([[1.0, 1.0], [0.0, 1.0]])
    kf.H = np.array([[1.0, 0.0]])
    kf.R = np.eye(1)
    kf.Q = Q_discrete_white_noise(dim=2, dt=1.0, var=trust**2)
    kf.x = np.array([[values[0]], [0.0]])
    kf.P = np.diag([1.0, 1e6])
    means, covariances, _, _ = kf.batch_filter(values.reshape(-1, 1, 1))
    smoothed, _, _, _ = kf.rts_smoother(means, covariances)
    return smoothed[:, 0, 0]


def smooth(values: np.ndarray, spec: Spec, fs: float) -> np.ndarray:
    """One unbroken stretch (no NaN) filtered by ``spec``; ``fs`` frames per second."""
    n, p = len(values), spec.params
    if spec.name == "none" or n < 3:
        return values
    if spec.name == "butterworth":
        sos = butterworth_design(int(p["order"]), p["cutoff"], fs)
        pad = 3 * (2 * len(sos) + 1 - min((sos[:, 2] == 0).sum(), (sos[:, 5] == 0).sum()))
        return signal.sosfiltfilt(sos, values, padlen=min(pad, n - 1))
    if spec.name == "gaussian":
        return ndimage.gaussian_filter1d(values, p["sigma"], mode="nearest")
    if spec.name == "median":
        return ndimage.median_filter(values, size=int(p["window"]), mode="nearest")
    if spec.name == "savgol":
        window = min(int(p["window"]), n - (n % 2 == 0))
        return signal.savgol_filter(values, window, int(p["order"])) if window > p["order"] else values
    if spec.name == "loess":
        return lowess_function()(values, np.arange(n), frac=min(1.0, p["window"] / n), it=0, return_sorted=False)
    return _kalman(values, p["trust"])


def stretches(finite: np.ndarray, broken: np.ndarray) -> list[slice]:
    """The runs of finite values with no break inside, as slices."""
    starts = finite & (broken | ~np.concatenate([[False], finite[:-1]]))
    out = []
    for start in np.flatnonzero(starts):
        stop = start + 1
        while stop < len(finite) and finite[stop] and not broken[stop]:
            stop += 1
        out.append(slice(int(start), stop))
    return out


def filter_series(values: np.ndarray, broken: np.ndarray, spec: Spec, fs: float) -> np.ndarray:
    """(T, ...) values filtered along time, each column on each of its unbroken stretches; NaN stays NaN."""
    out = values.copy()
    flat = out.reshape(len(values), -1)
    for column in range(flat.shape[1]):
        for part in stretches(np.isfinite(flat[:, column]), broken):
            flat[part, column] = smooth(flat[part, column], spec, fs)
    return out
