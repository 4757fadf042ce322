"""``python -m pose.training.plot_metrics RUN/metrics.jsonl -o curves.png``: loss and AP curves of a training run.

Drawn with OpenCV: the training loss against the iteration (each logged window, and the mean of each
epoch), and the validation AP / AP50 against the epoch.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from common.atomic import write_bytes
from common.errors import UserError, run_cli

PANEL_SIZE = (720, 420)  # width, height of one chart
MARGIN = (80, 40, 30, 60)  # left, top, right, bottom: room for title, ticks and labels
WHITE, BLACK, GREY, LIGHT = (255, 255, 255), (0, 0, 0), (110, 110, 110), (228, 228, 228)
FONT = cv2.FONT_HERSHEY_SIMPLEX


@dataclass
class Series:
    """One line of a chart: ``xs``/``ys`` points in data units, drawn in ``colour`` (BGR)."""

    label: str
    xs: list[float]
    ys: list[float]
    colour: tuple[int, int, int]
    markers: bool = False


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The records of a metrics log (JSON lines); a missing file or a bad line is a :class:`UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"metrics log not found: {path}")
    records = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise UserError(f"{path}:{number}: not a JSON line ({err})") from None
        if not isinstance(record, dict) or "kind" not in record:
            raise UserError(f"{path}:{number}: not a metrics record (no 'kind')")
        records.append(record)
    return records


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering ``[low, high]``."""
    span = max(high - low, 1e-12)
    raw = span / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    return [first + i * step for i in range(int(math.ceil((high - first) / step)) + 1)]


def _label(value: float) -> str:
    if float(value).is_integer() and abs(value) < 1e7:
        return str(int(value))
    return f"{value:.3g}"


def draw_chart(
    title: str, x_label: str, series: list[Series], y_range: tuple[float, float] | None = None
) -> np.ndarray:
    """One line chart with axes, grid, ticks and a legend, as a BGR image of :data:`PANEL_SIZE`."""
    width, height = PANEL_SIZE
    left, top, right, bottom = MARGIN
    image = np.full((height, width, 3), 255, dtype=np.uint8)
    cv2.putText(image, title, (left, 26), FONT, 0.6, BLACK, 1, cv2.LINE_AA)
    cv2.putText(image, x_label, (left + (width - left - right) // 2 - 30, height - 15), FONT, 0.5, GREY, 1, cv2.LINE_AA)
    drawn = [s for s in series if s.xs]
    if not drawn:
        cv2.putText(image, "no records", (width // 2 - 50, height // 2), FONT, 0.6, GREY, 1, cv2.LINE_AA)
        return image
    xs = [x for s in drawn for x in s.xs]
    ys = [y for s in drawn for y in s.ys]
    x_ticks = nice_ticks(0.0, max(max(xs), 1.0))
    y_ticks = nice_ticks(*(y_range or (min(ys), max(ys))))
    x0, x1, y0, y1 = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]

    def to_pixel(x: float, y: float) -> tuple[int, int]:
        px = left + (x - x0) / (x1 - x0) * (width - left - right)
        py = height - bottom - (y - y0) / (y1 - y0) * (height - top - bottom)
        return int(round(px)), int(round(py))

    for y in y_ticks:
        (ax, ay), (bx, _) = to_pixel(x0, y), to_pixel(x1, y)
        cv2.line(image, (ax, ay), (bx, ay), LIGHT, 1)
        cv2.putText(image, _label(y), (5, ay + 4), FONT, 0.4, GREY, 1, cv2.LINE_AA)
    for x in x_ticks:
        px, py = to_pixel(x, y0)
        cv2.line(image, (px, py), (px, py + 5), GREY, 1)
        text = _label(x)
        cv2.putText(image, text, (px - 4 * len(text), py + 20), FONT, 0.4, GREY, 1, cv2.LINE_AA)
    cv2.rectangle(image, to_pixel(x0, y1), to_pixel(x1, y0), GREY, 1)
    for index, s in enumerate(drawn):
        points = np.array([to_pixel(x, y) for x, y in zip(s.xs, s.ys, strict=True)], dtype=np.int32)
        cv2.polylines(image, [points.reshape(-1, 1, 2)], False, s.colour, 2, cv2.LINE_AA)
        if s.markers:
            for point in points:
                cv2.circle(image, tuple(int(v) for v in point), 4, s.colour, -1, cv2.LINE_AA)
        legend_x = width - right - 150 * (len(drawn) - index)  # in the title row, right-aligned
        cv2.line(image, (legend_x, 22), (legend_x + 30, 22), s.colour, 2)
        cv2.putText(image, s.label, (legend_x + 38, 26), FONT, 0.45, BLACK, 1, cv2.LINE_AA)
    return image


def render_curves(records: list[dict[str, Any]]) -> np.ndarray:
    """The loss chart above the AP chart, as one BGR image."""
    train = [r for r in records if r["kind"] == "train" and r.get("loss") is not None]  # null: a diverged loss
    epochs = [r for r in records if r["kind"] == "epoch" and r.get("loss") is not None]
    val = [r for r in records if r["kind"] == "val"]
    loss = draw_chart(
        "training loss",
        "iteration",
        [
            Series("logged window", [r["iteration"] for r in train], [r["loss"] for r in train], (230, 160, 90)),
            Series("epoch mean", [r["iteration"] for r in epochs], [r["loss"] for r in epochs], (40, 40, 200)),
        ],
    )
    ap = draw_chart(
        "validation: COCO keypoint AP",
        "epoch",
        [
            Series("AP", [r["epoch"] for r in val], [r["AP"] for r in val], (60, 150, 30), markers=True),
            Series("AP50", [r["epoch"] for r in val], [r["AP50"] for r in val], (170, 80, 160), markers=True),
        ],
        y_range=(0.0, max([1e-3] + [max(r["AP"], r["AP50"]) for r in val])),
    )
    return np.concatenate([loss, ap], axis=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pose.training.plot_metrics", description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path, help="metrics.jsonl written by python -m pose.training")
    parser.add_argument("-o", "--output", type=Path, default=Path("curves.png"), help="PNG to write")
    args = parser.parse_args(argv)
    records = read_metrics(args.log)
    if not records:
        raise UserError(f"{args.log}: no metrics records yet")
    ok, png = cv2.imencode(".png", render_curves(records))
    if not ok:
        raise UserError(f"could not encode the curves as PNG for {args.output}")
    write_bytes(args.output, png.tobytes())
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    run_cli(main)
