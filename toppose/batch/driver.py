"""The batch's driver: which items are left to do, the units handed to the workers, and every finished item
recorded in the done manifest once its outputs are complete (:mod:`toppose.batch.done`).

Items are opened as workers need work, so that a large archive is listed a folder at a time. A video item is one
unit; an image item is listed here and split into shards (:mod:`toppose.batch.folders`). Ctrl-C (or SIGTERM) ends
the workers at once: the items finished are kept, and the same command continues with the rest.
"""

from __future__ import annotations

import io
import itertools
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from toppose.batch.cluster import Pool, connected, require_ray, workers_that_fit
from toppose.batch.done import FAILED_NAME, DoneLog, Item, is_done, write_failures
from toppose.batch.folders import Folder, add_shard, finish_folder, open_folder
from toppose.batch.items import ItemSpec, recorded_options
from toppose.batch.options import BatchOptions
from toppose.batch.report import Tally, WorkerTally, print_summary, progress_text
from toppose.batch.worker import Outcome, Unit
from toppose.common.atomic import check_writable_folder
from toppose.common.config import Config
from toppose.common.console import error_console, progress_bar, warn
from toppose.common.errors import EXIT_INTERRUPTED, UserError
from toppose.common.interrupts import terminate_as_interrupt
from toppose.run_folder import locked, setup_record
from toppose.runs import warn_random_weights

ConfigFor = Callable[[str | None, Path | None], Config]  # an item's setup from its setup name or config file


def build_items(specs: list[ItemSpec], config_for: ConfigFor, gpus: float) -> list[Item]:
    """Each spec with its setup (built once per setup name or config file) and its records."""
    configs: dict[tuple[str | None, Path | None], Config] = {}
    items = []
    for spec in specs:
        key = (spec.setup, spec.config)
        if key not in configs:
            configs[key] = config_for(*key)
            if gpus > 0 and configs[key].inference.device == "cpu":
                raise UserError("--gpus-per-worker gives each worker a GPU, but the setup runs on the cpu: "
                                "add --device cuda")  # fmt: skip
        cfg = configs[key]
        request = spec.request
        det_every = request.det_every or cfg.video.det_every
        record = setup_record(cfg, request.boxes, request.pose)
        items.append(Item(spec, cfg, record, recorded_options(request, det_every)))
    return items


