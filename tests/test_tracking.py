"""Tracking building blocks: box Kalman filter, IoU/OKS matching, track life cycle, smoothing, results files."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from toppose.common.errors import UserError
from toppose.common.poses import PoseResult
from toppose.common.schema import NUM_KEYPOINTS
from toppose.tracking.association import iou_matrix, match
from toppose.tracking.camera import CameraMotion
from toppose.tracking.kalman import BoxKalman
from toppose.tracking.offline import check_entries, track_entries
from toppose.tracking.smoothing import SmootherConfig, TrackSmoother, smooth_track
from toppose.tracking.tracker import UNTRACKED, Tracker, TrackerConfig

from benchmarks.sequences import make_sequence, render_frames, walking_pose
from toppose.cli.track import main as tracking_main


def people(boxes: list[list[float]], scores: list[float] | None = None) -> PoseResult:
    """Detections with walking poses filling their boxes (confident keypoints)."""
    boxes_array = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    keypoints = np.zeros((len(boxes_array), NUM_KEYPOINTS, 3))
    for i, (x, y, w, h) in enumerate(boxes_array):
        keypoints[i, :, :2] = walking_pose(float(i), np.array([x + w / 2, y + 0.45 * h]), 0.9 * h)
        keypoints[i, :, 2] = 0.9
    box_scores = np.full(len(boxes_array), 0.9) if scores is None else np.array(scores, dtype=np.float64)
    return PoseResult(boxes_array, box_scores, keypoints, box_scores.copy())


def step(tracker: Tracker, detections: PoseResult) -> list[int]:
    tracker.predict()
    return [tracker.public_id(u) if u != UNTRACKED else UNTRACKED for u in tracker.update(detections)]


def test_box_kalman_learns_a_constant_velocity() -> None:
    kalman = BoxKalman(np.array([0.0, 0.0, 40.0, 100.0]))
    for t in range(1, 15):
        kalman.predict()
        kalman.update(np.array([4.0 * t, 1.0 * t, 40.0, 100.0]))
    np.testing.assert_allclose(kalman.predict(), [4.0 * 15, 15.0, 40.0, 100.0], atol=1.0)


def test_box_kalman_catches_up_after_a_turn() -> None:
    """A person running back where they came from: the prediction must follow within a few frames."""
    kalman = BoxKalman(np.array([0.0, 0.0, 40.0, 100.0]))
    x = 0.0
    for t in range(1, 31):
        x += 25.0 if t <= 20 else -25.0
        kalman.predict()
        kalman.update(np.array([x, 0.0, 40.0, 100.0]))
    assert abs(kalman.predict()[0] - (x - 25.0)) < 10.0


def test_iou_matrix() -> None:
    a = np.array([[0.0, 0.0, 10.0, 10.0], [100.0, 100.0, 5.0, 5.0]])
    b = np.array([[5.0, 0.0, 10.0, 10.0], [0.0, 0.0, 10.0, 10.0]])
    np.testing.assert_allclose(iou_matrix(a, b), [[50 / 150, 1.0], [0.0, 0.0]])
    assert iou_matrix(a, np.zeros((0, 4))).shape == (2, 0)


def test_match_leaves_weak_pairs_unmatched_instead_of_forcing_them() -> None:
    # Row 0 fits column 0 well; row 1 only weakly fits column 1: taking (0, 1) and (1, 0) would be worse.
    similarity = np.array([[0.9, 0.3], [0.25, 0.05]])
    matches, rows, cols = match(similarity, min_similarity=0.2)
    assert matches == [(0, 0)] and rows == [1] and cols == [1]
    matches, _, _ = match(np.array([[0.1]]), min_similarity=0.2)
    assert matches == []


def test_identities_survive_crossing_and_a_short_occlusion() -> None:
    """Two people walk across each other; the one behind is missed for four frames while they overlap."""
    tracker = Tracker(TrackerConfig(min_hits=2))
    seen: dict[str, set[int]] = {"a": set(), "b": set()}
    for t in range(40):
        a = [20.0 + 8 * t, 50.0, 50.0, 120.0]
        b = [340.0 - 8 * t, 55.0, 48.0, 115.0]
        hidden = 18 <= t < 22
        ids = step(tracker, people([a] if hidden else [a, b]))
        seen["a"].add(ids[0])
        if not hidden:
            seen["b"].add(ids[1])
    assert len(seen["a"]) == 1 and len(seen["b"]) == 1 and seen["a"] != seen["b"]


def test_birth_needs_hits_and_death_follows_misses() -> None:
    cfg = TrackerConfig(min_hits=3, max_missed=5)
    tracker = Tracker(cfg)
    step(tracker, people([]))  # an empty first frame: later people are not confirmed at once
    box = [100.0, 50.0, 40.0, 100.0]
    assert step(tracker, people([box])) == [UNTRACKED]
    assert step(tracker, people([box])) == [UNTRACKED]
    assert step(tracker, people([box])) == [1]
    for _ in range(cfg.max_missed):
        step(tracker, people([]))
    tracker.predict()
    assert tracker.tracks == []
    assert step(tracker, people([box])) == [UNTRACKED]  # a new person, not track 1 again


def test_people_of_the_first_frame_are_confirmed_at_once() -> None:
    tracker = Tracker()
    assert step(tracker, people([[0.0, 0.0, 40.0, 100.0], [200.0, 0.0, 40.0, 100.0]])) == [1, 2]


def test_low_score_detections_only_continue_tracks() -> None:
    tracker = Tracker(TrackerConfig(high_score=0.5, low_score=0.1))
    box = [100.0, 50.0, 40.0, 100.0]
    assert step(tracker, people([box], [0.9])) == [1]
    assert step(tracker, people([[104.0, 50.0, 40.0, 100.0]], [0.3])) == [1]  # occluded: low score, same person
    assert step(tracker, people([[104.0, 50.0, 40.0, 100.0], [300.0, 50.0, 40.0, 100.0]], [0.9, 0.3])) == [1, -1]
    tracker.predict()
    tracker.update(people([[300.0, 50.0, 40.0, 100.0]], [0.3]))
    assert len(tracker.tracks) == 1  # the low-score stranger started nothing


def test_pose_similarity_separates_overlapping_people() -> None:
    """Two people at the same box, told apart only by their poses (one upright, one mirrored upside down)."""
    box = [100.0, 50.0, 60.0, 120.0]
    upright = people([box]).keypoints[0]
    flipped = upright.copy()
    flipped[:, 1] = 2 * (box[1] + box[3] / 2) - flipped[:, 1]
    poses = (upright, flipped)

    def frame(order: tuple[int, int]) -> PoseResult:
        keypoints = np.stack([poses[order[0]], poses[order[1]]])
        return PoseResult(np.array([box, box]), np.array([0.9, 0.9]), keypoints, np.array([0.9, 0.9]))

    tracker = Tracker()
    ids: dict[int, set[int]] = {0: set(), 1: set()}
    for order in ((0, 1), (1, 0), (0, 1), (1, 0)):
        tracker.predict()
        for slot, uid in enumerate(tracker.update(frame(order))):
            ids[order[slot]].add(int(uid))
    assert len(ids[0]) == 1 and len(ids[1]) == 1 and ids[0] != ids[1]


def test_following_poses_moves_the_tracks() -> None:
    """Where the detector is skipped, poses estimated in the predicted boxes carry the tracks along."""
    tracker = Tracker(TrackerConfig(min_hits=2))
    start = people([[100.0, 50.0, 40.0, 100.0], [300.0, 50.0, 40.0, 100.0]])
    step(tracker, start)
    for t in range(1, 6):
        tracker.predict()
        uids = tracker.followed()[0]
        moved = people([[100.0 + 6 * t, 50.0, 40.0, 100.0], [300.0 - 6 * t, 50.0, 40.0, 100.0]])
        tracker.follow(uids, moved)
    np.testing.assert_allclose([t.box[0] for t in tracker.tracks], [130.0, 270.0], atol=0.5)
    assert all(t.missed == 0 for t in tracker.tracks)
    doubtful = people([[136.0, 50.0, 40.0, 100.0], [264.0, 50.0, 40.0, 100.0]])
    doubtful.keypoints[..., 2] = 0.05  # nothing confident: the tracks coast on their prediction
    tracker.predict()
    tracker.follow(tracker.followed()[0], doubtful)
    assert all(t.missed == 1 for t in tracker.tracks)


def noisy_track(rng: np.random.Generator, xs: np.ndarray, noise: float) -> tuple[np.ndarray, ...]:
    """A walking person at hip positions ``(xs, 150)``: the true keypoints, boxes, keypoints with noise at 0.8."""
    truth, boxes, keypoints = [], [], []
    for t, x in enumerate(xs):
        pose = walking_pose(0.2 * t, np.array([x, 150.0]), 120.0)
        truth.append(pose)
        boxes.append([x - 30, 90.0, 60.0, 130.0])
        detected = np.concatenate([pose + rng.normal(0, noise, pose.shape), np.full((NUM_KEYPOINTS, 1), 0.8)], axis=1)
        keypoints.append(detected)
    return np.array(truth), np.array(boxes), np.array(keypoints)


def online_smoothed(boxes: np.ndarray, keypoints: np.ndarray) -> np.ndarray:
    smoother = TrackSmoother()
    return np.array([smoother.step(t, boxes[t], keypoints[t], 0.9)[1] for t in range(len(boxes))])


def mean_error(points: np.ndarray, truth: np.ndarray) -> float:
    return float(np.linalg.norm(points[..., :2] - truth, axis=-1)[5:].mean())  # after the first frames


def test_smoothing_reduces_keypoint_noise_online_and_more_offline() -> None:
    truth, boxes, keypoints = noisy_track(np.random.default_rng(0), 100.0 + 3.0 * np.arange(60), 4.0)
    online = online_smoothed(boxes, keypoints)
    _, _, offline = smooth_track(np.arange(60), boxes, keypoints, np.full(60, 0.9), SmootherConfig())
    assert mean_error(online, truth) < 0.8 * mean_error(keypoints, truth)
    assert mean_error(offline, truth) < 0.8 * mean_error(online, truth)


@pytest.mark.parametrize("turn", [False, True])
def test_smoothing_does_not_lag_behind_fast_motion(turn: bool) -> None:
    """A person moving 40 px per frame (a third of their height), maybe turning back at once: no trailing skeleton."""
    steps = np.full(40, 40.0)
    if turn:
        steps[20:] = -40.0
    truth, boxes, keypoints = noisy_track(np.random.default_rng(1), 100.0 + np.cumsum(steps), 4.0)
    online = online_smoothed(boxes, keypoints)
    along = ((online - truth)[..., 0] * np.sign(steps)[:, None])[5:].mean()  # error in the direction of motion
    assert abs(along) < 1.0
    assert mean_error(online, truth) < 0.85 * mean_error(keypoints, truth)
    if turn:  # right after the turn too
        assert np.linalg.norm(online[20:23] - truth[20:23], axis=-1).mean() < 8.0


def test_unmeasured_keypoints_follow_the_body() -> None:
    """A joint below the confidence floor for a while keeps its place on the moving body."""
    truth, boxes, keypoints = noisy_track(np.random.default_rng(2), 100.0 + 5.0 * np.arange(30), 0.5)
    keypoints[10:20, 9, 2] = 0.0  # left wrist not seen
    _, _, offline = smooth_track(np.arange(30), boxes, keypoints, np.full(30, 0.9), SmootherConfig())
    assert np.linalg.norm(offline[10:20, 9] - truth[10:20, 9], axis=-1).max() < 8.0


def test_a_track_starts_exactly_at_its_detection() -> None:
    """Offsets along the kinematic chain add back up to the detected keypoints, unmeasured ones aside."""
    rng = np.random.default_rng(3)
    keypoints = np.concatenate([rng.uniform(50, 250, (NUM_KEYPOINTS, 2)), np.ones((NUM_KEYPOINTS, 1))], axis=1)
    keypoints[[7, 13], 2] = 0.0  # a parent unmeasured: the left elbow (of the wrist) and the left knee (of the ankle)
    box, start = np.array([40.0, 30.0, 220.0, 240.0]), TrackSmoother()
    smoothed_box, smoothed = start.step(0, box, keypoints, 0.9)
    measured = keypoints[:, 2] > 0
    np.testing.assert_allclose(smoothed[measured], keypoints[measured, :2], atol=1e-9)
    np.testing.assert_allclose(smoothed_box, box, atol=1e-9)


def swing_then_hide(cfg: SmootherConfig, hidden: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """A still person whose left arm swings up (elbow and wrist alike, 4 px a frame) for 10 frames, then
    holds; from frame 10 the ``hidden`` joints are not seen. The true and the online left wrist per frame."""
    truth, boxes, keypoints = noisy_track(np.random.default_rng(4), np.full(25, 150.0), 0.0)
    lift = 4.0 * np.minimum(np.arange(25), 10)
    for joints in (truth, keypoints):
        joints[:, [7, 9], 1] -= lift[:, None]
    keypoints[10:, hidden, 2] = 0.0
    smoother = TrackSmoother(cfg)
    online = np.array([smoother.step(t, boxes[t], keypoints[t], 0.9)[1] for t in range(25)])
    return truth[:, 9], online[:, 9]


def test_a_hidden_joint_stays_where_it_was_last_seen() -> None:
    """Limbs swing back and forth: a joint unseen after moving is kept near its last place (damped offsets),
    where a constant-velocity offset would carry it on."""
    truth, online = swing_then_hide(SmootherConfig(), hidden=[7, 9])
    assert np.abs(online[10:, 1] - truth[10:, 1]).max() < 8.0  # the arm moved 40 px, then held
    truth, drifting = swing_then_hide(SmootherConfig(articulation_damping=1.0), hidden=[7, 9])
    assert np.abs(drifting[-1, 1] - truth[-1, 1]) > 20.0


def test_a_seen_parent_carries_its_hidden_child() -> None:
    """The wrist's offset is from the elbow: an elbow seen to move takes the unseen wrist along."""
    _, boxes, keypoints = noisy_track(np.random.default_rng(4), np.full(20, 150.0), 0.0)
    keypoints[:, [7, 9], 1] -= 4.0 * np.arange(20)[:, None]  # the upper arm swings up, forearm and all
    keypoints[10:, 9, 2] = 0.0  # the wrist unseen from frame 10 on, the elbow still seen
    smoother = TrackSmoother()
    wrist = np.array([smoother.step(t, boxes[t], keypoints[t], 0.9)[1][9] for t in range(20)])
    assert wrist[19, 1] < wrist[10, 1] - 30.0  # followed the elbow up (it rose 36 px more)


