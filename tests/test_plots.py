"""The shared matplotlib charts (common/plots.py) and the training curves drawn with them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from toppose.common.errors import run_cli
from toppose.common.plots import Panel, Series, plots_available, save_chart
from toppose.pose.training import plot_metrics

from toppose.cli import plot_training

pytestmark = pytest.mark.skipif(not plots_available(), reason="matplotlib (the plots extra) is not installed")


def hide_matplotlib(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every ``import matplotlib...`` fail, as where the plots extra is not installed."""
    for name in [n for n in sys.modules if n == "matplotlib" or n.startswith("matplotlib.")] + ["matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)


def red_column_runs(path: Path) -> list[tuple[int, int]]:
    """The runs of adjacent image columns that hold pure-red pixels (the test line's colour)."""
    image = cv2.imread(str(path))
    assert image is not None
    b, g, r = (image[..., i].astype(int) for i in range(3))
    columns = np.flatnonzero(((r > 200) & (g < 60) & (b < 60)).any(axis=0))
    runs, start = [], columns[0]
    for before, after in zip(columns[:-1], columns[1:], strict=True):
        if after > before + 1:
            runs.append((start, before))
            start = after
    return [*runs, (start, columns[-1])]


def test_nan_is_a_gap_and_a_lone_point_a_dot(tmp_path: Path) -> None:
    xs = np.arange(101, dtype=float)
    ys = np.ones_like(xs)
    ys[30:70] = np.nan
    ys[50] = 1.0  # valid, with gaps on both sides: a dot, not nothing
    save_chart(tmp_path / "gap.png", [Panel("gap", "x", "y", [Series("line", xs, ys, "#ff0000")], y_range=(0, 2))])
    *runs, _legend = red_column_runs(tmp_path / "gap.png")  # the legend's sample line is to the right of the chart
    assert len(runs) == 3, runs
    left, dot, right = runs
    width = right[1] - left[0]
    assert (dot[0] - left[1]) > 0.15 * width and (right[0] - dot[1]) > 0.15 * width  # ~0.2 of the width each
    assert dot[1] - dot[0] < 0.03 * width


def test_plot_metrics_draws_the_loss_and_ap_charts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "metrics.jsonl"
    records = [
        {"kind": "train", "epoch": 1 + i // 4, "iteration": 5 * (i + 1), "loss": 0.01 / (i + 1)} for i in range(8)
    ]
    records += [{"kind": "epoch", "epoch": 1, "iteration": 20, "loss": 0.004}, {"kind": "epoch", "epoch": 2,
                "iteration": 40, "loss": 0.0015}, {"kind": "val", "epoch": 2, "AP": 0.3, "AP50": 0.6}]  # fmt: skip
    log.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    with pytest.raises(SystemExit) as exit_info:
        run_cli(plot_training.main, [str(log), "-o", str(tmp_path / "curves.png")])
    assert exit_info.value.code == 0 and "wrote" in capsys.readouterr().out
    png = cv2.imread(str(tmp_path / "curves.png"))
    assert png is not None and png.shape[0] > png.shape[1] / 2 and (png < 200).any(axis=2).mean() > 0.01
    assert [p.title for p in plot_metrics.metric_panels(records)] == ["training loss", "validation: COCO keypoint AP"]


def test_plot_metrics_errors_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "metrics.jsonl"
    log.write_text('{"kind": "val", "epoch": 1, "AP": 0.1, "AP50": 0.2}\nnot json\n')
    for argv, code, message in [
        ([str(tmp_path / "absent.jsonl")], 1, "metrics log not found"),
        ([str(log)], 1, "metrics.jsonl:2: not a JSON line"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            run_cli(plot_training.main, [*argv, "-o", str(tmp_path / "c.png")])
        err = capsys.readouterr().err
        assert exit_info.value.code == code and err.count("\n") == 1 and message in err, err
    log.write_text('{"kind": "val", "epoch": 1, "AP": 0.1, "AP50": 0.2}\n')
    hide_matplotlib(monkeypatch)
    with pytest.raises(SystemExit) as exit_info:
        run_cli(plot_training.main, [str(log), "-o", str(tmp_path / "c.png")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and err == "error: plots need matplotlib: pip install 'toppose[plots]'\n"
    assert not (tmp_path / "c.png").exists()
