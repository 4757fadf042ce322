"""RTMW against its published sources: the registry's entries against MMPose's configs and model index, the
networks' arithmetic against the published FLOPs, the inference copy (backbone, neck, head) against the network,
a cached checkpoint without a published hash checked against its recorded one, and, where OpenMMLab is importable,
the outputs against MMPose's own RTMW."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from toppose.common.errors import UserError
from toppose.common.weights import file_sha256, hub_checkpoint_path, sha256_sidecar
from toppose.pose.checkpoints import build_pose_model
from toppose.pose.inference import TopDownEstimator
from toppose.pose.models import build_network, rtmw
from toppose.pose.models.inputs import Float32Head, inference_copy
from toppose.pose.registry import REGISTRY
from toppose.pose.setup import keypoints_of_head
from torch.utils.flop_counter import FlopCounterMode

from tests.test_model_zoo import setup_of

NAMES = [name for name, entry in REGISTRY.items() if entry.family == "rtmw"]
# projects/rtmpose/README.md, RTMW table, "FLOPS(G)" (multiply-adds, as mmengine counts them)
PUBLISHED_GMACS = {
    "rtmw_m_256x192": 4.3,
    "rtmw_l_256x192": 7.9,
    "rtmw_l_384x288": 17.7,
    "rtmw_x_256x192": 13.1,
    "rtmw_x_384x288": 29.3,
}


def _cocktail14() -> Path:
    """The RTMW configs' folder in the installed mmpose wheel (its files only: nothing of mmpose is imported)."""
    spec = importlib.util.find_spec("mmpose")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the mmpose wheel (its configs) is not installed")
    return Path(spec.submodule_search_locations[0]) / ".mim/configs/wholebody_2d_keypoint/rtmpose/cocktail14"


def _published_config(name: str) -> dict[str, Any]:
    """The variables of the MMPose config the registry entry ``name`` was trained with (a config is Python)."""
    entry = REGISTRY[name]
    width, height = entry.input_size
    size = entry.backbone.removeprefix("cspnext_")
    (path,) = _cocktail14().glob(f"rtmw-{size}_*_cocktail14-{height}x{width}.py")
    namespace: dict[str, Any] = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # plain assignments of dicts, lists and numbers
    return namespace


def test_the_registry_has_the_published_rtmw_checkpoints() -> None:
    """Every RTMW of MMPose's model index (``rtmw_cocktail14.yml``), with its weights' URL and whole-body AP."""
    index = (_cocktail14() / "rtmw_cocktail14.yml").read_text()
    models = index.split("- Config:")[1:]
    published = {(re.search(r"Weights: (\S+)", m)[1], round(100 * float(re.search(r"Whole AP: ([\d.]+)", m)[1]), 1))
                 for m in models}  # fmt: skip
    assert {(REGISTRY[name].url, REGISTRY[name].published_ap) for name in NAMES} == published


@pytest.mark.parametrize("name", NAMES)
def test_each_setup_is_its_published_config(name: str) -> None:
    config, entry = _published_config(name), REGISTRY[name]
    model, codec, setup = config["model"], config["codec"], entry.setup()
    assert tuple(codec["input_size"]) == entry.input_size and codec["type"] == "SimCCLabel"
    assert tuple(codec["sigma"]) == setup["codec.simcc_sigma"] and codec["simcc_split_ratio"] == 2.0
    assert model["data_preprocessor"]["bgr_to_rgb"] and setup["model.channel_order"] == "rgb"
    affine = [step for step in config["val_pipeline"] if step["type"] == "TopdownAffine"]
    assert len(affine) == 1 and not affine[0].get("use_udp") and setup["codec.convention"] == "legacy"
    backbone, neck, head = model["backbone"], model["neck"], model["head"]
    size = entry.backbone.removeprefix("cspnext_")
    assert (backbone["deepen_factor"], backbone["widen_factor"]) == rtmw.SIZES[size]
    assert "out_indices" not in backbone  # MMDetection's default: (2, 3, 4)
    network = build_network(setup_of(name).model)
    assert list(neck["in_channels"]) == list(network.backbone.channels) and neck["out_channels"] is None
    assert tuple(neck["out_indices"]) == (1, 2) and neck["num_csp_blocks"] == rtmw.NECK_BLOCKS
    assert head["in_channels"] == network.backbone.out_channels and head["out_channels"] == rtmw.WHOLEBODY
    assert head["final_layer_kernel_size"] == rtmw.HEAD_KERNEL and head["gau_cfg"]["hidden_dims"] == rtmw.TOKEN_DIMS
    assert head["gau_cfg"]["act_fn"] == "SiLU" and not head["gau_cfg"]["use_rel_bias"]


