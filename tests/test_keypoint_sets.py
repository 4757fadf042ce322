"""Keypoint sets end to end: the transcription against the published definitions, crops, both codecs and the flip
test on 26 and 133 points through the production path, OKS, results, tracking, drawing, evaluation, the API,
and the set a checkpoint's head outputs."""

from __future__ import annotations

import importlib.metadata
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from toppose.common.coco import evaluate_keypoints, evaluate_wholebody, load_coco
from toppose.common.config import CONFIG_DIR, Config
from toppose.common.errors import UserError
from toppose.common.keypoint_sets import COCO17, HALPE26, KEYPOINT_SETS, WHOLEBODY133, keypoint_set, set_of_size
from toppose.common.poses import PoseResult
from toppose.common.synthetic import extend_pose
from toppose.eval.oracle import oracle_poses
from toppose.pose.annotations import ground_truth_people
from toppose.pose.draw import draw_poses
from toppose.pose.inference import TopDownEstimator
from toppose.pose.models.rtmpose import RTMPose
from toppose.pose.named_setups import build_config
from toppose.pose.oks import oks
from toppose.pose.results import to_coco_entries, validate_entries
from toppose.tracking.offline import track_entries

from toppose import PoseEstimator

SETS = [HALPE26, WHOLEBODY133]


def published_definition(name: str) -> dict | None:
    """MMPose 1.x's ``configs/_base_/datasets/NAME.py`` where the mmpose wheel is installed (it ships them), parsed
    as data; ``None`` elsewhere."""
    try:
        files = importlib.metadata.files("mmpose") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    path = next((f for f in files if str(f).endswith(f"_base_/datasets/{name}.py")), None)
    if path is None:
        return None
    namespace: dict = {"__builtins__": {"dict": dict}}  # the file is one ``dataset_info = dict(...)`` of literals
    exec(compile(Path(path.locate()).read_text(), str(path), "exec"), namespace)
    return namespace["dataset_info"]


@pytest.mark.parametrize(
    ("keypoints", "file"), [(COCO17, "coco"), (HALPE26, "halpe26"), (WHOLEBODY133, "coco_wholebody")]
)
def test_the_sets_are_the_published_definitions(keypoints, file: str) -> None:  # noqa: ANN001
    info = published_definition(file)
    if info is None:
        pytest.skip("the mmpose wheel (its dataset definitions) is not installed: pip install --no-deps mmpose")
    names = tuple(info["keypoint_info"][i]["name"] for i in range(len(info["keypoint_info"])))
    swaps = {tuple(sorted((names.index(k["name"]), names.index(k["swap"])))) for k in info["keypoint_info"].values()
             if k["swap"]}  # fmt: skip
    links = [(names.index(s["link"][0]), names.index(s["link"][1])) for s in info["skeleton_info"].values()]
    assert keypoints.names == names
    assert {tuple(sorted(p)) for p in keypoints.flip_pairs} == swaps
    np.testing.assert_allclose(keypoints.sigmas, info["sigmas"])
    assert list(keypoints.skeleton) == links


def test_the_sets_as_published_in_figures() -> None:
    """Figures read off the published files by hand, so that the check above does not need mmpose installed."""
    assert [len(s) for s in KEYPOINT_SETS.values()] == [17, 26, 133]
    assert HALPE26.names[17:20] == ("head", "neck", "hip") and HALPE26.names[24:] == ("left_heel", "right_heel")
    assert WHOLEBODY133.names[17:23] == ("left_big_toe", "left_small_toe", "left_heel", "right_big_toe",
                                         "right_small_toe", "right_heel")  # fmt: skip
    assert (WHOLEBODY133.names[23], WHOLEBODY133.names[90]) == ("face-0", "face-67")
    assert (WHOLEBODY133.names[91], WHOLEBODY133.names[111], WHOLEBODY133.names[132]) == (
        "left_hand_root", "left_pinky_finger4", "right_pinky_finger4")  # fmt: skip
    assert len(HALPE26.flip_pairs) == 11 and len(WHOLEBODY133.flip_pairs) == 61 and len(WHOLEBODY133.skeleton) == 65
    assert HALPE26.sigmas[19] == pytest.approx(0.066) and WHOLEBODY133.sigmas[17:23].sum() == pytest.approx(0.48)
    assert WHOLEBODY133.sigmas[23:91].sum() == pytest.approx(1.137) and WHOLEBODY133.sigmas[
        91:112
    ].sum() == pytest.approx(0.553)
    assert (23 + 0, 23 + 16) in WHOLEBODY133.flip_pairs and (23 + 65, 23 + 67) in WHOLEBODY133.flip_pairs