@dataclass
class Batch:
    """The driver's state: items not yet opened, units ready, image items under way, and the tally."""

    out: Path
    options: BatchOptions
    console: Console
    waiting: deque[Item]
    tally: Tally
    quiet: set[str] = field(default_factory=set)  # warnings shown once for the whole batch
    ready: deque[Unit] = field(default_factory=deque)
    folders: dict[str, Folder] = field(default_factory=dict)
    failed: set[str] = field(default_factory=set)
    keys: itertools.count = field(default_factory=itertools.count)

    def __post_init__(self) -> None:
        self.done_log = DoneLog(self.out)

    def next_unit(self) -> Unit | None:
        while not self.ready and self.waiting:
            self._open(self.waiting.popleft())
        return self.ready.popleft() if self.ready else None

    def _open(self, item: Item) -> None:
        if item.spec.request.video_mode:
            self.ready.append(Unit(next(self.keys), item))
            return
        try:
            folder, units, warnings = open_folder(item, self.options.shard_size, self.out, self.keys)
        except UserError as err:
            self._fail(item, str(err), 1)
            return
        except OSError as err:  # a folder that cannot be listed or written
            self._fail(item, f"{err.filename or item.spec.request.input}: {err.strerror or err}", 1)
            return
        for message in warnings:
            warn(self.console, f"{item.name}: {message}")
        self.folders[item.name] = folder
        self.ready.extend(units)
        if not units:
            self._finish_folder(folder, 1, "")

    def retrying(self, unit: Unit, outcome: Outcome, attempts: int) -> None:
        warn(self.console, f"{unit.item.name}: {outcome.error}; trying again ({attempts + 1} of "
                           f"{self.options.retries + 1})")  # fmt: skip

    def finished(self, unit: Unit, outcome: Outcome, attempts: int, worker: int) -> None:
        item = unit.item
        self.tally.workers.setdefault(worker, WorkerTally()).add(outcome)
        if item.name in self.failed:
            return  # another shard of the item failed first
        for message in outcome.warnings:
            if message not in self.quiet:
                warn(self.console, f"{item.name}: {message}")
        if outcome.error is not None:
            self._fail(item, outcome.error, attempts)
            return
        self.tally.frames += outcome.frames
        folder = self.folders.get(item.name)
        if folder is None:
            self._record(item, outcome.frames, outcome.people, outcome.seconds, attempts, outcome.worker)
            return
        folder.seconds += outcome.seconds
        folder.attempts = max(folder.attempts, attempts)
        add_shard(folder, unit.key, outcome.entries, outcome.frames)
        if not folder.pending:
            self._finish_folder(folder, folder.attempts, outcome.worker)

    def _finish_folder(self, folder: Folder, attempts: int, worker: str) -> None:
        del self.folders[folder.item.name]
        try:
            people = finish_folder(folder)
        except UserError as err:
            folder.journal.close()
            self._fail(folder.item, str(err), attempts)
            return
        self._record(folder.item, folder.frames, people, folder.seconds, attempts, worker)

    def _record(self, item: Item, frames: int, people: int, seconds: float, attempts: int, worker: str) -> None:
        """The item's outputs are complete: its line in the done manifest."""
        self.done_log.append({
            "name": item.name, "input": str(item.spec.request.input), "setup_sha256": item.record["setup_sha256"],
            "options": item.options, "frames": frames, "people": people, "seconds": round(seconds, 3),
            "attempts": attempts, "worker": worker, "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        })  # fmt: skip
        self.tally.done += 1
        self.tally.people += people

    def _fail(self, item: Item, error: str, attempts: int) -> None:
        self.failed.add(item.name)
        folder = self.folders.pop(item.name, None)
        if folder is not None:
            folder.journal.close()
            self.ready = deque(u for u in self.ready if u.item.name != item.name)
        self.tally.failures.append({"name": item.name, "input": str(item.spec.request.input), "error": error,
                                    "attempts": attempts})  # fmt: skip

    def close(self) -> None:
        """Stopped: the journals of the image items under way keep their images done."""
        for folder in self.folders.values():
            folder.journal.close()


def batch_wide_warnings(items: list[Item], console: Console) -> set[str]:
    """Warn once for the whole batch of what every item of a setup would warn (random weights); those messages."""
    buffer = io.StringIO()
    seen = set()
    for item in items:
        if item.record["setup_sha256"] not in seen:
            seen.add(item.record["setup_sha256"])
            warn_random_weights(item.spec.request, item.cfg, Console(file=buffer, width=10_000))
    messages = {line.removeprefix("warning: ") for line in buffer.getvalue().splitlines()}
    for message in sorted(messages):
        warn(console, message)
    return messages


def run_batch(specs: list[ItemSpec], out: Path, config_for: ConfigFor, options: BatchOptions) -> int:
    """Run every item of ``specs`` not yet done into ``out`` on Ray; the exit code (130: interrupted). Failed items
    are listed, and one :class:`UserError` line ends the run."""
    require_ray()
    check_writable_folder(out)
    items = build_items(specs, config_for, options.gpus)
    console = error_console()
    with locked(out):
        done = DoneLog(out).read()
        todo = [item for item in items if not is_done(item, done.get(item.name))]
        tally = Tally(total=len(items), skipped=len(items) - len(todo), started=time.perf_counter())
        batch = Batch(out, options, console, deque(todo), tally, batch_wide_warnings(todo, console))
        interrupted = run_on_cluster(batch, todo) if todo else False
        tally.elapsed = time.perf_counter() - tally.started
        write_failures(out, tally.failures)
    print_summary(tally, out, options)
    if interrupted:
        warn(console, f"interrupted: {tally.done + tally.skipped} of {len(items)} items are done (in "
                      f"{batch.done_log.path}); the same command does the rest")  # fmt: skip
        return EXIT_INTERRUPTED
    if tally.failures:
        raise UserError(f"{len(tally.failures)} of {len(items)} items failed (listed above and in {out / FAILED_NAME})")
    return 0


def run_on_cluster(batch: Batch, todo: list[Item]) -> bool:
    """Run ``todo`` on the workers, with the progress bar; whether it was interrupted."""
    options, tally = batch.options, batch.tally
    with connected(options.address) as ray:
        size = workers_that_fit(ray, options.threads, options.gpus)
        if size < 1:
            raise UserError(f"the Ray cluster has no room for a worker of {options.threads} CPUs and "
                            f"{options.gpus:g} GPUs ({ray.cluster_resources()})")  # fmt: skip
        if options.workers is not None and options.workers > size:
            warn(batch.console, f"the Ray cluster holds {size} workers of {options.threads} CPUs and "
                                f"{options.gpus:g} GPUs, not {options.workers}: running {size}")  # fmt: skip
        whole_items = all(item.spec.request.video_mode for item in todo)  # no shards: no more workers than items
        tally.size = min(size, options.workers or size, *([len(todo)] if whole_items else []))
        with terminate_as_interrupt(), progress_bar(batch.console, "items") as progress:
            task = progress.add_task("", total=len(todo), item="")

            def tick(live_frames: int) -> None:
                done = tally.done + len(tally.failures)
                progress.update(task, completed=done, item=progress_text(tally, live_frames))

            pool = Pool(ray, tally.size, options.threads, options.gpus)
            try:
                pool.run(batch, options.retries, tick)
            except KeyboardInterrupt:
                return True
            finally:
                pool.stop()
                batch.close()
    return False
