"""toppose: multi-person pose estimation on images, folders and videos.

    python run.py INPUT -o OUT [options]
    python run.py FOLDER -o OUT --resume [options]   # continue an interrupted folder run
    python run.py VIDEO -o OUT --track [--det-every K]

For images, writes OUT/results.json (COCO keypoint results, each entry with the image's
``file_name``) and, unless --no-draw, the annotated images under OUT/images/ (same relative paths as
in INPUT). Videos, camera indices and (with --track) folders of frames go to the video mode of
:mod:`toppose.video`.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rich.console import Console
from toppose.common.atomic import atomic_path, check_writable_folder, write_json
from toppose.common.config import Config
from toppose.common.console import error_console, items_table, progress_bar, stage_rows, summary_table, warn
from toppose.common.errors import EXIT_INTERRUPTED, UserError, run_cli
from toppose.common.images import is_image_path, list_files, read_image
from toppose.common.interrupts import terminate_as_interrupt
from toppose.common.jsonio import read_json
from toppose.common.numbers import finite_or_none
from toppose.detector.boxes_file import boxes_outside, load_boxes
from toppose.pose.inference import PoseResult
from toppose.pose.options import add_model_arguments, config_from_args
from toppose.pose.results import resumable_entries, to_coco_entries

from toppose.pipeline import TopDownPipeline, build_pipeline
from toppose.video import add_video_arguments, is_video_input, run_video
from toppose.video_io import is_camera_index

IMAGE_ID_RULE = """\
image ids (the image_id of each result, and the key into --boxes):
  with --ann, the id of the image whose file_name is the file's path relative to INPUT (or its name);
    images the annotation file does not list are skipped;
  otherwise, if every image's file name stem is a distinct integer (COCO style, 000000397133.jpg),
    that integer; otherwise 1..N in sorted path order.
