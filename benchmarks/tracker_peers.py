"""Outside trackers on the same detections, for comparison: ByteTrack and OC-SORT of ``boxmot`` (optional).

They take each frame's detections as an ``(N, 6)`` array (x1, y1, x2, y2, score, class) and the frame
(here a blank one: both use motion only) and report confirmed tracks with the index of the detection
each one matched; the entry of that detection is kept with the peer's box and ``track_id`` (counted
from 1, as ours). Keypoints stay as detected: these trackers do not smooth them.
"""

from __future__ import annotations

import copy
import logging
from collections import defaultdict
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np

PEERS = {"bytetrack": "ByteTrack", "ocsort": "OcSort"}  # our name -> boxmot class, default parameters


def boxmot_version() -> str | None:
    """The installed ``boxmot`` version, or None if it is not installed."""
    try:
        return version("boxmot")
    except PackageNotFoundError:
        return None


def track_with_peer(name: str, entries: list[dict[str, Any]], width: int, height: int) -> list[dict[str, Any]]:
    """The ``entries`` (COCO results, ``image_id`` = frame) tracked by the peer ``name`` (see :data:`PEERS`)."""
    import boxmot

    logging.getLogger("boxmot").disabled = True  # it logs its settings at every construction
    tracker = getattr(boxmot, PEERS[name])()
    frames: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        frames[entry["image_id"]].append(entry)
    blank = np.zeros((height, width, 3), dtype=np.uint8)
    out = []
    for frame in range(max(frames, default=-1) + 1):
        people = frames.get(frame, [])
        boxes = np.array([e["bbox"] for e in people], dtype=np.float64).reshape(-1, 4)
        scores = np.array([e.get("box_score", e["score"]) for e in people], dtype=np.float64)
        detections = np.column_stack([boxes[:, :2], boxes[:, :2] + boxes[:, 2:], scores, np.zeros(len(people))])
        for x0, y0, x1, y1, track_id, *_, index in np.asarray(tracker.update(detections, blank)).reshape(-1, 8):
            entry = copy.deepcopy(people[int(index)])
            entry["bbox"] = [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]
            entry["track_id"] = int(track_id) + 1
            out.append(entry)
    return out
