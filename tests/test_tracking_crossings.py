"""Identities where people cross, on detections like a real pose detector's (issue #24).

The scenario seeds here (7) were used neither to tune the tracker (100-104) nor in the reported benchmark
(0-4). Before the fix, the hd-crowd sequence lost identities 9 times (IDF1 0.655) and TUD-Stadtmitte 18
times (IDF1 0.521); after it, 0 (0.866) and 1 (0.822).
"""

from __future__ import annotations

import numpy as np
import pytest
from toppose.tracking.association import iou_matrix
from toppose.tracking.kalman import BoxKalman
from toppose.tracking.offline import track_entries
from toppose.tracking.tracker import Tracker

from benchmarks.crowd_scenarios import COCO_MINI
from benchmarks.tracker_peers import track_with_peer
from benchmarks.tracking import identity_metrics, keypoint_accuracy, make_sequence
from tests.test_tracking import people, step

pytest.importorskip("motmetrics")
SEED = 7


@pytest.fixture(scope="module")
def coco_poses() -> None:
    """The new scenarios' people carry real COCO poses; skip where ``coco-mini`` is absent."""
    if not (COCO_MINI / "annotations" / "person_keypoints_train2017.json").is_file():
        pytest.skip(f"COCO subset not found at {COCO_MINI} (set COCO_MINI to its folder)")


def test_the_new_scenarios_are_what_the_issue_describes(coco_poses: None) -> None:
    crowd = make_sequence("hd-crowd", SEED)
    assert (crowd.width, crowd.height, len(crowd.truth)) == (1280, 720, 300)
    assert len({int(i) for frame in crowd.truth for i in frame.ids}) == 9
    true = [d for d in crowd.detections if d["gt_id"] >= 0]
    false = [d for d in crowd.detections if d["gt_id"] < 0]
    assert all(0.6 <= d["box_score"] <= 0.99 for d in true) and all(0.3 <= d["box_score"] <= 0.6 for d in false)
    assert 0.05 * 300 / 3 < len(false) < 0.15 * 300 * 2
    for t, frame in enumerate(crowd.truth):  # the farther of two people overlapping by IoU > 0.45 is never detected
        overlap = iou_matrix(frame.boxes, frame.boxes) > 0.45
        feet = frame.boxes[:, 1] + frame.boxes[:, 3]
        hidden = {int(frame.ids[i]) for i, j in zip(*np.nonzero(overlap), strict=True) if feet[i] < feet[j]}
        assert not hidden & {d["gt_id"] for d in true if d["image_id"] == t}
    assert 0.35 < keypoint_accuracy(crowd, crowd.detections)[0] < 0.55  # keypoint noise of about 1 OKS sigma width
    approach = make_sequence("hd-approach", SEED)
    heights = {int(i): [] for frame in approach.truth for i in frame.ids}
    for frame in approach.truth:
        for i, box in zip(frame.ids, frame.boxes, strict=True):
            heights[int(i)].append(box[3])
    assert max(max(h) / min(h) for h in heights.values()) > 1.5  # walking towards the camera
    stadtmitte = make_sequence("tud-stadtmitte", SEED)
    assert len(stadtmitte.truth) == 179 and len({int(i) for f in stadtmitte.truth for i in f.ids}) == 10


def test_box_shape_noise_does_not_inflate_the_filter() -> None:
    """A walker whose box edges jump with its arms and feet, as boxes around detected keypoints do: the
    filter must learn the walk (4 px a frame), not chase the edges."""
    rng = np.random.default_rng(0)
    kalman = BoxKalman(np.array([100.0, 100.0, 120.0, 300.0]))
    errors = []
    for t in range(1, 60):
        kalman.predict()
        width, height = 120.0 * (1 + rng.normal(0, 0.15)), 300.0 * (1 + rng.normal(0, 0.06))
        centre = np.array([160.0 + 4.0 * t, 250.0]) + rng.normal(0, 3.0, 2)
        kalman.update(np.array([*(centre - [width / 2, height / 2]), width, height]), 0.9)
        if t > 20:
            errors.append(abs(kalman.kf.x[4, 0] - 4.0))
    assert max(errors) < 1.0  # px a frame: measured 0.46 (2.6-3.9 when the box's shape took part in the test)


def test_a_partly_hidden_person_keeps_the_track_against_one_stepping_out_near_it() -> None:
    """A standing person is partly hidden (a low score at the track's place) as an untracked person steps
    out beside them: the track goes on with its own low-score detection, the newcomer starts a track."""
    tracker = Tracker()
    box = [300.0, 100.0, 80.0, 200.0]
    assert step(tracker, people([box])) == [1]
    for _ in range(4):
        step(tracker, people([box]))
    newcomer = [348.0, 110.0, 80.0, 190.0]  # overlapping the track's box a little (IoU 0.22)
    detections = people([box, newcomer], [0.3, 0.9])
    detections.keypoints[1, :, :2] = detections.keypoints[1, ::-1, :2]  # another pose
    tracker.predict()
    uids = tracker.update(detections)
    assert tracker.public_id(uids[0]) == 1 and uids[1] != uids[0]


def test_a_runner_turning_back_in_a_missed_frame_keeps_the_id() -> None:
    tracker = Tracker()
    x = 100.0
    for _ in range(10):
        x += 25.0
        assert step(tracker, people([[x, 100.0, 60.0, 130.0]])) == [1]
    step(tracker, people([]))  # missed where the runner turned back: x + 25, then back to x
    assert step(tracker, people([[x, 100.0, 60.0, 130.0]])) == [1]


@pytest.mark.parametrize(
    ("scenario", "idf1", "switches"), [("hd-crowd", 0.80, 2), ("tud-stadtmitte", 0.78, 4)]
)  # fmt: skip
def test_identities_survive_crossings(coco_poses: None, scenario: str, idf1: float, switches: int) -> None:
    sequence = make_sequence(scenario, SEED)
    metrics = identity_metrics(sequence, track_entries(sequence.detections, online=True))
    assert metrics["idf1"] >= idf1 and metrics["id_switches"] <= switches


@pytest.mark.parametrize("scenario", ["hd-crowd", "hd-approach", "tud-stadtmitte"])
def test_online_keeps_identities_at_least_as_well_as_bytetrack(coco_poses: None, scenario: str) -> None:
    """Our staged association, low-score stage included, against boxmot's ByteTrack (optional) on the same
    detections."""
    pytest.importorskip("boxmot", reason="boxmot (optional: pip install boxmot==25.0.0) is not installed")
    sequence = make_sequence(scenario, SEED)
    ours = identity_metrics(sequence, track_entries(sequence.detections, online=True))
    theirs = identity_metrics(sequence, track_with_peer("bytetrack", sequence.detections, sequence.width,
                                                        sequence.height))  # fmt: skip
    assert ours["idf1"] >= theirs["idf1"] and ours["id_switches"] <= theirs["id_switches"]
