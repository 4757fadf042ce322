"""Shared fixtures: the real COCO subset (skipped where absent) and generated synthetic data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from toppose.common.synthetic import make_dataset

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def coco_mini() -> Path:
    """``../shared/coco-mini`` (or ``$COCO_MINI``); the test is skipped where it is absent."""
    path = Path(os.environ.get("COCO_MINI", ROOT.parent / "shared" / "coco-mini"))
    if not (path / "annotations" / "person_keypoints_val2017.json").is_file():
        pytest.skip(f"COCO subset not found at {path} (set COCO_MINI to its folder)")
    return path


@pytest.fixture(scope="session")
def synthetic_coco(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated COCO keypoint dataset: ``annotations.json`` and ``images/``."""
    out = tmp_path_factory.mktemp("synthetic")
    make_dataset(out, num_images=12, seed=7)
    return out
