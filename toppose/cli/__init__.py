"""The ``toppose`` command: one subcommand per job, each in its own module of this package.

    toppose run photo.jpg -o out/            # images, folders, videos, a camera
    toppose --help                           # the subcommands
    toppose SUBCOMMAND --help

The ``python run.py`` and ``python -m ...`` commands of a checkout are aliases of these (:func:`alias`). A
subcommand's module is imported only when it runs, so ``toppose --help`` does not load torch.
"""

from __future__ import annotations

import importlib
import sys
from typing import NoReturn

from toppose.common.errors import run_cli

# name -> (module, one line of help); the checkout's aliases (python run.py, python -m eval.coco, ...) call these
COMMANDS = {
    "run": ("toppose.cli.run", "poses in an image, a folder of images, a video or a camera"),
    "batch": ("toppose.cli.batch", "many videos and image folders on a Ray cluster, resumable"),
    "demo": ("toppose.cli.demo", "an offline demo: a generated scene through the whole pipeline, no downloads"),
    "eval": ("toppose.cli.eval", "COCO keypoint AP (OKS) on an annotated image folder"),
    "track": ("toppose.cli.track", "track and smooth a per-frame results file"),
    "kinematics": ("toppose.cli.kinematics", "motion analysis of a tracked results file"),
    "train": ("toppose.cli.train", "train or fine-tune a pose network"),
    "plot-training": ("toppose.cli.plot_training", "loss and AP curves of a training run"),
    "export": ("toppose.cli.export", "a setup's pose network as an ONNX file, checked against torch"),
    "synthetic": ("toppose.cli.synthetic", "synthetic COCO-format person-keypoint data"),
    "zoo": ("toppose.cli.zoo", "the public checkpoints of the registry, and which are cached here"),
}


def usage() -> str:
    """``toppose --help``: the subcommands."""
    width = max(map(len, COMMANDS))
    rows = "\n".join(f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items())
    return (
        "usage: toppose SUBCOMMAND [options]   (toppose SUBCOMMAND --help for its options)\n\n"
        f"Multi-person top-down pose estimation.\n\nsubcommands:\n{rows}\n"
    )


def main(argv: list[str] | None = None) -> NoReturn:
    """Run the subcommand ``argv[0]`` with the rest of ``argv`` (default: the process's arguments)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if not args or args[0] in ("-h", "--help"):
        print(usage(), end="")
        raise SystemExit(0 if args else 2)
    if args[0] not in COMMANDS:
        print(f"toppose: unknown subcommand {args[0]!r}\n\n{usage()}", end="", file=sys.stderr)
        raise SystemExit(2)
    module = importlib.import_module(COMMANDS[args[0]][0])
    run_cli(module.main, args[1:])


def alias(name: str) -> NoReturn:
    """A checkout's ``python -m ...`` command: ``toppose NAME`` with the process's arguments."""
    main([name, *sys.argv[1:]])
