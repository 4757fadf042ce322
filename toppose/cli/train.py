"""``toppose train --config configs/train_NAME.toml``: train or fine-tune a pose network of any family.

Under ``torchrun --nproc_per_node N -m toppose.pose.training ...`` the same command trains with
DistributedDataParallel. ``--resume`` continues the run in ``train.output_dir`` (or from a given
checkpoint); ``--evaluate CKPT`` only scores a checkpoint on the validation set. Fine-tuning
(``model.weights`` set) takes the setup the weights record or imply, as inference does (:mod:`pose.setup`):
the config may leave it out, and a config value that contradicts it is an error.
"""

from __future__ import annotations

import argparse

from rich.console import Console

from toppose.cli.options import parse_assignments
from toppose.common.coco import METRIC_NAMES
from toppose.common.config import override
from toppose.common.console import error_console, summary_table
from toppose.common.errors import UserError
from toppose.pose.checkpoints import build_pose_model
from toppose.pose.setup import apply_weights_setup, explicit_fields
from toppose.pose.training.config import TrainingConfig, load_training_config
from toppose.pose.training.distributed import resolve_device
from toppose.pose.training.trainer import train
from toppose.pose.training.validation import evaluate_on_coco


def apply_overrides(cfg: TrainingConfig, assignments: list[str]) -> dict[str, str]:
    """Apply ``SECTION.KEY=VALUE`` assignments (unknown fields are a :class:`UserError` naming them);
    returns the fields set, each with the assignment that set it."""
    given = {}
    for dotted, value, source in parse_assignments(assignments):
        override(cfg, dotted, value, source)
        given[dotted] = source
    return given


def evaluate_checkpoint(cfg: TrainingConfig, checkpoint: str, explicit: dict[str, str], console: Console) -> int:
    """Score ``checkpoint`` on the ``[val]`` set through the inference path; the metrics table goes to stdout.

    The setup the checkpoint records is used; ``explicit`` settings that contradict it are an error."""
    if not cfg.val.annotations:
        raise UserError("--evaluate needs val.annotations and val.images (in the config or with --set)")
    device = resolve_device(cfg.train.device)
    cfg.model.weights = checkpoint
    apply_weights_setup(cfg, explicit)
    model = build_pose_model(cfg.model, device=str(device), split_ratio=cfg.codec.split_ratio)
    vcfg = cfg.val
    metrics = evaluate_on_coco(model, cfg, vcfg.annotations, vcfg.images, vcfg.detections, device, vcfg.max_images,
                               console)  # fmt: skip
    out = Console(highlight=False)
    out.print(f"{checkpoint} on {vcfg.annotations} ({vcfg.images})", markup=False, soft_wrap=True)
    out.print(summary_table("COCOeval", [(name, f"{metrics[name]:.4f}") for name in METRIC_NAMES]))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="toppose train", description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="training TOML file (configs/train_*.toml)")
    parser.add_argument("--resume", nargs="?", const="last", metavar="CKPT",
                        help="continue training: from OUTPUT_DIR/last.pth, or from CKPT")  # fmt: skip
    parser.add_argument("--from-scratch", action="store_true",
                        help="train from random initialisation where pretrained weights are unavailable")  # fmt: skip
    parser.add_argument("--output-dir", help="override train.output_dir")
    parser.add_argument("--epochs", type=int, help="override train.epochs")
    parser.add_argument("--device", help="override train.device (auto, cpu, cuda, cuda:N)")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override any config field, e.g. --set train.lr=1e-3 (repeatable)")  # fmt: skip
    parser.add_argument("--evaluate", metavar="CKPT",
                        help="only score checkpoint CKPT on the [val] set (or another: --set val.*)")  # fmt: skip
    args = parser.parse_args(argv)

    cfg = load_training_config(args.config)
    override(cfg, "train.output_dir", args.output_dir, "--output-dir")
    override(cfg, "train.epochs", args.epochs, "--epochs")
    override(cfg, "train.device", args.device, "--device")
    if args.from_scratch:
        cfg.train.allow_scratch = True
    explicit = explicit_fields(args.config, apply_overrides(cfg, args.set))
    console = error_console()
    if args.evaluate:
        return evaluate_checkpoint(cfg, args.evaluate, explicit, console)
    apply_weights_setup(cfg, explicit)
    result = train(cfg, resume=args.resume, console=console)
    if result.validations:
        console.print(f"best val AP {result.best_ap:.4f}; checkpoints in {result.output_dir}", markup=False)
    return 0
