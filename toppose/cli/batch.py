"""``toppose batch``: many videos and image folders on a Ray cluster, each into its own folder under OUT with exactly
what ``toppose run`` writes for it; a rerun does only what is not done.

    toppose batch season/*.mp4 --track -o out/                 # a local Ray cluster on this machine
    toppose batch list.csv -o out/ --address auto --workers 8  # a running cluster (ray start --head)

This module only turns the flags into item specs, their setups and the run's options (:mod:`toppose.batch`).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from toppose.batch import BatchOptions, read_specs, run_batch
from toppose.batch.items import COLUMNS
from toppose.cli.kinematics import analysis_options
from toppose.cli.options import add_model_arguments, config_from_args, non_negative_int, positive_int
from toppose.cli.run import add_video_arguments
from toppose.common.config import Config
from toppose.tracking.kinematics.options import KinematicsOptions


def non_negative_float(text: str) -> float:
    """An argparse type: a finite number of at least 0 (fractions of a GPU)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number: {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="toppose batch",
        description="Pose estimation on many inputs at once on a Ray cluster: each into OUT/NAME, exactly as "
        "toppose run INPUT -o OUT/NAME would write it. OUT/done.jsonl records the items done; the same command "
        "again does only the rest.",
        epilog="A manifest is a .csv file (a header row) or a .jsonl file (an object a line) with a path per row and, "
        f"optionally, per-item columns: {', '.join(COLUMNS[1:])}. Its relative paths are relative to its folder.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "input", nargs="+", metavar="INPUT",
        help="video file, image folder, image file, glob (quoted: expanded here) or manifest (.csv, .jsonl)",
    )  # fmt: skip
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="OUT", help="output folder")
    group = parser.add_argument_group("cluster")
    group.add_argument(
        "--address", metavar="ADDRESS",
        help="join a running Ray cluster: auto (this machine's), HOST:PORT, or ray://HOST:PORT (Ray Client); "
        "default: start a local one on this machine",
    )  # fmt: skip
    group.add_argument(
        "--workers", type=positive_int, metavar="N", help="worker actors (default: all the cluster holds)"
    )
    group.add_argument(
        "--threads-per-worker", type=positive_int, default=1, metavar="T",
        help="CPUs each worker asks for, and its torch threads (default 1)",
    )  # fmt: skip
    group.add_argument(
        "--gpus-per-worker", type=non_negative_float, default=0.0, metavar="G",
        help="GPUs each worker asks for, fractions allowed (0.5: two workers a GPU); with --device cuda (default 0)",
    )  # fmt: skip
    group.add_argument(
        "--retries", type=non_negative_int, default=2, metavar="R",
        help="further tries of an item whose worker died (default 2)",
    )  # fmt: skip
    group.add_argument(
        "--shard-size", type=positive_int, default=256, metavar="N",
        help="images per shard: image folders are split over the workers in shards (default 256)",
    )  # fmt: skip
    item = parser.add_argument_group("every item (a manifest's columns override these)")
    item.add_argument("--boxes", type=Path, metavar="DETS.json", help="COCO detection results instead of the detector")
    item.add_argument("--ann", type=Path, metavar="ANN.json", help="COCO annotation file giving the image ids")
    item.add_argument("--no-draw", action="store_true", help="results.json only, no annotated images or videos")
    add_model_arguments(parser)
    add_video_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run the batch."""
    args = build_parser().parse_args(argv)
    for name in ("boxes", "ann", "config"):
        if getattr(args, name) is not None:
            setattr(args, name, getattr(args, name).absolute())
    for name in ("pose_weights", "detector_weights"):
        value = getattr(args, name)
        if value and Path(value).is_file():  # a file, not a registry name: workers elsewhere find it absolutely
            setattr(args, name, str(Path(value).absolute()))
    defaults = {
        "boxes": args.boxes, "ann": args.ann, "draw": not args.no_draw, "pose": args.pose, "track": args.track,
        "det_every": args.det_every, "trails": args.trails, "smooth": not args.no_smooth,
        "camera_motion": args.camera_motion, "kinematics": args.kinematics, "fps": args.fps,
        "max_frames": args.max_frames, "kinematics_options": analysis_options(args, KinematicsOptions()),
    }  # fmt: skip
    specs = read_specs(args.input, args.out.absolute(), defaults)

    def config_for(setup: str | None, config: Path | None) -> Config:
        if setup is None and config is None:
            return config_from_args(args)
        return config_from_args(argparse.Namespace(**{**vars(args), "setup": setup, "config": config}))

    options = BatchOptions(
        address=args.address, workers=args.workers, threads=args.threads_per_worker, gpus=args.gpus_per_worker,
        retries=args.retries, shard_size=args.shard_size,
    )  # fmt: skip
    return run_batch(specs, args.out.absolute(), config_for, options)
