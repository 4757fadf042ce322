"""COCO annotation files and COCOeval's keypoint summary as a plain dict."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from toppose.common.errors import UserError

METRIC_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def load_coco(path: str | Path) -> COCO:
    """Load a COCO annotation file quietly; a missing or non-COCO file is a :class:`UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"annotation file not found: {path}")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            coco = COCO(str(path))
    except (ValueError, KeyError, TypeError, AssertionError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: not a COCO annotation file ({type(err).__name__}: {err})") from None
    if not isinstance(coco.dataset, dict) or "images" not in coco.dataset or "annotations" not in coco.dataset:
        raise UserError(f"{path}: not a COCO annotation file (needs 'images' and 'annotations')")
    return coco


def evaluate_keypoints(
    coco_gt: COCO, results: list[dict[str, Any]], image_ids: list[int] | None = None
) -> dict[str, float]:
    """Run COCOeval (iouType ``keypoints``) and return the ten summary numbers by name.

    ``image_ids`` restricts the evaluation (default: every image of ``coco_gt``). No results at all
    scores 0 everywhere.
    """
    ids = sorted(coco_gt.getImgIds()) if image_ids is None else sorted(image_ids)
    if not results:
        return dict.fromkeys(METRIC_NAMES, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes([dict(r) for r in results])
        evaluator = COCOeval(coco_gt, coco_dt, "keypoints")
        evaluator.params.imgIds = ids
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: float(value) for name, value in zip(METRIC_NAMES, evaluator.stats, strict=True)}


def selected_image_ids(coco: COCO, limit: int | None = None) -> list[int]:
    """The annotation file's image ids in increasing order, the first ``limit`` of them when given."""
    ids = sorted(coco.getImgIds())
    return ids if limit is None else ids[:limit]
