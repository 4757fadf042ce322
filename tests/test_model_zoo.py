"""The model zoo against its published sources: every registered checkpoint's network has exactly the keys and
shapes the source defines, files in MMPose's layouts load with every value where it belongs, outputs have the
right shapes, parameter counts match the published ones, and a checkpoint of another family is one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from toppose.common.config import Config
from toppose.common.errors import UserError
from toppose.pose.checkpoints import build_pose_model
from toppose.pose.inference import TopDownEstimator
from toppose.pose.models import build_network
from toppose.pose.registry import REGISTRY
from toppose.pose.setup import apply_weights_setup

from tests.published_keys import (
    hrnet_keys,
    random_state,
    rtmpose_keys,
    rtmw_keys,
    simplebaseline_keys,
    vitpose_keys,
)

# the configs' (deepen_factor, widen_factor); RTMW-x's in its cocktail14 configs
CSPNEXT_FACTORS = {"t": (0.167, 0.375), "s": (0.33, 0.5), "m": (0.67, 0.75), "l": (1.0, 1.0), "x": (1.33, 1.25)}


def published_out_channels(file_name: str) -> int:
    """The RTMPose and RTMW configs' head ``out_channels``, by the dataset the file name names: Halpe-26 (Body8)
    26, COCO-WholeBody, UBody-COCO (DWPose) and Cocktail14 (RTMW) 133, COCO 17."""
    if "halpe26" in file_name:
        return 26
    return 133 if any(data in file_name for data in ("wholebody", "ucoco", "cocktail14")) else 17


def published_keys(name: str) -> dict[str, tuple[int, ...]]:
    """The keys and shapes the published source defines for a registry entry (MMPose 1.x layout)."""
    entry = REGISTRY[name]
    if entry.family in ("rtmpose", "rtmw"):
        factors = CSPNEXT_FACTORS[entry.backbone.removeprefix("cspnext_")]
        keys = rtmpose_keys if entry.family == "rtmpose" else rtmw_keys
        return keys(*factors, entry.input_size, published_out_channels(entry.file_name))
    if entry.family == "hrnet":
        return hrnet_keys(int(entry.backbone.removeprefix("hrnet_w")))
    if entry.family == "vitpose":
        return vitpose_keys(entry.backbone, classic=entry.num_deconv == 2)
    return simplebaseline_keys(entry.backbone)


def setup_of(name: str, weights: str = "") -> Config:
    cfg = Config()
    cfg.model.weights = name
    apply_weights_setup(cfg, explicit={})
    cfg.model.weights = weights
    return cfg


ARCHITECTURES = sorted(
    {(e.family, e.backbone, e.input_size, e.num_deconv, e.keypoints): n for n, e in REGISTRY.items()}.values()
)


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_every_registered_network_has_the_published_keys_and_shapes(name: str) -> None:
    cfg = setup_of(name)
    with torch.device("meta"):  # shapes only: ViTPose-H has 630 M parameters
        network = build_network(cfg.model, cfg.codec.split_ratio)
    ours = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    expected = published_keys(name)
    assert sorted(set(ours) - set(expected)) == [] and sorted(set(expected) - set(ours)) == []
    assert {k: v for k, v in ours.items() if expected[k] != v} == {}


@pytest.mark.parametrize(
    ("backbone", "published_millions"),
    [
        ("cspnext_t", 3.34),
        ("cspnext_s", 5.47),
        ("cspnext_m", 13.59),
        ("cspnext_l", 27.66),
        ("hrnet_w32", 28.54),
        ("hrnet_w48", 63.60),
    ],  # fmt: skip
)
def test_parameter_counts_match_the_published_model_sizes(backbone: str, published_millions: float) -> None:
    # RTMPose: projects/rtmpose/README.md "Params (M)"; HRNet: the W32/W48 sizes MMPose and the paper give.
    name = next(n for n, e in REGISTRY.items() if e.backbone == backbone and e.input_size == (192, 256))
    cfg = setup_of(name)
    with torch.device("meta"):
        network = build_network(cfg.model, cfg.codec.split_ratio)
    assert sum(p.numel() for p in network.parameters()) / 1e6 == pytest.approx(published_millions, abs=0.006)


def _save_mmpose(state: dict[str, torch.Tensor], path: Path, head_prefix: str = "head.") -> None:
    renamed = {(head_prefix + k.removeprefix("head.")) if k.startswith("head.") else k: v for k, v in state.items()}
    torch.save({"meta": {"epoch": 210, "dataset_meta": {"sigmas": np.ones(17, np.float32)}},
                "state_dict": renamed}, path)  # fmt: skip


# The smallest network of each family and decoder; bigger ones share their code.
LOADED = ["rtmpose_t_coco_256x192", "rtmpose_s_aic-coco_256x192", "rtmw_m_256x192", "hrnet_w32_udp_coco_256x192",
          "vitpose_s_coco_256x192", "vitpose_s_simple_coco_256x192"]  # fmt: skip


@pytest.mark.parametrize("name", LOADED)
def test_mmpose_files_load_exactly_and_run(name: str, tmp_path: Path) -> None:
    state = random_state(published_keys(name))
    path = tmp_path / REGISTRY[name].file_name
    _save_mmpose(state, path)
    cfg = setup_of(name, weights=str(path))
    model = build_pose_model(cfg.model, split_ratio=cfg.codec.split_ratio)
    loaded = model.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    width, height = cfg.model.input_size
    outputs = TopDownEstimator(model, cfg).network_outputs(np.zeros((2, height, width, 3), np.uint8))
    count = published_out_channels(REGISTRY[name].file_name)
    if cfg.codec.type == "simcc":
        assert [o.shape for o in outputs] == [(2, count, 2 * width), (2, count, 2 * height)]
    else:
        assert [o.shape for o in outputs] == [(2, count, height // 4, width // 4)]


@pytest.mark.parametrize("name", ARCHITECTURES)
def test_every_registered_network_loads_published_values_and_runs(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every architecture of the registry (each registered checkpoint is one of them, see the keys test above):
    a state dict of the published keys and shapes, in MMPose 1.x's layout, loads with every value where it
    belongs, and a forward pass gives outputs of the published shapes. The file is handed over in memory
    (reading files of each layout is tested above): ViTPose-H alone is 2.5 GB."""
    state = random_state(published_keys(name))
    monkeypatch.setattr("toppose.common.weights.read_checkpoint", lambda path: {"meta": {}, "state_dict": dict(state)})
    cfg = setup_of(name, weights=__file__)  # an existing file, never read
    model = build_pose_model(cfg.model, split_ratio=cfg.codec.split_ratio)
    loaded = model.state_dict()
    assert loaded.keys() == state.keys()
    assert all(torch.equal(loaded[k], v) for k, v in state.items())
    del loaded
    width, height = cfg.model.input_size
    with torch.inference_mode():
        outputs = model(torch.zeros(1, 3, height, width))
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    split, count = cfg.codec.split_ratio, published_out_channels(REGISTRY[name].file_name)
    if cfg.codec.type == "simcc":
        assert [tuple(o.shape) for o in outputs] == [(1, count, int(split * width)), (1, count, int(split * height))]
    else:
        assert [tuple(o.shape) for o in outputs] == [(1, count, height // 4, width // 4)]


def test_hrnet_0x_files_with_keypoint_head_load(tmp_path: Path) -> None:
    state = random_state(hrnet_keys(32))
    path = tmp_path / "hrnet_w32_coco_256x192-c78dce93_20200708.pth"
    _save_mmpose(state, path, head_prefix="keypoint_head.")
    model = build_pose_model(setup_of("hrnet_w32_coco_256x192", weights=str(path)).model)
    assert torch.equal(model.state_dict()["head.final_layer.weight"], state["head.final_layer.weight"])


def test_vit_pos_embed_with_a_class_token_slot_drops_it(tmp_path: Path) -> None:
    state = random_state(vitpose_keys("vit_s", classic=True, class_token_slot=True))
    path = tmp_path / "vitpose_s.pth"
    _save_mmpose(state, path)
    model = build_pose_model(setup_of("vitpose_s_coco_256x192", weights=str(path)).model)
    assert torch.equal(model.state_dict()["backbone.pos_embed"], state["backbone.pos_embed"][:, 1:])


@pytest.mark.parametrize(("file_family", "setup"), [("rtmpose_t_coco_256x192", "hrnet_w32_coco_256x192"),
                                                    ("hrnet_w32_coco_256x192", "simplebaseline_res50_coco_256x192"),
                                                    ("vitpose_s_coco_256x192", "rtmpose_t_coco_256x192"),
                                                    ("rtmw_m_256x192", "dwpose_m_256x192"),
                                                    ("dwpose_m_256x192", "rtmw_m_256x192")])  # fmt: skip
def test_a_checkpoint_of_another_family_names_its_family(file_family: str, setup: str, tmp_path: Path) -> None:
    path = tmp_path / "other.pth"
    _save_mmpose(random_state(published_keys(file_family)), path)
    found = {"rtmpose": "RTMPose", "rtmw": "RTMW", "hrnet": "HRNet", "vitpose": "ViTPose"}[REGISTRY[file_family].family]
    with pytest.raises(UserError, match=f"other.pth: this is a {found} checkpoint, not a") as info:
        build_pose_model(setup_of(setup, weights=str(path)).model)
    assert "\n" not in str(info.value)


def test_run_py_with_an_rtmpose_setup(synthetic_coco: Path, tmp_path: Path) -> None:
    import json

    from toppose.pose.results import load_results

    from toppose.cli import run

    weights = tmp_path / "rtmpose-m.pth"
    torch.manual_seed(0)  # the network's own initialisation: random normal running variances would be negative
    _save_mmpose(build_network(setup_of("rtmpose_m_aic-coco_256x192").model).state_dict(), weights)
    annotations = json.loads((synthetic_coco / "annotations.json").read_text())
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 1.0}
                                for a in annotations["annotations"]]))  # fmt: skip
    config = Path(__file__).resolve().parent.parent / "configs" / "rtmpose_m_256x192.toml"
    out = tmp_path / "out"
    assert run.main([str(synthetic_coco / "images"), "-o", str(out), "--config", str(config), "--pose-weights",
                     str(weights), "--boxes", str(dets), "--ann", str(synthetic_coco / "annotations.json"),
                     "--no-draw"]) == 0  # fmt: skip
    entries = load_results(out / "results.json")
    assert len(entries) == len(annotations["annotations"])
    assert all(np.isfinite(e["keypoints"]).all() for e in entries)
