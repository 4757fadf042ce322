"""Pose-weights loading: public checkpoint layouts, checked keys, refused pickles, the offline registry."""

from __future__ import annotations

import hashlib
import re
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
from toppose.common.config import ModelConfig
from toppose.common.errors import EXIT_MISSING_WEIGHTS, MissingWeightsError, UserError
from toppose.common.weights import fetch_checkpoint, hub_checkpoint_path, sha256_sidecar
from toppose.pose import checkpoints
from toppose.pose.checkpoints import build_pose_model
from toppose.pose.models import FAMILIES, SimpleBaseline
from toppose.pose.registry import REGISTRY

CFG = ModelConfig(backbone="resnet18", weights="")


class NotATensor:
    """An arbitrary Python object: only a full unpickler could rebuild it."""


@pytest.fixture(scope="module")
def reference_state() -> dict[str, torch.Tensor]:
    """A resnet18 SimpleBaseline state dict with every tensor (BatchNorm statistics included) randomised."""
    torch.manual_seed(0)
    state = SimpleBaseline("resnet18").state_dict()
    return {k: v.clone() if not v.is_floating_point() else torch.randn_like(v) for k, v in state.items()}


def _mmpose_key(key: str, head_prefix: str) -> str:
    head = key.startswith(("deconv_layers.", "final_layer."))
    return (head_prefix if head else "backbone.") + key


def _assert_loaded(model: SimpleBaseline, reference: dict[str, torch.Tensor]) -> None:
    loaded = model.state_dict()
    assert loaded.keys() == reference.keys()
    for key, value in reference.items():
        assert torch.equal(loaded[key], value), key


@pytest.mark.parametrize(
    "layout",
    ["official", "official_dataparallel", "mmpose_0x", "mmpose_1x", "training"],
)
def test_public_layouts_load_exactly(layout: str, reference_state: dict, tmp_path: Path) -> None:
    meta = {"epoch": 210, "best_score": np.float64(0.718), "mmpose_version": "0.x"}
    checkpoint = {
        "official": reference_state,
        "official_dataparallel": {"state_dict": {"module." + k: v for k, v in reference_state.items()}},
        "mmpose_0x": {
            "state_dict": {_mmpose_key(k, "keypoint_head."): v for k, v in reference_state.items()},
            "meta": meta,
        },
        "mmpose_1x": {"state_dict": {_mmpose_key(k, "head."): v for k, v in reference_state.items()}, "meta": meta},
        "training": {"model": reference_state, "config": {"backbone": "resnet18"}, "epoch": 3},
    }[layout]
    path = tmp_path / f"{layout}.pth"
    torch.save(checkpoint, path)
    model = build_pose_model(CFG, weights=str(path))
    assert not model.training
    _assert_loaded(model, reference_state)


def test_config_weights_used_when_no_argument(reference_state: dict, tmp_path: Path) -> None:
    path = tmp_path / "w.pth"
    torch.save(reference_state, path)
    _assert_loaded(build_pose_model(ModelConfig(backbone="resnet18", weights=str(path))), reference_state)


def test_empty_spec_is_random_initialisation() -> None:
    model = build_pose_model(CFG, weights="")
    out = model(torch.zeros(1, 3, 64, 32))
    assert not model.training and out.shape == (1, 17, 16, 8)


def test_missing_keys_are_an_error(reference_state: dict, tmp_path: Path) -> None:
    path = tmp_path / "partial.pth"
    torch.save({k: v for k, v in reference_state.items() if not k.startswith("final_layer")}, path)
    with pytest.raises(UserError, match=r"partial\.pth: .*missing 2 keys: final_layer\.weight, final_layer\.bias"):
        build_pose_model(CFG, weights=str(path))


def test_wrong_backbone_is_an_error(reference_state: dict, tmp_path: Path) -> None:
    path = tmp_path / "r18.pth"
    torch.save(reference_state, path)
    with pytest.raises(UserError, match=r"r18\.pth: not a SimpleBaseline resnet34 checkpoint: missing \d+ keys"):
        build_pose_model(ModelConfig(backbone="resnet34"), weights=str(path))


def test_shape_mismatch_is_an_error(reference_state: dict, tmp_path: Path) -> None:
    state = dict(reference_state)
    state["final_layer.weight"] = torch.zeros(16, 256, 1, 1)
    path = tmp_path / "k16.pth"
    torch.save(state, path)
    with pytest.raises(UserError, match=r"k16\.pth: .*shape mismatch .*final_layer\.weight \(16, 256, 1, 1\) vs \(17"):
        build_pose_model(CFG, weights=str(path))


