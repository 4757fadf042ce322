"""Training configs: the model setup of :class:`common.config.Config` plus ``[data]``, ``[augment]``,
``[train]`` and ``[val]`` sections, read by :func:`load_training_config` (unknown keys are errors).

Relative paths are taken from the current directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from common.config import Config, load_config
from common.errors import UserError
from pose.models.simplebaseline import check_sizes

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("step", "cosine")
LOSSES = ("mse", "ohkm_mse")


@dataclass
class DataConfig:
    """The training set: a COCO keypoint annotation file and its image folder."""

    train_annotations: str = ""
    train_images: str = ""
    min_keypoints: int = 1  # people with fewer labelled keypoints are skipped
    min_box_area: float = 64.0  # people whose (image-clipped) box is smaller, in pixels^2, are skipped
    num_workers: int = 2  # data-loading processes per training process (0 = load in the main process)


@dataclass
class AugmentConfig:
    """Random augmentation of the training crops (the SimpleBaseline / HRNet recipe)."""

    flip: bool = True  # mirror half of the crops, swapping left and right joints
    scale_factor: float = 0.35  # region size x clip(1 + N(0, 1) * f, 1 - f, 1 + f)
    rotation_factor: float = 45.0  # degrees: clip(N(0, 1) * f, -2f, 2f) ...
    rotation_prob: float = 0.6  # ... applied to this share of the crops
    half_body_prob: float = 0.3  # share of crops cut around the upper or the lower body only ...
    half_body_min_keypoints: int = 8  # ... among people with more labelled keypoints than this
    half_body_padding: float = 1.5  # the half-body region is this much larger than its joints' box
    colour_jitter: float = 0.2  # brightness, contrast and saturation factors in [1 - j, 1 + j]


@dataclass
class TrainConfig:
    """The optimisation."""

    output_dir: str = "runs/train"  # checkpoints (last.pth, best.pth) and metrics.jsonl
    seed: int = 0
    epochs: int = 210
    batch_size: int = 64  # global: split over the processes of a distributed run
    optimizer: str = "adam"  # adam | adamw
    lr: float = 5e-4
    weight_decay: float = 0.0
    schedule: str = "step"  # step (x lr_gamma at each epoch of lr_steps) | cosine (to lr * min_lr_ratio)
    lr_steps: tuple[int, ...] = (170, 200)
    lr_gamma: float = 0.1
    min_lr_ratio: float = 0.0
    warmup_iters: int = 500  # linear warm-up from lr * warmup_ratio over this many iterations
    warmup_ratio: float = 0.001
    grad_clip: float = 0.0  # max gradient norm (0 = no clipping)
    loss: str = "mse"  # mse (target-weighted heatmap MSE) | ohkm_mse (the same over the hardest joints)
    ohkm_topk: int = 8
    device: str = "auto"  # auto (CUDA when available) | cpu | cuda | cuda:N
    amp: bool = True  # mixed precision (CUDA only)
    channels_last: bool = True  # channels-last memory format (CUDA only)
    sync_bn: bool = True  # batch statistics over all processes of a distributed run
    pretrained_backbone: bool = True  # ImageNet trunk from torchvision (ignored when model.weights is set)
    allow_scratch: bool = False  # pretrained weights unavailable: warn and train from scratch instead of failing
    log_every: int = 10  # iterations per metrics-log record


@dataclass
class ValConfig:
    """Validation with the inference path, scored by COCOeval."""

    annotations: str = ""  # "" = no validation
    images: str = ""
    detections: str = ""  # person detections file; "" = ground-truth boxes
    every: int = 1  # epochs between validations (the last epoch is always validated)
    max_images: int = 0  # validate on the first N images only (0 = all)


@dataclass
class TrainingConfig(Config):
    """A model setup and how to train it."""

    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    val: ValConfig = field(default_factory=ValConfig)


def _one_of(value: str, choices: tuple[str, ...], where: str) -> None:
    if value not in choices:
        raise UserError(f"{where} = '{value}' is not one of: {', '.join(choices)}")


def check_training_config(cfg: TrainingConfig) -> None:
    """Reject values that cannot train, with one line naming the key."""
    _one_of(cfg.train.optimizer, OPTIMIZERS, "train.optimizer")
    _one_of(cfg.train.schedule, SCHEDULES, "train.schedule")
    _one_of(cfg.train.loss, LOSSES, "train.loss")
    if not cfg.data.train_annotations or not cfg.data.train_images:
        raise UserError("data.train_annotations and data.train_images must name the training set")
    if cfg.model.family != "simplebaseline" or cfg.codec.type != "heatmap":
        raise UserError("training supports the simplebaseline family with heatmaps (model.family, codec.type)")
    check_sizes(cfg.model.input_size, cfg.model.heatmap_size, cfg.model.num_deconv)
    if cfg.train.epochs < 1 or cfg.train.batch_size < 1:
        raise UserError("train.epochs and train.batch_size must be at least 1")
    if bool(cfg.val.annotations) != bool(cfg.val.images):
        raise UserError("val.annotations and val.images go together (set both, or neither for no validation)")


def load_training_config(path: str | Path) -> TrainingConfig:
    """Read a training TOML file (unknown sections or keys are a :class:`UserError` naming them)."""
    return load_config(path, cls=TrainingConfig)
