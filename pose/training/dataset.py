"""COCO-format person keypoints as a training set: one example per annotated person.

Randomness is keyed on ``(seed, epoch, index)`` rather than on a process or worker, so an example
is the same whatever the number of data-loading workers or training processes, and a resumed run
draws what an uninterrupted one would. :class:`EpochSampler` feeds ``(epoch, index)`` keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from toppose.common.coco import load_coco
from toppose.common.errors import UserError
from toppose.common.images import read_image
from toppose.common.schema import NUM_KEYPOINTS
from toppose.pose.training.augment import Augmentation, CropSpec, make_example, sample_augmentation
from toppose.pose.training.config import AugmentConfig
from torch.utils.data import Dataset, Sampler


@dataclass(frozen=True)
class PersonSample:
    """One annotated person: box (xywh), keypoints ``(K, 2)`` and which of them are labelled."""

    image_path: Path
    image_id: int
    box: np.ndarray
    keypoints: np.ndarray
    visible: np.ndarray


@dataclass
class SampleSet:
    """The people kept from an annotation file, and what was left out."""

    samples: list[PersonSample]
    missing_images: list[str] = field(default_factory=list)  # file names referenced but absent
    people_in_missing_images: int = 0
    people_filtered: int = 0  # crowd regions, too few keypoints, tiny boxes

    def report(self, annotations: str | Path, image_dir: str | Path) -> str | None:
        """One line about the missing images, or ``None`` when there are none."""
        if not self.missing_images:
            return None
        return (
            f"{len(self.missing_images)} images referenced by {annotations} are missing from {image_dir} "
            f"(skipped {self.people_in_missing_images} people), e.g. {self.missing_images[0]}"
        )


def _clip_box(box: list[float], width: float | None, height: float | None) -> np.ndarray:
    x, y, w, h = (float(v) for v in box)
    x0, y0, x1, y1 = x, y, x + w, y + h
    if width is not None and height is not None:
        x0, y0 = max(x0, 0.0), max(y0, 0.0)
        x1, y1 = min(x1, width - 1.0), min(y1, height - 1.0)
    return np.array([x0, y0, max(x1 - x0, 0.0), max(y1 - y0, 0.0)])


def load_person_samples(
    annotations: str | Path, image_dir: str | Path, min_keypoints: int = 1, min_box_area: float = 64.0
) -> SampleSet:
    """Every usable person of a COCO keypoint file: non-crowd, ``min_keypoints`` labelled, box area at least
    ``min_box_area`` once clipped to the image. People in images absent from ``image_dir`` are counted and skipped.

    A missing or non-COCO annotation file is a :class:`UserError`; so is a file with no usable person.
    """
    coco = load_coco(annotations)
    image_dir = Path(image_dir)
    if not image_dir.is_dir():
        raise UserError(f"image folder not found: {image_dir}")
    result = SampleSet([])
    for image_id in sorted(coco.getImgIds()):
        info = coco.imgs[image_id]
        path = image_dir / str(info.get("file_name", ""))
        anns = coco.loadAnns(coco.getAnnIds(imgIds=[image_id]))
        people = []
        for ann in anns:
            flat = ann.get("keypoints")
            if ann.get("iscrowd", 0) or not isinstance(flat, list) or len(flat) != 3 * NUM_KEYPOINTS:
                result.people_filtered += 1
                continue
            points = np.asarray(flat, dtype=np.float64).reshape(NUM_KEYPOINTS, 3)
            box = _clip_box(ann.get("bbox", [0, 0, 0, 0]), info.get("width"), info.get("height"))
            visible = points[:, 2] > 0
            if visible.sum() < max(min_keypoints, 1) or box[2] * box[3] < min_box_area:
                result.people_filtered += 1
                continue
            people.append(PersonSample(path, int(image_id), box, points[:, :2].copy(), visible))
        if people and not path.is_file():
            result.missing_images.append(path.name)
            result.people_in_missing_images += len(people)
            continue
        result.samples.extend(people)
    if not result.samples:
        raise UserError(f"{annotations}: no person with labelled keypoints to train on in {image_dir}")
    return result


class KeypointDataset(Dataset):
    """Training examples ``(crop uint8 (H, W, 3), targets, target weights (K,), readable)``, the crops in the
    spec's channel order, the targets a tuple of the codec's outputs (see :func:`make_example`).

    Indexed by ``(epoch, index)`` (a plain ``index`` means epoch 0). ``augment`` ``None`` gives the
    plain inference crop. An image that cannot be read gives a blank crop with zero target weights and
    ``readable`` 0, so a batch goes on without it and the trainer can count it.
    """

    def __init__(
        self,
        samples: list[PersonSample],
        spec: CropSpec,
        augment: AugmentConfig | None,
        seed: int = 0,
    ) -> None:
        self.samples = samples
        self.spec = spec
        self.augment = augment
        self.seed = seed

    def __len__(self) -> int:
        return len(self.samples)

    def augmentation(self, epoch: int, index: int) -> Augmentation:
        """The transform of example ``index`` in ``epoch``: a function of ``(seed, epoch, index)`` only."""
        if self.augment is None:
            return Augmentation()
        rng = np.random.default_rng([self.seed, epoch, index])
        return sample_augmentation(rng, self.augment, int(self.samples[index].visible.sum()))

    def __getitem__(
        self, key: int | tuple[int, int]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        sample = self.samples[index]
        try:
            image = read_image(sample.image_path)
        except UserError:
            width, height = self.spec.input_size
            crop = np.zeros((height, width, 3), dtype=np.uint8)
            targets, weights = self.spec.codec.encode(np.zeros((1, NUM_KEYPOINTS, 2)), np.zeros((1, NUM_KEYPOINTS)))
            return _tensors(crop, tuple(t[0] for t in targets), weights[0], readable=False)
        aug = self.augmentation(epoch, index)
        padding = {"half_body_padding": self.augment.half_body_padding} if self.augment else {}
        crop, targets, weights = make_example(
            image, sample.box, sample.keypoints, sample.visible, self.spec, aug, **padding
        )
        return _tensors(crop, targets, weights, readable=True)


def _tensors(
    crop: np.ndarray, targets: tuple[np.ndarray, ...], weights: np.ndarray, readable: bool
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], torch.Tensor, torch.Tensor]:
    """One example as tensors; ``readable`` as 0 or 1."""
    as_tensors = tuple(torch.from_numpy(t) for t in targets)
    return torch.from_numpy(crop), as_tensors, torch.from_numpy(weights), torch.tensor(int(readable))


class EpochSampler(Sampler):
    """Shuffled ``(epoch, index)`` keys for one of ``world_size`` processes, in whole global batches.

    Each epoch is a permutation seeded by ``(seed, epoch)``, cut to a multiple of ``global_batch``;
    process ``rank`` takes every ``world_size``-th key, so the ``i``-th per-process batches of all
    processes together hold exactly the ``i``-th global batch of a single-process run.
    """

    def __init__(self, num_samples: int, global_batch: int, seed: int = 0, rank: int = 0, world_size: int = 1) -> None:
        if global_batch % world_size:
            raise UserError(f"train.batch_size {global_batch} is not divisible by the {world_size} processes")
        if num_samples < global_batch:
            raise UserError(f"the training set has {num_samples} people, fewer than train.batch_size {global_batch}")
        self.num_samples = num_samples
        self.global_batch = global_batch
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0

    @property
    def batches_per_epoch(self) -> int:
        return self.num_samples // self.global_batch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batches_per_epoch * self.global_batch // self.world_size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.num_samples)
        order = order[: self.batches_per_epoch * self.global_batch]
        for index in order[self.rank :: self.world_size].tolist():
            yield self.epoch, index
