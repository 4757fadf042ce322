"""``toppose synthetic OUT_DIR --images 40``: synthetic COCO-format person-keypoint data

See :mod:`toppose.common.synthetic`; alias in a checkout: ``python -m common.synthetic``."""

from __future__ import annotations

import argparse
from pathlib import Path

from toppose.common.synthetic import (
    make_dataset,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="toppose synthetic", description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--images", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, nargs=2, default=(320, 240), metavar=("W", "H"))
    args = parser.parse_args(argv)
    path = make_dataset(args.out_dir, args.images, args.seed, *args.size)
    print(f"wrote {path}")
    return 0
