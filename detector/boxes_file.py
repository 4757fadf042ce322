"""Precomputed person boxes from a COCO detection-results JSON file.

The file is a list of ``{"image_id": int, "category_id": int, "bbox": [x, y, w, h], "score": float}``
(the format COCO's evaluation server and most detectors write). Only ``category_id == 1`` (person)
entries are kept. An image without entries has no people: :meth:`BoxesByImage.get` returns
``Detections.empty()`` for it, so callers can look up every image id. Every number must be finite and
every coordinate within ``common.numbers.MAX_COORDINATE`` pixels; zero-area boxes are kept but listed
in ``BoxesByImage.problems`` for the caller to warn about (:func:`boxes_outside` finds the boxes that
miss an image). Each image keeps its ``max_people`` best boxes (``detector.max_people``, as the detector's
people are bounded: :meth:`Detections.top`); a file that had more is named in ``problems`` too.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from toppose.common.config import DetectorConfig
from toppose.common.errors import UserError
from toppose.common.jsonio import read_json
from toppose.common.numbers import MAX_COORDINATE, is_coordinate, is_number
from toppose.common.schema import PERSON_CATEGORY_ID
from toppose.detector.detections import Detections


class BoxesByImage(dict[int, Detections]):
    """Person detections per image id; ``get(image_id)`` is ``Detections.empty()`` for an image with none.

    ``problems`` lists what a caller should warn about (one line each), e.g. zero-area boxes.
    """

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def get(self, image_id: int, default: Detections | None = None) -> Detections:  # type: ignore[override]
        return super().get(image_id, Detections.empty() if default is None else default)


def _entry_problem(entry: Any) -> str | None:
    """What is wrong with one results entry, or ``None`` when it is well-formed."""
    if not isinstance(entry, dict):
        return f"expected an object, got {type(entry).__name__}"
    for key in ("image_id", "category_id"):
        if not isinstance(entry.get(key), int) or isinstance(entry.get(key), bool):
            return f"'{key}' must be an integer, got {entry.get(key)!r}"
    bbox = entry.get("bbox")
    if not isinstance(bbox, list) or len(bbox) != 4 or not all(is_number(v) for v in bbox):
        return f"'bbox' must be [x, y, width, height] finite numbers, got {bbox!r}"
    if not all(is_coordinate(v) for v in (*bbox, bbox[0] + bbox[2], bbox[1] + bbox[3])):
        return f"'bbox' {bbox!r} reaches beyond {MAX_COORDINATE:g} pixels: not an image box"
    if bbox[2] < 0 or bbox[3] < 0:
        return f"'bbox' has a negative width or height: {bbox!r}"
    if not is_number(entry.get("score")):
        return f"'score' must be a finite number, got {entry.get('score')!r}"
    return None


def load_boxes(path: str | Path, min_score: float = 0.0, max_people: int = DetectorConfig.max_people) -> BoxesByImage:
    """Person boxes with ``score >= min_score`` per image id, best score first, the best ``max_people`` of each
    image (all where ``max_people`` <= 0).

    A missing file, invalid JSON, a top level that is not a list, or a malformed entry is a
    :class:`UserError` naming the file (and the entry's index).
    """
    path = Path(path)
    entries = read_json(path, "detection results file")
    if not isinstance(entries, list):
        raise UserError(f"{path}: expected a list of COCO detection results, got a JSON {type(entries).__name__}")
    rows: dict[int, list[tuple[list[float], float]]] = defaultdict(list)
    zero_area = []
    for index, entry in enumerate(entries):
        problem = _entry_problem(entry)
        if problem:
            raise UserError(f"{path}: entry {index}: {problem}")
        if entry["category_id"] == PERSON_CATEGORY_ID and entry["score"] >= min_score:
            rows[entry["image_id"]].append((entry["bbox"], entry["score"]))
            if entry["bbox"][2] * entry["bbox"][3] == 0:
                zero_area.append(index)
    boxes = BoxesByImage()
    if zero_area:
        boxes.problems.append(f"{path}: zero-area person boxes find nobody ({_entries(zero_area)})")
    for image_id, people in rows.items():
        boxes[image_id] = _best_first(people).top(max_people)
    crowded = sum(len(people) > len(boxes[image_id]) for image_id, people in rows.items())
    if crowded:
        boxes.problems.append(
            f"{path}: {crowded} image(s) have more than {max_people} person boxes; each keeps its {max_people} "
            "best-scoring (detector.max_people)"
        )
    return boxes


def _best_first(people: list[tuple[list[float], float]]) -> Detections:
    """``(box, score)`` pairs as detections, best score first (ties in file order)."""
    scores = np.array([score for _, score in people], dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    return Detections(np.array([box for box, _ in people], dtype=np.float64)[order], scores[order])


def _entries(indices: list[int], shown: int = 5) -> str:
    listed = ", ".join(str(i) for i in indices[:shown])
    return f"entr{'y' if len(indices) == 1 else 'ies'} {listed}" + (
        f" and {len(indices) - shown} more" if len(indices) > shown else ""
    )


def boxes_outside(detections: Detections, width: int, height: int) -> list[list[float]]:
    """The boxes of ``detections`` that lie wholly outside a ``width`` x ``height`` image."""
    x, y, w, h = detections.boxes.T
    outside = (x + w <= 0) | (y + h <= 0) | (x >= width) | (y >= height)
    return [[float(v) for v in box] for box in detections.boxes[outside]]
