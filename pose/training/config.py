"""Training configs: the model setup of :class:`common.config.Config` plus ``[data]``, ``[augment]``,
``[train]`` and ``[val]`` sections, read by :func:`load_training_config` (unknown keys are errors).

Relative paths are taken from the current directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from common.config import DEVICE_PATTERN, Config, load_config, setting
from common.errors import UserError
from common.schema import NUM_KEYPOINTS
from pose.models.simplebaseline import check_sizes

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("step", "cosine")
LOSSES = ("mse", "ohkm_mse")
TRAIN_DEVICE_PATTERN = (f"auto|{DEVICE_PATTERN[0]}", f"auto, {DEVICE_PATTERN[1]}")


@dataclass
class DataConfig:
    """The training set: a COCO keypoint annotation file and its image folder."""

    train_annotations: str = ""
    train_images: str = ""
    min_keypoints: int = setting(1, ge=0)  # people with fewer labelled keypoints are skipped
    min_box_area: float = setting(64.0, ge=0)  # people whose (image-clipped) box is smaller, in pixels^2, are skipped
    num_workers: int = setting(2, ge=0)  # data-loading processes per training process (0 = load in the main process)


@dataclass
class AugmentConfig:
    """Random augmentation of the training crops (the SimpleBaseline / HRNet recipe)."""

    flip: bool = True  # mirror half of the crops, swapping left and right joints
    scale_factor: float = setting(0.35, ge=0, lt=1)  # region size x clip(1 + N(0, 1) * f, 1 - f, 1 + f)
    rotation_factor: float = setting(45.0, ge=0, le=180)  # degrees: clip(N(0, 1) * f, -2f, 2f) ...
    rotation_prob: float = setting(0.6, ge=0, le=1)  # ... applied to this share of the crops
    half_body_prob: float = setting(0.3, ge=0, le=1)  # share of crops cut around the upper or the lower body only ...
    half_body_min_keypoints: int = setting(8, ge=0)  # ... among people with more labelled keypoints than this
    half_body_padding: float = setting(1.5, gt=0, le=10)  # the half-body region is this much larger than its joints
    colour_jitter: float = setting(0.2, ge=0, le=1)  # brightness, contrast and saturation factors in [1 - j, 1 + j]


@dataclass
class TrainConfig:
    """The optimisation."""

    output_dir: str = "runs/train"  # checkpoints (last.pth, best.pth) and metrics.jsonl
    seed: int = setting(0, ge=0)
    epochs: int = setting(210, ge=1)
    batch_size: int = setting(64, ge=1)  # global: split over the processes of a distributed run
    optimizer: str = setting("adam", choices=OPTIMIZERS)  # adam | adamw
    lr: float = setting(5e-4, gt=0)
    weight_decay: float = setting(0.0, ge=0)
    # step (x lr_gamma at each epoch of lr_steps) | cosine (to lr * min_lr_ratio)
    schedule: str = setting("step", choices=SCHEDULES)
    lr_steps: tuple[int, ...] = setting((170, 200), ge=0)
    lr_gamma: float = setting(0.1, gt=0)
    min_lr_ratio: float = setting(0.0, ge=0, le=1)
    warmup_iters: int = setting(500, ge=0)  # linear warm-up from lr * warmup_ratio over this many iterations
    warmup_ratio: float = setting(0.001, gt=0, le=1)
    grad_clip: float = setting(0.0, ge=0)  # max gradient norm (0 = no clipping)
    # mse (target-weighted heatmap MSE) | ohkm_mse (the same over the hardest joints)
    loss: str = setting("mse", choices=LOSSES)
    ohkm_topk: int = setting(8, ge=1, le=NUM_KEYPOINTS)
    device: str = setting("auto", pattern=TRAIN_DEVICE_PATTERN)  # auto (CUDA when available) | cpu | cuda | cuda:N
    amp: bool = True  # mixed precision (CUDA only)
    channels_last: bool = True  # channels-last memory format (CUDA only)
    sync_bn: bool = True  # batch statistics over all processes of a distributed run
    pretrained_backbone: bool = True  # ImageNet trunk from torchvision (ignored when model.weights is set)
    allow_scratch: bool = False  # pretrained weights unavailable: warn and train from scratch instead of failing
    log_every: int = setting(10, ge=1)  # iterations per metrics-log record


@dataclass
class ValConfig:
    """Validation with the inference path, scored by COCOeval."""

    annotations: str = ""  # "" = no validation
    images: str = ""
    detections: str = ""  # person detections file; "" = ground-truth boxes
    every: int = setting(1, ge=1)  # epochs between validations (the last epoch is always validated)
    max_images: int = setting(0, ge=0)  # validate on the first N images only (0 = all)


@dataclass
class TrainingConfig(Config):
    """A model setup and how to train it."""

    data: DataConfig = field(default_factory=DataConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    val: ValConfig = field(default_factory=ValConfig)


def check_training_config(cfg: TrainingConfig) -> None:
    """Reject combinations that cannot train, with one line naming the keys (single values are checked on reading)."""
    if not cfg.data.train_annotations or not cfg.data.train_images:
        raise UserError("data.train_annotations and data.train_images must name the training set")
    if cfg.model.family != "simplebaseline" or cfg.codec.type != "heatmap":
        raise UserError("training supports the simplebaseline family with heatmaps (model.family, codec.type)")
    check_sizes(cfg.model.input_size, cfg.model.heatmap_size, cfg.model.num_deconv)
    if bool(cfg.val.annotations) != bool(cfg.val.images):
        raise UserError("val.annotations and val.images go together (set both, or neither for no validation)")


def load_training_config(path: str | Path) -> TrainingConfig:
    """Read a training TOML file (an unknown section or key, or a bad value, is a :class:`ConfigError`)."""
    return load_config(path, cls=TrainingConfig)
