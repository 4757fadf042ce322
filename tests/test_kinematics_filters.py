"""Filters, outlier rejection and gap filling on signals with known answers."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from toppose.common.errors import UserError
from toppose.tracking.kinematics.cleaning import add_missing_frames, fill_gaps, hampel, parse_outliers
from toppose.tracking.kinematics.filters import filter_series, parse_filter, smooth

FS = 100.0
TIMES = np.arange(2000) / FS


def sine(hz: float) -> np.ndarray:
    return np.sin(2 * np.pi * hz * TIMES)


def gain_and_lag(filtered: np.ndarray, hz: float) -> tuple[float, float]:
    """Amplitude ratio and phase lag (radians) of a filtered unit sine, away from the ends."""
    middle = slice(300, -300)
    basis = np.stack([np.sin(2 * np.pi * hz * TIMES), np.cos(2 * np.pi * hz * TIMES)], axis=1)[middle]
    (a, b), *_ = np.linalg.lstsq(basis, filtered[middle], rcond=None)
    return float(np.hypot(a, b)), float(np.arctan2(-b, a))


@pytest.mark.parametrize("order", [2, 4])
def test_butterworth_is_minus_3_db_at_the_cutoff_with_no_lag(order: int) -> None:
    spec = parse_filter(f"butterworth:cutoff=6,order={order}")
    gain, lag = gain_and_lag(smooth(sine(6.0), spec, FS), 6.0)
    assert 20 * np.log10(gain) == pytest.approx(-3.01, abs=0.05) and abs(lag) < 1e-3
    assert gain_and_lag(smooth(sine(1.0), spec, FS), 1.0)[0] == pytest.approx(1.0, abs=0.01)
    assert gain_and_lag(smooth(sine(20.0), spec, FS), 20.0)[0] < 0.05


@pytest.mark.parametrize(
    "text", ["gaussian:sigma=2", "median:window=5", "savgol:window=11,order=3", "kalman:trust=0.05", "loess:window=21"]
)
def test_each_filter_smooths_without_lag(text: str) -> None:
    if text.startswith("loess") and importlib.util.find_spec("statsmodels") is None:
        pytest.skip("statsmodels (the biomech extra) is not installed")
    spec = parse_filter(text)
    rng = np.random.default_rng(0)
    clean = 10 * sine(0.5)
    noisy = clean + rng.normal(0, 0.5, len(TIMES))
    out = smooth(noisy, spec, FS)
    assert np.std(out - clean) < 0.6 * np.std(noisy - clean), text
    assert abs(gain_and_lag(out / 10, 0.5)[1]) < 0.02, text  # zero-lag: under 0.02 rad at 0.5 Hz


def test_filters_never_cross_a_gap_or_a_break() -> None:
    values = np.concatenate([np.zeros(50), [np.nan] * 5, np.full(50, 10.0)])[:, None]
    broken = np.zeros(len(values), dtype=bool)
    broken[0] = True
    out = filter_series(values, broken, parse_filter("butterworth:cutoff=2"), 30.0)
    assert np.allclose(out[:50], 0.0, atol=1e-9) and np.allclose(out[55:], 10.0, atol=1e-9)
    assert np.isnan(out[50:55]).all()
    step = np.concatenate([np.zeros(50), np.full(50, 10.0)])[:, None]
    broken = np.zeros(100, dtype=bool)
    broken[[0, 50]] = True  # a break (the track not seen, a time jump) at the step
    assert np.allclose(filter_series(step, broken, parse_filter("gaussian:sigma=3"), 30.0), step)


def test_short_gaps_are_filled_only_up_to_the_limit_and_marked() -> None:
    times = np.arange(40) / 30.0
    values = np.sin(times)[:, None].copy()
    values[5:7] = np.nan  # 2 frames: filled
    values[20:25] = np.nan  # 5 frames: kept
    filled = fill_gaps(values, times, np.eye(1, 40, dtype=bool)[0], 3)
    assert np.flatnonzero(filled[:, 0]).tolist() == [5, 6]
    assert values[5:7, 0] == pytest.approx(np.sin(times[5:7]), abs=1e-4) and np.isnan(values[20:25]).all()
    frames = np.array([0, 1, 2, 5, 6, 20, 21])
    new_frames, new_times, new_values, added = add_missing_frames(frames, frames / 30.0, np.ones((7, 1)), 2,
                                                                  np.zeros(7, dtype=bool))  # fmt: skip
    assert new_frames.tolist() == [0, 1, 2, 3, 4, 5, 6, 20, 21] and added.sum() == 2
    assert new_times == pytest.approx(new_frames / 30.0) and np.isnan(new_values[added]).all()


def test_hampel_rejects_spikes_not_motion() -> None:
    rng = np.random.default_rng(1)
    xy = np.stack([np.linspace(0, 300, 100), 50 * np.sin(np.arange(100) / 8)], axis=1)[:, None, :]
    xy = xy + rng.normal(0, 0.5, xy.shape)
    xy[[30, 70], 0, 1] += 40.0
    assert np.flatnonzero(hampel(xy, parse_outliers("hampel"))[:, 0]).tolist() == [30, 70]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("wiener", "unknown method 'wiener'"),
        ("butterworth:cut=6", "butterworth has no parameter 'cut'"),
        ("butterworth:cutoff=-1", "cutoff must be a number > 0"),
        ("median:window=4", "median window must be odd"),
        ("savgol:window=5,order=5", "savgol order must be smaller than its window"),
        ("butterworth:order=2.5", "order must be an integer"),
    ],
)
def test_bad_filters_are_one_line(text: str, message: str) -> None:
    with pytest.raises(UserError, match=message):
        parse_filter(text)
    with pytest.raises(UserError, match="must be under half the frame rate"):
        smooth(np.zeros(50), parse_filter("butterworth:cutoff=20"), 30.0)
