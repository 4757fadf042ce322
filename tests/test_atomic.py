"""Atomic writes: an interrupted write leaves the earlier file whole and no temporary behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import toppose.common.atomic
from toppose.common.atomic import atomic_path, check_writable_folder, write_json
from toppose.common.errors import UserError


def test_write_json_replaces(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "out.json"
    write_json(target, {"a": 1})
    write_json(target, [1, 2])
    assert json.loads(target.read_text()) == [1, 2]
    assert [p.name for p in target.parent.iterdir()] == ["out.json"]


def test_failed_write_keeps_earlier_result(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    write_json(target, {"old": True})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text('{"half": ')
        raise RuntimeError("interrupted")
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_unserializable_object_keeps_earlier_result(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    write_json(target, {"old": True})
    with pytest.raises(TypeError):
        write_json(target, {"bad": object()})
    assert json.loads(target.read_text()) == {"old": True}


def test_temporary_keeps_suffix(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "video.mp4") as tmp:
        assert tmp.suffix == ".mp4" and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "video.mp4").read_bytes() == b"x"


def test_output_gets_the_usual_file_mode(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        write_json(tmp_path / "out.json", {})
    finally:
        os.umask(previous)
    assert (tmp_path / "out.json").stat().st_mode & 0o777 == 0o644


def test_output_folder_checked_without_being_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    check_writable_folder(tmp_path / "new" / "out")
    assert not (tmp_path / "new").exists()
    (tmp_path / "file").write_text("")
    for bad, message in [(tmp_path / "file", "not a folder"), (tmp_path / "file" / "out", "is a file")]:
        with pytest.raises(UserError, match=message):
            check_writable_folder(bad)
    monkeypatch.setattr(toppose.common.atomic.os, "access", lambda path, mode: False)  # as a read-only mount answers
    with pytest.raises(UserError, match=f"{tmp_path} is not writable"):
        check_writable_folder(tmp_path / "new")
    check_writable_folder(tmp_path)  # an existing folder: a file is written and removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
