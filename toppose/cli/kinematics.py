"""Motion analysis of a tracked results file: joint angles, angular velocities, keypoint speeds, range of motion.

    toppose kinematics results.json -o report/ [--min-confidence C] [--fps F] [--min-frames N]
                                                           [--tracks 1,3]

results.json is the output of ``python run.py VIDEO --track`` (or ``python -m tracking``): COCO keypoint
results with ``image_id`` (frame index), ``track_id`` and ``timestamp`` (seconds). Writes
report/summary.csv (per track and joint: range of motion, peak angular speed), and per track
report/track_<id>.csv (one row per frame; empty cells are gaps) and report/track_<id>.png (angle
curves; needs matplotlib: pip install 'toppose[plots]'). Angles are interior angles in the image
plane (180 = straight); trunk lean is signed from the vertical, + towards the image's right.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from rich.console import Console

from toppose.common.console import summary_table
from toppose.common.errors import run_cli
from toppose.common.jsonio import read_json
from toppose.tracking.kinematics import report
from toppose.tracking.kinematics.report import KinematicsOptions


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _confidence(text: str) -> float:
    if (value := _finite(text)) < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def _fps(text: str) -> float:
    if (value := _finite(text)) <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _frame_count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return int(text)


def _track_ids(text: str) -> tuple[int, ...]:
    ids = text.split(",")
    if not all(part.strip().isdigit() and int(part) >= 1 for part in ids):
        raise argparse.ArgumentTypeError(f"expected track ids (integers >= 1) separated by commas, got {text!r}")
    return tuple(int(part) for part in ids)


def build_parser() -> argparse.ArgumentParser:
    defaults = KinematicsOptions()
    parser = argparse.ArgumentParser(
        prog="toppose kinematics", description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("input", type=Path, metavar="results.json", help="tracked COCO keypoint results")
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="DIR", help="folder for the report")
    parser.add_argument("--min-confidence", type=_confidence, default=defaults.min_confidence, metavar="C",
                        help=f"keypoints below C are gaps (default {defaults.min_confidence})")  # fmt: skip
    parser.add_argument("--fps", type=_fps, metavar="F",
                        help="frame rate, for entries without 'timestamp' (time = image_id / F)")  # fmt: skip
    parser.add_argument("--min-frames", type=_frame_count, default=defaults.min_frames, metavar="N",
                        help=f"skip tracks with fewer measured frames (default {defaults.min_frames})")  # fmt: skip
    parser.add_argument("--tracks", type=_track_ids, metavar="1,3", help="only these track ids (default: all)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = KinematicsOptions(args.min_confidence, args.fps, args.min_frames, args.tracks)
    entries = read_json(args.input, "results file")
    summary = report.write_report(entries, args.out, options, source=str(args.input))
    console = Console(highlight=False)
    if summary.rows:
        console.print(report.summary_table(summary))
    rows = [
        ("tracks analysed", str(len(summary.tracks))),
        (f"tracks under {options.min_frames} frames (skipped)", str(len(summary.short_tracks))),
        ("tracker-filled entries (left out)", str(summary.interpolated)),
        ("time from", summary.time_source),
        ("keypoints below confidence", f"{options.min_confidence:g}: gaps"),
        ("written", f"{args.out}/ (summary.csv, track_<id>.csv{', track_<id>.png' if summary.plots else ''})"),
    ]
    console.print(summary_table("kinematics summary", rows))
    return 0


if __name__ == "__main__":
    run_cli(main)
