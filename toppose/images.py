"""Image mode of a run: poses in each image of a file, a folder or a list, and their bookkeeping.

Image ids, ``--resume`` of an interrupted run, the batch report (images processed and skipped, people,
scores), interrupts, and the warnings about earlier outputs all live here, for the command line
(``toppose run``) and the Python API alike. Each image's result entries carry its ``file_name`` (the path
relative to the input); its annotated copy goes to ``OUT/images/`` under the same relative path.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from toppose.common.atomic import write_json
from toppose.common.config import Config, frame_batch
from toppose.common.console import error_console, items_table, progress_bar, stage_rows, summary_table, warn
from toppose.common.errors import EXIT_INTERRUPTED, UserError
from toppose.common.images import list_files
from toppose.common.interrupts import terminate_as_interrupt
from toppose.common.jsonio import read_json
from toppose.common.numbers import finite_or_none
from toppose.loop import read_chunk
from toppose.outputs import write_image
from toppose.pipeline import TopDownPipeline, build_pipeline
from toppose.pose.inference import PoseResult
from toppose.pose.results import resumable_entries, same_input, to_coco_entries
from toppose.run_folder import JOURNAL_NAME, RECORD_NAME, Journal, write_record
from toppose.runs import PipelineBuilder, RunRequest, load_given_boxes, warn_about_boxes, warn_random_weights
from toppose.sources import Frame, ImageSource, image_source, open_source

IMAGE_ID_RULE = """\
image ids (the image_id of each result, and the key into --boxes):
  with --ann, the id of the image whose file_name is the file's path relative to INPUT (or its name);
    images the annotation file does not list are skipped;
  otherwise, if every image's file name stem is a distinct integer (COCO style, 000000397133.jpg),
    that integer; otherwise 1..N in sorted path order.
