"""Networks trained in each published pixel convention, played by the oracle through the production path.

The simulated network sees the crops as the estimator cut them (mirrored ones too) and answers the way a
network trained in its convention does (MMPose's ``TopdownAffine``/``get_udp_warp_matrix`` for the
crop, ``MSRAHeatmap``/``UDPHeatmap`` for the targets). Decoded in the declared convention, the
keypoints carry no offset and no scale error, with and without the flip test; decoded in another
one they carry the errors measured in the first version (+0.375 heatmap px, -1.6 % scale).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from toppose.common.coco import load_coco
from toppose.common.config import Config
from toppose.eval.oracle import SimulatedNetwork, oracle_poses
from toppose.pose.annotations import ground_truth_people
from toppose.pose.geometry import CONVENTIONS, to_normalized
from toppose.pose.inference import TopDownEstimator
from toppose.pose.registry import REGISTRY
from toppose.pose.setup import apply_weights_setup

COCO_VAL = Path("annotations") / "person_keypoints_val2017.json"
INNER = 0.45  # keypoints this far from the crop centre (normalized) are well inside every heatmap


def _config(convention: str, flip: bool, codec: str = "heatmap") -> Config:
    cfg = Config()
    cfg.codec.convention, cfg.codec.type = convention, codec
    cfg.inference.flip_test = flip
    return cfg


def _decoded_pairs(coco: COCO, cfg: Config, network: SimulatedNetwork) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth and decoded keypoints of every labelled, well-inside keypoint, DeepPose-normalized."""
    estimator = TopDownEstimator(None, cfg)
    truth, decoded = [], []
    for image_id in sorted(coco.getImgIds()):
        people = ground_truth_people(coco, image_id)
        if not len(people):
            continue
        frame = np.zeros((8, 8, 3), dtype=np.uint8)  # the oracle never looks at pixels
        result = oracle_poses(estimator, frame, people, nms=False, network=network, image_id=image_id)
        centers, sizes = estimator.crop_regions(people.boxes)
        for i, box in enumerate(people.boxes):
            j = int(np.flatnonzero((result.boxes == box).all(axis=1))[0])
            gt = to_normalized(people.keypoints[i][None], centers[i : i + 1], sizes[i : i + 1])[0]
            out = to_normalized(result.keypoints[j, :, :2][None], centers[i : i + 1], sizes[i : i + 1])[0]
            keep = people.visible[i] & (np.abs(gt) < INNER).all(axis=1)
            truth.append(gt[keep])
            decoded.append(out[keep])
    return np.concatenate(truth), np.concatenate(decoded)


def _bias_and_scale(coco: COCO, cfg: Config, network: SimulatedNetwork) -> tuple[np.ndarray, np.ndarray]:
    """Mean signed error (x, y) in heatmap pixels, and the scale (x, y) of decoded about the crop centre."""
    truth, decoded = _decoded_pairs(coco, cfg, network)
    assert len(truth) > 100
    bias = (decoded - truth).mean(axis=0) * np.asarray(cfg.model.heatmap_size)
    scale = (decoded * truth).sum(axis=0) / (truth * truth).sum(axis=0)
    return bias, scale


def _assert_exact(bias: np.ndarray, scale: np.ndarray) -> None:
    assert np.abs(bias).max() < 0.05, f"mean signed error {bias} heatmap px"
    assert np.abs(scale - 1.0).max() < 0.002, f"scale {scale}"


@pytest.mark.parametrize("codec", ["heatmap", "simcc"])
@pytest.mark.parametrize("flip", [True, False], ids=["flip", "no-flip"])
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_each_convention_decodes_without_bias_on_synthetic_data(
    synthetic_coco: Path, convention: str, flip: bool, codec: str
) -> None:
    coco = load_coco(synthetic_coco / "annotations.json")
    _assert_exact(*_bias_and_scale(coco, _config(convention, flip, codec), SimulatedNetwork(convention)))


@pytest.mark.parametrize("codec", ["heatmap", "simcc"])
@pytest.mark.parametrize("flip", [True, False], ids=["flip", "no-flip"])
@pytest.mark.parametrize("convention", CONVENTIONS)
def test_each_convention_decodes_without_bias_on_coco_mini(
    coco_mini: Path, convention: str, flip: bool, codec: str
) -> None:
    coco = load_coco(coco_mini / COCO_VAL)
    _assert_exact(*_bias_and_scale(coco, _config(convention, flip, codec), SimulatedNetwork(convention)))


# One registry entry per distinct (codec, convention, input size): every setup the zoo ships.
SETUPS = sorted({(e.codec, e.convention, e.input_size): name for name, e in REGISTRY.items()}.values())


@pytest.mark.parametrize("flip", [True, False], ids=["flip", "no-flip"])
@pytest.mark.parametrize("name", SETUPS)
def test_every_registered_setup_decodes_without_bias(synthetic_coco: Path, name: str, flip: bool) -> None:
    cfg = Config()
    cfg.model.weights = name
    apply_weights_setup(cfg, explicit={})  # the registry's setup, nothing downloaded
    cfg.inference.flip_test = flip
    coco = load_coco(synthetic_coco / "annotations.json")
    _assert_exact(*_bias_and_scale(coco, cfg, SimulatedNetwork()))


@pytest.mark.parametrize("flip", [True, False], ids=["flip", "no-flip"])
def test_a_legacy_network_decoded_as_half_pixel_is_off_by_three_eighths(synthetic_coco: Path, flip: bool) -> None:
    # The first version's defect: (1 - 1/stride) / 2 = 0.375 heatmap px in y, and in x too without the
    # flip test (with it, mirroring about (W - 1) / 2 happens to cancel the x offset).
    coco = load_coco(synthetic_coco / "annotations.json")
    bias, _ = _bias_and_scale(coco, _config("half_pixel", flip), SimulatedNetwork("legacy"))
    assert bias[1] == pytest.approx(0.375, abs=0.03)
    assert bias[0] == pytest.approx(0.0 if flip else 0.375, abs=0.03)


def test_a_udp_network_decoded_as_half_pixel_is_scaled(synthetic_coco: Path) -> None:
    coco = load_coco(synthetic_coco / "annotations.json")
    _, scale = _bias_and_scale(coco, _config("half_pixel", True), SimulatedNetwork("udp"))
    cfg = Config()
    (w, h), (wh, hh) = cfg.model.input_size, cfg.model.heatmap_size
    expected = np.array([w * (wh - 1) / ((w - 1) * wh), h * (hh - 1) / ((h - 1) * hh)])  # 0.984 at 192 -> 48
    np.testing.assert_allclose(scale, expected, atol=0.002)
