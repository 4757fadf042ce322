"""Motion analysis of a tracked results file: joint and segment angles, speeds, metres, repetitions, OpenSim files.

    toppose kinematics results.json -o report/ [--min-confidence C] [--fps F] [--min-frames N] [--tracks 1,3]
        [--filter butterworth:cutoff=6,order=4] [--outliers] [--fill-gaps N] [--keep-swaps]
        [--height 1.80 | --height 1=1.80,3=1.65] [--floor-angle auto|DEG] [--focal-length PX | --fov DEG]
        [--image-size WxH] [--reps auto|knee|left_elbow ...] [--rep-thresholds LOW,HIGH] [--formats csv,html,...]

results.json is the output of ``toppose run VIDEO --track``: COCO keypoint results (17, 26 or 133 keypoints)
with ``image_id`` (frame index), ``track_id`` and ``timestamp`` (seconds). Writes report/summary.csv, per
track track_<id>.csv, .png, _segments.png, .trc (and _m.trc with a height), .mot, .c3d, and report.html;
repetitions.csv with --reps, gait_events.csv where the feet are tracked. The definitions of every angle, filter
and scale are in docs/motion-analysis.md.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

from rich.console import Console

from toppose.common.console import summary_table
from toppose.common.errors import UserError, run_cli
from toppose.common.jsonio import read_json
from toppose.tracking.kinematics import report
from toppose.tracking.kinematics.cleaning import parse_outliers
from toppose.tracking.kinematics.filters import parse_filter
from toppose.tracking.kinematics.options import FORMATS, KinematicsOptions
from toppose.tracking.kinematics.repetitions import RepetitionOptions
from toppose.tracking.kinematics.scale import Camera
from toppose.tracking.kinematics.specs import Spec


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


def _positive(text: str) -> float:
    if (value := _finite(text)) <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


_fps = _positive


def _frame_count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}")
    return int(text)


def _gap(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return int(text)


def _track_ids(text: str) -> tuple[int, ...]:
    ids = text.split(",")
    if not all(part.strip().isdigit() and int(part) >= 1 for part in ids):
        raise argparse.ArgumentTypeError(f"expected track ids (integers >= 1) separated by commas, got {text!r}")
    return tuple(int(part) for part in ids)


def _spec(parse):  # noqa: ANN001, ANN202 - an argparse type from a spec parser
    def parsed(text: str) -> Spec:
        try:
            return parse(text)
        except UserError as err:
            raise argparse.ArgumentTypeError(str(err).split(": ", 1)[-1]) from None

    return parsed


def _heights(text: str) -> dict[int | None, float]:
    """``1.80`` (every track) or ``1=1.80,3=1.65`` (per track id), in metres."""
    out: dict[int | None, float] = {}
    for part in text.split(","):
        key, _, value = part.rpartition("=")
        if key and not (key.strip().isdigit() and int(key) >= 1):
            raise argparse.ArgumentTypeError(f"expected HEIGHT or ID=HEIGHT,... (metres), got {text!r}")
        height = _positive(value)
        if not 0.3 <= height <= 2.8:
            raise argparse.ArgumentTypeError(f"a person's height in metres (0.3 to 2.8), got {value}")
        out[int(key) if key else None] = height
    return out


def _floor(text: str) -> float | None:
    if text == "auto":
        return None
    value = _finite(text)
    if not -45 <= value <= 45:
        raise argparse.ArgumentTypeError(f"'auto' or degrees from -45 to 45, got {text}")
    return value


def _size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT in pixels, got {text!r}")
    return int(width), int(height)


def _thresholds(text: str) -> tuple[float, float]:
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH in degrees, got {text!r}")
    low, high = (_finite(p) for p in parts)
    if not low < high:
        raise argparse.ArgumentTypeError(f"LOW must be under HIGH, got {text!r}")
    return low, high


def _formats(text: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(","))
    unknown = [f for f in chosen if f not in FORMATS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown {', '.join(unknown)} (choose from {', '.join(FORMATS)})")
    return chosen


def add_analysis_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """The flags of the analysis itself, shared by ``toppose kinematics`` and ``toppose run --kinematics``."""
    add = parser.add_argument
    add(
        "--filter",
        type=_spec(parse_filter),
        metavar="NAME[:K=V,..]",
        help="smooth the keypoints: butterworth[:order=4,cutoff=6] (zero lag, Hz), gaussian[:sigma=1], "
        "median[:window=5], savgol[:window=9,order=3], loess[:window=15], kalman[:trust=0.1] (default none)",
    )
    add(
        "--outliers",
        nargs="?",
        const="hampel",
        type=_spec(parse_outliers),
        metavar="hampel[:window=7,sigmas=3]",
        help="reject outlying keypoints (Hampel: over SIGMAS robust SDs from the WINDOW's median) and count them",
    )
    add(
        "--fill-gaps",
        type=_gap,
        default=0,
        metavar="N",
        help="fill gaps of up to N frames (interpolated, marked in the CSV); filters run across filled gaps only",
    )
    add("--keep-swaps", action="store_true", help="keep the detector's left/right labels (default: swaps corrected)")
    add(
        "--height",
        type=_heights,
        metavar="M|ID=M,..",
        help="the person's height in metres, for every track or per track id: positions in m, speeds in m/s",
    )
    add(
        "--floor-angle",
        type=_floor,
        default=None,
        metavar="auto|DEG",
        help="the floor's angle in the image (camera tilt), degrees anticlockwise (default auto: from the feet)",
    )
    add("--focal-length", type=_positive, metavar="PX", help="with --height: perspective, focal length in pixels")
    add("--fov", type=_positive, metavar="DEG", help="with --height: perspective, horizontal field of view")
    add("--image-size", type=_size, metavar="WxH", help="the video's size, for --focal-length and --fov")
    add("--reps", metavar="ANGLE", help="count repetitions on an angle (knee, left_elbow, hip, ...) or 'auto'")
    add(
        "--rep-thresholds",
        type=_thresholds,
        metavar="LOW,HIGH",
        help="hysteresis thresholds in degrees (default: the middle third of the angle's range)",
    )
    add(
        "--rep-min-range",
        type=_positive,
        default=RepetitionOptions.min_range,
        metavar="DEG",
        help=f"smallest range of motion of a repetition (default {RepetitionOptions.min_range:g})",
    )
    add(
        "--rep-min-duration",
        type=_positive,
        default=RepetitionOptions.min_duration,
        metavar="S",
        help=f"shortest repetition in seconds (default {RepetitionOptions.min_duration:g})",
    )
    add("--formats", type=_formats, default=FORMATS, metavar="csv,png,...",
        help=f"files to write (default all: {','.join(FORMATS)})")  # fmt: skip


def _camera(args: argparse.Namespace) -> Camera | None:
    if args.focal_length is None and args.fov is None:
        return None
    if args.focal_length is not None and args.fov is not None:
        raise UserError("give --focal-length or --fov, not both")
    if args.height is None:
        raise UserError("perspective (--focal-length, --fov) needs the person's --height")
    if args.image_size is None:
        raise UserError("perspective (--focal-length, --fov) needs --image-size WxH (the principal point)")
    width, height = args.image_size
    if args.fov is not None and not args.fov < 180:
        raise UserError(f"--fov must be under 180 degrees, got {args.fov:g}")
    focal = args.focal_length or width / 2 / math.tan(math.radians(args.fov) / 2)
    return Camera(focal, width, height)


def analysis_options(args: argparse.Namespace, base: KinematicsOptions) -> KinematicsOptions:
    """``base`` with the analysis flags of :func:`add_analysis_arguments` applied."""
    heights = dict(args.height or {})
    reps = args.reps and RepetitionOptions(args.reps, args.rep_thresholds, args.rep_min_range,
                                           args.rep_min_duration)  # fmt: skip
    base.fix_swaps, base.outliers, base.fill_gaps = not args.keep_swaps, args.outliers, args.fill_gaps
    base.filter = args.filter or base.filter
    base.height, base.heights = heights.pop(None, None), heights
    base.floor_angle, base.camera, base.repetitions, base.formats = args.floor_angle, _camera(args), reps, args.formats
    return base


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
    add_analysis_arguments(parser)
    return parser


def print_summary(summary: report.KinematicsSummary, options: KinematicsOptions, out: Path) -> None:
    """The ranges, the repetitions and the run's facts on stdout."""
    console = Console(highlight=False)
    if summary.rows:
        console.print(report.summary_table(summary))
    rows = [
        ("keypoint set", summary.keypoint_set.name if summary.keypoint_set else "-"),
        ("tracks analysed", str(len(summary.tracks))),
        (f"tracks under {options.min_frames} frames (skipped)", str(len(summary.short_tracks))),
        ("tracker-filled entries (left out)", str(summary.interpolated)),
        ("time from", summary.time_source),
        ("keypoints below confidence", f"{options.min_confidence:g}: gaps"),
        ("filter", str(options.filter)),
    ]
    for track in summary.tracks:
        swaps = ", ".join(f"{g} {int(f.sum())}" for g, f in track.swapped.items())
        rows.append(
            (
                f"track {track.track_id}",
                f"swaps corrected: {swaps}; outliers {int(track.outliers.sum())}; "
                f"scale {report.scale_note(track)}; floor {report.floor_note(track)}",
            )
        )
        if track.repetitions is not None:
            reps = track.repetitions
            mean, sd = reps.spread("range_deg")
            rows.append(
                (
                    f"track {track.track_id} repetitions",
                    f"{len(reps.reps)} on {reps.angle}, range {mean:.0f} +- {sd:.0f} deg",
                )
            )
        if track.gait is not None and track.gait.events:
            rows.append((f"track {track.track_id} cadence", f"{track.gait.cadence_steps_min:.0f} steps/min"))
    if summary.omitted:
        rows.append(("angles left out", f"{len(summary.omitted)} ({summary.keypoint_set.name} lacks their points)"))
    rows.append(("written", f"{out}/ ({', '.join(summary.written) or 'summary.csv'})"))
    console.print(summary_table("kinematics summary", rows))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = analysis_options(args, KinematicsOptions(args.min_confidence, args.fps, args.min_frames, args.tracks))
    entries = read_json(args.input, "results file")
    summary = report.write_report(entries, args.out, options, source=str(args.input))
    print_summary(summary, options, args.out)
    return 0


if __name__ == "__main__":
    run_cli(main)