def entries_from(frames: list[PoseResult]) -> list[dict]:
    out = []
    for t, result in enumerate(frames):
        for i in range(len(result)):
            out.append({"image_id": t, "category_id": 1, "bbox": result.boxes[i].tolist(),
                        "keypoints": result.keypoints[i].reshape(-1).tolist(), "score": float(result.scores[i]),
                        "person": i})  # fmt: skip
    return out


def test_offline_gives_ids_from_the_start_and_fills_gaps() -> None:
    frames = []
    for t in range(20):
        boxes = [[20.0 + 5 * t, 50.0, 50.0, 120.0]]
        if not 8 <= t < 11:  # the second person is missed for three frames
            boxes.append([300.0 - 5 * t, 40.0, 50.0, 120.0])
        frames.append(people(boxes))
    frames[0] = people([])  # nobody in the first frame: nobody is confirmed at once
    entries = entries_from(frames)
    offline = track_entries(entries)
    online = track_entries(entries, online=True)
    assert {e["track_id"] for e in offline} == {1, 2}  # tracks named from their first frame on
    assert len([e for e in offline if not e.get("interpolated")]) == len(entries)
    assert {e["track_id"] for e in online} == {1, 2}  # a real id on every entry, as ByteTrack reports
    assert len(online) == len(entries) - 4  # two tentative frames per person are not reported
    filled = [e for e in offline if e.get("interpolated")]
    assert sorted(e["image_id"] for e in filled) == [8, 9, 10]
    for entry in filled:
        expected = 300.0 - 5 * entry["image_id"]
        assert abs(entry["bbox"][0] - expected) < 3.0
    assert [e["image_id"] for e in offline] == sorted(e["image_id"] for e in offline)
    assert all(e["person"] == 0 for e in offline if e["track_id"] == 1 and not e.get("interpolated"))


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"image_id": 0}, "expected a JSON list"),
        ([{"image_id": 0, "score": 1.0, "bbox": [0, 0, 1, 1]}], "has no 'keypoints' field"),
        ([{"image_id": "frame1", "keypoints": [0] * 51, "score": 1.0, "bbox": [0, 0, 1, 1]}], "frame index"),
        ([{"image_id": 0, "keypoints": [0] * 51, "score": 1.0, "bbox": [0, 0, 1]}], "'bbox' must be"),
        ([{"image_id": 0, "keypoints": ["x"] * 51, "score": 1.0, "bbox": [0, 0, 1, 1]}], "finite numbers"),
        ([{"image_id": 0, "keypoints": [0] * 51, "score": None, "bbox": [0, 0, 1, 1]}], "must be a finite number"),
        ([{"image_id": 0, "keypoints": [0] * 51, "score": 1.0, "bbox": [0, 0, 1e308, 1]}], "'bbox' must hold"),
        ([{"image_id": 0, "keypoints": [0] * 51, "score": 1, "box_score": 1e400, "bbox": [0, 0, 1, 1]}], "box_score"),
        ([{"image_id": 0, "keypoints": [0] * 51, "score": float("nan"), "bbox": [0, 0, 1, 1]}], "finite number"),
        ([{"image_id": 0, "keypoints": [0] * 51, "score": 1.0, "bbox": [0, 0, 1, float("inf")]}], "'bbox' must"),
        ([{"image_id": 0, "keypoints": [10**400] * 51, "score": 1.0, "bbox": [0, 0, 1, 1]}], "finite numbers"),
        ([{"image_id": 1e9, "keypoints": [0] * 51, "score": 1.0, "bbox": [0, 0, 1, 1]}], "frame index"),
        ([{"image_id": 10**12, "keypoints": [0] * 51, "score": 1.0, "bbox": [0, 0, 1, 1]}], "frame index"),
        ([{"image_id": -1, "keypoints": [0] * 51, "score": 1.0, "bbox": [0, 0, 1, 1]}], "frame index"),
        (
            [{"image_id": 0, "keypoints": [0] * 51, "score": 1.0, "bbox": [0, 0, 1, 1], "timestamp": "0:01"}],
            "timestamp",
        ),
        ([{"image_id": 0, "keypoints": [0] * 51, "score": 1.0, "bbox": [0, 0, 1, 1], "timestamp": -1.0}], "timestamp"),
    ],
)
def test_bad_results_are_one_clear_error(entries: object, message: str) -> None:
    with pytest.raises(UserError, match=message):
        check_entries(entries, "in.json")


