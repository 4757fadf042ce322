"""How well tracking and smoothing do on sequences with known identities: identity metrics and keypoint OKS.

The scenarios: ours (:mod:`benchmarks.sequences`), the crowd families of issue #24 generated apart from
them (``hd-*``, :mod:`benchmarks.crowd_scenarios`) and the real trajectories of TUD-Campus and
TUD-Stadtmitte with simulated pose detections (``tud-*``, :mod:`benchmarks.tud`).
``python -m benchmarks.tracking`` prints, per scenario, IDF1, ID switches and MOTA (py-motmetrics, a
test dependency), HOTA (TrackEval's official implementation, when installed) and the mean OKS of the
detections against the truth as detected, tracked online and offline, and as tracked on the same
detections by ByteTrack and OC-SORT when ``boxmot`` is installed; plus the along-motion lag of the
keypoints. Every output entry counts, as in the standard evaluators. Where the camera moves, the
sequence is rendered and our tracker gets the camera motion estimated from the frames
(:mod:`tracking.camera`; ``--no-cmc``: not).
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from toppose.common.errors import UserError, run_cli
from toppose.pose.oks import oks
from toppose.pose.results import keypoints_array
from toppose.tracking.association import iou_matrix
from toppose.tracking.camera import CameraMotion
from toppose.tracking.offline import DEFAULT_MAX_GAP, track_entries
from toppose.tracking.online import TrackingConfig

from benchmarks import crowd_scenarios, sequences, tud
from benchmarks.sequences import Sequence, render_frames
from benchmarks.tracker_peers import PEERS, boxmot_version, track_with_peer

# Scenario name -> generator(name, seed).
GENERATORS: dict[str, Callable[[str, int], Sequence]] = {
    **dict.fromkeys(sequences.SCENARIOS, sequences.make_sequence),
    **dict.fromkeys(crowd_scenarios.FAMILIES, crowd_scenarios.make_sequence),
    **dict.fromkeys(tud.SEQUENCES, tud.make_sequence),
}

MATCH_IOU = 0.5  # a hypothesis box must overlap the truth by this IoU to count as the same person


def identity_metrics(sequence: Sequence, entries: list[dict[str, Any]]) -> dict[str, float]:
    """IDF1, ID switches, MOTA and HOTA (nan without TrackEval) of tracked ``entries``; every entry counts."""
    try:
        import motmetrics
    except ImportError:
        raise UserError("identity metrics need py-motmetrics: pip install -e '.[test]'") from None
    accumulator = motmetrics.MOTAccumulator(auto_id=True)
    hypotheses: list[list[dict[str, Any]]] = [[] for _ in sequence.truth]
    for entry in entries:
        if 0 <= entry["image_id"] < len(sequence.truth):
            hypotheses[entry["image_id"]].append(entry)
    overlaps = []
    for people, hyps in zip(sequence.truth, hypotheses, strict=True):
        boxes = np.array([h["bbox"] for h in hyps]).reshape(-1, 4)
        overlaps.append(iou_matrix(people.boxes, boxes))
        distances = 1.0 - overlaps[-1]
        distances[distances > 1.0 - MATCH_IOU] = np.nan
        accumulator.update(list(people.ids), [h["track_id"] for h in hyps], distances)
    summary = motmetrics.metrics.create().compute(accumulator, metrics=["idf1", "num_switches", "mota"])
    row = summary.iloc[0]
    hota = hota_score(sequence, hypotheses, overlaps)
    return {"idf1": float(row["idf1"]), "id_switches": int(row["num_switches"]), "mota": float(row["mota"]),
            "hota": hota}  # fmt: skip


def hota_score(sequence: Sequence, hypotheses: list[list[dict[str, Any]]], overlaps: list[np.ndarray]) -> float:
    """HOTA (mean over the localisation thresholds) by TrackEval on box IoU; nan if TrackEval is not installed."""
    try:
        from trackeval.metrics import HOTA
    except ImportError:
        return float("nan")
    gt_index = {int(i): n for n, i in enumerate(sorted({int(i) for f in sequence.truth for i in f.ids}))}
    track_index = {i: n for n, i in enumerate(sorted({h["track_id"] for hyps in hypotheses for h in hyps}))}
    data = {
        "num_gt_ids": len(gt_index),
        "num_tracker_ids": len(track_index),
        "num_gt_dets": sum(len(f.ids) for f in sequence.truth),
        "num_tracker_dets": sum(len(h) for h in hypotheses),
        "gt_ids": [np.array([gt_index[int(i)] for i in f.ids], dtype=int) for f in sequence.truth],
        "tracker_ids": [np.array([track_index[h["track_id"]] for h in hyps], dtype=int) for hyps in hypotheses],
        "similarity_scores": overlaps,
    }
    return float(np.mean(HOTA().eval_sequence(data)["HOTA"]))


def keypoint_accuracy(sequence: Sequence, entries: list[dict[str, Any]]) -> tuple[float, float]:
    """Mean OKS against the truth, and mean along-motion error (lag, in person heights; negative = behind).

    Over the entries that come from a true person (``gt_id`` >= 0); gap-filling entries have none.
    """
    scores, lags = [], []
    for entry in entries:
        gt_id = entry.get("gt_id", -1)
        if gt_id < 0:
            continue
        frame = entry["image_id"]
        people = sequence.truth[frame]
        i = int(np.flatnonzero(people.ids == gt_id)[0])
        points = keypoints_array([entry])[0, :, :2]
        valid = people.visibility[i] > 0
        scores.append(float(oks(people.keypoints[i], points[None], people.areas[i], valid)[0]))
        velocity = _hip_velocity(sequence, gt_id, frame)
        speed = np.linalg.norm(velocity)
        if speed > 0:
            along = ((points - people.keypoints[i])[valid] @ (velocity / speed)).mean()
            lags.append(along / people.heights[i])
    return float(np.mean(scores)), float(np.mean(lags)) if lags else 0.0


def _hip_velocity(sequence: Sequence, gt_id: int, frame: int) -> np.ndarray:
    """The true per-frame velocity of a person's hip centre (backward difference; zero where unknown)."""
    if frame == 0:
        return np.zeros(2)
    now, before = sequence.truth[frame], sequence.truth[frame - 1]
    if gt_id not in before.ids:
        return np.zeros(2)
    hips = (11, 12)
    a = now.keypoints[np.flatnonzero(now.ids == gt_id)[0], hips].mean(axis=0)
    b = before.keypoints[np.flatnonzero(before.ids == gt_id)[0], hips].mean(axis=0)
    return a - b