"""


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="python run.py",
        description="Multi-person pose estimation on an image, a folder of images (searched recursively) or a video.",
        epilog=IMAGE_ID_RULE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input", type=Path, metavar="INPUT", help="image, image folder, video or camera index")
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="OUT", help="output folder")
    parser.add_argument(
        "--boxes", type=Path, metavar="DETS.json", help="COCO detection results (JSON) to use instead of the detector"
    )
    parser.add_argument(
        "--ann", type=Path, metavar="ANN.json", help="COCO annotation file giving the image ids of the file names"
    )
    add_model_arguments(parser)
    parser.add_argument("--no-draw", action="store_true", help="write results.json only, no annotated images/video")
    parser.add_argument(
        "--resume", action="store_true",
        help="continue an interrupted run over the same images: those with results in OUT/results.json are skipped",
    )  # fmt: skip
    add_video_arguments(parser)
    return parser


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


def write_image(path: Path, image: np.ndarray) -> None:
    """Atomically write ``image`` with the encoder its suffix names."""
    try:
        with atomic_path(path) as tmp:
            if not cv2.imwrite(str(tmp), image):
                raise UserError(f"cannot write image {path}")
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None


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
        ("image ids", report.id_rule),
        *stage_rows(dict(pipeline.timer.seconds), report.processed),
        ("throughput", f"{report.processed / max(elapsed, 1e-9):.2f} images/s"),
        ("results", str(out / "results.json")),
    ]
    console.print(summary_table("toppose summary", rows))
    if report.skipped:
        console.print(items_table("skipped files", ("file", "reason"), report.skipped))


def estimate_image(
    pipeline: TopDownPipeline, args: argparse.Namespace, base: Path, relative: Path, image_id: int, report: BatchReport
) -> list[dict[str, Any]]:
    """The COCO result entries of one image, its annotated copy written unless ``--no-draw``.

    An unreadable image is skipped (recorded in ``report``, no entries).
    """
    name = relative.as_posix()
    read_started = time.perf_counter()
    try:
        frame = read_image(base / relative)
    except UserError:
        report.skip(name, "cannot read or decode the image")
        return []
    pipeline.timer.add("read", read_started)
    if pipeline.boxes is not None:
        outside = boxes_outside(pipeline.boxes.get(image_id), frame.shape[1], frame.shape[0])
        if outside:
            listed = ", ".join(str(box) for box in outside[:3]) + (" ..." if len(outside) > 3 else "")
            report.warn(
                f"{name}: {len(outside)} boxes lie outside its {frame.shape[1]}x{frame.shape[0]} image: {listed}"
            )
    poses = pipeline.process(frame, image_id)
    report.add(poses)
    if not args.no_draw:
        annotated = pipeline.draw(frame, poses)
        write_started = time.perf_counter()
        write_image(args.out / "images" / relative, annotated)
        report.drawn.add(name)
        pipeline.timer.add("write", write_started)
    return to_coco_entries(poses, image_id, file_name=name)


def run_images(args: argparse.Namespace, cfg: Config) -> int:
    """Estimate the poses in ``args.input`` (an image or a folder) and write ``args.out``."""
    out: Path = args.out
    root: Path = args.input
    base = root if root.is_dir() else root.parent
    own_outputs = ((out / "images").resolve(), (out / "results.json").resolve())
    files = [p for p in list_files(root) if not any(p.resolve().is_relative_to(o) for o in own_outputs)]
    report = BatchReport(error_console())
    images = []
    for path in files:
        if is_image_path(path):
            images.append(path.relative_to(base))
        else:
            report.skip(path.relative_to(base).as_posix(), "not an image")
    if not images:
        raise UserError(f"no images found in {root}")
    report.total = len(images)
    image_ids = assign_image_ids(images, annotation_image_ids(args.ann) if args.ann else None)
    report.id_rule, surprise = image_id_rule(images, args.ann is not None)
    if surprise:
        report.warn(surprise)
    boxes = load_boxes(args.boxes, min_score=cfg.detector.score_threshold) if args.boxes else None
    for problem in boxes.problems if boxes is not None else ():
        report.warn(problem)
    if boxes is not None and not set(boxes) & {i for i in image_ids if i is not None}:
        report.warn(f"no image id of {root} appears in {args.boxes}: nobody will be found (see --help on image ids)")
    if args.pose == "network" and not cfg.model.weights:
        report.warn("the pose network has random weights (model.weights is empty): its keypoints mean nothing")
    entries = resumable_entries(out / "results.json", {p.as_posix() for p in images}) if args.resume else []
    done = {entry["file_name"] for entry in entries}
    report.resumed = len(done)
    earlier = set() if args.resume else earlier_outputs(out, report)
    pipeline = build_pipeline(cfg, boxes=boxes, pose=args.pose)

    todo = [(p, i) for p, i in zip(images, image_ids, strict=True) if p.as_posix() not in done]
    started = time.perf_counter()
    interrupted = False
    with terminate_as_interrupt(), progress_bar(report.console, "images") as progress:
        task = progress.add_task("", total=len(todo), item="")
        try:
            for relative, image_id in todo:
                progress.update(task, item=relative.as_posix())
                if image_id is None:
                    report.skip(relative.as_posix(), f"not listed in {args.ann}")
                else:
                    entries += estimate_image(pipeline, args, base, relative, image_id, report)
                progress.advance(task)
        except KeyboardInterrupt:
            interrupted = True  # keep what is done: results.json below, annotated images already written
    elapsed = time.perf_counter() - started
    if report.processed + report.resumed == 0 and not interrupted:
        raise UserError(f"none of the {len(images)} images in {root} could be processed (see warnings above)")
    try:
        write_json(out / "results.json", finite_or_none(entries))  # resumed entries' extra fields are unchecked
    except OSError as error:
        raise UserError(f"cannot write {out / 'results.json'}: {error.strerror or error}") from None
    if interrupted:
        done_count = report.processed + report.resumed
        report.warn(f"interrupted after {done_count} of {len(images)} images: {out / 'results.json'} holds the images "
                    "done; the same command with --resume continues the run")  # fmt: skip
    if earlier - report.drawn:
        report.warn(f"{out / 'images'} still holds {len(earlier - report.drawn)} annotated images of an earlier run")
    print_summary(report, pipeline, elapsed, out)
    return EXIT_INTERRUPTED if interrupted else 0


def earlier_outputs(out: Path, report: BatchReport) -> set[str]:
    """The annotated images an earlier run left in ``out`` (relative to ``out/images``), with a warning if any,
    or if it left a results file: this run replaces them as it goes."""
    folder = out / "images"
    earlier = {p.relative_to(folder).as_posix() for p in list_files(folder)} if folder.is_dir() else set()
    if earlier or (out / "results.json").exists():
        report.warn(f"{out} holds the outputs of an earlier run: this run replaces them as it goes "
                    "(--resume continues an interrupted run instead)")  # fmt: skip
    return earlier


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the image or the video mode."""
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    if not args.input.exists() and not is_camera_index(args.input):
        raise UserError(f"no such file, folder or camera: {args.input}")
    check_writable_folder(args.out)  # before any work: a run must not lose everything at the end
    if args.track or is_video_input(args.input):
        return run_video(args, cfg)
    return run_images(args, cfg)


if __name__ == "__main__":
    run_cli(main)