def test_tracking_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "in.json"
    source.write_text(json.dumps(entries_from([people([[20.0 + 5 * t, 50.0, 50.0, 120.0]]) for t in range(10)])))
    assert tracking_main([str(source), "-o", str(tmp_path / "out.json"), "--online"]) == 0
    out = json.loads((tmp_path / "out.json").read_text())
    assert len(out) == 10 and {e["track_id"] for e in out} == {1}
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    with pytest.raises(UserError, match="malformed JSON"):
        tracking_main([str(bad), "-o", str(tmp_path / "x.json")])
    with pytest.raises(UserError, match="not found"):
        tracking_main([str(tmp_path / "missing.json"), "-o", str(tmp_path / "x.json")])
    assert not (tmp_path / "x.json").exists()


def test_tracking_output_is_strict_json_whatever_extra_fields_hold(tmp_path: Path) -> None:
    entries = entries_from([people([[20.0 + 5 * t, 50.0, 50.0, 120.0]]) for t in range(6)])
    for entry in entries:
        entry["speed"] = math.nan  # an extra field of the user's: passed through (a NaN timestamp is refused)
    del entries[3]
    source = tmp_path / "in.json"
    source.write_text(json.dumps(entries))
    assert tracking_main([str(source), "-o", str(tmp_path / "out.json")]) == 0
    out = json.loads((tmp_path / "out.json").read_text(), parse_constant=lambda name: pytest.fail(name))
    assert len(out) == 6 and {e.get("speed") for e in out} == {None}


