"""Terminal output shared by the CLIs: a progress bar, one-line warnings and summary tables (rich)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table
from rich.text import Text

# Per-frame stages in pipeline order; other stages a timer holds are listed after these.
STAGE_ORDER = ("read", "detect", "crop", "pose", "decode", "draw", "write")


def error_console() -> Console:
    """A console on stderr for progress and warnings (markup and highlighting off for plain messages)."""
    return Console(stderr=True, highlight=False)


def progress_bar(console: Console, description: str = "working") -> Progress:
    """A transient progress bar on ``console``; disabled where the console is not a terminal."""
    return Progress(
        TextColumn(f"[bold]{description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[item]}"),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


def warn(console: Console, message: str) -> None:
    """Print ``warning: message`` as one line (above a running progress bar when there is one)."""
    console.print(Text(f"warning: {message}", style="yellow"), soft_wrap=True)


def summary_table(title: str, rows: Iterable[tuple[str, str]]) -> Table:
    """A two-column table of ``(name, value)`` rows."""
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    for name, value in rows:
        table.add_row(name, value)
    return table


def items_table(title: str, header: Sequence[str], rows: Iterable[Sequence[str]]) -> Table:
    """A table with a header row, e.g. the files a batch skipped and why."""
    table = Table(title=title, title_justify="left")
    for name in header:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*row)
    return table


def stage_rows(seconds: Mapping[str, float], count: int, unit: str = "image") -> list[tuple[str, str]]:
    """``(stage, "x.x ms/unit")`` rows for per-stage totals in ``seconds`` averaged over ``count`` items."""
    stages = [s for s in STAGE_ORDER if s in seconds] + sorted(set(seconds) - set(STAGE_ORDER))
    return [(f"{stage} time", f"{1000.0 * seconds[stage] / max(count, 1):.1f} ms/{unit}") for stage in stages]
