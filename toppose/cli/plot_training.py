"""``toppose plot-training RUN/metrics.jsonl -o curves.png``: loss and AP curves of a training run

See :mod:`toppose.pose.training.plot_metrics`; alias in a checkout: ``python -m pose.training.plot_metrics``."""

from __future__ import annotations

import argparse
from pathlib import Path

from toppose.common.errors import UserError
from toppose.common.plots import save_chart
from toppose.pose.training.plot_metrics import metric_panels, read_metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="toppose plot-training", description=__doc__.splitlines()[0])
    parser.add_argument("log", type=Path, help="metrics.jsonl written by toppose train")
    parser.add_argument("-o", "--output", type=Path, default=Path("curves.png"), help="PNG to write")
    args = parser.parse_args(argv)
    records = read_metrics(args.log)
    if not records:
        raise UserError(f"{args.log}: no metrics records yet")
    save_chart(args.output, metric_panels(records), title=f"training run: {args.log}")
    print(f"wrote {args.output}")
    return 0
