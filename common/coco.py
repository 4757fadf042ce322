"""COCO annotation files and COCOeval's keypoint summary as a plain dict, for every keypoint set.

Results are scored with the OKS sigmas of their keypoint set (:mod:`toppose.common.keypoint_sets`). Results of a
larger set than the annotations' COCO-17 (Halpe-26, COCO-WholeBody) are scored on their COCO-17 body. Against
COCO-WholeBody annotations (``foot_kpts``, ``face_kpts``, ``lefthand_kpts``, ``righthand_kpts`` beside the body's
``keypoints``), 133-point results are scored per part as the COCO-WholeBody protocol reports: body, foot, face,
left hand, right hand, and whole, each with its own sigmas and the person's area.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval
from toppose.common.errors import UserError
from toppose.common.jsonio import read_json
from toppose.common.keypoint_sets import COCO17, KEYPOINT_SETS, WHOLEBODY133, set_of_size

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
    counts = sorted(len(s) for s in KEYPOINT_SETS.values())
    if not isinstance(keypoints, list) or len(keypoints) not in {3 * c for c in counts}:
        sizes = ", ".join(map(str, counts[:-1])) + f" or {counts[-1]}"
        return f"'keypoints' must be a list of x, y, v triplets of {sizes} keypoints (a keypoint set's)"
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


# COCO-WholeBody's fields, in the order of its 133 points
WHOLEBODY_FIELDS = {"body": "keypoints", "foot": "foot_kpts", "face": "face_kpts", "left_hand": "lefthand_kpts",
                    "right_hand": "righthand_kpts"}  # fmt: skip


def annotated_keypoints(coco_gt: COCO) -> int:
    """How many keypoints the annotations' ``keypoints`` hold (17 where there are none)."""
    first = next(iter(coco_gt.anns.values()), None)
    return len(first["keypoints"]) // 3 if first else len(COCO17)


def is_wholebody(coco_gt: COCO) -> bool:
    """Whether the annotations carry COCO-WholeBody's part fields beside the body's ``keypoints``."""
    first = next(iter(coco_gt.anns.values()), None)
    return first is not None and all(name in first for name in WHOLEBODY_FIELDS.values())


def _result_keypoints(coco_gt: COCO, results: list[dict[str, Any]]) -> int:
    """The keypoints per result (the annotations' where there are no results)."""
    return len(results[0]["keypoints"]) // 3 if results else annotated_keypoints(coco_gt)


def scored_keypoints(coco_gt: COCO, results: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str]:
    """The results as the annotations can score them, and what was scored: results of the annotations' own
    set as they are; those of a larger set cut to their first 17 points (COCO's, in every set) where the
    annotations have only those."""
    count, annotated = _result_keypoints(coco_gt, results), annotated_keypoints(coco_gt)
    found = set_of_size(count)
    if count == annotated or found is None:
        return results, found.title if found else f"{count} keypoints"
    if annotated != len(COCO17):
        raise UserError(f"results of {count} keypoints cannot be scored against annotations of {annotated}")
    body = 3 * len(COCO17)
    cut = [{**entry, "keypoints": entry["keypoints"][:body]} for entry in results]
    return cut, f"the COCO-17 body of {found.title}"


def evaluate_keypoints(
    coco_gt: COCO, results: list[dict[str, Any]], image_ids: list[int] | None = None
) -> dict[str, float]:
    """Run COCOeval (iouType ``keypoints``, the sigmas of the results' keypoint set) and return the ten summary
    numbers by name.

    ``image_ids`` restricts the evaluation (default: every image of ``coco_gt``). No results at all scores 0
    everywhere. Results of a larger set than the annotations' COCO-17 are scored on their body
    (:func:`scored_keypoints`).
    """
    results, _ = scored_keypoints(coco_gt, results)
    found = set_of_size(_result_keypoints(coco_gt, results))
    return _cocoeval(coco_gt, results, image_ids, found.sigmas if found is not None else None)


def evaluate_wholebody(
    coco_gt: COCO, results: list[dict[str, Any]], image_ids: list[int] | None = None
) -> dict[str, dict[str, float]]:
    """133-point results against COCO-WholeBody annotations, per part as its protocol reports: ``body``,
    ``foot``, ``face``, ``left_hand``, ``right_hand`` and ``whole``, each the ten summary numbers."""
    scores = {}
    for part, field in [*WHOLEBODY_FIELDS.items(), ("whole", None)]:
        index = list(WHOLEBODY133.parts[part]) if field else list(range(len(WHOLEBODY133)))
        fields = [field] if field else list(WHOLEBODY_FIELDS.values())
        part_gt = COCO()
        annotations = []
        for annotation in coco_gt.dataset["annotations"]:
            points = [v for name in fields for v in annotation[name]]
            annotations.append({**annotation, "keypoints": points, "num_keypoints": sum(v > 0 for v in points[2::3])})
        part_gt.dataset = {**coco_gt.dataset, "annotations": annotations}
        with contextlib.redirect_stdout(io.StringIO()):
            part_gt.createIndex()
        part_results = [
            {**entry, "keypoints": [v for k in index for v in entry["keypoints"][3 * k : 3 * k + 3]]}
            for entry in results
        ]
        scores[part] = _cocoeval(part_gt, part_results, image_ids, WHOLEBODY133.sigmas[index])
    return scores


def _cocoeval(
    coco_gt: COCO, results: list[dict[str, Any]], image_ids: list[int] | None, sigmas: Any
) -> dict[str, float]:
    ids = sorted(coco_gt.getImgIds()) if image_ids is None else sorted(image_ids)
    if not results:
        return dict.fromkeys(METRIC_NAMES, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_dt = coco_gt.loadRes([dict(r) for r in results])
        evaluator = COCOeval(coco_gt, coco_dt, "keypoints")
        evaluator.params.imgIds = ids
        if sigmas is not None:
            evaluator.params.kpt_oks_sigmas = sigmas
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return {name: float(value) for name, value in zip(METRIC_NAMES, evaluator.stats, strict=True)}


def selected_image_ids(coco: COCO, limit: int | None = None) -> list[int]:
    """The annotation file's image ids in increasing order, the first ``limit`` of them when given."""
    ids = sorted(coco.getImgIds())
    return ids if limit is None else ids[:limit]
