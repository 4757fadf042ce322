"""Training: a short run learns, every codec's loss falls on a fixed batch, resume equals an uninterrupted run,
two processes under torchrun equal one, checkpoints (RTMPose's too) load in the inference path and fine-tune
with their recorded setup, and bad inputs are one clear line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torchvision
from rich.console import Console
from toppose.common.config import CONFIG_DIR
from toppose.common.errors import MissingWeightsError, UserError, run_cli
from toppose.common.synthetic import make_dataset
from toppose.pose.checkpoints import build_pose_model
from toppose.pose.setup import describe_checkpoint
from toppose.pose.training import plot_metrics
from toppose.pose.training.config import TrainingConfig, check_training_config, load_training_config
from toppose.pose.training.distributed import Runtime
from toppose.pose.training.losses import heatmap_loss, simcc_loss
from toppose.pose.training.trainer import LearningRateSchedule, Trainer, build_training_model, evaluate_on_coco, train

from toppose.cli import plot_training
from toppose.cli.eval import main as eval_coco_main
from toppose.cli.train import main as train_main

ROOT = Path(__file__).resolve().parent.parent


def tiny_config(train_dir: Path, output_dir: Path, val_dir: Path | None = None) -> TrainingConfig:
    """A ResNet-18 SimpleBaseline at 64x96 with 32-channel deconvolutions: a CPU step takes a fraction of a second."""
    cfg = TrainingConfig()
    cfg.model.backbone, cfg.model.deconv_channels, cfg.model.weights = "resnet18", 32, ""
    cfg.model.input_size, cfg.model.heatmap_size = (64, 96), (16, 24)
    cfg.codec.sigma, cfg.codec.blur_kernel = 1.0, 3
    cfg.data.train_annotations = str(train_dir / "annotations.json")
    cfg.data.train_images = str(train_dir / "images")
    cfg.data.num_workers = 0
    if val_dir is not None:
        cfg.val.annotations, cfg.val.images = str(val_dir / "annotations.json"), str(val_dir / "images")
    cfg.train.output_dir = str(output_dir)
    cfg.train.pretrained_backbone = False
    cfg.train.batch_size, cfg.train.epochs, cfg.train.lr, cfg.train.warmup_iters = 8, 2, 2e-3, 2
    cfg.train.log_every = 1
    return cfg


def tiny_rtmpose_config(train_dir: Path, output_dir: Path, val_dir: Path | None = None) -> TrainingConfig:
    """RTMPose-t at 64x96 with SimCC targets (128 x and 192 y bins)."""
    cfg = tiny_config(train_dir, output_dir, val_dir)
    cfg.model.family, cfg.model.backbone, cfg.codec.type = "rtmpose", "cspnext_t", "simcc"
    return cfg


def write_toml(cfg: TrainingConfig, path: Path) -> Path:
    """The config as a TOML file, every field written out."""
    lines = []
    for section, fields in vars(cfg).items():
        lines.append(f"[{section}]")
        for key, value in vars(fields).items():
            lines.append(f"{key} = {json.dumps(list(value) if isinstance(value, tuple) else value)}")
    path.write_text("\n".join(lines) + "\n")
    return path


def quiet_console() -> Console:
    return Console(file=open(os.devnull, "w"), highlight=False)  # noqa: SIM115


@pytest.fixture(scope="module")
def synthetic_train(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synthetic_train")
    make_dataset(out, num_images=40, seed=1)
    return out


def test_short_run_drives_loss_down_and_ap_up(synthetic_train: Path, synthetic_coco: Path, tmp_path: Path) -> None:
    cfg = tiny_config(synthetic_train, tmp_path / "run", synthetic_coco)
    cfg.train.epochs, cfg.train.batch_size, cfg.train.lr, cfg.train.schedule = 12, 16, 4e-3, "cosine"
    cfg.train.warmup_iters, cfg.train.log_every, cfg.val.every = 10, 5, 12
    cfg.augment.rotation_factor, cfg.augment.scale_factor, cfg.augment.half_body_prob = 20.0, 0.2, 0.0
    torch.manual_seed(cfg.train.seed)
    untrained = evaluate_on_coco(build_pose_model(cfg.model), cfg, cfg.val.annotations, cfg.val.images)
    result = train(cfg, console=quiet_console())

    per_epoch = np.array(result.losses).reshape(cfg.train.epochs, -1).mean(axis=1)
    assert per_epoch[-1] < 0.7 * per_epoch[0]
    # Measured on this setup: untrained AP 0.0, after 12 epochs (60 steps) about 0.35.
    assert untrained["AP"] < 0.05
    assert result.validations[-1]["AP"] > 0.2
    # The best checkpoint is what the inference path loads, and scores the same there.
    model = build_pose_model(cfg.model, weights=str(tmp_path / "run" / "best.pth"))
    again = evaluate_on_coco(model, cfg, cfg.val.annotations, cfg.val.images)
    assert again["AP"] == pytest.approx(result.best_ap, abs=1e-9)
    # ... and the evaluation CLI scores it the same with no config: the checkpoint carries its setup.
    scores = tmp_path / "scores.json"
    best = str(tmp_path / "run" / "best.pth")
    assert eval_coco_main(["--ann", cfg.val.annotations, "--images", cfg.val.images, "--gt-boxes",
                           "--pose-weights", best, "--json", str(scores)]) == 0  # fmt: skip
    assert json.loads(scores.read_text())["AP"] == pytest.approx(result.best_ap, abs=1e-9)

    records = plot_metrics.read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert {r["kind"] for r in records} == {"train", "epoch", "val"}
    assert [r["epoch"] for r in records if r["kind"] == "val"] == [12]
    assert all(r["images_per_s"] > 0 and r["lr"] > 0 for r in records if r["kind"] == "train")
    with pytest.raises(SystemExit) as exit_info:
        run_cli(plot_training.main, [str(tmp_path / "run" / "metrics.jsonl"), "-o", str(tmp_path / "curves.png")])
    assert exit_info.value.code == 0
    png = cv2.imread(str(tmp_path / "curves.png"))
    assert png is not None and png.shape[0] > png.shape[1] / 2  # the loss chart above the AP chart
    assert (png < 200).any(axis=2).mean() > 0.01  # lines and text, not a blank page


# Measured after 16 steps: heatmap MSE at 0.83 of its first value (it falls slowly from the flat start),
# SimCC KL divergence at 0.18 (at lr 1e-3; 0.52 at 2e-3).
@pytest.mark.parametrize(
    ("make_config", "lr", "ratio"),
    [(tiny_config, 2e-3, 0.9), (tiny_rtmpose_config, 1e-3, 0.5)],
    ids=["heatmap", "simcc"],
)
def test_each_codec_loss_falls_on_a_fixed_batch(
    make_config: Callable[..., TrainingConfig], lr: float, ratio: float, synthetic_coco: Path, tmp_path: Path
) -> None:
    cfg = make_config(synthetic_coco, tmp_path / "run")
    cfg.train.lr, cfg.train.warmup_iters = lr, 0
    check_training_config(cfg)
    trainer = Trainer(cfg, Runtime(torch.device("cpu")), quiet_console())
    crops, targets, weights, _ = next(iter(trainer.loader))
    assert len(targets) == (2 if cfg.codec.type == "simcc" else 1)
    losses = [float(trainer.step(crops, targets, weights)) for _ in range(16)]
    assert losses[-1] < ratio * losses[0]


def test_rtmpose_checkpoint_evaluates_with_no_config_and_fine_tunes_with_its_setup(
    synthetic_coco: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tiny_rtmpose_config(synthetic_coco, tmp_path / "run", synthetic_coco)
    cfg.codec.split_ratio = 1.5
    result = train(cfg, console=quiet_console())
    best = tmp_path / "run" / "best.pth"
    recorded = describe_checkpoint(torch.load(best, weights_only=True), str(best)).recorded
    assert recorded["model.family"] == "rtmpose" and recorded["model.backbone"] == "cspnext_t"
    assert (recorded["codec.type"], recorded["codec.split_ratio"]) == ("simcc", 1.5)
    scores = tmp_path / "scores.json"
    assert eval_coco_main(["--ann", cfg.val.annotations, "--images", cfg.val.images, "--gt-boxes",
                           "--pose-weights", str(best), "--json", str(scores)]) == 0  # fmt: skip
    assert json.loads(scores.read_text()) == pytest.approx(result.validations[-1], abs=1e-9)

    # Fine-tuning from it: a config without [model] or [codec] trains the recorded setup ...
    bare = tmp_path / "bare.toml"
    bare.write_text(
        f"[data]\ntrain_annotations = {json.dumps(cfg.data.train_annotations)}\n"
        f"train_images = {json.dumps(cfg.data.train_images)}\nnum_workers = 0\n"
        f"[train]\nepochs = 1\nbatch_size = 8\nlog_every = 100\noutput_dir = {json.dumps(str(tmp_path / 'tuned'))}\n"
    )
    weights = f"model.weights={json.dumps(str(best))}"
    code, _, err = _cli(["--config", str(bare), "--set", weights], capsys)
    assert code == 0, err
    tuned = torch.load(tmp_path / "tuned" / "last.pth", weights_only=True)["config"]
    assert (tuned["model"]["family"], tuned["codec"]["type"]) == ("rtmpose", "simcc")
    assert tuned["codec"]["split_ratio"] == 1.5
    # ... and one that contradicts it is one error line.
    code, _, err = _cli(["--config", str(bare), "--set", weights, "--set", "codec.split_ratio=2.0"], capsys)
    assert code == 1 and err.count("\n") == 1 and "was trained with codec.split_ratio = 1.5" in err


def test_training_config_pairs_family_codec_and_loss(synthetic_coco: Path, tmp_path: Path) -> None:
    cfg = tiny_rtmpose_config(synthetic_coco, tmp_path)
    check_training_config(cfg)
    cfg.model.family, cfg.model.backbone, cfg.model.heatmap_size = "hrnet", "hrnet_w32", (16, 24)
    with pytest.raises(UserError, match="model.family 'hrnet' outputs heatmap, not codec.type 'simcc'"):
        check_training_config(cfg)
    cfg.codec.type = "heatmap"
    check_training_config(cfg)
    cfg.train.loss = "kl_discrete"
    with pytest.raises(UserError, match="train.loss 'kl_discrete' does not fit heatmap targets"):
        check_training_config(cfg)
    cfg.train.loss, cfg.train.pretrained_backbone = "auto", True
    with pytest.raises(UserError, match=r"train.pretrained_backbone: .*\(simplebaseline only\)"):
        check_training_config(cfg)
    cfg.model.weights = "hrnet_w32_coco_256x192"  # fine-tuning: no ImageNet trunk needed
    check_training_config(cfg)


def test_resume_equals_uninterrupted_run(synthetic_coco: Path, tmp_path: Path) -> None:
    straight = tiny_config(synthetic_coco, tmp_path / "straight", synthetic_coco)
    straight.val.max_images = 2
    straight.data.num_workers = 2  # the split run loads in the main process: workers must not change the data
    full = train(straight, console=quiet_console())

    split = tiny_config(synthetic_coco, tmp_path / "split", synthetic_coco)
    split.val.max_images, split.train.epochs = 2, 1
    first = train(split, console=quiet_console())
    with pytest.raises(UserError, match="already holds a run"):
        train(split, console=quiet_console())
    split.train.epochs = 2
    second = train(split, resume="last", console=quiet_console())

    assert len(full.losses) == 2 * len(first.losses) > 2
    assert first.losses + second.losses == full.losses
    assert second.best_ap == full.best_ap
    state = torch.load(tmp_path / "split" / "last.pth", weights_only=True)
    reference = torch.load(tmp_path / "straight" / "last.pth", weights_only=True)
    assert {"model", "optimizer", "scheduler", "epoch", "rng", "config", "best_ap"} <= set(state)
    assert state["epoch"] == 2 and state["config"]["model"]["backbone"] == "resnet18"
    for key, value in reference["model"].items():
        assert torch.equal(state["model"][key], value), key
    log = [json.loads(line) for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log if r["kind"] == "epoch"] == [1, 2]
    assert [r["loss"] for r in log if r["kind"] == "train"] == full.losses


def test_two_processes_under_torchrun_match_one(synthetic_coco: Path, tmp_path: Path) -> None:
    cfg = tiny_config(synthetic_coco, tmp_path / "two")
    cfg.train.epochs, cfg.train.batch_size, cfg.train.warmup_iters = 2, 12, 0
    config = write_toml(cfg, tmp_path / "cfg.toml")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "pose.training", "--config", str(config)]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    cfg.train.output_dir = str(tmp_path / "one")
    single = train(cfg, console=quiet_console())

    log = [json.loads(line) for line in (tmp_path / "two" / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in log if r["kind"] == "train"]
    assert len(losses) == len(single.losses) == 2
    # The first loss sees the same batch through synchronised batch norm; the second, the same update.
    # (Per-process batch norm alone is off by ~1e-2 at the second step.)
    np.testing.assert_allclose(losses[0], single.losses[0], rtol=1e-5)
    np.testing.assert_allclose(losses[1], single.losses[1], rtol=1e-4)
    two = torch.load(tmp_path / "two" / "last.pth", weights_only=True)["model"]
    one = torch.load(tmp_path / "one" / "last.pth", weights_only=True)["model"]
    # Adam moves every weight by about lr whatever its gradient's size, so weights whose gradient is
    # numerically zero may differ by ~lr; on average the weights agree closely (per-process BN: ~0.2).
    relative = torch.cat(
        [((one[k] - two[k]).abs() / (one[k].abs() + 1e-3)).flatten() for k in one if one[k].is_floating_point()]
    )
    assert relative.mean() < 0.05


def test_pretrained_backbone_offline_fails_or_trains_from_scratch(
    synthetic_coco: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    cfg = tiny_config(synthetic_coco, tmp_path / "run")
    cfg.train.pretrained_backbone = True
    with pytest.raises(MissingWeightsError, match="allow_scratch"):
        build_training_model(cfg, quiet_console())

    cfg.train.allow_scratch = True
    console = Console(record=True, width=400, file=open(os.devnull, "w"))  # noqa: SIM115
    assert build_training_model(cfg, console).training
    lines = console.export_text().strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning:") and "from scratch" in lines[0]

    # Weights already in the torch hub cache are used without the network.
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    cached = tmp_path / "torch_home" / "hub" / "checkpoints" / url.rsplit("/", 1)[-1]
    cached.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(5)
    imagenet = torchvision.models.resnet18().state_dict()
    torch.save(imagenet, cached)
    model = build_training_model(cfg, quiet_console())
    assert torch.equal(model.conv1.weight, imagenet["conv1.weight"])
    assert torch.equal(model.layer4[1].bn2.running_var, imagenet["layer4.1.bn2.running_var"])


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run ``python -m pose.training`` in-process: exit code, stdout, stderr."""
    with pytest.raises(SystemExit) as exit_info:
        run_cli(train_main, argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


def test_cli_trains_past_missing_images_and_reports_them(
    synthetic_coco: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    shutil.copytree(synthetic_coco, data)
    first_image = json.loads((data / "annotations.json").read_text())["images"][0]["file_name"]
    (data / "images" / first_image).unlink()
    config = write_toml(tiny_config(data, tmp_path / "run"), tmp_path / "cfg.toml")
    code, _, err = _cli(["--config", str(config), "--epochs", "1", "--set", "train.log_every=100"], capsys)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "1 images" in warnings[0] and first_image in warnings[0]
    assert "epoch 1/1 it 2/2" in err  # the plain progress line where stderr is not a terminal
    assert (tmp_path / "run" / "last.pth").is_file()

    val = [f"val.annotations={json.dumps(str(synthetic_coco / 'annotations.json'))}",
           f"val.images={json.dumps(str(synthetic_coco / 'images'))}", "val.max_images=2"]  # fmt: skip
    code, out, _ = _cli(["--config", str(config), "--evaluate", str(tmp_path / "run" / "last.pth"),
                          *(arg for item in val for arg in ("--set", item))], capsys)  # fmt: skip
    assert code == 0 and "AP50" in out and "ARl" in out


def test_cli_bad_inputs_are_one_clear_error(
    synthetic_coco: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tiny_config(synthetic_coco, tmp_path / "run")
    config = write_toml(cfg, tmp_path / "cfg.toml")
    bad_key = tmp_path / "bad_key.toml"
    bad_key.write_text(config.read_text().replace("[train]\n", "[train]\nlearning_rate = 0.1\n"))
    code, _, err = _cli(["--config", str(bad_key)], capsys)
    assert code == 2 and err.count("\n") == 1 and "unknown key 'learning_rate'" in err

    code, _, err = _cli(["--config", str(config), "--set", "train.momentum=0.9"], capsys)
    assert code == 2 and err.count("\n") == 1 and "train.momentum" in err

    code, _, err = _cli(["--config", str(config), "--set", "train.lr=abc"], capsys)
    assert (code, err) == (2, "error: --set train.lr [train] lr: expected a number > 0, got 'abc'\n")
    code, _, err = _cli(["--config", str(config), "--set", "train.optimizer='sgd'"], capsys)
    assert code == 2 and "[train] optimizer: expected one of 'adam', 'adamw', got 'sgd'" in err

    not_coco = tmp_path / "not_coco.json"
    not_coco.write_text(json.dumps([{"image": "a.jpg"}]))
    code, _, err = _cli(
        ["--config", str(config), "--set", f"data.train_annotations={json.dumps(str(not_coco))}"], capsys
    )
    assert code == 1 and err.count("\n") == 1 and "not a COCO annotation file" in err

    code, _, err = _cli(["--config", str(config), "--set", "model.input_size=[60, 96]"], capsys)
    assert code == 1 and "multiples of 32" in err
    assert not (tmp_path / "run").exists()


def test_heatmap_loss_weights_and_hard_keypoint_mining() -> None:
    predicted = torch.zeros(2, 3, 4, 4)
    target = torch.zeros(2, 3, 4, 4)
    target[:, 0] = 1.0  # joint 0 wrong everywhere
    target[0, 1, 0, 0] = 4.0  # joint 1 of example 0 wrong at one pixel
    weights = torch.ones(2, 3)
    assert heatmap_loss(predicted, target, weights).item() == pytest.approx(0.5 * (2 * 16 + 16) / (2 * 3 * 16))
    weights[:, 0] = 0.0
    assert heatmap_loss(predicted, target, weights).item() == pytest.approx(0.5 * 16 / (2 * 3 * 16))
    weights[:, 0] = 1.0
    # The top-1 joint per example: joint 0 (0.5) for both.
    assert heatmap_loss(predicted, target, weights, "ohkm_mse", topk=1).item() == pytest.approx(0.5)


def test_simcc_loss_is_the_weighted_kl_divergence_of_the_softmaxed_vectors() -> None:
    torch.manual_seed(0)
    logits = (torch.randn(2, 3, 8), torch.randn(2, 3, 6))
    labels = (torch.rand(2, 3, 8), torch.rand(2, 3, 6))
    weights = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 0.5]])
    expected = 0.0
    for n in range(2):
        for k in range(3):
            for axis in range(2):
                p = torch.softmax(10.0 * logits[axis][n, k], dim=0)
                q = torch.softmax(10.0 * labels[axis][n, k], dim=0)
                expected += float(weights[n, k] * (q * (q.log() - p.log())).mean())
    assert simcc_loss(logits, labels, weights).item() == pytest.approx(expected / 6, rel=1e-5)
    # The loss is zero where the prediction is the label distribution, and ignores zero-weight joints.
    assert simcc_loss(labels, labels, weights).item() == pytest.approx(0.0, abs=1e-6)
    moved = (logits[0].clone(), logits[1])
    moved[0][0, 1] += 5.0
    assert simcc_loss(moved, labels, weights).item() == pytest.approx(expected / 6, rel=1e-5)


def test_learning_rate_schedule() -> None:
    cfg = TrainingConfig().train
    cfg.epochs, cfg.warmup_iters, cfg.warmup_ratio, cfg.lr_steps, cfg.lr_gamma = 10, 10, 0.1, (4, 8), 0.1
    step = LearningRateSchedule(cfg, iters_per_epoch=5)
    assert step(0) == pytest.approx(0.1) and step(5) == pytest.approx(0.55) and step(10) == 1.0
    assert step(19) == 1.0 and step(20) == pytest.approx(0.1) and step(40) == pytest.approx(0.01)
    cfg.schedule, cfg.warmup_iters, cfg.min_lr_ratio = "cosine", 0, 0.2
    cosine = LearningRateSchedule(cfg, iters_per_epoch=5)
    assert cosine(0) == 1.0 and cosine(25) == pytest.approx(0.6) and cosine(50) == pytest.approx(0.2)


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("train_*.toml")), ids=lambda p: p.name)
def test_shipped_training_configs_load(path: Path) -> None:
    cfg = load_training_config(path)
    check_training_config(cfg)
    width, height = cfg.model.input_size
    assert cfg.codec.type == "simcc" or (width // 4, height // 4) == tuple(cfg.model.heatmap_size)