"""


def annotation_image_ids(path: Path) -> dict[str, int]:
    """``file_name -> id`` from the ``images`` of a COCO annotation file."""
    dataset = read_json(path, "annotation file")
    try:
        return {str(image["file_name"]): int(image["id"]) for image in dataset["images"]}
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{path}: not a COCO annotation file (needs 'images' with 'file_name' and 'id')") from None


def _numeric_ids(relative: Sequence[Path]) -> list[int] | None:
    """The file name stems as ids, if every one is a distinct integer."""
    stems = [p.stem for p in relative]
    if all(s.isdigit() for s in stems) and len({int(s) for s in stems}) == len(stems):
        return [int(s) for s in stems]
    return None


def assign_image_ids(relative: Sequence[Path], ann_ids: dict[str, int] | None = None) -> list[int | None]:
    """The image id of each relative path (see ``IMAGE_ID_RULE``); ``None``: not in the annotation file."""
    if ann_ids is not None:
        return [ann_ids.get(p.as_posix(), ann_ids.get(p.name)) for p in relative]
    return _numeric_ids(relative) or list(range(1, len(relative) + 1))


def image_id_rule(relative: Sequence[Path], with_ann: bool) -> tuple[str, str | None]:
    """The id rule :func:`assign_image_ids` applies (for the summary), and a warning where it is a surprise:
    some file names are numbers, but not all of them, or not distinct, so none of the numbers is used."""
    if with_ann:
        return "from --ann", None
    if _numeric_ids(relative) is not None:
        return "file name numbers", None
    rule = "1..N in sorted path order"
    numeric = [p for p in relative if p.stem.isdigit()]
    if not numeric:
        return rule, None
    others = [p for p in relative if not p.stem.isdigit()]
    why = f"{len(others)} of {len(relative)} names are not (e.g. {others[0].as_posix()})" if others else "some repeat"
    return rule, f"image ids are {rule}, not the numbers in the file names: {why}"


@dataclass
class BatchReport:
    """What a batch did: images found and processed, people, instance scores, skipped files (path, reason).

    Warnings go to ``console`` as they happen.
    """

    console: Console
    total: int = 0
    processed: int = 0
    people: int = 0
    scores: list[float] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    id_rule: str = ""
    resumed: int = 0  # images whose entries were kept from the interrupted run this one continues
    drawn: set[str] = field(default_factory=set)  # annotated images written, as paths relative to OUT/images
    unwritten: list[tuple[str, str]] = field(default_factory=list)  # annotated images that could not be written

    def warn(self, message: str) -> None:
        """Print a one-line warning now."""
        warn(self.console, message)

    def skip(self, name: str, reason: str) -> None:
        """Record a skipped input and print its warning now."""
        self.skipped.append((name, reason))
        self.warn(f"skipped {name}: {reason}")

    def add(self, result: PoseResult) -> None:
        """Count one processed image and its people."""
        self.processed += 1
        self.people += len(result)
        self.scores += [float(s) for s in result.scores]


def print_summary(report: BatchReport, pipeline: TopDownPipeline, elapsed: float, out: Path) -> None:
    """The end-of-run summary tables on stdout."""
    console = Console(highlight=False)
    mean_score = f"{np.mean(report.scores):.3f}" if report.scores else "-"
    rows = [
        ("pose", pipeline.describe_pose()),
        ("images processed", f"{report.processed} of {report.total}"),
        *([("images kept from the resumed run", str(report.resumed))] if report.resumed else []),
        ("people found", str(report.people)),
        ("mean instance score", mean_score),
        ("skipped files", str(len(report.skipped))),
        *([("annotated images not written", str(len(report.unwritten)))] if report.unwritten else []),
        ("image ids", report.id_rule),
        *stage_rows(dict(pipeline.timer.seconds), report.processed),
        ("throughput", f"{report.processed / max(elapsed, 1e-9):.2f} images/s"),
        ("results", str(out / "results.json")),
    ]
    console.print(summary_table("toppose summary", rows))
    if report.skipped:
        console.print(items_table("skipped files", ("file", "reason"), report.skipped))
    if report.unwritten:
        console.print(items_table("annotated images not written", ("file", "error"), report.unwritten))


def record_image(
    pipeline: TopDownPipeline, request: RunRequest, frame: Frame, image_id: int, poses: PoseResult, report: BatchReport
) -> list[dict[str, Any]]:
    """The COCO result entries of one image's poses, its annotated copy written unless the request says not to draw."""
    report.add(poses)
    if request.draw:
        annotated = pipeline.draw(frame.image, poses)
        write_started = time.perf_counter()
        try:
            write_image(request.out / "images" / frame.name, annotated)
            report.drawn.add(frame.name)
        except UserError as err:  # this image's failure alone: its results are kept, the run goes on
            report.unwritten.append((frame.name, str(err)))
            report.warn(f"{frame.name}: annotated image not written: {err}")
        pipeline.timer.add("write", write_started)
    return to_coco_entries(poses, image_id, file_name=frame.name)


def estimate_images(
    pipeline: TopDownPipeline,
    request: RunRequest,
    frames: Iterator[Frame],
    ids: dict[str, int],
    report: BatchReport,
    frame_batch: int,
) -> Iterator[tuple[Frame, list[dict[str, Any]]]]:
    """Each image of ``frames`` with its COCO result entries (:func:`record_image`), in order: the images are read
    and run through the networks ``frame_batch`` at a time (:meth:`TopDownPipeline.process_frames`)."""
    while chunk := read_chunk(frames, frame_batch, pipeline.timer):
        if pipeline.boxes is not None:
            for frame in chunk:
                size = frame.image.shape[1::-1]
                warn_about_boxes(pipeline.boxes, size, report.console, (frame.name, ids[frame.name]))
        poses = pipeline.process_frames([frame.image for frame in chunk], [ids[frame.name] for frame in chunk])
        for frame, found in zip(chunk, poses, strict=True):
            yield frame, record_image(pipeline, request, frame, ids[frame.name], found, report)


