"""Ray: joining (or starting) a cluster, and a pool of worker actors that runs a batch's units.

Each worker is a Ray actor asking for ``threads`` CPUs and ``gpus`` GPUs (fractional allowed); it keeps the networks
it loaded for the whole run. A worker that dies (killed, out of memory, its node lost) is replaced by a new actor, and
the unit it had is tried again, up to ``retries`` more times; a unit that fails for a reason of its own is not. Ray
is imported here only, so that the rest of the batch (and its checks) runs without it.
"""

from __future__ import annotations

import builtins
import logging
import math
import signal
from collections import Counter, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from types import ModuleType
from typing import Any, Protocol

from toppose.batch.worker import Outcome, Unit, Worker
from toppose.common.errors import MissingExtraError, UserError

INSTALL = "pip install 'toppose[distributed]'"
WAIT_SECONDS = 0.25  # between looks at the units under way (the progress bar's refresh)


class Feed(Protocol):
    """Where a pool's units come from and where their outcomes go (the driver's :class:`toppose.batch.driver.Batch`)."""

    def next_unit(self) -> Unit | None: ...

    def finished(self, unit: Unit, outcome: Outcome, attempts: int, worker: int) -> None: ...

    def retrying(self, unit: Unit, outcome: Outcome, attempts: int) -> None: ...


def require_ray() -> ModuleType:
    """The ``ray`` module, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise MissingExtraError(f"toppose batch runs on Ray, which is not installed: {INSTALL}") from None
    return ray


@contextmanager
def process_state_kept() -> Iterator[None]:
    """Give back what connecting to Ray changes in the process: it replaces ``builtins.print`` and installs its own
    SIGTERM and SIGINT handlers, which outlive ``ray.shutdown()``; a program (or a test suite) that goes on after a
    batch gets its own back."""
    saved_print = builtins.print
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        builtins.print = saved_print
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@contextmanager
def connected(address: str | None) -> Iterator[ModuleType]:
    """Ray, joined to the cluster at ``address`` (``auto``, ``HOST:PORT``, ``ray://HOST:PORT``), or to a local one
    it starts on this machine (``None``); a process already connected keeps its connection."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    options: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address is None:
        options["include_dashboard"] = False
    with process_state_kept():
        try:
            ray.init(address=address, **options)
        except (ConnectionError, RuntimeError, ValueError) as err:
            raise UserError(f"cannot join the Ray cluster at {address}: {str(err).splitlines()[0]}") from None
        try:
            yield ray
        finally:
            ray.shutdown()


def workers_that_fit(ray: ModuleType, threads: int, gpus: float) -> int:
    """How many workers of ``threads`` CPUs and ``gpus`` GPUs the cluster's resources hold."""
    resources = ray.cluster_resources()
    fit = int(resources.get("CPU", 0) // threads)
    if gpus > 0:
        fit = min(fit, math.floor(resources.get("GPU", 0) / gpus + 1e-9))
    return fit


class Pool:
    """``size`` worker actors; each runs one unit at a time, and answers how far it is meanwhile."""

    def __init__(self, ray: ModuleType, size: int, threads: int, gpus: float) -> None:
        self.ray = ray
        self.threads = threads
        self.remote = ray.remote(Worker).options(num_cpus=threads, num_gpus=gpus, max_restarts=0, max_concurrency=2)
        self.actors = [self.remote.remote(threads) for _ in range(size)]
        self.live: dict[int, int] = {}  # worker -> frames done so far of its unit under way

    def run(self, feed: Feed, retries: int, tick: Callable[[int], None]) -> None:
        """Run every unit ``feed`` gives until none is left; ``tick`` after each look at the units under way, with
        the frames done so far of those units."""
        ray = self.ray
        again: deque[Unit] = deque()
        attempts: Counter[int] = Counter()
        running: dict[Any, tuple[Unit, int]] = {}
        asked: dict[Any, tuple[int, int]] = {}  # progress questions out: ref -> (worker, unit key)
        idle = list(range(len(self.actors)))
        while True:
            while idle:
                unit = again.popleft() if again else feed.next_unit()
                if unit is None:
                    break
                index = idle.pop(0)
                attempts[unit.key] += 1
                running[self.actors[index].work.remote(unit)] = (unit, index)
            if not running:
                return
            ready, _ = ray.wait(list(running), num_returns=1, timeout=WAIT_SECONDS)
            for ref in ready:
                unit, index = running.pop(ref)
                idle.append(index)
                self.live.pop(index, None)
                outcome, died = self._outcome(ref, unit)
                if died:  # a new actor in its place; units sent to it wait until it has started
                    self.ray.kill(self.actors[index], no_restart=True)
                    self.actors[index] = self.remote.remote(self.threads)
                if outcome.retry and attempts[unit.key] <= retries:
                    again.append(unit)
                    feed.retrying(unit, outcome, attempts[unit.key])
                else:
                    feed.finished(unit, outcome, attempts[unit.key], index)
            self._ask(running, asked)
            tick(sum(self.live.values()))

    def _ask(self, running: dict[Any, tuple[Unit, int]], asked: dict[Any, tuple[int, int]]) -> None:
        """Take the answers to the last questions of how far each busy worker is, and ask again."""
        answered = self.ray.wait(list(asked), num_returns=len(asked), timeout=0)[0] if asked else []
        under_way = {(index, unit.key) for unit, index in running.values()}
        for ref in answered:
            index, key = asked.pop(ref)
            with suppress(self.ray.exceptions.RayError):  # a worker that died meanwhile
                frames = self.ray.get(ref)
                if (index, key) in under_way:
                    self.live[index] = frames
        waiting = {index for index, _ in asked.values()}
        for index, key in under_way:
            if index not in waiting:
                asked[self.actors[index].progress.remote()] = (index, key)

    def _outcome(self, ref: Any, unit: Unit) -> tuple[Outcome, bool]:
        """The unit's outcome, and whether its worker died (an outcome worth another try)."""
        exceptions = self.ray.exceptions
        try:
            return self.ray.get(ref), False
        except exceptions.RayTaskError as err:  # not a death: something the worker's own code let through
            return Outcome(unit.key, error=first_line(err)), False
        except exceptions.RayError as err:
            return Outcome(unit.key, error=f"its worker died ({first_line(err)})", retry=True), True

    def stop(self) -> None:
        """End every worker now (what they were doing is not recorded as done)."""
        for actor in self.actors:
            self.ray.kill(actor, no_restart=True)


def first_line(err: BaseException) -> str:
    """An exception's message, on one line."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    return lines[0] if lines else type(err).__name__
