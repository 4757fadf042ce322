"""What a batch shows: the progress bar's text (items done and failed, frames/s across the cluster) and the summary
tables at the end (items, frames, people, failures, time, throughput per worker)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from toppose.batch.done import DONE_NAME
from toppose.batch.options import BatchOptions
from toppose.batch.worker import Outcome
from toppose.common.console import items_table, summary_table


@dataclass
class WorkerTally:
    """One worker's share: units run, frames, seconds busy."""

    units: int = 0
    frames: int = 0
    seconds: float = 0.0

    def add(self, outcome: Outcome) -> None:
        self.units += 1
        self.frames += outcome.frames
        self.seconds += outcome.seconds


@dataclass
class Tally:
    """The batch's figures: items (done before this run, done by it, failed), frames and people of this run."""

    total: int
    skipped: int  # done before this run
    started: float
    done: int = 0
    frames: int = 0
    people: int = 0
    elapsed: float = 0.0
    size: int = 0  # workers
    failures: list[dict[str, Any]] = field(default_factory=list)
    workers: dict[int, WorkerTally] = field(default_factory=dict)

    def fps(self, elapsed: float) -> float:
        return self.frames / max(elapsed, 1e-9)


def progress_text(tally: Tally, live_frames: int) -> str:
    """The progress bar's text: failures so far and frames/s across the cluster, with the ``live_frames`` of the
    units under way."""
    fps = (tally.frames + live_frames) / max(time.perf_counter() - tally.started, 1e-9)
    return f"{len(tally.failures)} failed, {fps:.1f} frames/s"


def print_summary(tally: Tally, out: Path, options: BatchOptions) -> None:
    """The summary tables on stdout."""
    console = Console(highlight=False)
    left = tally.total - tally.skipped - tally.done - len(tally.failures)
    resources = f"{options.threads} CPU" + ("s" if options.threads > 1 else "") + (
        f", {options.gpus:g} GPU" if options.gpus else "")  # fmt: skip
    rows = [
        ("items", str(tally.total)),
        ("done before (skipped)", str(tally.skipped)),
        ("done now", str(tally.done)),
        ("failed", str(len(tally.failures))),
        *([("left (interrupted)", str(left))] if left else []),
        ("frames", str(tally.frames)),
        ("people found", str(tally.people)),
        ("workers", f"{tally.size} of {resources} each"),
        ("time", f"{tally.elapsed:.1f} s"),
        ("throughput", f"{tally.fps(tally.elapsed):.2f} frames/s"),
        ("done manifest", str(out / DONE_NAME)),
    ]
    console.print(summary_table("toppose batch summary", rows))
    if tally.workers:
        rows = [(str(i + 1), str(w.units), str(w.frames), f"{w.seconds:.1f}s", f"{w.frames / max(w.seconds, 1e-6):.2f}")
                for i, w in sorted(tally.workers.items())]  # fmt: skip
        console.print(items_table("workers", ("worker", "units", "frames", "busy", "frames/s"), rows))
    if tally.failures:
        rows = [(f["name"], f["error"], str(f["attempts"])) for f in tally.failures]
        console.print(items_table("failed items", ("item", "error", "tries"), rows))