@pytest.mark.parametrize("online", [False, True])
def test_sparse_and_huge_frame_numbers_cost_nothing(online: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Time follows the entries, not the largest frame number; tracks still end after long gaps."""
    steps = []
    predict = Tracker.predict

    def counted(self: Tracker, camera: np.ndarray | None = None) -> None:
        steps.append(1)
        assert len(steps) < 200, "stepping through empty frames"  # fails at once where time follows frame numbers
        predict(self, camera)

    monkeypatch.setattr(Tracker, "predict", counted)
    entries = []
    for start in (10**9, 5 * 10**9):
        entries += entries_from([people([[20.0 + 5 * t, 50.0, 50.0, 120.0]]) for t in range(6)])[-6:]
        for t, entry in enumerate(entries[-6:]):
            entry["image_id"] = start + t
    out = track_entries(entries, online=online)
    assert len(out) >= 8 and all(e["track_id"] >= 1 for e in out)
    first = {e["track_id"] for e in out if e["image_id"] < 2 * 10**9}
    later = {e["track_id"] for e in out if e["image_id"] > 2 * 10**9}
    assert len(first) == len(later) == 1 and first != later  # no track survives a gap of 4e9 frames


def test_detections_in_no_track_leave_the_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frames = [people([[20.0 + 5 * t, 50.0, 50.0, 120.0]]) for t in range(10)]
    frames[5] = people([[20.0 + 25, 50.0, 50.0, 120.0], [400.0, 60.0, 50.0, 120.0]])  # a one-frame ghost
    entries = entries_from(frames)
    for mode in ({}, {"online": True}):
        out = track_entries(entries, **mode)
        assert {e["track_id"] for e in out} == {1} and not any(e["image_id"] == 5 and e["person"] == 1 for e in out)
    source = tmp_path / "in.json"
    source.write_text(json.dumps(entries))
    assert tracking_main([str(source), "-o", str(tmp_path / "out.json")]) == 0
    assert re.search(r"detections in no track \(left out\) +│ +1 │", capsys.readouterr().out)


def test_reupdate_learns_the_velocity_from_the_observations_around_an_occlusion() -> None:
    """A person slows down from 5 to 2 px/frame while hidden for 10 frames; OC-SORT's re-update sees it at once."""
    predicted_x = {}
    for reupdate in (False, True):
        tracker = Tracker(TrackerConfig(reupdate=reupdate))
        x = 20.0
        for t in range(21):  # hidden in frames 10-19, seen again in frame 20
            x += 5.0 if t < 10 else 2.0
            hidden = 10 <= t < 20
            ids = step(tracker, people([] if hidden else [[x, 50.0, 100.0, 200.0]]))
            assert ids == ([] if hidden else [1])
        tracker.predict()
        predicted_x[reupdate] = tracker._predicted[tracker.tracks[0].uid][0]
    assert abs(predicted_x[True] - (x + 2.0)) < 0.9 * abs(predicted_x[False] - (x + 2.0))  # 1.1 px against 1.4


def test_camera_motion_moves_the_tracks() -> None:
    """A standing person filmed by a camera panning 35 px a frame back and forth, and zooming."""
    kalman = BoxKalman(np.array([100.0, 50.0, 40.0, 100.0]))
    kalman.warp(np.array([[2.0, 0.0, 10.0], [0.0, 2.0, -5.0]]))
    assert np.allclose(kalman.box, [210.0, 95.0, 80.0, 200.0])
    ids = {}
    for compensate in (False, True):
        tracker = Tracker()
        seen, x = set(), 200.0
        for t in range(20):
            shift = 35.0 if t % 4 < 2 else -35.0  # the camera pans left and right, jerkily
            x += shift
            tracker.predict(np.array([[1.0, 0.0, shift], [0.0, 1.0, 0.0]]) if compensate else None)
            seen |= {tracker.public_id(u) for u in tracker.update(people([[x, 60.0, 50.0, 120.0]]))}
        ids[compensate] = seen
    assert ids[True] == {1} and len(ids[False]) > 1


def test_camera_motion_is_estimated_from_the_frames() -> None:
    """Sparse optical flow on a panning, zooming camera's frames recovers its motion to a few pixels."""
    sequence = make_sequence("panning", 0)
    motion = CameraMotion()
    corners = np.array([[x, y, 1.0] for x in (0, 320, 640) for y in (0, 180, 360)])
    errors, moves = [], []
    for t, frame in zip(range(8), render_frames(sequence), strict=False):
        estimate = motion(frame)
        assert (estimate is None) == (t == 0)
        if t:
            truth = (
                np.vstack([sequence.camera[t], [0, 0, 1]])
                @ np.linalg.inv(np.vstack([sequence.camera[t - 1], [0, 0, 1]]))
            )[:2]
            errors.append(np.linalg.norm(corners @ (estimate - truth).T, axis=1).mean())
            moves.append(np.linalg.norm(corners @ truth.T - corners[:, :2], axis=1).mean())
    assert np.median(errors) < 3.0 and np.median(errors) < 0.5 * np.median(moves)  # measured: 1.7 px of 5