def make_sequence(name: str, seed: int) -> Sequence:
    """The scenario ``name`` (see :data:`GENERATORS`) reproducible from ``seed``."""
    return GENERATORS[name](name, seed)


def estimate_camera(sequence: Sequence) -> dict[int, np.ndarray]:
    """The frame-to-frame camera maps estimated from the rendered sequence (frame index -> ``(2, 3)``)."""
    motion = CameraMotion()
    maps = {t: motion(frame) for t, frame in enumerate(render_frames(sequence))}
    return {t: m for t, m in maps.items() if m is not None}


def evaluate_sequence(
    sequence: Sequence,
    cfg: TrackingConfig | None = None,
    peers: bool = False,
    cmc: bool = True,
    max_gap: int = DEFAULT_MAX_GAP,
) -> dict[str, dict[str, float]]:
    """Identity and keypoint metrics for the raw detections, online and offline tracking, and the peers."""
    raw_oks, raw_lag = keypoint_accuracy(sequence, sequence.detections)
    results = {"raw": {"oks": raw_oks, "lag": raw_lag}}
    modes = ["online", "offline", *(PEERS if peers and boxmot_version() else [])]
    camera = estimate_camera(sequence) if cmc and sequence.camera is not None else None
    for mode in modes:
        started = time.perf_counter()
        if mode in PEERS:
            entries = track_with_peer(mode, sequence.detections, sequence.width, sequence.height)
        else:
            entries = track_entries(sequence.detections, cfg, mode == "online", max_gap, camera)
        seconds = time.perf_counter() - started
        mean_oks, lag = keypoint_accuracy(sequence, entries)
        results[mode] = {**identity_metrics(sequence, entries), "oks": mean_oks, "lag": lag,
                         "fps": len(sequence.truth) / seconds}  # fmt: skip
    return results


