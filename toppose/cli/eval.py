"""``toppose eval``: COCO keypoint AP (OKS) of the top-down system on an annotated image folder.

Alias in a checkout: ``python -m eval.coco``.

One mode per run: the full pipeline with the person detector (default); ground-truth person boxes
(``--gt-boxes``: the non-crowd people with at least one labelled keypoint, box score 1, the usual
top-down protocol); boxes from a COCO detection results file (``--boxes``); an existing keypoint
results file (``--results``, no images needed); or the decoder ceiling (``--oracle``, see
:mod:`toppose.eval.oracle`). Images listed in the annotations but missing or unreadable on disk are skipped,
reported at the end, and left out of the evaluation.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from rich.console import Console

from toppose.cli.options import add_model_arguments, config_from_args, positive_int
from toppose.common.atomic import check_writable_folder, write_json
from toppose.common.coco import METRIC_NAMES, load_coco, selected_image_ids
from toppose.common.console import error_console, stage_rows, summary_table, warn
from toppose.common.errors import UserError
from toppose.common.numbers import finite_or_none
from toppose.eval.coco import (
    Evaluation,
    count_people,
    evaluate_oracle,
    evaluate_pipeline,
    evaluate_results_file,
)
from toppose.eval.oracle import SimulatedNetwork
from toppose.pose.geometry import CONVENTIONS
from toppose.pose.results import to_wholebody_layout

LISTED_SKIPS = 10  # skipped images named one per line; the rest are counted


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="toppose eval",
        description="COCO keypoint AP (OKS) of the top-down system, of a results file, or of the decoder ceiling.",
    )
    parser.add_argument("--ann", type=Path, required=True, help="COCO person-keypoints annotation file")
    parser.add_argument(
        "--images", type=Path, help="folder of the annotated images (optional with --results, --oracle)"
    )
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--gt-boxes", action="store_true", help="ground-truth person boxes instead of the detector")
    modes.add_argument("--boxes", type=Path, metavar="DETS.json", help="COCO detection results instead of the detector")
    modes.add_argument("--results", type=Path, metavar="RESULTS.json", help="score an existing keypoint results file")
    modes.add_argument(
        "--oracle", action="store_true", help="decoder ceiling: ground-truth heatmaps through the production path"
    )
    add_model_arguments(parser)
    oracle = parser.add_argument_group("oracle")
    oracle.add_argument(
        "--oracle-network",
        choices=CONVENTIONS,
        metavar="CONVENTION",
        help="the convention the simulated network was trained in (default: the setup's, --convention); "
        "a different one measures what decoding it in the wrong convention costs",
    )
    oracle.add_argument(
        "--oracle-noise",
        type=float,
        default=0.0,
        metavar="PX",
        help="Gaussian localisation error of the simulated network, in heatmap pixels (default 0)",
    )
    oracle.add_argument("--oracle-seed", type=int, default=0, metavar="N", help="seed of that noise (default 0)")
    parser.add_argument("--limit", type=positive_int, metavar="N", help="evaluate the first N images (by id) only")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the ten metrics to this JSON file")
    parser.add_argument("--save-results", type=Path, metavar="PATH", help="write the scored keypoint results (JSON)")
    parser.add_argument(
        "--wholebody-layout", action="store_true",
        help="--save-results writes 133-point results in COCO-WholeBody's layout (foot_kpts, face_kpts, ...)",
    )  # fmt: skip
    return parser


def mode_of(args: argparse.Namespace) -> str:
    """The evaluation mode the flags select."""
    if args.gt_boxes:
        return "gt-boxes"
    if args.boxes is not None:
        return "boxes"
    if args.results is not None:
        return "results"
    return "oracle" if args.oracle else "detector"


def report_skipped(console: Console, evaluation: Evaluation, total: int) -> None:
    """One warning line per skipped image (the first few), then a count of what was evaluated."""
    for name, reason in evaluation.skipped[:LISTED_SKIPS]:
        warn(console, f"skipped {name}: {reason}")
    if len(evaluation.skipped) > LISTED_SKIPS:
        warn(console, f"... and {len(evaluation.skipped) - LISTED_SKIPS} more images skipped")
    if evaluation.skipped:
        warn(
            console,
            f"{len(evaluation.skipped)} of {total} images skipped (missing or unreadable); "
            f"evaluated on the {len(evaluation.image_ids)} processed",
        )
    if evaluation.blank:
        warn(console, f"{len(evaluation.blank)} images not found: the oracle used blank frames of their size")


def print_evaluation(coco: COCO, evaluation: Evaluation) -> None:
    """The metrics and run summary as a table on stdout."""
    count = len(evaluation.image_ids)
    rows = [
        ("mode", evaluation.mode),
        ("images evaluated", str(count)),
        ("people (ground truth)", str(count_people(coco, evaluation.image_ids))),
        ("people (results)", str(len(evaluation.entries))),
        *evaluation.notes,
        *[(name, f"{evaluation.metrics[name]:.4f}") for name in METRIC_NAMES],
        *[
            (f"{part} AP / AR", f"{metrics['AP']:.4f} / {metrics['AR']:.4f}")
            for part, metrics in evaluation.parts.items()
        ],
        ("time", f"{evaluation.seconds:.1f} s"),
    ]
    if evaluation.timer is not None:
        rows += stage_rows(dict(evaluation.timer.seconds), count)
    Console(highlight=False).print(summary_table("COCO keypoint evaluation", rows))


def write_output(path: Path, obj: Any) -> None:
    """Atomically write ``obj`` as strict JSON (a non-finite number as null); an unwritable path is a
    :class:`UserError`."""
    try:
        write_json(path, finite_or_none(obj), indent=2)
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, evaluate, print the table and write the requested files."""
    args = build_parser().parse_args(argv)
    mode = mode_of(args)
    cfg = config_from_args(args, weights_setup=mode not in ("results", "oracle"))
    if args.images is not None and not args.images.is_dir():
        raise UserError(f"image folder not found: {args.images}")
    if args.images is None and mode not in ("results", "oracle"):
        raise UserError(f"--images is required in {mode} mode")
    if mode != "oracle" and (args.oracle_network or args.oracle_noise):
        raise UserError("--oracle-network and --oracle-noise go with --oracle")
    if not np.isfinite(args.oracle_noise) or args.oracle_noise < 0:
        raise UserError(f"--oracle-noise: expected a finite number of heatmap pixels >= 0, got {args.oracle_noise}")
    for output in (args.json, args.save_results):
        if output is not None:
            check_writable_folder(output.parent)  # before the evaluation, not after it
    coco = load_coco(args.ann)
    console = error_console()
    if mode == "results":
        evaluation = evaluate_results_file(coco, args.results, args.limit)
    elif mode == "oracle":
        network = SimulatedNetwork(args.oracle_network, args.oracle_noise, args.oracle_seed)
        evaluation = evaluate_oracle(coco, cfg, args.images, console, args.limit, network)
    else:
        evaluation = evaluate_pipeline(coco, cfg, mode, args.images, console, args.limit, args.boxes, args.pose)
    report_skipped(console, evaluation, len(selected_image_ids(coco, args.limit)))
    print_evaluation(coco, evaluation)
    if args.json is not None:
        metrics = {name: evaluation.metrics[name] for name in METRIC_NAMES}
        write_output(args.json, {**metrics, "parts": evaluation.parts} if evaluation.parts else metrics)
    if args.save_results is not None:
        entries = evaluation.entries
        if args.wholebody_layout:
            if entries and len(entries[0]["keypoints"]) != 3 * 133:
                raise UserError("--wholebody-layout: these results do not have COCO-WholeBody's 133 keypoints")
            entries = to_wholebody_layout(entries)
        write_output(args.save_results, entries)
    return 0
