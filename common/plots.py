"""Line charts saved as PNG with matplotlib, an optional extra (``pip install 'toppose[plots]'``).

A chart is a column of :class:`Panel` s. A NaN in a series is a break in its line, never bridged, and a
point with no valid neighbour is drawn as a dot so that it does not vanish. Figures are drawn on the
Agg canvas directly (no pyplot: no global state, no display) and written atomically.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from toppose.common.atomic import write_bytes
from toppose.common.errors import MissingExtraError

if TYPE_CHECKING:
    from matplotlib.axes import Axes

PLOTS_HINT = "pip install 'toppose[plots]'"
DPI = 100


@dataclass
class Series:
    """One line: ``ys`` against ``xs`` (NaN in ``ys``: a gap), in a matplotlib ``colour`` and line ``style``."""

    label: str
    xs: Sequence[float] | np.ndarray
    ys: Sequence[float] | np.ndarray
    colour: str | None = None  # None: the next colour of matplotlib's cycle
    style: str = "-"
    markers: bool = False


@dataclass
class Panel:
    """One chart of a figure: its title, axis labels, lines and (optionally) fixed axis ranges and y ticks."""

    title: str
    x_label: str
    y_label: str
    series: list[Series]
    x_range: tuple[float, float] | None = None
    y_range: tuple[float, float] | None = None
    y_ticks: Sequence[float] | None = None


def plots_available() -> bool:
    """Whether matplotlib can be imported."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _isolated(finite: np.ndarray) -> np.ndarray:
    """The valid points whose neighbours on both sides are gaps (a line through them draws nothing)."""
    before = np.concatenate([[False], finite[:-1]])
    after = np.concatenate([finite[1:], [False]])
    return finite & ~before & ~after


def _draw_panel(ax: Axes, panel: Panel, x_label: bool) -> None:
    ax.set_title(panel.title, loc="left", fontsize=10)
    if x_label:
        ax.set_xlabel(panel.x_label)
    ax.set_ylabel(panel.y_label)
    ax.grid(True, color="0.9")
    drawn = False
    for series in panel.series:
        xs, ys = np.asarray(series.xs, dtype=float), np.asarray(series.ys, dtype=float)
        finite = np.isfinite(ys)
        if not finite.any():
            continue
        marker = {"marker": "o"} if series.markers else {}  # a style such as "o" may draw markers itself
        (line,) = ax.plot(xs, ys, series.style, color=series.colour, label=series.label, lw=1.5, ms=4, **marker)
        alone = _isolated(finite)
        if alone.any() and not series.markers:
            ax.plot(xs[alone], ys[alone], "o", color=line.get_color(), ms=2.5)
        drawn = True
    if not drawn:
        ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", va="center", color="0.5")
        return
    if panel.x_range is not None:
        ax.set_xlim(*panel.x_range)
    if panel.y_range is not None:
        ax.set_ylim(*panel.y_range)
    if panel.y_ticks is not None:
        ax.set_yticks(list(panel.y_ticks))
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)  # beside the chart


def render_chart(
    panels: Sequence[Panel],
    title: str | None = None,
    size: tuple[float, float] = (10.0, 3.0),
    share_x: bool = False,
) -> bytes:
    """Draw ``panels`` top to bottom, each ``size`` inches (width, height), as PNG bytes.

    ``share_x``: one x axis for all panels, labelled under the last.

    Without matplotlib: a :class:`MissingExtraError` saying how to install it.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingExtraError(f"plots need matplotlib: {PLOTS_HINT}") from None
    figure = Figure(figsize=(size[0], size[1] * len(panels)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(panels), 1, sharex=share_x, squeeze=False)[:, 0]
    for index, (ax, panel) in enumerate(zip(axes, panels, strict=True)):
        _draw_panel(ax, panel, x_label=not share_x or index == len(panels) - 1)
    if title:
        figure.suptitle(title, x=0.01, ha="left", fontsize=12, fontweight="bold")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def save_chart(
    path: str | os.PathLike[str],
    panels: Sequence[Panel],
    title: str | None = None,
    size: tuple[float, float] = (10.0, 3.0),
    share_x: bool = False,
) -> None:
    """:func:`render_chart` written to ``path`` as a PNG, atomically."""
    write_bytes(path, render_chart(panels, title, size, share_x))
