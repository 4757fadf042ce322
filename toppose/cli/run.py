"""``toppose run`` (alias in a checkout: ``python run.py``): multi-person pose estimation on images, folders,
lists of image files, videos and cameras.

    toppose run INPUT -o OUT [options]
    toppose run FOLDER -o OUT --resume [options]   # continue an interrupted folder run
    toppose run VIDEO -o OUT --track [--det-every K]

For images, writes OUT/results.json (COCO keypoint results, each entry with the image's ``file_name``) and,
unless --no-draw, the annotated images under OUT/images/ (same relative paths as in INPUT). Videos, camera
indices and (with --track) folders of frames run in the video mode (:mod:`toppose.video`). This module only
turns the flags into a :class:`toppose.runs.RunRequest`; the run itself is the application layer's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from toppose.cli.kinematics import add_analysis_arguments, analysis_options
from toppose.cli.options import add_model_arguments, config_from_args, non_negative_int, positive_float, positive_int
from toppose.images import IMAGE_ID_RULE
from toppose.runner import run
from toppose.runs import RunRequest
from toppose.tracking.kinematics.options import KinematicsOptions


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface."""
    parser = argparse.ArgumentParser(
        prog="toppose run",
        description="Multi-person pose estimation on an image, a folder of images (searched recursively), several "
        "image files, a video or a camera.",
        epilog=IMAGE_ID_RULE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument(
        "input", nargs="+", metavar="INPUT",
        help="image, image folder, video, camera index, or several image files",
    )  # fmt: skip
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


def add_video_arguments(parser: argparse.ArgumentParser) -> None:
    """The video-mode flags."""
    group = parser.add_argument_group("video (INPUT a video file, a camera index, or a folder of frames with --track)")
    group.add_argument(
        "--track", action="store_true", help="follow people across frames: track ids on every result, smoothed poses"
    )
    group.add_argument(
        "--det-every", type=positive_int, metavar="K",
        help="with --track: run the detector on every K-th frame only, follow the tracks in between "
        "(default: the setup's video.det_every, 1 unless a setup sets it)",
    )  # fmt: skip
    group.add_argument(
        "--trails", type=non_negative_int, default=0, metavar="N",
        help="with --track: draw each person's path over the last N frames",
    )  # fmt: skip
    group.add_argument("--no-smooth", action="store_true", help="with --track: keypoints and boxes as estimated")
    group.add_argument(
        "--camera-motion", action="store_true",
        help="with --track: compensate camera motion (optical flow) in the tracks' prediction, for panning video",
    )  # fmt: skip
    group.add_argument(
        "--kinematics", action="store_true",
        help="with --track: also write OUT/kinematics/ (angles, speeds, range of motion, OpenSim and C3D files, "
        "report.html per track, as toppose kinematics does; its options below)",
    )  # fmt: skip
    group.add_argument(
        "--fps", type=positive_float, metavar="F",
        help="frame rate of a folder of frames, a camera, or a video whose file gives none",
    )  # fmt: skip
    group.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N frames")
    add_analysis_arguments(parser.add_argument_group("motion analysis (with --kinematics; see toppose kinematics)"))


def request_of(args: argparse.Namespace) -> RunRequest:
    """The run the flags ask for."""
    inputs = [Path(text) for text in args.input]
    return RunRequest(
        input=inputs[0] if len(inputs) == 1 else inputs, out=args.out, boxes=args.boxes, ann=args.ann,
        resume=args.resume, draw=not args.no_draw, pose=args.pose, track=args.track, det_every=args.det_every,
        trails=args.trails, smooth=not args.no_smooth, camera_motion=args.camera_motion, kinematics=args.kinematics,
        fps=args.fps, max_frames=args.max_frames, kinematics_options=analysis_options(args, KinematicsOptions()),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and run."""
    args = build_parser().parse_args(argv)
    request = request_of(args)
    cfg = config_from_args(args)
    return run(request, cfg)
