"""The bound on what a checkpoint unpacks to: taken from the zip directory (a legacy file: its size) and checked
before torch reads any of it, for pose networks and detectors alike, in one line naming what to raise."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch
from toppose.common.config import ModelConfig
from toppose.common.errors import UserError
from toppose.common.weights import MAX_BYTES_VARIABLE, max_checkpoint_bytes, read_checkpoint
from toppose.detector.torchvision_detector import build_model
from toppose.pose.checkpoints import build_pose_model

MIB = 2**20


def _deflated(path: Path, numel: int) -> int:
    """A checkpoint of one zero tensor of ``numel`` float32 values, its records deflated: a small file that unpacks
    to much more. Returns what it unpacks to."""
    torch.save({"w": torch.zeros(numel)}, path)
    with zipfile.ZipFile(path) as stored:
        records = [(info.filename, stored.read(info)) for info in stored.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as deflated:
        for name, data in records:
            deflated.writestr(name, data)
    return sum(len(data) for _, data in records)


@pytest.fixture
def torch_loads(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """The calls of ``torch.load`` (replaced: it reads nothing)."""
    calls: list[tuple] = []
    monkeypatch.setattr(torch, "load", lambda *args, **kwargs: calls.append(args))
    return calls


def _refusal(path: Path, size: int, limit: int) -> str:
    return (
        f"{path}: refused to load: the checkpoint unpacks to {size:,} bytes, over the limit of {limit:,} bytes "
        f"({MAX_BYTES_VARIABLE} raises it)"
    )


def test_the_default_bound_is_4_gib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MAX_BYTES_VARIABLE, raising=False)
    assert max_checkpoint_bytes() == 4 * 2**30


@pytest.mark.parametrize("network", ["pose", "detector"])
def test_a_checkpoint_that_unpacks_over_the_bound_is_refused_before_torch_reads_it(
    network: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, torch_loads: list[tuple]
) -> None:
    path = tmp_path / "inflating.pth"
    unpacked = _deflated(path, 2 * MIB)  # 8 MiB of zeros
    assert path.stat().st_size < MIB < unpacked
    monkeypatch.setenv(MAX_BYTES_VARIABLE, str(MIB))
    with pytest.raises(UserError) as info:
        if network == "pose":
            build_pose_model(ModelConfig(backbone="resnet18"), weights=str(path))
        else:
            build_model("ssdlite320_mobilenet_v3_large", weights=str(path))
    assert str(info.value) == _refusal(path, unpacked, MIB)
    assert torch_loads == []


def test_within_the_bound_the_same_file_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "inflating.pth"
    monkeypatch.setenv(MAX_BYTES_VARIABLE, str(_deflated(path, 2 * MIB)))
    assert torch.equal(read_checkpoint(path)["w"], torch.zeros(2 * MIB))


def test_a_legacy_file_is_bounded_by_its_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "legacy.pth"
    torch.save({"w": torch.ones(1000)}, path, _use_new_zipfile_serialization=False)
    size = path.stat().st_size
    monkeypatch.setenv(MAX_BYTES_VARIABLE, str(size))
    assert torch.equal(read_checkpoint(path)["w"], torch.ones(1000))
    monkeypatch.setenv(MAX_BYTES_VARIABLE, str(size - 1))
    with pytest.raises(UserError) as info:
        read_checkpoint(path)
    assert str(info.value) == _refusal(path, size, size - 1)


def test_a_bound_that_is_not_a_number_of_bytes_is_a_user_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.pth"
    torch.save({"w": torch.ones(3)}, path)
    monkeypatch.setenv(MAX_BYTES_VARIABLE, "4GB")
    with pytest.raises(UserError, match=MAX_BYTES_VARIABLE):
        read_checkpoint(path)