def tracking_config(settings: list[str]) -> TrackingConfig:
    """The default tracking settings with ``KEY=VALUE`` changes to the tracker's (numbers, true or false)."""
    cfg = TrackingConfig()
    for setting in settings:
        key, _, text = setting.partition("=")
        if not hasattr(cfg.tracker, key) or not text:
            raise UserError(f"--set {setting}: expected KEY=VALUE with KEY one of {sorted(vars(cfg.tracker))}")
        kind = type(getattr(cfg.tracker, key))
        try:
            value = {"true": True, "false": False}[text.lower()] if kind is bool else kind(text)
        except (KeyError, ValueError):
            raise UserError(f"--set {setting}: {text!r} is not a {kind.__name__}") from None
        setattr(cfg.tracker, key, value)
    return cfg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.tracking", description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", nargs="+", choices=list(GENERATORS), default=list(GENERATORS))
    parser.add_argument("--seeds", type=int, default=3, help="sequences per scenario (seeds FIRST..FIRST+N-1)")
    parser.add_argument("--first-seed", type=int, default=0, metavar="FIRST", help="the first seed (default 0)")
    parser.add_argument("--no-peers", action="store_true", help="leave out boxmot's ByteTrack and OC-SORT")
    parser.add_argument("--no-cmc", action="store_true", help="no camera motion compensation for moving cameras")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                        help="tracker settings to change (fields of TrackerConfig, e.g. max_missed=30)")  # fmt: skip
    parser.add_argument("--max-gap", type=int, default=DEFAULT_MAX_GAP, help="offline: longest gap filled")
    args = parser.parse_args(argv)
    cfg = tracking_config(args.set)
    from rich.console import Console
    from rich.table import Table

    peers = boxmot_version()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    new = any(name not in sequences.SCENARIOS for name in args.scenarios)
    table = Table(
        title=f"Tracking (mean over seeds {seeds[0]}-{seeds[-1]}; ID switches: mean per sequence)",
        caption="lag: mean keypoint error along the motion, in body heights (negative: behind the person); "
        + (f"bytetrack, ocsort: boxmot {peers}, default parameters" if peers else "boxmot not installed: no peers")
        + ("; HOTA: TrackEval" if importlib.util.find_spec("trackeval") else "; TrackEval not installed: no HOTA")
        + (f"; hd-*, tud-* poses: {crowd_scenarios.pose_library()[0]}" if new else ""),
    )
    for column in ("scenario", "mode", "IDF1", "IDsw", "MOTA", "HOTA", "OKS", "lag", "frames/s"):
        table.add_column(column, justify="left" if column in ("scenario", "mode") else "right")
    for name in args.scenarios:
        runs = [
            evaluate_sequence(make_sequence(name, seed), cfg, not args.no_peers, not args.no_cmc, args.max_gap)
            for seed in seeds
        ]
        for mode in runs[0]:
            mean = {k: float(np.mean([r[mode][k] for r in runs])) for k in runs[0][mode]}
            ident = ["", "", "", ""]
            if mode != "raw":
                ident = [
                    f"{mean['idf1']:.3f}",
                    f"{mean['id_switches']:.1f}",
                    f"{mean['mota']:.3f}",
                    f"{mean['hota']:.3f}",
                ]
            fps = f"{mean['fps']:.0f}" if "fps" in mean else ""
            table.add_row(name, mode, *ident, f"{mean['oks']:.3f}", f"{mean['lag']:+.4f}", fps)
        table.add_section()
    Console(width=max(Console().width, 110)).print(table)
    return 0


if __name__ == "__main__":
    run_cli(main)
