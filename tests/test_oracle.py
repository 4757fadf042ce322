"""The decoder-ceiling oracle: ground-truth heatmaps through the production path score (almost) perfectly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from toppose.common.coco import evaluate_keypoints, load_coco
from toppose.common.config import Config
from toppose.common.console import error_console
from toppose.eval.coco import evaluate_oracle
from toppose.eval.oracle import keypoints_outside_crops, oracle_network_fn
from toppose.pose import geometry
from toppose.pose.annotations import ground_truth_people
from toppose.pose.codecs import heatmap as codec
from toppose.pose.geometry import CONVENTIONS
from toppose.pose.inference import TopDownEstimator
from toppose.pose.results import keypoints_array

COCO_VAL = Path("annotations") / "person_keypoints_val2017.json"


def _config(decode: str = "dark", flip: bool = True) -> Config:
    cfg = Config()
    cfg.codec.decode = decode
    cfg.inference.flip_test = flip
    return cfg


def _biased(entries: list[dict], cfg: Config, heatmap_pixels: float) -> list[dict]:
    """The entries with every keypoint moved right by ``heatmap_pixels`` of its crop's heatmap."""
    estimator = TopDownEstimator(None, cfg)
    _, sizes = estimator.crop_regions(np.array([e["bbox"] for e in entries]))
    keypoints = keypoints_array(entries)
    keypoints[..., 0] += heatmap_pixels * sizes[:, :1] / cfg.model.heatmap_size[0]
    return [{**e, "keypoints": k.reshape(-1).tolist()} for e, k in zip(entries, keypoints, strict=True)]


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_oracle_heatmaps_of_mirrored_crops_flip_back_to_the_plain_ones(synthetic_coco: Path, convention: str) -> None:
    coco = load_coco(synthetic_coco / "annotations.json")
    cfg = Config()
    cfg.codec.convention = convention
    estimator = TopDownEstimator(None, cfg)
    people = ground_truth_people(coco, 1)
    network_fn = oracle_network_fn(estimator, people)
    matrices = estimator.crop_matrices(*estimator.crop_regions(people.boxes))
    mirrored = geometry.mirror_matrix(matrices, cfg.model.input_size[0], convention)
    crops = np.zeros((len(people), 4, 4, 3), dtype=np.uint8)  # the oracle never looks at pixels
    (plain,) = network_fn(crops, matrices, np.zeros(len(people), dtype=bool))
    assert plain.shape == (len(people), 17, 64, 48) and plain.max() > 0.9
    (mirrored_maps,) = network_fn(crops, mirrored, np.ones(len(people), dtype=bool))
    flipped_back = codec.flip_heatmaps(mirrored_maps, convention)
    inside = slice(1, None)  # a legacy mirror leaves column 0 without a source
    np.testing.assert_allclose(flipped_back[..., inside], plain[..., inside], atol=1e-6)
    # Both views in one call (as the flip test batches them): the first half plain, the second mirrored.
    (both,) = network_fn(
        np.concatenate([crops, crops]), np.concatenate([matrices, mirrored]), np.arange(2 * len(people)) >= len(people)
    )
    np.testing.assert_allclose(both[: len(people)], plain)
    np.testing.assert_allclose(
        codec.flip_heatmaps(both[len(people) :], convention)[..., inside], plain[..., inside], atol=1e-6
    )


def test_oracle_on_synthetic_data_is_exact(synthetic_coco: Path) -> None:
    coco = load_coco(synthetic_coco / "annotations.json")
    cfg = _config()
    evaluation = evaluate_oracle(coco, cfg, synthetic_coco / "images", error_console())
    assert evaluation.metrics["AP"] >= 0.99 and not evaluation.blank
    # Keypoint by keypoint: within 0.05 heatmap pixels of the ground truth (a half-pixel slip is 10x that).
    estimator = TopDownEstimator(None, cfg)
    checked = 0
    for image_id in evaluation.image_ids:
        people = ground_truth_people(coco, image_id)
        assert keypoints_outside_crops(estimator, people) == 0
        mine = [e for e in evaluation.entries if e["image_id"] == image_id]
        boxes = np.array([e["bbox"] for e in mine])
        decoded = keypoints_array(mine)
        _, sizes = estimator.crop_regions(people.boxes)
        for i, box in enumerate(people.boxes):
            match = int(np.argmin(np.abs(boxes - box).sum(axis=1)))
            error = np.abs(decoded[match, :, :2] - people.keypoints[i]) / sizes[i] * cfg.model.heatmap_size
            assert error[people.visible[i]].max() < 0.05
            checked += 1
    assert checked == len(evaluation.entries) > 0
    # A systematic one-heatmap-pixel bias costs clearly measurable AP: the threshold above would catch it.
    assert evaluate_keypoints(coco, _biased(evaluation.entries, cfg, 1.0))["AP"] < 0.95


def test_oracle_ignores_pixels(synthetic_coco: Path) -> None:
    coco = load_coco(synthetic_coco / "annotations.json")
    with_images = evaluate_oracle(coco, _config("argmax"), synthetic_coco / "images", error_console(), limit=4)
    blank = evaluate_oracle(coco, _config("argmax"), None, error_console(), limit=4)
    assert blank.metrics == with_images.metrics and blank.image_ids == with_images.image_ids == [1, 2, 3, 4]


def test_oracle_on_coco_mini(coco_mini: Path) -> None:
    coco = load_coco(coco_mini / COCO_VAL)
    images = coco_mini / "val2017"
    dark = evaluate_oracle(coco, _config("dark"), images, error_console())
    argmax = evaluate_oracle(coco, _config("argmax"), images, error_console())
    # The ceiling is below 1 only because a few annotated keypoints lie outside the padded box crop.
    assert dark.metrics["AP"] >= 0.978  # measured 0.981 (argmax 0.978)
    assert dark.metrics["AP"] >= argmax.metrics["AP"] >= 0.97
    estimator = TopDownEstimator(None, Config())
    inside = [i for i in dark.image_ids if keypoints_outside_crops(estimator, ground_truth_people(coco, i)) == 0]
    assert len(inside) >= len(dark.image_ids) - 5
    entries = [e for e in dark.entries if e["image_id"] in set(inside)]
    assert evaluate_keypoints(coco, entries, inside)["AP"] >= 0.999
    assert evaluate_keypoints(coco, _biased(entries, Config(), 1.0), inside)["AP"] < 0.95


def test_flip_test_does_not_change_the_oracle(synthetic_coco: Path) -> None:
    coco = load_coco(synthetic_coco / "annotations.json")
    flip = evaluate_oracle(coco, _config(flip=True), None, error_console(), limit=6)
    plain = evaluate_oracle(coco, _config(flip=False), None, error_console(), limit=6)
    np.testing.assert_allclose(keypoints_array(flip.entries), keypoints_array(plain.entries), atol=1e-3)


def test_oks_nms_keeps_every_ground_truth_person(synthetic_coco: Path) -> None:
    coco = load_coco(synthetic_coco / "annotations.json")
    evaluation = evaluate_oracle(coco, _config(), None, error_console())
    assert len(evaluation.entries) == sum(len(ground_truth_people(coco, i)) for i in evaluation.image_ids)
