"""``python -m benchmarks.precision``: fp32 against autocast through the production path, on a tiny random network
of each codec: it runs, the report is whole, fp32 against fp32 differs by nothing and scores as eval.coco does."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from toppose.common.errors import run_cli
from toppose.pose.checkpoints import build_pose_model
from toppose.pose.training.config import TrainingConfig

from benchmarks.precision import PrecisionReport, main
from toppose.cli.eval import main as eval_coco_main

FIELDS = {field.name for field in dataclasses.fields(PrecisionReport)}


def tiny_checkpoint(path: Path, codec: str) -> Path:
    """A random SimpleBaseline ResNet-18 (heatmaps) or RTMPose-t (SimCC) at 64x96, saved as training saves."""
    cfg = TrainingConfig()
    cfg.model.input_size, cfg.model.heatmap_size, cfg.model.weights = (64, 96), (16, 24), ""
    if codec == "simcc":
        cfg.model.family, cfg.model.backbone, cfg.codec.type = "rtmpose", "cspnext_t", "simcc"
    else:
        cfg.model.backbone, cfg.model.deconv_channels = "resnet18", 32
    torch.manual_seed(0)
    model = build_pose_model(cfg.model, split_ratio=cfg.codec.split_ratio)
    torch.save({"model": model.state_dict(), "config": dataclasses.asdict(cfg)}, path)
    return path


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(main, argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.mark.parametrize("codec", ["heatmap", "simcc"])
def test_fp32_against_itself_is_zero_and_bf16_is_reported(
    codec: str, synthetic_coco: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    weights = str(tiny_checkpoint(tmp_path / "tiny.pth", codec))
    ann, images = str(synthetic_coco / "annotations.json"), str(synthetic_coco / "images")
    common = ["--ann", ann, "--images", images, "--pose-weights", weights]
    code, out, err = _run([*common, "--precision", "fp32", "--json", str(tmp_path / "same.json")], capsys)
    assert code == 0, err
    same = json.loads((tmp_path / "same.json").read_text())
    assert set(same) == FIELDS and "AP fp32 / fp32" in out
    people = sum(1 for a in json.loads(Path(ann).read_text())["annotations"] if a["num_keypoints"] > 0)
    assert 0 < same["people"] <= people and same["keypoints"] == 17 * same["people"] and same["images"] == 12
    zeros = ("grid_max", "grid_mean", "image_max", "image_mean", "share_beyond_half", "share_beyond_one")
    assert all(same[key] == 0 for key in (*zeros, "confidence_max", "people_kept_by_one"))
    assert same["ap_fp32"] == same["ap_other"]
    assert ("SimCC bins / split ratio 2" in same["grid_unit"]) == (codec == "simcc")
    # fp32 is scored exactly as eval.coco scores the same weights on ground-truth boxes.
    assert eval_coco_main([*common, "--gt-boxes", "--json", str(tmp_path / "coco.json")]) == 0
    assert json.loads((tmp_path / "coco.json").read_text())["AP"] == same["ap_fp32"]

    code, out, err = _run([*common, "--json", str(tmp_path / "bf16.json")], capsys)  # bf16 by default
    assert code == 0, err
    bf16 = json.loads((tmp_path / "bf16.json").read_text())
    assert bf16["precision"] == "bf16" and "AP fp32 / bf16" in out
    assert 0 <= bf16["grid_mean"] <= bf16["grid_max"] and 0 <= bf16["image_mean"] <= bf16["image_max"]
    assert 0 <= bf16["share_beyond_one"] <= bf16["share_beyond_half"] <= 1
    assert bf16["people"] + bf16["people_kept_by_one"] >= same["people"]


def test_bad_inputs_are_one_error_line(
    synthetic_coco: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ann = str(synthetic_coco / "annotations.json")
    code, _, err = _run(["--ann", ann, "--images", str(tmp_path / "nowhere")], capsys)
    assert code == 1 and err == f"error: image folder not found: {tmp_path / 'nowhere'}\n"
    code, _, err = _run(["--ann", ann, "--images", str(tmp_path), "--pose", "rcnn"], capsys)
    assert code == 1 and err.count("\n") == 1 and "pose network's arithmetic only" in err