def test_extra_keys_only_warn(reference_state: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "extra.pth"
    torch.save({**reference_state, "fc.weight": torch.zeros(3)}, path)
    _assert_loaded(build_pose_model(CFG, weights=str(path)), reference_state)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: ") and "fc.weight" in err[0]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"this is not a checkpoint\n", "not a readable PyTorch checkpoint"), (b"", "not a readable PyTorch checkpoint")],
)
def test_garbage_file_is_one_line_error(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "garbage.pth"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message) as info:
        build_pose_model(CFG, weights=str(path))
    assert "\n" not in str(info.value)


def test_pickled_objects_are_refused(reference_state: dict, tmp_path: Path) -> None:
    path = tmp_path / "pickle.pth"
    torch.save({"state_dict": reference_state, "extra": NotATensor()}, path)
    with pytest.raises(UserError, match=r"refused to load.*NotATensor") as info:
        build_pose_model(CFG, weights=str(path))
    assert "\n" not in str(info.value)


def test_non_tensor_state_dict_entry_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "odd.pth"
    torch.save({"conv1.weight": [1, 2, 3]}, path)
    with pytest.raises(UserError, match="'conv1.weight' is not a tensor"):
        build_pose_model(CFG, weights=str(path))


def test_unknown_spec_names_the_registry() -> None:
    with pytest.raises(UserError, match="neither a known name .*simplebaseline_res50_coco_256x192"):
        build_pose_model(CFG, weights="no/such/file.pth")


def test_config_mismatches_are_errors() -> None:
    with pytest.raises(UserError, match="heatmap_size"):
        build_pose_model(ModelConfig(backbone="resnet18", heatmap_size=(64, 48)), weights="")
    with pytest.raises(UserError, match="model.backbone"):
        build_pose_model(ModelConfig(backbone="vgg16"), weights="")


# the registry entries whose file names publish no sha256 prefix (RTMW-m and RTMW-l, 2023-11-22)
HASHLESS = {"rtmw_m_256x192", "rtmw_l_256x192", "rtmw_l_384x288"}


def test_registry_entries_match_their_file_names() -> None:
    assert len(REGISTRY) == 55
    assert {name for name, entry in REGISTRY.items() if entry.sha256_prefix is None} == HASHLESS
    for name, entry in REGISTRY.items():
        assert entry.url.startswith("https://download.openmmlab.com/mmpose/")
        if name in HASHLESS:
            assert re.search(r"-\d{8}\.pth$", entry.file_name) and not re.search(r"[0-9a-f]{8}_\d{8}", entry.file_name)
        else:
            assert re.fullmatch(r"[0-9a-f]{8}", entry.sha256_prefix) and f"-{entry.sha256_prefix}_" in entry.file_name
        width, height = entry.input_size
        assert f"{height}x{width}" in name and f"{height}x{width}" in entry.file_name
        assert entry.family in FAMILIES and entry.backbone in FAMILIES[entry.family].backbones
        assert name.startswith(entry.family + "_") or (name.startswith("dwpose") and entry.family == "rtmpose")
        lowest = {"COCO AP": 60.0, "Body8 AUC": 60.0, "COCO-WholeBody AP": 45.0}[entry.published_metric]
        assert lowest < entry.published_ap < 80.0
        assert entry.keypoints == {"COCO AP": "coco17", "Body8 AUC": "halpe26"}.get(entry.published_metric, "wholebody")
        # UDP in the name, or ViTPose (trained with UDPHeatmap), exactly where the entry says udp
        assert (entry.convention == "udp") == ("udp" in entry.file_name or entry.family == "vitpose")
        assert (entry.codec == "simcc") == (entry.family in ("rtmpose", "rtmw")) == ("simcc" in entry.file_name)


@pytest.fixture
def hub_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty torch hub dir, with downloads failing the way they do offline."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
        raise urllib.error.URLError(OSError(101, "Network is unreachable"))

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return tmp_path / "hub"


