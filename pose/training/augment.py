"""One training example from one annotated person: a randomly transformed crop and its codec targets.

All geometry goes through :mod:`pose.geometry`: the crop region is the DeepPose box normalization of
the inference path, then scaled, rotated and mirrored by :func:`pose.geometry.crop_matrix` in the
setup's pixel convention; the same matrix at the codec's grid size (the heatmap, or the SimCC bins)
moves the keypoints, which the codec encodes as targets (Gaussian heatmaps, or SimCC label vectors).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from toppose.common.schema import FLIP_INDEX, KEYPOINT_NAMES
from toppose.pose import geometry
from toppose.pose.codecs import Codec, Outputs
from toppose.pose.models.inputs import in_channel_order
from toppose.pose.training.config import AugmentConfig

# Half-body crops keep either the joints above the hips or the hips and legs.
LOWER_BODY = tuple(i for i, name in enumerate(KEYPOINT_NAMES) if name.split("_")[-1] in ("hip", "knee", "ankle"))
UPPER_BODY = tuple(i for i in range(len(KEYPOINT_NAMES)) if i not in LOWER_BODY)


@dataclass(frozen=True)
class CropSpec:
    """What the network sees (``input_size`` is ``(width, height)``) and the codec of what it predicts."""

    input_size: tuple[int, int]
    codec: Codec
    padding: float
    convention: str = "udp"  # pixel convention of crops and targets (pose/geometry.py)
    channel_order: str = "rgb"  # of the crops handed to the network

    @property
    def aspect_ratio(self) -> float:
        return self.input_size[0] / self.input_size[1]


@dataclass(frozen=True)
class Augmentation:
    """The random transform of one crop; the identity is ``Augmentation()``."""

    scale: float = 1.0
    rotation_deg: float = 0.0
    flip: bool = False
    half_body: bool = False
    upper_body: bool = True  # which half a half-body crop prefers
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0


def sample_augmentation(rng: np.random.Generator, cfg: AugmentConfig, num_labelled: int) -> Augmentation:
    """Draw one crop's transform: scale and rotation as clipped normals, flip, half-body and colour factors."""
    scale = float(
        np.clip(1.0 + rng.standard_normal() * cfg.scale_factor, 1.0 - cfg.scale_factor, 1.0 + cfg.scale_factor)
    )
    rotation = float(
        np.clip(rng.standard_normal() * cfg.rotation_factor, -2 * cfg.rotation_factor, 2 * cfg.rotation_factor)
    )
    rotate = rng.random() < cfg.rotation_prob
    flip = cfg.flip and rng.random() < 0.5
    half_body = num_labelled > cfg.half_body_min_keypoints and rng.random() < cfg.half_body_prob
    upper_body = rng.random() < 0.5
    low, high = 1.0 - cfg.colour_jitter, 1.0 + cfg.colour_jitter
    brightness, contrast, saturation = (float(v) for v in rng.uniform(low, high, size=3))
    return Augmentation(
        scale, rotation if rotate else 0.0, flip, half_body, upper_body, brightness, contrast, saturation
    )


def half_body_region(
    keypoints: np.ndarray, visible: np.ndarray, spec: CropSpec, padding: float, upper_first: bool
) -> tuple[np.ndarray, np.ndarray] | None:
    """The crop region (centre, size) around the labelled joints of one half of the body.

    The preferred half (the upper one with ``upper_first``) when it has more than two labelled
    joints, else the other half when it has at least two, else ``None``.
    """
    parts = [UPPER_BODY, LOWER_BODY] if upper_first else [LOWER_BODY, UPPER_BODY]
    for part in parts:
        chosen = [k for k in part if visible[k]]
        if len(chosen) > 2 or (part is parts[1] and len(chosen) >= 2):
            points = keypoints[chosen]
            low, high = points.min(axis=0), points.max(axis=0)
            box = np.concatenate([low, high - low])[None]
            centers, sizes = geometry.box_to_center_size(box, spec.aspect_ratio, padding)
            return centers[0], sizes[0]
    return None


def jitter_colour(crop_bgr: np.ndarray, aug: Augmentation) -> np.ndarray:
    """Scale brightness, then contrast about the mean grey level, then saturation about each pixel's grey."""
    image = crop_bgr.astype(np.float32) * aug.brightness
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    image = (image - grey.mean()) * aug.contrast + grey.mean()
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)[..., None]
    image = grey + (image - grey) * aug.saturation
    return np.clip(image + 0.5, 0, 255).astype(np.uint8)


def make_example(
    image_bgr: np.ndarray,
    box_xywh: np.ndarray,
    keypoints: np.ndarray,
    visible: np.ndarray,
    spec: CropSpec,
    aug: Augmentation,
    half_body_padding: float = 1.5,
) -> tuple[np.ndarray, Outputs, np.ndarray]:
    """The crop (``(H, W, 3)`` uint8, ``spec.channel_order``), the codec's targets (heatmaps ``(K, h, w)``,
    or SimCC x and y labels ``(K, W * r)``, ``(K, H * r)``) and target weights ``(K,)``.

    ``keypoints`` ``(K, 2)`` are image pixels, ``visible`` ``(K,)`` marks labelled ones. A flipped
    crop's keypoints are reordered with :data:`common.schema.FLIP_INDEX` so channel ``k`` stays joint ``k``.
    """
    centers, sizes = geometry.box_to_center_size(np.asarray(box_xywh)[None], spec.aspect_ratio, spec.padding)
    center, size = centers[0], sizes[0]
    if aug.half_body:
        region = half_body_region(keypoints, visible, spec, half_body_padding, aug.upper_body)
        if region is not None:
            center, size = region
    size = size * aug.scale
    to_input = geometry.crop_matrix(center, size, spec.input_size, aug.rotation_deg, aug.flip, spec.convention)
    crop = geometry.warp_crop(image_bgr, to_input, spec.input_size)
    if (aug.brightness, aug.contrast, aug.saturation) != (1.0, 1.0, 1.0):
        crop = jitter_colour(crop, aug)
    grid_size = spec.codec.grid_size
    to_grid = geometry.crop_matrix(center, size, grid_size, aug.rotation_deg, aug.flip, spec.convention)
    points = geometry.apply_affine(keypoints, to_grid)
    labelled = np.asarray(visible, dtype=bool)
    if aug.flip:
        points, labelled = points[list(FLIP_INDEX)], labelled[list(FLIP_INDEX)]
    targets, weights = spec.codec.encode(points[None], labelled[None])
    return in_channel_order(crop, spec.channel_order), tuple(t[0] for t in targets), weights[0]
