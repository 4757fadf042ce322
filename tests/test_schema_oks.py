"""The COCO keypoint schema and OKS agree with pycocotools."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools.cocoeval import Params
from toppose.common.schema import FLIP_INDEX, FLIP_PAIRS, KEYPOINT_NAMES, NUM_KEYPOINTS, OKS_SIGMAS, SKELETON
from toppose.pose.oks import oks, oks_nms


def test_schema_is_consistent() -> None:
    assert NUM_KEYPOINTS == 17 == len(OKS_SIGMAS)
    np.testing.assert_allclose(OKS_SIGMAS, Params(iouType="keypoints").kpt_oks_sigmas)
    for left, right in FLIP_PAIRS:
        assert KEYPOINT_NAMES[left].replace("left", "right") == KEYPOINT_NAMES[right]
        assert OKS_SIGMAS[left] == OKS_SIGMAS[right]
    assert sorted(FLIP_INDEX) == list(range(NUM_KEYPOINTS))
    assert all(FLIP_INDEX[FLIP_INDEX[k]] == k for k in range(NUM_KEYPOINTS))
    for a, b in SKELETON:
        flipped = (FLIP_INDEX[a], FLIP_INDEX[b])
        assert flipped in SKELETON or flipped[::-1] in SKELETON, "the skeleton must be mirror-symmetric"


def _coco_oks(gt: np.ndarray, dt: np.ndarray, area: float) -> float:
    """pycocotools' formula, written out as in COCOeval.computeOks for one labelled pose."""
    variances = (OKS_SIGMAS * 2) ** 2
    e = ((dt - gt) ** 2).sum(axis=1) / variances / (area + np.spacing(1)) / 2
    return float(np.exp(-e).mean())


def test_oks_matches_coco_formula() -> None:
    rng = np.random.default_rng(0)
    gt = rng.uniform(0, 100, (17, 2))
    dt = gt + rng.normal(0, 3, (17, 2))
    assert oks(gt, dt[None], 5000.0)[0] == pytest.approx(_coco_oks(gt, dt, 5000.0))
    assert oks(gt, gt[None], 5000.0)[0] == pytest.approx(1.0)


def test_oks_nms_drops_duplicates_keeps_distinct() -> None:
    rng = np.random.default_rng(1)
    person = rng.uniform(0, 100, (17, 2))
    other = person + 300
    poses = np.stack([person, person + 0.5, other])
    keep = oks_nms(poses, np.array([0.9, 0.8, 0.7]), np.full(3, 10000.0), threshold=0.9)
    assert keep == [0, 2]
