"""ONNX export (``python -m pose.export``) and the onnxruntime backend: the file, the option, the cache, and
keypoints equal to torch's for every family (random weights, flip test on and off, heatmaps and SimCC)."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from toppose.common.config import CONFIG_DIR, Config, load_config
from toppose.common.errors import ConfigError, UserError, run_cli
from toppose.pose import runtime
from toppose.pose.checkpoints import build_pose_model
from toppose.pose.inference import TopDownEstimator
from toppose.pose.models import build_network
from toppose.pose.onnx_export import export_onnx
from toppose.pose.registry import REGISTRY
from toppose.pose.setup import apply_weights_setup

from benchmarks import backends
from benchmarks import crowd as crowd_benchmark
from toppose.cli import export as export_cli
from toppose.cli import run
from toppose.cli.options import config_from_args


@pytest.fixture(scope="module")
def cache_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("torch_home")


@pytest.fixture(autouse=True)
def onnx_cache(cache_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Exports are cached under a temporary torch hub dir, shared by this module's tests."""
    monkeypatch.setenv("TORCH_HOME", str(cache_home))
    return cache_home / "hub" / "onnx"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, synthetic_coco: Path) -> dict[str, Path]:
    """A small SimpleBaseline setup (ResNet-18, 64x96 input, the light detector), its random weights, the synthetic
    images' true boxes."""
    tmp = tmp_path_factory.mktemp("tiny")
    annotations = json.loads((synthetic_coco / "annotations.json").read_text())
    (tmp / "dets.json").write_text(json.dumps([{"image_id": a["image_id"], "category_id": 1, "bbox": a["bbox"],
                                                "score": 1.0} for a in annotations["annotations"]]))  # fmt: skip
    config = (CONFIG_DIR / "simplebaseline_res18_256x192.toml").read_text()
    for old, new in (("input_size = [192, 256]", "input_size = [64, 96]"),
                     ("heatmap_size = [48, 64]", "heatmap_size = [16, 24]"),
                     ("keypointrcnn_resnet50_fpn", "fasterrcnn_mobilenet_v3_large_320_fpn")):  # fmt: skip
        assert old in config
        config = config.replace(old, new)
    (tmp / "tiny.toml").write_text(config)
    torch.manual_seed(0)
    torch.save(build_network(load_config(tmp / "tiny.toml").model).state_dict(), tmp / "tiny.pth")
    return {"config": tmp / "tiny.toml", "weights": tmp / "tiny.pth", "dets": tmp / "dets.json"}


def tiny_setup(tiny: dict[str, Path], **inference: object) -> tuple[torch.nn.Module, Config]:
    """The tiny network and its setup as the CLIs read them (the weights' own setup merged in), with ``inference``."""
    args = export_cli.build_parser().parse_args(["-o", "x.onnx", "--config", str(tiny["config"]), "--pose-weights",
                                             str(tiny["weights"])])  # fmt: skip
    cfg = config_from_args(args)
    for key, value in inference.items():
        setattr(cfg.inference, key, value)
    return build_pose_model(cfg.model), cfg


