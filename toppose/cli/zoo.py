"""``toppose zoo``: the public checkpoints the registry knows, their setups and published AP, and which are cached.

A registry name is what ``--pose-weights NAME`` and ``PoseEstimator(weights=NAME)`` take; the file is fetched into
the torch hub cache on first use and checked against the hash its name carries (docs/setups-and-weights.md).
"""

from __future__ import annotations

import argparse

from rich.console import Console

from toppose.common.console import items_table
from toppose.common.keypoint_sets import KEYPOINT_SETS
from toppose.common.weights import hub_checkpoint_path
from toppose.pose.registry import REGISTRY


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toppose zoo", description=__doc__.splitlines()[0])
    parser.add_argument("--family", help="only this family (rtmpose, rtmw, hrnet, vitpose, simplebaseline)")
    parser.add_argument("--keypoints", choices=tuple(KEYPOINT_SETS), help="only checkpoints of this keypoint set")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    rows = [
        (name, entry.family, entry.backbone, f"{entry.input_size[1]}x{entry.input_size[0]}", entry.keypoints,
         entry.codec, entry.convention, f"{entry.published_metric} {entry.published_ap:g}",
         "yes" if hub_checkpoint_path(entry.url).is_file() else "no")
        for name, entry in REGISTRY.items()
        if args.family in (None, entry.family) and args.keypoints in (None, entry.keypoints)
    ]  # fmt: skip
    columns = ("name", "family", "backbone", "input (HxW)", "keypoints", "codec", "convention", "published", "cached")
    Console(highlight=False, width=150).print(items_table("toppose model zoo", columns, rows))  # one row a line
    return 0
