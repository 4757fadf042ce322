"""A tracked results file as per-track time series (frames, seconds, keypoints), every field it needs checked.

Each entry needs ``image_id`` (the frame index), ``track_id`` (>= 1), ``keypoints`` (x, y, confidence
triplets of one keypoint set: 17 COCO, 26 Halpe or 133 COCO-WholeBody, the same in every entry) and, unless a
frame rate is given, ``timestamp`` (seconds). Entries the tracker filled into a gap (``"interpolated": true``)
are not measurements: they are left out, so their frames are gaps.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
from toppose.common.errors import UserError
from toppose.common.numbers import MAX_COORDINATE, is_coordinate, is_number
from toppose.tracking.kinematics.keypoint_sets import SETS, KeypointSet


@dataclass
class TrackSeries:
    """One track's measured frames, in frame order."""

    track_id: int
    frames: np.ndarray  # (T,) frame indices, increasing
    times: np.ndarray  # (T,) seconds, increasing
    keypoints: np.ndarray  # (T, K, 3) x, y, confidence


@dataclass
class TrackedResults:
    """The tracks of a results file, where their times come from, and the tracker-filled entries left out."""

    tracks: list[TrackSeries]
    time_source: str
    interpolated: int
    keypoint_set: KeypointSet


def _is_index(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _check_entry(entry: Any, index: int, source: str) -> None:
    where = f"{source}: entry {index}"
    if not isinstance(entry, dict):
        raise UserError(f"{where} is not an object")
    if not _is_index(entry.get("image_id"), 0):
        raise UserError(f"{where} 'image_id' must be a frame index (an integer >= 0), got {entry.get('image_id')!r}")
    if not _is_index(entry.get("track_id"), 1):
        raise UserError(f"{where} 'track_id' must be a track id (an integer >= 1), got {entry.get('track_id')!r}")
    keypoints = entry.get("keypoints")
    if not isinstance(keypoints, list) or len(keypoints) % 3 or len(keypoints) // 3 not in SETS:
        counts = " or ".join(f"{3 * n} ({s.name})" for n, s in SETS.items())
        raise UserError(f"{where} 'keypoints' must be a list of {counts} numbers")
    if not all(is_coordinate(v) for v in keypoints):
        raise UserError(f"{where} 'keypoints' must hold finite numbers within {MAX_COORDINATE:g} pixels")
    if "timestamp" in entry and not is_number(entry["timestamp"]):
        raise UserError(f"{where} 'timestamp' must be a finite number of seconds, got {entry['timestamp']!r}")


def read_tracks(entries: Any, source: str, fps: float | None = None) -> TrackedResults:
    """The tracks of a parsed results list; any entry that cannot be used is a :class:`UserError` naming it.

    Times are the entries' ``timestamp`` where every entry has one, else ``image_id / fps``; with
    neither, the error says to give the frame rate.
    """
    if not isinstance(entries, list):
        raise UserError(f"{source}: expected a JSON list of COCO keypoint results, got {type(entries).__name__}")
    if entries and not any(isinstance(e, dict) and "track_id" in e for e in entries):
        raise UserError(
            f"{source}: no track ids: track the people first (python run.py VIDEO --track, or python -m tracking)"
        )
    for index, entry in enumerate(entries):
        _check_entry(entry, index, source)
    counts = {len(e["keypoints"]) // 3 for e in entries} or {17}
    if len(counts) > 1:
        index = next(i for i, e in enumerate(entries) if len(e["keypoints"]) != len(entries[0]["keypoints"]))
        raise UserError(f"{source}: entry {index} has {len(entries[index]['keypoints']) // 3} keypoints, entry 0 "
                        f"{len(entries[0]['keypoints']) // 3}: one keypoint set per file")  # fmt: skip
    kind = SETS[counts.pop()]
    stamped = all("timestamp" in e for e in entries)
    if not stamped and fps is None:
        index = next(i for i, e in enumerate(entries) if "timestamp" not in e)
        raise UserError(f"{source}: entry {index} has no 'timestamp': give the video's frame rate with --fps F")
    time_source = "video timestamps" if stamped else f"frame index / {fps:g} frames/s"
    measured = [e for e in entries if e.get("interpolated") is not True]
    by_track: dict[int, dict[int, dict[str, Any]]] = defaultdict(dict)
    for entry in measured:
        frames = by_track[entry["track_id"]]
        if entry["image_id"] in frames:
            raise UserError(f"{source}: track {entry['track_id']} has two entries for frame {entry['image_id']}")
        frames[entry["image_id"]] = entry
    tracks = []
    for track_id in sorted(by_track):
        rows = [by_track[track_id][frame] for frame in sorted(by_track[track_id])]
        frames = np.array([e["image_id"] for e in rows], dtype=np.int64)
        times = np.array([e["timestamp"] for e in rows] if stamped else frames / fps, dtype=np.float64)
        if (np.diff(times) <= 0).any():
            frame = frames[1:][np.diff(times) <= 0][0]
            raise UserError(f"{source}: track {track_id}: the timestamp of frame {frame} is not after the one before")
        keypoints = np.array([e["keypoints"] for e in rows], dtype=np.float64).reshape(-1, len(kind.names), 3)
        tracks.append(TrackSeries(track_id, frames, times, keypoints))
    return TrackedResults(tracks, time_source, len(entries) - len(measured), kind)