@pytest.mark.parametrize("name", NAMES)
def test_the_arithmetic_is_the_published_flops(name: str) -> None:
    cfg = setup_of(name)
    width, height = cfg.model.input_size
    with torch.device("meta"):
        network = build_network(cfg.model, cfg.codec.split_ratio).eval()
        with FlopCounterMode(display=False) as counter:
            network(torch.empty(1, 3, height, width))
    assert counter.get_total_flops() / 2e9 == pytest.approx(PUBLISHED_GMACS[name], abs=0.07)


def test_the_inference_copy_runs_backbone_neck_and_head() -> None:
    """The folded copy keeps the neck between trunk and head, and gives the network's outputs; under bf16
    autocast the head still computes in float32."""
    torch.manual_seed(0)
    network = build_network(setup_of("rtmw_m_256x192").model).eval()
    images = torch.randn(2, 3, 256, 192)
    with torch.inference_mode():
        expected = network(images)
        copy = inference_copy(network, torch.device("cpu"))
        assert isinstance(copy, Float32Head)
        for got, want in zip(copy(images), expected, strict=True):
            torch.testing.assert_close(got, want, rtol=0, atol=1e-5 * want.abs().max().item())
        bf16 = inference_copy(network, torch.device("cpu"), torch.bfloat16)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            outputs = bf16(images)
    assert [o.dtype for o in outputs] == [torch.float32, torch.float32]
    assert [o.shape for o in outputs] == [w.shape for w in expected]


def test_a_cached_registry_rtmw_is_checked_against_its_recorded_sha256_and_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """RTMW-m's file publishes no hash: cached with the sha256 its download recorded, it loads and runs; changed
    after that, it is refused in one line."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    cfg = setup_of("rtmw_m_256x192", weights="rtmw_m_256x192")
    torch.manual_seed(0)
    state = build_network(cfg.model).state_dict()
    path = hub_checkpoint_path(REGISTRY["rtmw_m_256x192"].url)
    path.parent.mkdir(parents=True)
    torch.save({"meta": {"epoch": 270}, "state_dict": state}, path)
    sha256_sidecar(path).write_text(file_sha256(path) + "\n")
    model = build_pose_model(cfg.model, split_ratio=cfg.codec.split_ratio)
    assert all(torch.equal(model.state_dict()[key], value) for key, value in state.items())
    outputs = TopDownEstimator(model, cfg).network_outputs(np.zeros((1, 256, 192, 3), np.uint8))
    assert [o.shape for o in outputs] == [(1, 133, 384), (1, 133, 512)] and all(np.isfinite(o).all() for o in outputs)

    with open(path, "ab") as fh:
        fh.write(b"\0")
    with pytest.raises(UserError, match="changed since its download") as info:
        build_pose_model(cfg.model)
    assert "\n" not in str(info.value)


def test_mmpose_s_own_rtmw_gives_the_same_outputs() -> None:
    """Optional (OpenMMLab in a separate folder on ``PYTHONPATH``): ``python -m benchmarks.mmpose_reference``'s
    comparison of RTMW-m, bit for bit."""
    pytest.importorskip("mmengine", reason="OpenMMLab is not importable (see python -m benchmarks.mmpose_reference)")
    from benchmarks import mmpose_reference

    try:
        build_reference, _ = mmpose_reference.reference_builder()
    except UserError as err:
        pytest.skip(str(err))
    lines, passed = mmpose_reference.compare("rtmw_m", build_reference, perturbed=False)
    assert passed and lines[-1].startswith("max abs diff 0,"), lines


def test_a_local_rtmw_file_names_its_keypoint_set() -> None:
    """RTMW's last head layer is a ConvModule (``head.final_layer.conv.weight``): 133 channels, whole-body."""
    cfg = setup_of("rtmw_m_256x192")
    state = build_pose_model(cfg.model, weights="").state_dict()
    assert "head.final_layer.conv.weight" in state
    assert keypoints_of_head(state) == "wholebody"