def run_images(request: RunRequest, cfg: Config, record: dict[str, Any], build: PipelineBuilder | None = None) -> int:
    """Estimate the poses in ``request.input`` (an image, a folder or a list of image files) with a pipeline from
    ``build`` and write ``request.out``: ``results.json`` and, when drawing, the annotated images, with the setup
    ``record`` and a journal of the images done as the run goes (:mod:`toppose.run_folder`)."""
    out = request.out
    own_outputs = (out / "images", out / "results.json", out / RECORD_NAME, out / JOURNAL_NAME)
    source = (
        image_source(Path(request.input), exclude=own_outputs)
        if isinstance(request.input, str | Path)
        else open_source(request.input)
    )
    assert isinstance(source, ImageSource)
    report = BatchReport(error_console())
    for name, reason in source.skipped:
        report.skip(name, reason)
    names = [Path(name) for name in source.names]
    if not names:
        raise UserError(f"no images found in {source.name}")
    report.total = len(names)
    image_ids = assign_image_ids(names, annotation_image_ids(request.ann) if request.ann else None)
    report.id_rule, surprise = image_id_rule(names, request.ann is not None)
    if surprise:
        report.warn(surprise)
    boxes = load_given_boxes(request, cfg, report.console)
    if boxes is not None and not set(boxes) & {i for i in image_ids if i is not None}:
        report.warn(
            f"no image id of {source.name} appears in {request.boxes}: nobody will be found (see --help on image ids)"
        )
    warn_random_weights(request, cfg, report.console)
    ids = dict(zip(source.names, image_ids, strict=True))
    journal = Journal(out)
    entries = resumed_entries(out, journal, set(ids)) if request.resume else []
    done = {entry["file_name"] for entry in entries}
    report.resumed = len(done)
    earlier = set() if request.resume else earlier_outputs(out, report)
    pipeline = (build or build_pipeline)(cfg, boxes=boxes, pose=request.pose)
    journal.start(entries)
    write_record(out, record)

    todo = [name for name in source.names if name not in done]
    for name in todo:
        if ids[name] is None:
            report.skip(name, f"not listed in {request.ann}")
    started = time.perf_counter()
    interrupted = False
    with terminate_as_interrupt(), progress_bar(report.console, "images") as progress:
        task = progress.add_task("", total=len(todo), item="")
        frames = source.frames({name for name in todo if ids[name] is not None}, on_skip=report.skip)
        try:
            for frame, found in estimate_images(pipeline, request, frames, ids, report, frame_batch(cfg.inference)):
                progress.update(task, item=frame.name)
                journal.append(frame.name, found)
                entries += found
                progress.advance(task)
        except KeyboardInterrupt:
            interrupted = True  # keep what is done: results.json below, annotated images already written
        finally:
            frames.close()
            journal.close()
    elapsed = time.perf_counter() - started
    if report.processed + report.resumed == 0 and not interrupted:
        raise UserError(f"none of the {len(names)} images in {source.name} could be processed (see warnings above)")
    try:
        write_json(out / "results.json", finite_or_none(entries))  # resumed entries' extra fields are unchecked
    except OSError as error:
        raise UserError(f"cannot write {out / 'results.json'}: {error.strerror or error}") from None
    journal.remove()
    if interrupted:
        done_count = report.processed + report.resumed
        report.warn(f"interrupted after {done_count} of {len(names)} images: {out / 'results.json'} holds the images "
                    "done; the same command with --resume continues the run")  # fmt: skip
    if earlier - report.drawn:
        report.warn(f"{out / 'images'} still holds {len(earlier - report.drawn)} annotated images of an earlier run")
    print_summary(report, pipeline, elapsed, out)
    return EXIT_INTERRUPTED if interrupted else 0


def resumed_entries(out: Path, journal: Journal, names: set[str]) -> list[dict[str, Any]]:
    """What the run being continued finished: its journal where it was killed, else its ``results.json``."""
    journaled = journal.read()
    if journaled is not None:
        return same_input(journaled, names, str(journal.path))
    return resumable_entries(out / "results.json", names)


def earlier_outputs(out: Path, report: BatchReport) -> set[str]:
    """The annotated images an earlier run left in ``out`` (relative to ``out/images``), with a warning if any,
    or if it left a results file: this run replaces them as it goes."""
    folder = out / "images"
    earlier = {p.relative_to(folder).as_posix() for p in list_files(folder)} if folder.is_dir() else set()
    if earlier or any((out / name).exists() for name in ("results.json", JOURNAL_NAME)):
        report.warn(f"{out} holds the outputs of an earlier run: this run replaces them as it goes "
                    "(--resume continues an interrupted run instead)")  # fmt: skip
    return earlier
