"""Training a pose network of any family: optimiser and schedule, the loop, validation, checkpoints and resume.

The network comes from the model zoo (:func:`pose.models.build_network`, through
:func:`pose.checkpoints.build_pose_model` for fine-tuning); its targets from the setup's codec and its
loss from :mod:`pose.training.losses` (heatmap MSE, or SimCC KL divergence for RTMPose).

Under ``torchrun`` (``WORLD_SIZE`` > 1) the same loop runs with DistributedDataParallel
(:mod:`pose.training.distributed`: gloo on CPU, NCCL on CUDA). ``train.batch_size`` is the global batch,
split evenly over the processes; the sampler gives process ``r`` its share of exactly the global
batches a single process would see, and batch-norm statistics are synchronised over all processes
(``train.sync_bn``), so a distributed run matches a single-process run with the same global batch
to numerical tolerance. Only rank 0 writes checkpoints, the metrics log and progress.

Checkpoints (``last.pth`` every epoch, ``best.pth`` at the best validation AP) are written atomically
and hold only tensors and plain Python values: ``torch.load(weights_only=True)`` reads them, and the
inference path loads them through :func:`pose.checkpoints.build_pose_model`.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torchvision
from rich.console import Console
from toppose.common.atomic import atomic_path, check_writable_folder
from toppose.common.console import warn
from toppose.common.errors import MissingWeightsError, UserError
from toppose.common.weights import fetch_checkpoint, load_checked, read_checkpoint, unwrap_state_dict
from toppose.pose.checkpoints import build_pose_model
from toppose.pose.codecs import build_codec
from toppose.pose.models import FAMILIES
from toppose.pose.models.inputs import to_input_tensor
from toppose.pose.models.simplebaseline import TRUNK_MODULES, SimpleBaseline
from toppose.pose.training.augment import CropSpec
from toppose.pose.training.config import TrainConfig, TrainingConfig, check_training_config
from toppose.pose.training.dataset import EpochSampler, KeypointDataset, load_person_samples
from toppose.pose.training.distributed import Runtime, start_runtime, stop_runtime, synchronise_batchnorm
from toppose.pose.training.losses import training_loss
from toppose.pose.training.progress import Clock, MetricsLog, ProgressDisplay
from toppose.pose.training.validation import evaluate_on_coco
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

CHECKPOINT_LAST = "last.pth"
CHECKPOINT_BEST = "best.pth"
METRICS_LOG = "metrics.jsonl"


class LearningRateSchedule:
    """The learning-rate multiplier at a global iteration: linear warm-up, then step decay or cosine."""

    def __init__(self, cfg: TrainConfig, iters_per_epoch: int) -> None:
        self.schedule = cfg.schedule
        self.lr_steps = tuple(cfg.lr_steps)
        self.lr_gamma = cfg.lr_gamma
        self.min_lr_ratio = cfg.min_lr_ratio
        self.warmup_iters = cfg.warmup_iters
        self.warmup_ratio = cfg.warmup_ratio
        self.iters_per_epoch = iters_per_epoch
        self.total_iters = cfg.epochs * iters_per_epoch

    def __call__(self, iteration: int) -> float:
        if self.schedule == "step":
            epoch = iteration // self.iters_per_epoch
            factor = self.lr_gamma ** sum(epoch >= step for step in self.lr_steps)
        else:
            progress = min(iteration / max(self.total_iters, 1), 1.0)
            factor = self.min_lr_ratio + (1.0 - self.min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))
        if iteration < self.warmup_iters:
            factor *= self.warmup_ratio + (1.0 - self.warmup_ratio) * iteration / self.warmup_iters
        return factor


def build_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Adam or AdamW over all parameters."""
    kind = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return kind(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def load_imagenet_trunk(model: SimpleBaseline, backbone: str) -> None:
    """Load torchvision's ImageNet weights of ``backbone`` into the trunk (from the torch hub cache, or
    downloaded into it); unavailable weights are a :class:`MissingWeightsError`."""
    weights = torchvision.models.get_model_weights(backbone).IMAGENET1K_V1
    sha_prefix = re.search(r"-([0-9a-f]{6,})\.", weights.url)
    path = fetch_checkpoint(weights.url, sha_prefix.group(1) if sha_prefix else None)
    state = {k: v for k, v in unwrap_state_dict(read_checkpoint(path), path).items() if not k.startswith("fc.")}
    load_checked(_Trunk(model), state, path, f"{backbone} ImageNet trunk")


class _Trunk(nn.Module):
    """The ResNet trunk of a SimpleBaseline, as its own module for checked loading."""

    def __init__(self, model: SimpleBaseline) -> None:
        super().__init__()
        for name in TRUNK_MODULES:
            self.add_module(name, getattr(model, name))


def build_training_model(cfg: TrainingConfig, console: Console) -> nn.Module:
    """The network to train: ``model.weights`` when set (fine-tuning), else a fresh network of the setup's
    family, a SimpleBaseline's trunk starting from ImageNet when ``train.pretrained_backbone``.

    Unavailable pretrained weights fail with :class:`MissingWeightsError`, or with
    ``train.allow_scratch`` print one warning line and train from random initialisation.
    """
    split_ratio = cfg.codec.split_ratio
    try:
        model = build_pose_model(cfg.model, split_ratio=split_ratio)
        if not cfg.model.weights and cfg.train.pretrained_backbone:
            load_imagenet_trunk(model, cfg.model.backbone)
    except MissingWeightsError as err:
        if not cfg.train.allow_scratch:
            raise MissingWeightsError(f"{err} (or set train.allow_scratch / pass --from-scratch)") from None
        warn(console, f"pretrained weights unavailable (offline?): training {cfg.model.backbone} from scratch")
        model = build_pose_model(cfg.model, weights="", split_ratio=split_ratio)
    return model.train()


def rng_state() -> dict[str, Any]:
    """The torch, CUDA, numpy and Python random states as tensors and plain values."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [name, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": [version, list(internal), gauss],
    }


def restore_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))


def seed_everything(seed: int) -> None:
    """Seed torch, numpy and Python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` to a temporary file beside ``path``, then rename over it."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


@dataclass
class TrainResult:
    """What a run did: per-iteration losses (mean over the global batch) and validation scores."""

    output_dir: Path
    losses: list[float] = field(default_factory=list)
    validations: list[dict[str, float]] = field(default_factory=list)
    best_ap: float = -1.0
    unreadable_crops: int = 0


class Trainer:
    """One training run of ``cfg`` in this process (one of several under ``torchrun``)."""

    def __init__(self, cfg: TrainingConfig, runtime: Runtime, console: Console) -> None:
        self.cfg = cfg
        self.runtime = runtime
        self.console = console
        tcfg = cfg.train
        self.output_dir = Path(tcfg.output_dir)
        seed_everything(tcfg.seed)
        samples = load_person_samples(
            cfg.data.train_annotations, cfg.data.train_images, cfg.data.min_keypoints, cfg.data.min_box_area
        )
        report = samples.report(cfg.data.train_annotations, cfg.data.train_images)
        if report and runtime.is_main:
            warn(console, report)
        spec = CropSpec(
            tuple(cfg.model.input_size), build_codec(cfg), cfg.crop.padding, cfg.codec.convention,
            cfg.model.channel_order,
        )  # fmt: skip
        self.dataset = KeypointDataset(samples.samples, spec, cfg.augment, tcfg.seed)
        self.sampler = EpochSampler(len(self.dataset), tcfg.batch_size, tcfg.seed, runtime.rank, runtime.world_size)
        self.loader = DataLoader(
            self.dataset,
            batch_size=tcfg.batch_size // runtime.world_size,
            sampler=self.sampler,
            num_workers=cfg.data.num_workers,
            pin_memory=runtime.device.type == "cuda",
            persistent_workers=cfg.data.num_workers > 0,
        )
        self.iters_per_epoch = self.sampler.batches_per_epoch

        on_cuda = runtime.device.type == "cuda"
        self.channels_last = on_cuda and tcfg.channels_last
        self.use_amp = on_cuda and tcfg.amp
        model: nn.Module = build_training_model(cfg, console)
        if runtime.distributed and tcfg.sync_bn:
            model = synchronise_batchnorm(model, runtime.device)
        model = model.to(runtime.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.network = model  # the plain module: checkpoints and validation
        self.optimizer = build_optimizer(model, tcfg)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, LearningRateSchedule(tcfg, self.iters_per_epoch)
        )
        self.scaler = torch.amp.GradScaler(runtime.device.type, enabled=self.use_amp)
        self.start_epoch = 0
        self.result = TrainResult(self.output_dir)
        self.model = model  # what the loop calls: DDP-wrapped in a distributed run, see run()

    def resume(self, path: Path) -> None:
        """Restore model, optimizer, schedule position, loss scaler, epoch, best AP and RNG states."""
        state = read_checkpoint(path)
        if not isinstance(state, dict) or not {"model", "optimizer", "scheduler", "epoch", "rng"} <= set(state):
            raise UserError(f"{path}: not a training checkpoint (use it as model.weights to fine-tune from it)")
        model_cfg = self.cfg.model
        load_checked(self.network, state["model"], path, f"{FAMILIES[model_cfg.family].title} {model_cfg.backbone}")
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError) as err:
            raise UserError(f"{path}: optimizer state does not fit this model and optimizer ({err})") from None
        # The schedule's shape comes from the current config; only its position is restored.
        self.scheduler.load_state_dict({**state["scheduler"], "lr_lambdas": [None]})
        if state.get("scaler"):  # empty when saved without mixed precision (e.g. on the CPU)
            self.scaler.load_state_dict(state["scaler"])
        self.start_epoch = int(state["epoch"])
        self.result.best_ap = float(state.get("best_ap", -1.0))
        restore_rng_state(state["rng"])

    def checkpoint(self, epoch: int) -> dict[str, Any]:
        """Everything a resumed run needs, as tensors and plain Python values."""
        return {
            "model": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "epoch": epoch,
            "best_ap": self.result.best_ap,
            "rng": rng_state(),
            "config": dataclasses.asdict(self.cfg),
        }

    def step(self, crops: torch.Tensor, targets: Sequence[torch.Tensor], weights: torch.Tensor) -> torch.Tensor:
        """One optimisation step on a batch (``targets``: the codec's outputs); returns the (local) loss."""
        device = self.runtime.device
        inputs = to_input_tensor(crops.to(device, non_blocking=True))
        if self.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.float16, enabled=self.use_amp):
            predicted = self.model(inputs)
        outputs = tuple(o.float() for o in (predicted if isinstance(predicted, tuple) else (predicted,)))
        tcfg = self.cfg.train
        loss = training_loss(
            tcfg, self.cfg.codec.type, outputs, tuple(t.to(device, non_blocking=True) for t in targets),
            weights.to(device, non_blocking=True),
        )  # fmt: skip
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if tcfg.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), tcfg.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss.detach()

    def train_epoch(self, epoch: int, display: ProgressDisplay, log: MetricsLog, clock: Clock) -> None:
        """One pass over the training set: steps, progress, and ``train``/``epoch`` metrics records."""
        tcfg = self.cfg.train
        self.sampler.set_epoch(epoch)
        self.model.train()
        display.start_epoch(f"{epoch + 1}/{tcfg.epochs}", self.iters_per_epoch)
        epoch_start = window_start = time.perf_counter()
        epoch_losses: list[float] = []
        window: list[float] = []
        for step, (crops, targets, weights, readable) in enumerate(self.loader, start=1):
            lr = self.optimizer.param_groups[0]["lr"]
            loss = self.step(crops, targets, weights)
            tally = torch.stack([loss.float(), (1 - readable).sum().to(loss.device).float()])
            if self.runtime.distributed:
                dist.all_reduce(tally)
                tally[0] /= self.runtime.world_size
            loss_value = float(tally[0])
            self.result.unreadable_crops += int(tally[1])
            self.result.losses.append(loss_value)
            epoch_losses.append(loss_value)
            window.append(loss_value)
            now = time.perf_counter()
            iteration = epoch * self.iters_per_epoch + step
            ips = tcfg.batch_size * len(window) / max(now - window_start, 1e-9)
            record_due = step % tcfg.log_every == 0 or step == self.iters_per_epoch
            display.update(step, float(np.mean(window)), lr, ips, clock.eta(iteration), record_due)
            if record_due:
                log.write({"kind": "train", "epoch": epoch + 1, "iteration": iteration, "loss": float(np.mean(window)),
                           "lr": lr, "images_per_s": ips, "elapsed_s": clock.elapsed()})  # fmt: skip
                window, window_start = [], now
        seconds = time.perf_counter() - epoch_start
        log.write({"kind": "epoch", "epoch": epoch + 1, "iteration": (epoch + 1) * self.iters_per_epoch,
                   "loss": float(np.mean(epoch_losses)), "seconds": seconds,
                   "images_per_s": self.iters_per_epoch * tcfg.batch_size / seconds})  # fmt: skip

    def validate(self, epoch: int, display: ProgressDisplay, log: MetricsLog) -> bool:
        """Score the network on the validation set (rank 0); returns whether the AP is a new best."""
        vcfg = self.cfg.val
        started = time.perf_counter()
        with display.paused():
            metrics = evaluate_on_coco(self.network, self.cfg, vcfg.annotations, vcfg.images, vcfg.detections,
                                       self.runtime.device, vcfg.max_images, self.console)  # fmt: skip
        improved = metrics["AP"] > self.result.best_ap
        self.result.best_ap = max(self.result.best_ap, metrics["AP"])
        self.result.validations.append(metrics)
        log.write({"kind": "val", "epoch": epoch + 1, "iteration": (epoch + 1) * self.iters_per_epoch, **metrics,
                   "seconds": time.perf_counter() - started})  # fmt: skip
        display.print(f"epoch {epoch + 1}: val AP {metrics['AP']:.4f} AP50 {metrics['AP50']:.4f} "
                      f"AR {metrics['AR']:.4f} (best {self.result.best_ap:.4f})")  # fmt: skip
        return improved

    def run(self, resumed: bool) -> TrainResult:
        """Train from ``start_epoch`` to the last epoch, validating and checkpointing along the way."""
        tcfg, vcfg, runtime = self.cfg.train, self.cfg.val, self.runtime
        if runtime.distributed:
            on_cuda = runtime.device.type == "cuda"
            # The CPU kernels return 1x1-convolution weight gradients with other (equivalent) strides
            # for their size-1 dimensions than DDP's buckets; DDP copies them and says so once.
            warnings.filterwarnings("ignore", message="Grad strides do not match bucket view strides")
            self.model = DistributedDataParallel(self.network, device_ids=[runtime.device] if on_cuda else None)
        log = MetricsLog(self.output_dir / METRICS_LOG, runtime.is_main, self.start_epoch if resumed else None)
        if runtime.is_main:
            self.console.print(
                f"training {FAMILIES[self.cfg.model.family].title} {self.cfg.model.backbone} "
                f"{tuple(self.cfg.model.input_size)} on {len(self.dataset)} people "
                f"({self.iters_per_epoch} iterations/epoch of {tcfg.batch_size}), {runtime.world_size} x "
                f"{runtime.device}, epochs {self.start_epoch + 1}..{tcfg.epochs}",
                markup=False, highlight=False, soft_wrap=True,
            )  # fmt: skip
        clock = Clock(self.start_epoch * self.iters_per_epoch, tcfg.epochs * self.iters_per_epoch)
        with ProgressDisplay(self.console, runtime.is_main) as display:
            for epoch in range(self.start_epoch, tcfg.epochs):
                self.train_epoch(epoch, display, log, clock)
                due = (epoch + 1) % max(vcfg.every, 1) == 0 or epoch + 1 == tcfg.epochs
                validate = runtime.is_main and bool(vcfg.annotations) and vcfg.every > 0 and due
                improved = self.validate(epoch, display, log) if validate else False
                if runtime.is_main:
                    state = self.checkpoint(epoch + 1)
                    save_checkpoint(self.output_dir / CHECKPOINT_LAST, state)
                    if improved:
                        save_checkpoint(self.output_dir / CHECKPOINT_BEST, state)
                if runtime.distributed:
                    dist.barrier()
        if self.result.unreadable_crops and runtime.is_main:
            warn(self.console, f"{self.result.unreadable_crops} training crops came from unreadable images "
                               "and were left out of the loss")  # fmt: skip
        return self.result


def train(cfg: TrainingConfig, resume: str | Path | None = None, console: Console | None = None) -> TrainResult:
    """Train the network of ``cfg``, or with ``resume`` (a checkpoint, or ``"last"`` for ``output_dir/last.pth``)
    go on training it; returns the per-iteration losses and validation scores of this run."""
    check_training_config(cfg)
    console = console or Console(stderr=True, highlight=False)
    output_dir = Path(cfg.train.output_dir)
    check_writable_folder(output_dir)  # a file there, or a read-only folder: one line now, not a traceback later
    if resume is None and (output_dir / CHECKPOINT_LAST).is_file():
        raise UserError(
            f"{output_dir} already holds a run ({CHECKPOINT_LAST}): pass --resume, or pick another output dir"
        )
    runtime = start_runtime(cfg.train.device)
    try:
        trainer = Trainer(cfg, runtime, console)
        if resume is not None:
            trainer.resume(output_dir / CHECKPOINT_LAST if str(resume) == "last" else Path(resume))
        return trainer.run(resumed=resume is not None)
    finally:
        stop_runtime(runtime)
