"""What a batch worker does, with no Ray in it: a whole video item through :func:`toppose.runner.run`, or a shard of an
image item's images through the image mode's :func:`toppose.images.estimate_images`, with the networks of each setup
loaded once per worker (:class:`Pipelines`).

The worker's console output is captured: its warnings go back to the driver with the :class:`Outcome`, so that many
workers never write over the driver's progress bar.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import socket
import time
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toppose.batch.done import Item
from toppose.common.config import Config, frame_batch
from toppose.common.console import error_console
from toppose.common.errors import UserError
from toppose.common.jsonio import read_json
from toppose.detector.boxes_file import BoxesByImage
from toppose.images import BatchReport, estimate_images
from toppose.pipeline import TopDownPipeline, build_pipeline
from toppose.pose.inference import StageTimer
from toppose.runner import run
from toppose.runs import load_given_boxes
from toppose.sources import ImageSource

WARNING = "warning: "


@dataclass
class Unit:
    """One piece of work: a whole item (``names`` is ``None``), or a shard of an image item: these images (names
    relative to the input, in the input's order) with their image ids."""

    key: int
    item: Item
    names: list[str] | None = None
    ids: list[int] | None = None


@dataclass
class Outcome:
    """What a unit came to: its figures, or the error line that failed it; with a shard, each image's entries."""

    key: int
    error: str | None = None
    retry: bool = False  # stopped from outside (a signal) rather than failed: worth another try
    frames: int = 0
    people: int = 0
    seconds: float = 0.0
    worker: str = ""  # host:pid
    warnings: list[str] = field(default_factory=list)
    entries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # a shard's: image name -> entries


class Pipelines:
    """Pipelines whose networks are loaded once per setup: each run gets the networks of its setup with its own
    boxes and a fresh stage timer."""

    def __init__(self) -> None:
        self._built: dict[str, TopDownPipeline] = {}

    def __call__(self, cfg: Config, boxes: BoxesByImage | None = None, pose: str = "network") -> TopDownPipeline:
        key = json.dumps([dataclasses.asdict(cfg), pose, boxes is None], sort_keys=True, default=str)
        built = self._built.get(key)
        if built is None:
            built = self._built[key] = build_pipeline(cfg, boxes=boxes, pose=pose)
            return built
        if built.estimator is not None:
            built.estimator.timer = StageTimer()
        return TopDownPipeline(cfg, built.estimator, built.detector, boxes)


class Worker:
    """Runs units, one at a time, in one process (a Ray actor, or a test)."""

    def __init__(self, threads: int | None = None) -> None:
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        self.pipelines = Pipelines()
        self._boxes: tuple[tuple[Any, ...], BoxesByImage | None] | None = None
        self.name = f"{socket.gethostname()}:{os.getpid()}"
        self._frames: Callable[[], int] = lambda: 0  # frames done so far of the unit under way

    def progress(self) -> int:
        """Frames done so far of the unit under way (asked from another thread while it runs)."""
        return self._frames()

    def work(self, unit: Unit) -> Outcome:
        """Run ``unit``; every failure is the outcome's one error line, never an exception."""
        outcome = Outcome(unit.key, worker=self.name)
        started = time.perf_counter()
        captured = io.StringIO()
        try:
            with redirect_stdout(captured), redirect_stderr(captured):
                if unit.names is None:
                    self._item(unit.item, outcome)
                else:
                    self._shard(unit, outcome)
        except UserError as err:
            outcome.error = str(err)
        except KeyboardInterrupt:
            outcome.error, outcome.retry = "stopped by a signal", True
        except Exception as err:  # noqa: BLE001 - a bad item fails alone, whatever broke
            outcome.error = f"{type(err).__name__}: {err}".splitlines()[0]
        self._frames = lambda: 0
        outcome.seconds = time.perf_counter() - started
        outcome.warnings = [
            line[len(WARNING) :] for line in captured.getvalue().splitlines() if line.startswith(WARNING)
        ]
        return outcome

    def _item(self, item: Item, outcome: Outcome) -> None:
        """A whole item (a video, or frames with tracking), exactly as ``toppose run`` runs it."""
        built: list[TopDownPipeline] = []
        self._frames = lambda: built[0].timer.calls["read"] if built else 0

        def build(cfg: Config, boxes: BoxesByImage | None = None, pose: str = "network") -> TopDownPipeline:
            built.append(self.pipelines(cfg, boxes, pose))
            return built[-1]

        code = run(item.spec.request, item.cfg, build)
        if code != 0:
            outcome.error, outcome.retry = f"stopped before its end (exit code {code})", True
            return
        outcome.frames = built[0].timer.calls["read"]
        outcome.people = len(read_json(item.out / "results.json", "results file"))

    def _shard(self, unit: Unit, outcome: Outcome) -> None:
        """Some images of an image item: each image's entries, and its annotated copy written as ``toppose run``
        writes it; results.json is the driver's, once every shard is in."""
        request, cfg = unit.item.spec.request, unit.item.cfg
        assert unit.names is not None and unit.ids is not None
        report = BatchReport(error_console())
        self._frames = lambda: report.processed
        pipeline = self.pipelines(cfg, self.boxes(unit.item, report), request.pose)
        root = Path(request.input)
        base = root if root.is_dir() else root.parent
        source = ImageSource([base / name for name in unit.names], base, str(root), request.fps)
        ids = dict(zip(unit.names, unit.ids, strict=True))
        frames = source.frames(on_skip=report.skip)
        try:
            for frame, found in estimate_images(pipeline, request, frames, ids, report, frame_batch(cfg.inference)):
                outcome.entries[frame.name] = found
        finally:
            frames.close()
        outcome.frames, outcome.people = report.processed, report.people

    def boxes(self, item: Item, report: BatchReport) -> BoxesByImage | None:
        """The item's boxes file, read once for the shards that share it."""
        request, cfg = item.spec.request, item.cfg
        key = (request.boxes, cfg.detector.score_threshold, cfg.detector.max_people)
        if self._boxes is None or self._boxes[0] != key:
            self._boxes = (key, load_given_boxes(request, cfg, report.console))
        return self._boxes[1]
