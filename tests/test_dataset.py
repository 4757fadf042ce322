"""The COCO keypoint training set: which people it keeps, crops shared with inference, aligned targets,
augmentation keyed per example, and the sampler's split of global batches over processes."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from toppose.common.config import Config
from toppose.common.errors import UserError
from toppose.common.images import read_image
from toppose.common.schema import FLIP_INDEX
from toppose.common.synthetic import JOINT_COLOURS
from toppose.pose import geometry
from toppose.pose.codecs import HeatmapCodec, SimCCCodec
from toppose.pose.codecs import heatmap as codec
from toppose.pose.geometry import CONVENTIONS
from toppose.pose.inference import TopDownEstimator
from toppose.pose.training.augment import Augmentation, CropSpec, half_body_region, make_example, sample_augmentation
from toppose.pose.training.config import AugmentConfig
from toppose.pose.training.dataset import EpochSampler, KeypointDataset, load_person_samples

SPEC = CropSpec(input_size=(96, 128), codec=HeatmapCodec((24, 32), sigma=2.0, blur_kernel=1), padding=1.25)
HEATMAP_SIZE = SPEC.codec.heatmap_size


@pytest.fixture(scope="module")
def samples(synthetic_coco: Path) -> list:
    return load_person_samples(synthetic_coco / "annotations.json", synthetic_coco / "images").samples


def _people_with_keypoints(annotations: Path) -> int:
    anns = json.loads(annotations.read_text())["annotations"]
    return sum(1 for a in anns if a["num_keypoints"] > 0)


def test_keeps_every_labelled_person(synthetic_coco: Path, samples: list) -> None:
    assert len(samples) == _people_with_keypoints(synthetic_coco / "annotations.json")
    assert all(s.visible.sum() > 0 and s.box[2] * s.box[3] >= 64.0 for s in samples)


def test_filters_by_keypoints_and_box_area(synthetic_coco: Path, samples: list) -> None:
    with pytest.raises(UserError, match="no person with labelled keypoints"):
        load_person_samples(synthetic_coco / "annotations.json", synthetic_coco / "images", min_keypoints=18)
    areas = sorted(float(s.box[2] * s.box[3]) for s in samples)
    kept = load_person_samples(synthetic_coco / "annotations.json", synthetic_coco / "images", min_box_area=areas[2])
    assert len(kept.samples) == len(samples) - 2 and kept.people_filtered == 2


def test_missing_images_are_skipped_and_counted(synthetic_coco: Path, tmp_path: Path) -> None:
    shutil.copytree(synthetic_coco, tmp_path / "data")
    annotations = tmp_path / "data" / "annotations.json"
    data = json.loads(annotations.read_text())
    gone = data["images"][0]["file_name"]
    (tmp_path / "data" / "images" / gone).unlink()
    people_there = sum(1 for a in data["annotations"] if a["image_id"] == data["images"][0]["id"])
    result = load_person_samples(annotations, tmp_path / "data" / "images")
    assert result.missing_images == [gone]
    assert result.people_in_missing_images == people_there
    assert len(result.samples) == _people_with_keypoints(annotations) - people_there
    line = result.report(annotations, tmp_path / "data" / "images")
    assert line is not None and "1 images" in line and gone in line and "\n" not in line


def test_non_coco_annotation_file_is_one_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "not_coco.json"
    bad.write_text(json.dumps({"hello": [1, 2, 3]}))
    with pytest.raises(UserError, match="not a COCO annotation file"):
        load_person_samples(bad, tmp_path)


@pytest.mark.parametrize(
    ("spec", "tolerance"),
    [(SPEC, 0.05), (replace(SPEC, codec=SimCCCodec(SPEC.input_size)), 0.5)],  # SimCC decodes to whole bins
    ids=["heatmap", "simcc"],
)
def test_plain_example_is_the_inference_crop_with_aligned_targets(
    samples: list, spec: CropSpec, tolerance: float
) -> None:
    cfg = Config()
    cfg.model.input_size = spec.input_size
    estimator = TopDownEstimator(None, cfg)
    dataset = KeypointDataset(samples, spec, augment=None)
    for index in (0, 3):
        sample = samples[index]
        crop, targets, weights, readable = dataset[index]
        image = read_image(sample.image_path)
        centers, sizes = estimator.crop_regions(sample.box[None])
        assert estimator.convention == spec.convention
        expected = geometry.warp_crops(image, estimator.crop_matrices(centers, sizes), spec.input_size)[0, :, :, ::-1]
        np.testing.assert_array_equal(crop.numpy(), expected)
        grid = spec.codec.grid_size
        points = geometry.image_to_crop(sample.keypoints[None], centers, sizes, grid, spec.convention)[0]
        decoded, _ = spec.codec.decode(tuple(t.numpy()[None] for t in targets))
        labelled = weights.numpy() > 0
        assert readable == 1 and labelled.sum() >= 10
        np.testing.assert_allclose(decoded[0][labelled], points[labelled], atol=tolerance)


def _colour_hits(crop_rgb: np.ndarray, heatmaps: np.ndarray, weights: np.ndarray, flipped: bool) -> float:
    """Share of the labelled joints whose crop pixel under the target peak has the colour drawn there.

    Channel ``k`` of a mirrored crop is joint ``k`` of the mirrored person: the body's other side,
    drawn in the colour of joint ``FLIP_INDEX[k]``.
    """
    colours = JOINT_COLOURS[list(FLIP_INDEX)] if flipped else JOINT_COLOURS
    peaks, _ = codec.decode(heatmaps[None], "dark", blur_kernel=1)
    # heatmap -> input pixels through any region (here the unit square at the origin)
    region = (np.zeros((1, 2)), np.ones((1, 2)))
    image = geometry.crop_to_image(peaks, *region, HEATMAP_SIZE, SPEC.convention)
    inputs = geometry.image_to_crop(image, *region, SPEC.input_size, SPEC.convention)[0]
    hits = []
    for k in np.flatnonzero(weights > 0):
        x, y = np.round(inputs[k]).astype(int)
        if 2 <= x < crop_rgb.shape[1] - 2 and 2 <= y < crop_rgb.shape[0] - 2:  # discs cut by the border aside
            pixel = crop_rgb[y, x, ::-1].astype(int)  # back to BGR, as the colours are
            hits.append(np.abs(pixel - colours[k]).max() < 60)
    return float(np.mean(hits))


@pytest.mark.parametrize(
    "aug",
    [
        Augmentation(),
        Augmentation(flip=True),
        Augmentation(scale=0.8, rotation_deg=35.0),
        Augmentation(scale=1.2, rotation_deg=-50.0, flip=True),
        Augmentation(half_body=True, upper_body=False, flip=True),
    ],
    ids=["plain", "flip", "scale-rotate", "scale-rotate-flip", "half-body-flip"],
)
def test_targets_sit_on_the_joints_drawn_in_the_crop(samples: list, aug: Augmentation) -> None:
    # Every synthetic joint is a disc of its own colour, so each target peak must land on the colour
    # of its joint, through scaling, rotation, half-body crops and flips (which swap left and right).
    rates = []
    for sample in samples[:6]:
        image = read_image(sample.image_path)
        crop, (heatmaps,), weights = make_example(image, sample.box, sample.keypoints, sample.visible, SPEC, aug)
        rates.append(_colour_hits(crop, heatmaps, weights, aug.flip))
    assert np.mean(rates) > 0.85


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_flip_mirrors_crop_and_swaps_joints(samples: list, convention: str) -> None:
    sample = samples[1]
    image = read_image(sample.image_path)
    args = (image, sample.box, sample.keypoints, sample.visible, replace(SPEC, convention=convention))
    crop, (heatmaps,), weights = make_example(*args, Augmentation())
    crop_f, (heatmaps_f,), weights_f = make_example(*args, Augmentation(flip=True))
    mirrored = geometry.mirror(crop, 1, convention)
    inside = slice(1, None)  # a legacy mirror has no source for pixel 0; the warp samples the image there
    # equal up to OpenCV's fixed-point interpolation (1 grey level); a one-pixel slip differs by far more
    np.testing.assert_allclose(crop_f[:, inside].astype(int), mirrored[:, inside].astype(int), atol=1)
    np.testing.assert_allclose(
        heatmaps_f[..., inside], codec.flip_heatmaps(heatmaps, convention)[..., inside], atol=1e-5
    )
    np.testing.assert_array_equal(weights_f, weights[list(FLIP_INDEX)])


def test_half_body_region_frames_the_chosen_half() -> None:
    keypoints = np.array([[50.0 + 2 * k, 10.0 + 10 * k] for k in range(17)])
    visible = np.ones(17, dtype=bool)
    center, size = half_body_region(keypoints, visible, SPEC, padding=1.5, upper_first=False)
    lower = keypoints[11:]
    np.testing.assert_allclose(center, (lower.min(axis=0) + lower.max(axis=0)) / 2)
    assert size[0] / size[1] == pytest.approx(SPEC.aspect_ratio)
    assert size[1] == pytest.approx(1.5 * (lower[:, 1].max() - lower[:, 1].min()))
    visible[11:] = False
    visible[3:] = False
    assert half_body_region(keypoints, visible, SPEC, 1.5, upper_first=False) is not None  # falls back to upper
    visible[:] = False
    assert half_body_region(keypoints, visible, SPEC, 1.5, upper_first=True) is None


def test_augmentation_is_keyed_by_seed_epoch_and_index(samples: list) -> None:
    config = AugmentConfig()
    a = KeypointDataset(samples, SPEC, config, seed=3)
    b = KeypointDataset(samples, SPEC, config, seed=3)
    (crop_a, (heatmaps_a,), weights_a, _), (crop_b, (heatmaps_b,), weights_b, _) = a[(2, 5)], b[(2, 5)]
    for first, second in ((crop_a, crop_b), (heatmaps_a, heatmaps_b), (weights_a, weights_b)):
        np.testing.assert_array_equal(first.numpy(), second.numpy())
    assert a.augmentation(2, 5) != a.augmentation(3, 5)
    assert a.augmentation(2, 5) != KeypointDataset(samples, SPEC, config, seed=4).augmentation(2, 5)
    draws = [sample_augmentation(np.random.default_rng(i), config, 17) for i in range(400)]
    scales = np.array([d.scale for d in draws])
    rotations = np.array([d.rotation_deg for d in draws])
    assert scales.min() >= 1 - config.scale_factor and scales.max() <= 1 + config.scale_factor
    assert np.abs(rotations).max() <= 2 * config.rotation_factor
    assert 0.5 < np.mean(rotations != 0) < 0.7 and 0.4 < np.mean([d.flip for d in draws]) < 0.6
    assert 0.2 < np.mean([d.half_body for d in draws]) < 0.4


def test_unreadable_image_gives_a_blank_zero_weight_example(samples: list, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    sample = samples[0]
    sample = type(sample)(broken, sample.image_id, sample.box, sample.keypoints, sample.visible)
    crop, (heatmaps,), weights, readable = KeypointDataset([sample], SPEC, AugmentConfig())[0]
    assert readable == 0 and weights.sum() == 0 and heatmaps.abs().sum() == 0
    simcc = replace(SPEC, codec=SimCCCodec(SPEC.input_size))
    _, (labels_x, labels_y), weights, readable = KeypointDataset([sample], simcc, AugmentConfig())[0]
    assert readable == 0 and weights.sum() == 0 and labels_x.abs().sum() == labels_y.abs().sum() == 0
    assert (tuple(labels_x.shape), tuple(labels_y.shape)) == ((17, 192), (17, 256))
    assert tuple(crop.shape) == (SPEC.input_size[1], SPEC.input_size[0], 3)


def test_sampler_splits_each_global_batch_over_processes() -> None:
    single = EpochSampler(num_samples=23, global_batch=6, seed=1)
    single.set_epoch(4)
    keys = list(single)
    assert len(keys) == len(single) == 18 and all(epoch == 4 for epoch, _ in keys)
    assert len({index for _, index in keys}) == 18
    shards = []
    for rank in range(3):
        sampler = EpochSampler(23, 6, seed=1, rank=rank, world_size=3)
        sampler.set_epoch(4)
        shards.append(list(sampler))
        assert len(sampler) == 6
    for batch in range(3):  # per-process batches of 2 make up the single process's batch of 6
        together = {key for shard in shards for key in shard[2 * batch : 2 * batch + 2]}
        assert together == set(keys[6 * batch : 6 * batch + 6])
    single.set_epoch(5)
    assert list(single) != keys
    with pytest.raises(UserError, match="not divisible"):
        EpochSampler(23, 6, world_size=4)
    with pytest.raises(UserError, match="fewer than train.batch_size"):
        EpochSampler(5, 6)
