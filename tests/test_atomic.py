"""Atomic writes: an interrupted write leaves the earlier file whole and no temporary behind."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import toppose.common.atomic
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from toppose.common.atomic import (
    MAX_SUFFIX_BYTES,
    TEMPORARY_PREFIX,
    atomic_path,
    check_writable_folder,
    is_temporary,
    remove_stale_temporaries,
    write_json,
)
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


NAME_CHARACTERS = st.characters(codec="utf-8", exclude_characters="/\x00")


@settings(max_examples=40, deadline=None)
@given(
    stem=st.text(NAME_CHARACTERS, min_size=1, max_size=255),
    suffix=st.sampled_from(["", ".json", ".png", ".mp4", "." + "x" * 200]),
)
def test_any_valid_file_name_is_written_atomically(stem: str, suffix: str) -> None:
    name = (stem + suffix).encode()[:255].decode("utf-8", "ignore")
    assume(name not in ("", ".", ".."))
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / name
        with atomic_path(target) as tmp:
            assert is_temporary(tmp.name) and len(tmp.name.encode()) <= 9 + 16 + MAX_SUFFIX_BYTES
            tmp.write_bytes(b"data")
        assert target.read_bytes() == b"data" and os.listdir(folder) == [name]


def test_a_250_byte_image_name_is_drawn(tmp_path: Path) -> None:
    target = tmp_path / ("d" * 246 + ".png")
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".png" and cv2.imwrite(str(tmp), np.zeros((4, 4, 3), np.uint8))
    assert cv2.imread(str(target)).shape == (4, 4, 3)


def test_stale_temporaries_are_removed(tmp_path: Path) -> None:
    def temporary(age: float, suffix: str = ".png") -> Path:
        path = tmp_path / f"{TEMPORARY_PREFIX}{secrets.token_hex(8)}{suffix}"
        path.write_bytes(b"")
        os.utime(path, (time.time() - age, time.time() - age))
        return path

    stale = [temporary(7200), temporary(3700, "")]
    fresh = temporary(60)
    others = [tmp_path / name for name in (".toppose-notours.png", ".toppose.lock", "out.json", ".out.json.ab12cd34")]
    for path in others:
        path.write_bytes(b"")
        os.utime(path, (0, 0))
    (tmp_path / f"{TEMPORARY_PREFIX}{'0' * 16}").mkdir()  # a folder of the pattern is not ours
    assert remove_stale_temporaries(tmp_path) == 2
    assert not any(path.exists() for path in stale) and fresh.exists() and all(path.exists() for path in others)
    assert remove_stale_temporaries(tmp_path, older_than=30) == 1 and not fresh.exists()
    assert remove_stale_temporaries(tmp_path / "absent") == 0