def cli(main: object, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def one_error_line(err: str) -> str:
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err
    return errors[0]


def test_export_writes_an_onnx_file_that_onnxruntime_runs_as_torch(
    tiny: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "tiny.onnx"
    argv = ["--config", str(tiny["config"]), "--pose-weights", str(tiny["weights"]), "-o", str(out)]
    code, stdout, _ = cli(export_cli.main, argv, capsys)
    assert code == 0 and "max abs difference" in stdout
    graph = onnx.load(out)
    onnx.checker.check_model(graph)
    assert {p.key: p.value for p in graph.metadata_props}["toppose.codec"] == "heatmap"
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (crops_input,) = session.get_inputs()
    assert crops_input.type == "tensor(uint8)" and crops_input.shape[1:] == [96, 64, 3]
    assert isinstance(crops_input.shape[0], str)  # the batch axis is dynamic
    crops = np.random.default_rng(1).integers(0, 256, (5, 96, 64, 3), dtype=np.uint8)
    (heatmaps,) = session.run(None, {"crops": crops})
    model, cfg = tiny_setup(tiny)
    (expected,) = TopDownEstimator(model, cfg).network_outputs(crops)
    assert heatmaps.shape == (5, 17, 24, 16)
    np.testing.assert_allclose(heatmaps, expected, atol=1e-5 * np.abs(expected).max())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.onnx"]  # no temporary file left


def test_export_that_differs_from_torch_is_one_error_and_writes_nothing(
    tiny: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def export_another_network(model: torch.nn.Module, cfg: Config) -> bytes:
        other = copy.deepcopy(model)
        with torch.no_grad():
            other.final_layer.bias.add_(0.01)
        return export_onnx(other, cfg)

    monkeypatch.setattr(export_cli, "export_onnx", export_another_network)
    out = tmp_path / "tiny.onnx"
    argv = ["--config", str(tiny["config"]), "--pose-weights", str(tiny["weights"]), "-o", str(out)]
    code, _, err = cli(export_cli.main, argv, capsys)
    assert code == 1 and "differ from the torch network's by 0.01, more than --tolerance" in one_error_line(err)
    assert not out.exists()


def without(package: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``package`` look uninstalled."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == package else find_spec(name, *a))


def test_missing_onnx_packages_are_one_error_line_naming_the_pip_command(
    tiny: dict[str, Path], synthetic_coco: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    without("onnxruntime", monkeypatch)
    argv = [str(synthetic_coco / "images"), "-o", str(tmp_path / "out"), "--config", str(tiny["config"]),
            "--pose-weights", str(tiny["weights"]), "--boxes", str(tiny["dets"]),
            "--backend", "onnxruntime"]  # fmt: skip
    code, _, err = cli(run.main, argv, capsys)
    line = one_error_line(err)
    assert code == 1 and "needs onnxruntime, not installed" in line and "pip install onnxruntime" in line
    without("onnxscript", monkeypatch)
    code, _, err = cli(export_cli.main, ["--config", str(tiny["config"]), "-o", str(tmp_path / "x.onnx")], capsys)
    assert code == 1 and "ONNX export needs onnxscript" in one_error_line(err)


def test_backend_option_is_checked(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = run.build_parser().parse_args(["in.mp4", "-o", "out", "--setup", "fast", "--backend", "onnxruntime"])
    assert config_from_args(args).inference.backend == "onnxruntime"
    with pytest.raises(SystemExit) as exit_info:
        run.build_parser().parse_args(["in.mp4", "-o", "out", "--backend", "tensorrt"])
    assert exit_info.value.code == 2 and "invalid choice: 'tensorrt'" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text('[inference]\nbackend = "tensorrt"\n')
    with pytest.raises(ConfigError, match=r"\[inference\] backend: expected one of 'torch', 'onnxruntime'"):
        load_config(bad)


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [("precision", "bf16", "runs fp32 only, not precision 'bf16'"), ("device", "cuda", "runs on the CPU")],
)
def test_onnxruntime_backend_runs_fp32_on_the_cpu(
    tiny: dict[str, Path], setting: str, value: str, message: str
) -> None:
    model, cfg = tiny_setup(tiny, backend="onnxruntime", **{setting: value})
    with pytest.raises(UserError, match=message):
        TopDownEstimator(model, cfg, optimize=True)


def test_export_is_cached_per_weights(tiny: dict[str, Path], onnx_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, cfg = tiny_setup(tiny, backend="onnxruntime")
    TopDownEstimator(model, cfg, optimize=True)
    cached = runtime.cache_path(model, cfg)
    assert cached.parent == onnx_cache and cached.name.startswith("simplebaseline_resnet18_64x96-") and cached.is_file()

    def no_export(*_: object) -> bytes:
        raise AssertionError("exported again")

    monkeypatch.setattr(runtime, "export_onnx", no_export)
    cfg.inference.ort_threads = 1
    estimator = TopDownEstimator(model, cfg, optimize=True)  # runs the cached graph
    assert estimator.runtime.session.get_session_options().intra_op_num_threads == 1
    other = copy.deepcopy(model)
    with torch.no_grad():
        other.final_layer.bias.add_(1.0)
    assert runtime.cache_path(other, cfg) != cached  # other weights, another graph


def test_a_damaged_cache_file_is_exported_again(tiny: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    model, cfg = tiny_setup(tiny, backend="onnxruntime")
    cached = runtime.cache_path(model, cfg)
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(b"not an onnx file")
    estimator = TopDownEstimator(model, cfg, optimize=True)
    assert "ignoring unreadable ONNX cache file" in capsys.readouterr().err
    onnx.checker.check_model(onnx.load(cached))
    assert estimator.network_outputs(np.zeros((1, 96, 64, 3), np.uint8))[0].shape == (1, 17, 24, 16)


def test_an_unwritable_cache_only_warns(
    tiny: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "hub").write_text("a file where the hub folder would be")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    model, cfg = tiny_setup(tiny, backend="onnxruntime")
    estimator = TopDownEstimator(model, cfg, optimize=True)
    assert "cannot cache the ONNX export" in capsys.readouterr().err
    assert estimator.network_outputs(np.zeros((2, 96, 64, 3), np.uint8))[0].shape == (2, 17, 24, 16)
    assert estimator.runtime.session.get_session_options().intra_op_num_threads == torch.get_num_threads()


# The smallest network of each family: SimCC (legacy), heatmaps in the UDP and legacy conventions.
SMALLEST = ["rtmpose_t_coco_256x192", "hrnet_w32_udp_coco_256x192", "vitpose_s_coco_256x192", "resnet18"]


@pytest.fixture(scope="module")
def networks() -> dict[str, tuple[torch.nn.Module, Config]]:
    """Each family's smallest network with random weights whose outputs depend on the crop (built once: their
    exports are cached). RTMPose's own initialisation fades the image out of its deep trunk (every crop gives
    the same outputs), so its convolutions are drawn variance-preserving (He) instead."""
    built = {}
    for name in SMALLEST:
        cfg = load_config(CONFIG_DIR / "simplebaseline_res18_256x192.toml") if name == "resnet18" else Config()
        if name in REGISTRY:
            cfg.model.weights = name
            apply_weights_setup(cfg, explicit={})
        torch.manual_seed(0)
        model = build_network(cfg.model, cfg.codec.split_ratio).eval()
        if cfg.model.family == "rtmpose":
            for module in model.backbone.modules():
                if isinstance(module, torch.nn.Conv2d):
                    torch.nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        built[name] = (model, cfg)
    return built


@pytest.mark.slow
@pytest.mark.parametrize("flip", [False, True], ids=["no_flip", "flip"])
@pytest.mark.parametrize("name", SMALLEST)
def test_onnxruntime_keypoints_equal_torch_fp32(
    name: str, flip: bool, networks: dict[str, tuple[torch.nn.Module, Config]]
) -> None:
    model, cfg = networks[name]
    cfg = copy.deepcopy(cfg)
    cfg.inference.flip_test = flip
    frame = np.random.default_rng(0).integers(0, 256, (360, 640, 3), dtype=np.uint8)
    boxes = np.array([[20.0, 30.0, 90.0, 250.0], [300.5, 40.25, 120.0, 300.0], [500.0, 100.0, 60.0, 120.0]])
    results = {}
    for backend in ("torch", "onnxruntime"):
        cfg.inference.backend = backend
        estimator = TopDownEstimator(model, cfg, optimize=True)
        result = estimator.estimate(frame, boxes, nms=False)
        results[backend] = result.keypoints[np.lexsort(result.boxes.T[::-1])]  # in box order, not score order
    width, height = cfg.model.input_size
    crops = np.random.default_rng(1).integers(0, 256, (2, height, width, 3), dtype=np.uint8)
    first = estimator.network_outputs(crops)[0]
    assert np.abs(first[0] - first[1]).max() > 0.01 * np.abs(first).max(), "outputs must depend on the crop"
    torch_kp, ort_kp = results["torch"], results["onnxruntime"]
    assert np.abs(ort_kp[..., :2] - torch_kp[..., :2]).max() < 1e-3  # pixels
    assert np.abs(ort_kp[..., 2] - torch_kp[..., 2]).max() < 1e-4 * np.abs(torch_kp[..., 2]).max()


def test_run_py_with_the_onnxruntime_backend_gives_torch_s_results(
    tiny: dict[str, Path], synthetic_coco: Path, tmp_path: Path
) -> None:
    entries = {}
    for backend in ("torch", "onnxruntime"):
        out = tmp_path / backend
        assert run.main([str(synthetic_coco / "images"), "-o", str(out), "--config", str(tiny["config"]),
                         "--pose-weights", str(tiny["weights"]), "--boxes", str(tiny["dets"]), "--ann",
                         str(synthetic_coco / "annotations.json"), "--no-draw", "--backend", backend]) == 0  # fmt: skip
        found = json.loads((out / "results.json").read_text())
        entries[backend] = sorted(found, key=lambda e: (e["image_id"], e["bbox"]))
    assert len(entries["torch"]) == len(json.loads(tiny["dets"].read_text()))
    for ours, theirs in zip(entries["onnxruntime"], entries["torch"], strict=True):
        assert ours["bbox"] == theirs["bbox"]
        # within 1e-3 px, and results.json's rounding to 3 decimals
        np.testing.assert_allclose(ours["keypoints"], theirs["keypoints"], atol=2e-3)


def test_backends_benchmark_compares_the_variants(tiny: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    cfg = load_config(tiny["config"])
    crops = np.random.default_rng(0).integers(0, 256, (3, 96, 64, 3), dtype=np.uint8)
    figures = backends.measure(backends.build_variants(cfg, []), crops, repeats=1)
    expected = ("torch fp32", "torch bf16 autocast", "onnxruntime fp32", "onnxruntime fp32, optimization basic")
    assert set(expected) <= set(figures)
    assert all(rate > 0 for rate, _ in figures.values())
    assert all(figures[label][1] < 1e-4 for label in figures if label.startswith("onnxruntime"))
    assert figures["torch bf16 autocast"][1] > 1e-4  # bf16 is not fp32
    assert figures["torch fp32, convolutions not packed"][1] < 1e-5  # packing changes no more than float rounding
    assert backends.main(["--setups", str(tiny["config"]), "--batches", "2", "--repeats", "1"]) == 0
    assert "onnxruntime fp32, optimization basic" in capsys.readouterr().out


def test_crowd_benchmark_runs_the_onnxruntime_variant(tiny: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "figures.json"
    argv = ["--frames", "2", "--setups", str(tiny["config"]), "--onnxruntime", "--no-yolo", "--json", str(out)]
    assert crowd_benchmark.main(argv) == 0
    figures = json.loads(out.read_text())["setups"]["tiny onnxruntime"]
    assert figures["fps"] > 0 and "fp32, onnxruntime" in figures["setup"]
