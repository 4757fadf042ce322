"""COCO annotation files and COCOeval's keypoint summary as a plain dict."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from toppose.common.errors import UserError
from toppose.common.jsonio import read_json
from toppose.common.schema import NUM_KEYPOINTS

DATASET_LISTS = ("images", "annotations")
KEYPOINT_FIELDS = ("keypoints", "num_keypoints")  # what instance annotations lack
ANNOTATION_FIELDS = ("id", "image_id", "category_id", "bbox", "area", "iscrowd")  # what COCOeval reads too
METRIC_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def _annotation_problem(annotation: Any) -> str | None:
    """What keeps one entry of ``annotations`` from being a COCO person-keypoints annotation, or ``None``."""
    if not isinstance(annotation, dict):
        return f"expected an object, got {type(annotation).__name__}"
    keypoint_fields = [name for name in KEYPOINT_FIELDS if name not in annotation]
    if keypoint_fields:
        listed = " and ".join(repr(name) for name in keypoint_fields)
        return f"no {listed}: instance annotations? (give the person_keypoints_*.json file)"
    missing = [name for name in ANNOTATION_FIELDS if name not in annotation]
    if missing:
        return f"no {', '.join(repr(name) for name in missing)}"
    keypoints = annotation["keypoints"]
    if not isinstance(keypoints, list) or len(keypoints) != 3 * NUM_KEYPOINTS:
        return f"'keypoints' must be a list of {3 * NUM_KEYPOINTS} numbers (x, y, v of {NUM_KEYPOINTS} keypoints)"
    return None


def _keypoints_file_problem(dataset: Any) -> str | None:
    """What keeps a parsed JSON file from being a COCO person-keypoints annotation file, or ``None``."""
    if not isinstance(dataset, dict) or not all(isinstance(dataset.get(name), list) for name in DATASET_LISTS):
        return "not a COCO annotation file (needs 'images' and 'annotations' lists)"
    for index, annotation in enumerate(dataset["annotations"]):
        problem = _annotation_problem(annotation)
        if problem:
            return f"not a COCO person-keypoints file: annotation {index}: {problem}"
    return None


def load_coco(path: str | Path) -> COCO:
    """Load a COCO person-keypoints annotation file quietly, bounded as every JSON input (:func:`read_json`).

    A missing file, a non-COCO file or another kind of COCO file (instances, captions) is a :class:`UserError`.
    """
    path = Path(path)
    dataset = read_json(path, "COCO annotation file")
    problem = _keypoints_file_problem(dataset)
    if problem:
        raise UserError(f"{path}: {problem}")
    coco = COCO()
    coco.dataset = dataset
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            coco.createIndex()
    except (KeyError, TypeError) as err:
        raise UserError(f"{path}: not a COCO annotation file ({type(err).__name__}: {err})") from None
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
