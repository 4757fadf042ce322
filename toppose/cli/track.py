"""Track and smooth a per-frame pose results file.

    toppose track IN.json -o OUT.json [--online] [--max-gap N]

IN.json is a list of COCO keypoint results with ``image_id`` = frame index (0-based), ``bbox`` and
``keypoints`` on each entry (``box_score``, if present, is the detection confidence; else ``score``).
OUT.json holds the entries of confirmed tracks, each with its ``track_id`` (>= 1) and the smoothed
``bbox`` and ``keypoints``; detections in no track are left out and counted. By default the whole
sequence is used (forward-backward smoothing; gaps of up to --max-gap frames filled with entries
marked ``"interpolated": true``); --online uses past frames only, exactly as ``toppose run --track`` does live.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from toppose.cli.options import non_negative_int, positive_int
from toppose.common.atomic import write_json
from toppose.common.console import summary_table
from toppose.common.errors import UserError, run_cli
from toppose.common.jsonio import read_json
from toppose.common.numbers import finite_or_none
from toppose.tracking.offline import DEFAULT_MAX_GAP, check_entries, track_entries
from toppose.tracking.online import TrackingConfig


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="toppose track", description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 2)[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("input", type=Path, metavar="IN.json", help="per-frame COCO keypoint results")
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="OUT.json", help="tracked results")
    parser.add_argument("--online", action="store_true", help="past frames only (as run.py --track)")
    parser.add_argument("--max-gap", type=non_negative_int, default=DEFAULT_MAX_GAP, metavar="N",
                        help=f"offline: fill gaps of up to N frames (default {DEFAULT_MAX_GAP}; 0: none)")  # fmt: skip
    parser.add_argument("--no-smooth", action="store_true", help="track ids only; boxes and keypoints as given")
    parser.add_argument("--min-hits", type=positive_int, metavar="N", help="detections that confirm a track")
    parser.add_argument("--max-missed", type=non_negative_int, metavar="N", help="frames a lost track is kept")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    entries = check_entries(read_json(args.input, "results file"), str(args.input))
    cfg = TrackingConfig(smooth=not args.no_smooth)
    if args.min_hits is not None:
        cfg.tracker.min_hits = args.min_hits
    if args.max_missed is not None:
        cfg.tracker.max_missed = args.max_missed
    tracked = track_entries(entries, cfg, online=args.online, max_gap=args.max_gap)
    try:
        write_json(args.out, finite_or_none(tracked))  # extra fields pass through unchecked: NaN becomes null
    except OSError as err:
        raise UserError(f"cannot write {args.out}: {err.strerror or err}") from None
    filled = sum(bool(e.get("interpolated")) for e in tracked)
    rows = [
        ("mode", "online" if args.online else "offline"),
        ("entries in", str(len(entries))),
        ("entries out", str(len(tracked))),
        ("tracks", str(len({e["track_id"] for e in tracked}))),
        ("detections in no track (left out)", str(len(entries) - (len(tracked) - filled))),
        ("gap-filling entries", str(filled)),
        ("written", str(args.out)),
    ]
    Console(highlight=False).print(summary_table("tracking summary", rows))
    return 0


if __name__ == "__main__":
    run_cli(main)