def test_offline_registry_name_is_missing_weights(hub_dir: Path) -> None:
    entry = REGISTRY["simplebaseline_res50_coco_256x192"]
    with pytest.raises(MissingWeightsError) as info:
        build_pose_model(ModelConfig(), weights="simplebaseline_res50_coco_256x192")
    message = str(info.value)
    target = hub_dir / "checkpoints" / "res50_coco_256x192-ec54d7f3_20200709.pth"
    assert "\n" not in message
    assert entry.file_name in message and str(target) in message and entry.url in message
    assert info.value.exit_code == EXIT_MISSING_WEIGHTS == 2
    assert not target.exists()


def test_fetch_uses_the_cache_then_downloads_with_hash(hub_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def download(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
        calls.append((url, hash_prefix))
        Path(dst).write_bytes(b"weights")

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    url = "https://example.invalid/models/net-0123abcd_2020.pth"
    path = fetch_checkpoint(url, "0123abcd")
    assert path == hub_checkpoint_path(url) == hub_dir / "checkpoints" / "net-0123abcd_2020.pth"
    assert fetch_checkpoint(url, "0123abcd") == path
    assert calls == [(url, "0123abcd")]
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # torch hub checked it: no record beside it


def test_a_hashless_download_records_its_sha256_and_a_changed_file_is_refused(
    hub_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def download(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
        calls.append((url, hash_prefix))
        Path(dst).write_bytes(b"weights")

    monkeypatch.setattr(torch.hub, "download_url_to_file", download)
    url = "https://example.invalid/models/net_270e-256x192-20231122.pth"
    path = fetch_checkpoint(url)
    sidecar = sha256_sidecar(path)
    assert path == hub_dir / "checkpoints" / "net_270e-256x192-20231122.pth" and path.read_bytes() == b"weights"
    assert sidecar.read_text() == hashlib.sha256(b"weights").hexdigest() + "\n"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, sidecar.name]  # no temporary left
    assert fetch_checkpoint(url) == path and calls == [(url, None)]  # checked against its record, not downloaded

    path.write_bytes(b"weightz")
    with pytest.raises(UserError, match=r"changed since its download .* delete .*download it anew") as info:
        fetch_checkpoint(url)
    assert "\n" not in str(info.value) and str(path) in str(info.value)

    path.write_bytes(b"weights")
    sidecar.unlink()
    with pytest.raises(UserError, match=r"recorded at download, is missing .* delete .*download it anew") as info:
        fetch_checkpoint(url)
    assert "\n" not in str(info.value) and str(sidecar) in str(info.value)
    assert calls == [(url, None)]


def test_a_hashless_download_cut_short_leaves_nothing(hub_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def cut_short(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
        Path(dst).write_bytes(b"wei")
        raise ConnectionResetError(104, "Connection reset by peer")

    monkeypatch.setattr(torch.hub, "download_url_to_file", cut_short)
    url = "https://example.invalid/models/net-20231122.pth"
    with pytest.raises(MissingWeightsError, match=r"sha256sum .*net-20231122\.pth > .*net-20231122\.pth\.sha256$"):
        fetch_checkpoint(url)
    assert list((hub_dir / "checkpoints").iterdir()) == []


def test_an_offline_hashless_registry_name_says_how_to_record_its_sha256(hub_dir: Path) -> None:
    entry = REGISTRY["rtmw_m_256x192"]
    with pytest.raises(MissingWeightsError) as info:
        checkpoints.resolve_weights("rtmw_m_256x192")
    target, message = hub_dir / "checkpoints" / entry.file_name, str(info.value)
    assert "\n" not in message and entry.url in message
    assert message.endswith(f"save it as {target}, then record its sha256: sha256sum {target} > {target}.sha256")


def test_failed_hash_check_is_a_user_error(hub_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def corrupt(url: str, dst: str, hash_prefix: str | None = None, progress: bool = True) -> None:
        raise RuntimeError(f'invalid hash value (expected "{hash_prefix}", got "ffff")')

    monkeypatch.setattr(torch.hub, "download_url_to_file", corrupt)
    with pytest.raises(UserError, match="failed its integrity check") as info:
        fetch_checkpoint("https://example.invalid/net-0123abcd.pth", "0123abcd")
    assert not isinstance(info.value, MissingWeightsError)


def test_cuda_without_cuda_is_a_user_error() -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(UserError, match="CUDA is not available"):
        checkpoints.torch_device("cuda")


def test_input_sizes_the_trunk_cannot_divide_are_refused() -> None:
    cfg = ModelConfig(backbone="resnet18", input_size=(48, 64), heatmap_size=(12, 16))
    with pytest.raises(UserError, match="multiples of 32"):
        build_pose_model(cfg, weights="")