@pytest.mark.parametrize("keypoints", KEYPOINT_SETS.values(), ids=lambda s: s.name)
def test_every_left_point_flips_to_its_right_twin(keypoints) -> None:  # noqa: ANN001
    flip = keypoints.flip_index
    assert sorted(flip) == list(range(len(keypoints))) and all(flip[flip[k]] == k for k in flip)
    for k, name in enumerate(keypoints.names):
        if name.startswith("left_"):
            assert keypoints.names[flip[k]] == "right_" + name[5:]  # toes, heels, every finger joint
        elif not name.startswith(("right_", "face-")):
            assert flip[k] == k  # nose, head, neck, hip
    assert keypoints.body == tuple(range(17)) and keypoints.names[:17] == COCO17.names


@pytest.fixture(scope="module")
def extended_coco(synthetic_coco: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The synthetic dataset's people with 26 and with 133 keypoints (as COCO keypoint files)."""
    data = json.loads((synthetic_coco / "annotations.json").read_text())
    out = {}
    for keypoints in SETS:
        annotations = []
        for a in data["annotations"]:
            flat = np.array(a["keypoints"], dtype=np.float64).reshape(17, 3)
            points = extend_pose(flat[:, :2], keypoints)
            visible = np.concatenate([flat[:, 2], np.full(len(keypoints) - 17, 2.0)])
            if (visible[:17] == 0).any():
                visible[17:] = 0  # a figure with hidden joints: its added points are not labelled either
            triplets = np.concatenate([points, visible[:, None]], axis=1)
            triplets[visible == 0] = 0
            annotations.append({**a, "keypoints": triplets.reshape(-1).round(2).tolist(),
                                "num_keypoints": int((visible > 0).sum())})  # fmt: skip
        path = tmp_path_factory.mktemp(keypoints.name) / "annotations.json"
        path.write_text(json.dumps({**data, "annotations": annotations}))
        out[keypoints.name] = path
    return out


@pytest.mark.parametrize("codec", ["heatmap", "simcc"])
@pytest.mark.parametrize("flip", [True, False], ids=["flip", "no-flip"])
@pytest.mark.parametrize("keypoints", SETS, ids=lambda s: s.name)
def test_the_oracle_places_every_point_of_the_set(
    extended_coco: dict[str, Path], keypoints, flip: bool, codec: str
) -> None:  # noqa: ANN001,E501
    """A network trained on the set, played by the oracle, through crops, the flip test and decoding: every
    labelled point inside its crop comes back within a fifth of a heatmap pixel (DARK), or within the half bin
    in x and in y of SimCC's argmax, each under its own name (a point swapped with its twin is pixels off)."""
    cfg = Config()
    cfg.model.keypoints, cfg.codec.type, cfg.inference.flip_test = keypoints.name, codec, flip
    coco = load_coco(extended_coco[keypoints.name])
    estimator = TopDownEstimator(None, cfg)
    errors = []
    for image_id in sorted(coco.getImgIds()):
        people = ground_truth_people(coco, image_id)
        if not len(people):
            continue
        result = oracle_poses(estimator, np.zeros((8, 8, 3), np.uint8), people, nms=False, image_id=image_id)
        assert result.keypoints.shape[1:] == (len(keypoints), 3)
        centers, sizes = estimator.crop_regions(people.boxes)
        inside = (np.abs(people.keypoints - centers[:, None]) < 0.45 * sizes[:, None]).all(axis=2) & people.visible
        pixel = sizes[:, None, 0] / estimator.codec.grid_size[0]  # image pixels per output-grid pixel
        errors.append((np.linalg.norm(result.keypoints[..., :2] - people.keypoints, axis=2) / pixel)[inside])
    errors = np.concatenate(errors)
    tolerance = 0.2 if codec == "heatmap" else np.hypot(0.5, 0.5) + 1e-6
    assert len(errors) > 200 and errors.max() < tolerance, f"largest error {errors.max():.3f} grid px"


@pytest.mark.parametrize("keypoints", SETS, ids=lambda s: s.name)
def test_the_oracle_scores_one_with_the_sets_sigmas_and_the_body_against_coco17(
    extended_coco: dict[str, Path],
    synthetic_coco: Path,
    keypoints,  # noqa: ANN001
) -> None:
    cfg = Config()
    cfg.model.keypoints, cfg.codec.type = keypoints.name, "simcc"
    coco = load_coco(extended_coco[keypoints.name])
    estimator = TopDownEstimator(None, cfg)
    entries = []
    for image_id in sorted(coco.getImgIds()):
        people = ground_truth_people(coco, image_id)
        entries += to_coco_entries(oracle_poses(estimator, np.zeros((8, 8, 3), np.uint8), people), image_id)
    assert len(entries[0]["keypoints"]) == 3 * len(keypoints)
    assert evaluate_keypoints(coco, entries)["AP"] > 0.95
    body = evaluate_keypoints(load_coco(synthetic_coco / "annotations.json"), entries)  # 17-point annotations
    assert body["AP"] > 0.95


def test_wholebody_is_scored_per_part(extended_coco: dict[str, Path], tmp_path: Path) -> None:
    """COCO-WholeBody's layout: the body in ``keypoints``, the other parts in their own fields."""
    data = json.loads(extended_coco["wholebody"].read_text())
    fields = {"keypoints": WHOLEBODY133.parts["body"], "foot_kpts": WHOLEBODY133.parts["foot"],
              "face_kpts": WHOLEBODY133.parts["face"], "lefthand_kpts": WHOLEBODY133.parts["left_hand"],
              "righthand_kpts": WHOLEBODY133.parts["right_hand"]}  # fmt: skip
    truth, results = [], []
    for a in data["annotations"]:
        flat = np.array(a["keypoints"]).reshape(133, 3)
        truth.append({**a, **{f: flat[list(index)].reshape(-1).tolist() for f, index in fields.items()}})
        moved = flat.copy()
        moved[91:112, :2] += 40.0  # the left hand far off: only its part (and the whole) should suffer
        moved[:, 2] = 0.9
        results.append({"image_id": a["image_id"], "category_id": 1, "score": 0.9,
                        "keypoints": moved.reshape(-1).tolist()})  # fmt: skip
    path = tmp_path / "wholebody.json"
    path.write_text(json.dumps({**data, "annotations": truth}))
    scores = evaluate_wholebody(load_coco(path), results)
    assert list(scores) == ["body", "foot", "face", "left_hand", "right_hand", "whole"]
    assert min(scores[p]["AP"] for p in ("body", "foot", "face", "right_hand")) > 0.95
    assert scores["left_hand"]["AP"] < 0.2 and scores["whole"]["AP"] < scores["body"]["AP"]


@pytest.mark.parametrize("keypoints", SETS, ids=lambda s: s.name)
def test_results_tracking_oks_and_drawing_take_the_set(keypoints) -> None:  # noqa: ANN001
    rng = np.random.default_rng(0)
    frames = []
    for t in range(6):
        base = np.array([[60.0 + 4 * t, 40.0], [70.0 + 4 * t, 40.0]])
        poses = np.concatenate(
            [base[None, 0] + rng.normal(0, 10, (len(keypoints), 2)), np.full((len(keypoints), 1), 0.9)], 1
        )
        result = PoseResult(np.array([[40.0 + 4 * t, 20.0, 60.0, 120.0]]), np.ones(1), poses[None], np.ones(1))
        frames += to_coco_entries(result, t)
    validate_entries(frames, "x.json")
    for online in (True, False):
        tracked = track_entries(frames, online=online)
        assert {e["track_id"] for e in tracked} == {1} and len(tracked[0]["keypoints"]) == 3 * len(keypoints)
    pose = np.array(frames[0]["keypoints"]).reshape(-1, 3)[:, :2]
    assert oks(pose, pose[None], 100.0 * 100.0)[0] == pytest.approx(1.0)
    image = np.zeros((200, 200, 3), np.uint8)
    drawn = draw_poses(image, PoseResult(np.array([[40.0, 20, 60, 120]]), np.ones(1), np.concatenate(
        [pose, np.ones((len(keypoints), 1))], 1)[None], np.ones(1)))  # fmt: skip
    assert drawn.any()
    with pytest.raises(UserError, match="entry 1 'keypoints' must be a list of"):
        validate_entries([frames[0], {**frames[1], "keypoints": frames[1]["keypoints"][:51]}], "x.json")


def test_a_checkpoint_brings_its_set_and_a_contradicting_setup_is_one_line(tmp_path: Path) -> None:
    torch.manual_seed(0)
    network = RTMPose("t", (192, 256), num_keypoints=26)
    path = tmp_path / "rtmpose_t_halpe26.pth"
    torch.save({"meta": {}, "state_dict": network.state_dict()}, path)
    base = [("model.family", "rtmpose", "x"), ("model.backbone", "cspnext_t", "x"), ("codec.type", "simcc", "x")]
    cfg = build_config(None, [*base, ("model.weights", str(path), "--pose-weights")])
    assert cfg.model.keypoints == "halpe26"  # recognised from the head's 26 outputs
    with pytest.raises(UserError, match="was trained with model.keypoints = 'halpe26', but --keypoints sets 'coco17'"):
        build_config(None, [*base, ("model.keypoints", "coco17", "--keypoints"), ("model.weights", str(path), "w")])
    estimator = PoseEstimator(cfg, pretrained_detector=False)
    person = estimator(np.zeros((256, 192, 3), np.uint8), boxes=[[20, 20, 100, 200]])[0]
    assert person.keypoints.shape == (26, 3) and person.keypoint_set is HALPE26
    np.testing.assert_array_equal(person.keypoint("left_heel"), person.keypoints[24])
    with pytest.raises(KeyError, match="unknown keypoint 'left_thumb1' in Halpe-26"):
        person.keypoint("left_thumb1")


def test_set_lookup() -> None:
    assert keypoint_set("halpe26") is HALPE26 and set_of_size(133) is WHOLEBODY133 and set_of_size(18) is None
    with pytest.raises(KeyError, match="unknown keypoint set 'body25'"):
        keypoint_set("body25")


@pytest.mark.parametrize(("setup", "weights"), [("fast", "rtmpose_s_body8_halpe26_256x192"),
                                                ("accurate", "rtmpose_l_body8_halpe26_256x192")])  # fmt: skip
def test_the_keypoints_option_picks_the_setups_checkpoint_of_that_set(setup: str, weights: str) -> None:
    from toppose.pose.named_setups import setup_path

    cfg = build_config(setup_path(setup), [("model.keypoints", "halpe26", "--keypoints")])
    assert (cfg.model.weights, cfg.model.keypoints) == (weights, "halpe26")
    cfg = build_config(setup_path(setup), [("model.keypoints", "wholebody", "--keypoints")])
    assert cfg.model.weights.startswith("dwpose_") and cfg.model.keypoints == "wholebody"
    vitpose = CONFIG_DIR / "vitpose_b_256x192.toml"  # its weights: ViTPose-B, published for COCO-17 only
    halpe = ("model.keypoints", "halpe26", "--keypoints")
    with pytest.raises(UserError, match="--keypoints halpe26: no published halpe26 checkpoint for the setup's vitpose"):
        build_config(vitpose, [halpe])
    with pytest.raises(UserError, match="was trained with model.keypoints = 'coco17', but --keypoints sets 'halpe26'"):
        build_config(vitpose, [halpe, ("model.weights", "vitpose_b_coco_256x192", "--pose-weights")])


def test_the_wholebody_results_layout_round_trips(tmp_path: Path) -> None:
    from toppose.pose.results import load_results, to_wholebody_layout

    entry = {"image_id": 1, "category_id": 1, "score": 0.9, "keypoints": [float(v) for v in range(3 * 133)]}
    layout = to_wholebody_layout([entry])[0]
    assert [len(layout[f]) for f in ("keypoints", "foot_kpts", "face_kpts", "lefthand_kpts", "righthand_kpts")] == [
        51, 18, 204, 63, 63]  # fmt: skip
    path = tmp_path / "wholebody.json"
    path.write_text(json.dumps([layout]))
    assert load_results(path, required=("image_id", "keypoints", "score"))[0]["keypoints"] == entry["keypoints"]
