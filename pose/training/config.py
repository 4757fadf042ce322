"""Training configs: the model setup of :class:`common.config.Config` plus ``[data]``, ``[augment]``,
``[train]`` and ``[val]`` sections, read by :func:`load_training_config` (unknown keys are errors).

Relative paths are taken from the current directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from toppose.common.config import DEVICE_PATTERN, Config, load_config, setting
from toppose.common.errors import UserError
from toppose.common.schema import NUM_KEYPOINTS
from toppose.pose.models import FAMILIES, check_model_config

OPTIMIZERS = ("adam", "adamw")
SCHEDULES = ("step", "cosine")
LOSSES = ("auto", "mse", "ohkm_mse", "kl_discrete")
# The losses each codec's targets can train with; the first is the codec's published one (``loss = "auto"``).
CODEC_LOSSES = {"heatmap": ("mse", "ohkm_mse"), "simcc": ("kl_discrete",)}
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
    # auto (the codec's published loss: mse for heatmaps, kl_discrete for simcc) | mse (target-weighted heatmap
    # MSE) | ohkm_mse (the same over the hardest joints) | kl_discrete (SimCC KL divergence, RTMPose)
    loss: str = setting("auto", choices=LOSSES)
    ohkm_topk: int = setting(8, ge=1, le=NUM_KEYPOINTS)
    kl_beta: float = setting(10.0, gt=0)  # kl_discrete: softmax(kl_beta * predicted logits), as RTMPose's configs
    kl_label_softmax: bool = True  # kl_discrete: labels as softmax(kl_label_beta * Gaussian labels) ...
    kl_label_beta: float = setting(10.0, gt=0)  # ... (RTMPose's configs: true, 10)
    device: str = setting("auto", pattern=TRAIN_DEVICE_PATTERN)  # auto (CUDA when available) | cpu | cuda | cuda:N
    amp: bool = True  # mixed precision (CUDA only)
    channels_last: bool = True  # channels-last memory format (CUDA only)
    sync_bn: bool = True  # batch statistics over all processes of a distributed run
    # ImageNet trunk from torchvision, simplebaseline only (ignored when model.weights is set)
    pretrained_backbone: bool = True
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
    check_model_config(cfg.model)
    family, codec = cfg.model.family, cfg.codec.type
    if codec != FAMILIES[family].codec:
        raise UserError(f"model.family '{family}' outputs {FAMILIES[family].codec}, not codec.type '{codec}'")
    if cfg.train.pretrained_backbone and not cfg.model.weights and family != "simplebaseline":
        raise UserError(
            f"train.pretrained_backbone: ImageNet trunks here are torchvision's ResNets (simplebaseline only); "
            f"set it false to train {family} from scratch, or fine-tune from model.weights"
        )
    loss_kind(cfg.train, codec)
    if bool(cfg.val.annotations) != bool(cfg.val.images):
        raise UserError("val.annotations and val.images go together (set both, or neither for no validation)")


def loss_kind(train_cfg: TrainConfig, codec_type: str) -> str:
    """The loss ``train.loss`` names for ``codec_type`` targets (``auto``: the codec's published one)."""
    allowed = CODEC_LOSSES[codec_type]
    if train_cfg.loss == "auto":
        return allowed[0]
    if train_cfg.loss not in allowed:
        raise UserError(f"train.loss '{train_cfg.loss}' does not fit {codec_type} targets (use {', '.join(allowed)})")
    return train_cfg.loss


def load_training_config(path: str | Path) -> TrainingConfig:
    """Read a training TOML file (an unknown section or key, or a bad value, is a :class:`ConfigError`)."""
    return load_config(path, cls=TrainingConfig)
