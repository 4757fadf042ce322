"""Public checkpoint files built the way their frameworks save them: exact load, the setup they record or
imply (convention, channel order), weights-only loading of numpy metadata, and our own checkpoints
running with no config."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from toppose.common.config import Config, ModelConfig
from toppose.common.errors import UserError, run_cli
from toppose.common.weights import read_checkpoint
from toppose.pose.checkpoints import build_pose_model
from toppose.pose.inference import TopDownEstimator
from toppose.pose.models import SimpleBaseline
from toppose.pose.results import load_results
from toppose.pose.setup import apply_weights_setup, describe_checkpoint
from toppose.pose.training.config import TrainingConfig
from torch import nn

from toppose.cli import run

ROOT = Path(__file__).resolve().parent.parent
CFG = ModelConfig(backbone="resnet18", weights="")
# What mmengine writes into meta.dataset_meta for COCO (arrays of OKS sigmas and of colours among them).
DATASET_META = {
    "dataset_name": "coco",
    "num_keypoints": 17,
    "flip_indices": [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15],
    "keypoint_colors": np.array([[51, 153, 255]] * 17, dtype=np.uint8),
    "skeleton_link_colors": np.array([[0, 255, 0]] * 19, dtype=np.uint8),
    "dataset_keypoint_weights": np.ones(17, dtype=np.float32),
    "sigmas": np.array([0.026, 0.025, 0.025, 0.035, 0.035] + [0.079] * 12, dtype=np.float32),
}
MMPOSE_1X_CFG = "codec = dict(type='{codec}', input_size=(192, 256), heatmap_size=(48, 64), sigma=2)\n"


@pytest.fixture(scope="module")
def reference_state() -> dict[str, torch.Tensor]:
    """A resnet18 SimpleBaseline state dict with every floating tensor randomised (variances positive)."""
    torch.manual_seed(0)
    state = SimpleBaseline("resnet18").state_dict()
    return {
        k: v.clone() if not v.is_floating_point()
        else torch.rand_like(v) + 0.5 if k.endswith("running_var") else 0.1 * torch.randn_like(v)
        for k, v in state.items()
    }  # fmt: skip


def _mmpose_keys(state: dict[str, torch.Tensor], head_prefix: str) -> OrderedDict:
    head = ("deconv_layers.", "final_layer.")
    return OrderedDict(((head_prefix if k.startswith(head) else "backbone.") + k, v) for k, v in state.items())


def _as_numpy_1x(path: Path) -> None:
    """Rewrite a checkpoint's pickle as numpy 1.x writes it (``numpy.core`` instead of ``numpy._core``)."""
    with zipfile.ZipFile(path) as zin:
        items = [(info, zin.read(info)) for info in zin.infolist()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zout:
        for info, data in items:
            if info.filename.endswith("data.pkl"):
                assert b"numpy._core.multiarray" in data
                data = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            zout.writestr(info, data)
    path.write_bytes(buffer.getvalue())


def _save_layout(layout: str, state: dict[str, torch.Tensor], path: Path) -> None:
    if layout == "official":  # the 2018 release: a plain state dict, no BatchNorm counters, pre-zip format
        plain = OrderedDict((k, v) for k, v in state.items() if not k.endswith("num_batches_tracked"))
        torch.save(plain, path, _use_new_zipfile_serialization=False)
    elif layout == "dataparallel":  # saved from nn.DataParallel: every key under "module."
        torch.save(OrderedDict(("module." + k, v) for k, v in state.items()), path)
    elif layout == "mmpose_0x":  # mmcv's save_checkpoint: meta + state_dict, TopdownHeatmapSimpleHead
        meta = {"mmcv_version": "1.3.9", "time": "Thu Jul  9 03:20:45 2020", "epoch": 210, "iter": 245490}
        torch.save({"meta": meta, "state_dict": _mmpose_keys(state, "keypoint_head.")}, path)
    else:  # mmengine: meta with the config text and dataset_meta arrays, HeatmapHead as "head."
        numpy_1x = layout.endswith("numpy1")
        codec = "UDPHeatmap" if "udp" in layout else "MSRAHeatmap"
        meta = {"mmengine_version": "0.7.4", "epoch": 210, "iter": 117180, "seed": 21,
                "cfg": MMPOSE_1X_CFG.format(codec=codec), "dataset_meta": DATASET_META}  # fmt: skip
        torch.save({"meta": meta, "state_dict": _mmpose_keys(state, "head.")}, path)
        if numpy_1x:
            _as_numpy_1x(path)


LAYOUTS = {  # layout -> (channel order, convention) the setup gets from it
    "official": ("bgr", "legacy"),
    "dataparallel": ("bgr", "legacy"),
    "mmpose_0x": ("rgb", "legacy"),
    "mmpose_1x": ("rgb", "legacy"),
    "mmpose_1x_numpy1": ("rgb", "legacy"),
    "mmpose_1x_udp": ("rgb", "udp"),
}


@pytest.mark.parametrize("layout", LAYOUTS)
def test_public_layouts_load_exactly_with_their_setup(layout: str, reference_state: dict, tmp_path: Path) -> None:
    path = tmp_path / f"{layout}.pth"
    _save_layout(layout, reference_state, path)
    model = build_pose_model(CFG, weights=str(path))
    loaded = model.state_dict()
    for key, value in reference_state.items():
        if layout != "official" or not key.endswith("num_batches_tracked"):
            assert torch.equal(loaded[key], value), key

    cfg = Config()
    cfg.model.backbone, cfg.model.weights = "resnet18", str(path)
    apply_weights_setup(cfg, explicit={})
    assert (cfg.model.channel_order, cfg.codec.convention) == LAYOUTS[layout]


def test_mmpose_1x_metadata_arrays_come_back_as_arrays(reference_state: dict, tmp_path: Path) -> None:
    for layout in ("mmpose_1x", "mmpose_1x_numpy1"):
        path = tmp_path / f"{layout}.pth"
        _save_layout(layout, reference_state, path)
        meta = read_checkpoint(path)["meta"]["dataset_meta"]
        np.testing.assert_array_equal(meta["sigmas"], DATASET_META["sigmas"])
        assert meta["keypoint_colors"].dtype == np.uint8


class NotData:
    """An arbitrary Python object: only a full unpickler could rebuild it."""


@pytest.mark.parametrize(
    "payload",
    [np.array([{"a": 1}], dtype=object), np.array([print], dtype=object), NotData()],
    ids=["object-array", "object-array-of-function", "arbitrary-object"],
)
def test_metadata_that_can_carry_code_is_still_refused(payload: object, reference_state: dict, tmp_path: Path) -> None:
    path = tmp_path / "evil.pth"
    torch.save({"meta": {"extra": payload}, "state_dict": reference_state}, path)
    with pytest.raises(UserError, match="refused to load") as info:
        read_checkpoint(path)
    assert "\n" not in str(info.value)


class _InputRecorder(nn.Module):
    """A stand-in network that remembers its input and returns empty heatmaps."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[torch.Tensor] = []

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.inputs.append(images)
        return torch.zeros(images.shape[0], 17, images.shape[2] // 4, images.shape[3] // 4)


@pytest.mark.parametrize(("layout", "first_channel"), [("official", "blue"), ("mmpose_1x", "red")])
def test_the_network_sees_the_channel_order_its_layout_was_trained_on(
    layout: str, first_channel: str, reference_state: dict, tmp_path: Path
) -> None:
    path = tmp_path / f"{layout}.pth"
    _save_layout(layout, reference_state, path)
    cfg = Config()
    cfg.model.backbone, cfg.model.weights = "resnet18", str(path)
    apply_weights_setup(cfg, explicit={})
    recorder = _InputRecorder()
    frame = np.zeros((300, 200, 3), dtype=np.uint8)
    frame[..., 0] = 255  # pure blue, in OpenCV's BGR
    TopDownEstimator(recorder, cfg).estimate(frame, np.array([[20.0, 20.0, 150.0, 250.0]]))
    channel_means = recorder.inputs[0][0].mean(dim=(1, 2))
    brightest = int(channel_means.argmax())
    assert brightest == (0 if first_channel == "blue" else 2)


def _training_checkpoint(path: Path, state: dict, cfg: TrainingConfig, drop: tuple[str, ...] = ()) -> None:
    """A checkpoint as pose.training writes it (model, training state, the whole config)."""
    config = dataclasses.asdict(cfg)
    for dotted in drop:  # as the first version wrote them, before a field existed
        section, key = dotted.split(".")
        del config[section][key]
    torch.save({"model": state, "epoch": 3, "best_ap": 0.5, "config": config}, path)


def _resnet18_training_config() -> TrainingConfig:
    cfg = TrainingConfig()
    cfg.model.backbone, cfg.model.input_size, cfg.model.heatmap_size = "resnet18", (96, 128), (24, 32)
    cfg.codec.sigma, cfg.crop.padding = 1.5, 1.3
    return cfg


def test_a_training_checkpoint_carries_its_setup(reference_state: dict, tmp_path: Path) -> None:
    path = tmp_path / "best.pth"
    _training_checkpoint(path, reference_state, _resnet18_training_config())
    cfg = Config()
    cfg.model.weights = str(path)
    setup = apply_weights_setup(cfg, explicit={})
    assert setup.layout == "toppose"
    assert (cfg.model.backbone, cfg.model.input_size, cfg.model.heatmap_size) == ("resnet18", (96, 128), (24, 32))
    assert (cfg.codec.convention, cfg.model.channel_order, cfg.codec.sigma, cfg.crop.padding) == (
        "udp",
        "rgb",
        1.5,
        1.3,
    )

    old = tmp_path / "first_version.pth"
    _training_checkpoint(old, reference_state, _resnet18_training_config(), drop=("codec.convention",))
    assert describe_checkpoint(read_checkpoint(old), str(old)).recorded["codec.convention"] == "half_pixel"


def test_a_setting_that_contradicts_the_checkpoint_is_one_error(reference_state: dict, tmp_path: Path) -> None:
    path = tmp_path / "best.pth"
    _training_checkpoint(path, reference_state, _resnet18_training_config())
    cfg = Config()
    cfg.model.weights, cfg.codec.convention = str(path), "legacy"
    with pytest.raises(UserError, match=r"best\.pth was trained with codec\.convention = 'udp', but --convention"):
        apply_weights_setup(cfg, explicit={"codec.convention": "--convention"})
    cfg = Config()
    cfg.model.weights, cfg.crop.padding = str(path), 1.0
    apply_weights_setup(cfg, explicit={"crop.padding": "--padding"})  # an inference choice: kept
    assert cfg.crop.padding == 1.0 and cfg.model.backbone == "resnet18"


def test_registry_entries_set_their_setup_without_downloading() -> None:
    cfg = Config()
    cfg.model.backbone, cfg.codec.convention = "resnet18", "udp"
    cfg.model.weights = "simplebaseline_res101_coco_384x288"
    apply_weights_setup(cfg, explicit={})
    assert (cfg.model.backbone, cfg.model.input_size, cfg.model.heatmap_size) == ("resnet101", (288, 384), (72, 96))
    assert (cfg.codec.convention, cfg.model.channel_order) == ("legacy", "rgb")
    with pytest.raises(UserError, match="was trained with codec.convention = 'legacy', but configs/x.toml sets 'udp'"):
        cfg.codec.convention = "udp"
        apply_weights_setup(cfg, explicit={"codec.convention": "configs/x.toml"})


def test_run_and_eval_take_the_setup_from_our_checkpoint(
    reference_state: dict, synthetic_coco: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from toppose.cli.eval import main as eval_main

    checkpoint = tmp_path / "best.pth"
    _training_checkpoint(checkpoint, reference_state, _resnet18_training_config())
    annotations = json.loads((synthetic_coco / "annotations.json").read_text())
    dets = tmp_path / "dets.json"
    dets.write_text(json.dumps([{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"], "score": 1.0}
                                for a in annotations["annotations"]]))  # fmt: skip
    images = synthetic_coco / "images"
    out = tmp_path / "out"
    args = [str(images), "-o", str(out), "--pose-weights", str(checkpoint), "--boxes", str(dets), "--no-draw"]
    assert run.main([*args, "--ann", str(synthetic_coco / "annotations.json")]) == 0
    assert len(load_results(out / "results.json")) == len(annotations["annotations"])
    ann = str(synthetic_coco / "annotations.json")
    assert eval_main(["--ann", ann, "--images", str(images), "--gt-boxes", "--pose-weights", str(checkpoint),
                      "--limit", "2"]) == 0  # fmt: skip

    # A training config is a model setup too (its [data], [train] ... sections are accepted) ...
    matching = tmp_path / "train.toml"
    matching.write_text('[model]\nbackbone = "resnet18"\ninput_size = [96, 128]\nheatmap_size = [24, 32]\n'
                        '[data]\ntrain_annotations = "train.json"\n[train]\nepochs = 3\n')  # fmt: skip
    assert run.main([*args, "--config", str(matching), "-o", str(tmp_path / "out1")]) == 0
    # ... and one that contradicts the checkpoint is one error line.
    train_toml = ROOT / "configs" / "train_tiny_synthetic.toml"
    with pytest.raises(SystemExit) as exit_info:
        run_cli(run.main, [*args, "--config", str(train_toml), "-o", str(tmp_path / "out2")])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert exit_info.value.code == 1 and len(lines) == 1 and "Traceback" not in err
    assert "best.pth was trained with model.deconv_channels = 256, but" in lines[0] and "train_tiny" in lines[0]
