"""What a training run shows and records: a rich progress display and the JSON-lines metrics log."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from toppose.common.atomic import write_text
from toppose.common.numbers import finite_or_none


class MetricsLog:
    """JSON-lines metrics (``train`` records every few iterations, ``epoch`` and ``val`` records), rank 0 only.

    A fresh run starts the file anew; a resumed one keeps the records of the epochs it resumes after.
    A non-finite number (a diverged loss) is written as ``null``: every line is strict JSON.
    """

    def __init__(self, path: Path, enabled: bool, keep_through_epoch: int | None) -> None:
        self.path = path
        self.enabled = enabled
        if not enabled:
            return
        kept = []
        if keep_through_epoch is not None and path.is_file():
            for line in path.read_text().splitlines():
                if line.strip() and json.loads(line).get("epoch", 0) <= keep_through_epoch:
                    kept.append(line + "\n")
        write_text(path, "".join(kept))

    def write(self, record: dict[str, Any]) -> None:
        if self.enabled:
            with open(self.path, "a") as fh:
                fh.write(json.dumps(finite_or_none(record), allow_nan=False) + "\n")


class Clock:
    """Wall time of this run, and the time left at its average pace."""

    def __init__(self, first_iteration: int, total_iterations: int) -> None:
        self.started = time.perf_counter()
        self.first_iteration = first_iteration
        self.total_iterations = total_iterations

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def eta(self, iteration: int) -> float:
        """Seconds left after ``iteration`` (global, 1-based) at this run's pace so far."""
        done = max(iteration - self.first_iteration, 1)
        return self.elapsed() / done * (self.total_iterations - iteration)


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class ProgressDisplay:
    """A rich progress bar per epoch (epoch, iteration, loss, learning rate, images/s, ETA) on a terminal;
    elsewhere (a log file) one plain line per metrics record."""

    def __init__(self, console: Console, enabled: bool) -> None:
        self.console = console
        self.live = enabled and console.is_terminal
        self.plain = enabled and not console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.6f}  lr {task.fields[lr]:.2e}  {task.fields[ips]:.1f} img/s"),
            TimeRemainingColumn(),
            TextColumn("total ETA {task.fields[eta]}"),
            console=console,
            disable=not self.live,
        )
        self.task: int | None = None

    def __enter__(self) -> ProgressDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def start_epoch(self, label: str, iterations: int) -> None:
        if self.task is not None:
            self.progress.remove_task(self.task)
        self.task = self.progress.add_task("", total=iterations, epoch=label, loss=0.0, lr=0.0, ips=0.0, eta="?")

    def update(self, step: int, loss: float, lr: float, ips: float, eta_s: float, log_line: bool) -> None:
        assert self.task is not None
        self.progress.update(self.task, completed=step, loss=loss, lr=lr, ips=ips, eta=_clock(eta_s))
        if self.plain and log_line:
            label = self.progress.tasks[-1].fields["epoch"]
            self.print(
                f"epoch {label} it {step}/{self.progress.tasks[-1].total} loss {loss:.6f} lr {lr:.2e} "
                f"{ips:.1f} img/s ETA {_clock(eta_s)}"
            )

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Take the bar off the screen while something else (validation) shows its own progress."""
        self.progress.stop()
        try:
            yield
        finally:
            self.progress.start()

    def print(self, text: str) -> None:
        if self.live or self.plain:
            self.console.print(text, markup=False, highlight=False, soft_wrap=True)
