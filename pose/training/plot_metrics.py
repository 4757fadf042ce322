"""Loss and AP curves of a training run (``toppose plot-training RUN/metrics.jsonl -o curves.png``).

Two charts (matplotlib, the ``plots`` extra): the training loss against the iteration (each logged window,
and the mean of each epoch), and the validation AP / AP50 against the epoch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from toppose.common.errors import UserError
from toppose.common.plots import Panel, Series


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


def metric_panels(records: list[dict[str, Any]]) -> list[Panel]:
    """The loss chart (against the iteration) and the validation AP chart (against the epoch)."""
    train = [r for r in records if r["kind"] == "train" and r.get("loss") is not None]  # null: a diverged loss
    epochs = [r for r in records if r["kind"] == "epoch" and r.get("loss") is not None]
    val = [r for r in records if r["kind"] == "val"]
    loss = Panel(
        "training loss",
        "iteration",
        "loss",
        [
            Series("logged window", [r["iteration"] for r in train], [r["loss"] for r in train], "tab:blue"),
            Series("epoch mean", [r["iteration"] for r in epochs], [r["loss"] for r in epochs], "tab:red"),
        ],
        x_range=(0.0, max([1] + [r["iteration"] for r in train + epochs])),
    )
    ap = Panel(
        "validation: COCO keypoint AP",
        "epoch",
        "AP",
        [
            Series("AP", [r["epoch"] for r in val], [r["AP"] for r in val], "tab:green", markers=True),
            Series("AP50", [r["epoch"] for r in val], [r["AP50"] for r in val], "tab:purple", markers=True),
        ],
        x_range=(0.0, max([1] + [r["epoch"] for r in val]) + 0.5),
        y_range=(0.0, max([1e-3] + [max(r["AP"], r["AP50"]) for r in val]) * 1.05),
    )
    return [loss, ap]


if __name__ == "__main__":  # a checkout's python -m alias of `toppose plot-training`
    from toppose.cli import alias

    alias("plot-training")
