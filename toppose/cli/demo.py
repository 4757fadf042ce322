"""``toppose demo -o OUT``: the whole pipeline on generated images, offline, with nothing to download.

Renders a few synthetic scenes of stick figures (:mod:`toppose.common.synthetic`) into ``OUT/input/`` with their
COCO annotations and their true person boxes as a detection file, then runs ``toppose run`` on them with the
``fast`` setup's pose network given random weights: ``OUT/results.json`` and the annotated ``OUT/images/`` have
the shape of a real run's (and the summary its stages and timings), but the keypoints of random weights mean
nothing. It is what a first run looks like before the pretrained weights are cached (docs/setups-and-weights.md).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from toppose.cli.options import positive_int
from toppose.common.atomic import check_writable_folder, write_json
from toppose.common.console import error_console, warn
from toppose.common.jsonio import read_json
from toppose.common.synthetic import make_dataset
from toppose.pose.named_setups import build_config, setup_path
from toppose.runner import run
from toppose.runs import RunRequest


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toppose demo", description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", type=Path, required=True, metavar="OUT", help="output folder")
    parser.add_argument("--images", type=positive_int, default=4, metavar="N", help="scenes to render (default 4)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the scenes (default 0)")
    return parser


def true_boxes(annotations: Path, detections: Path) -> None:
    """The annotated people's boxes as a COCO detection results file (score 1)."""
    people = read_json(annotations, "annotation file")["annotations"]
    write_json(detections, [{"image_id": p["image_id"], "category_id": 1, "bbox": p["bbox"], "score": 1.0}
                            for p in people])  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_writable_folder(args.out)
    annotations = make_dataset(args.out / "input", num_images=args.images, seed=args.seed)
    detections = args.out / "input" / "boxes.json"
    true_boxes(annotations, detections)
    cfg = build_config(setup_path("fast"), [("model.weights", "", "toppose demo")])
    note = "the pose network runs with random weights and the true boxes: the outputs have a real run's shape only"
    warn(error_console(), f"demo: generated {args.images} scenes in {args.out / 'input'}; {note}")
    request = RunRequest(input=annotations.parent / "images", out=args.out, boxes=detections, ann=annotations)
    return run(request, cfg)
