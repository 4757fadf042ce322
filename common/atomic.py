"""Atomic output: write to a temporary file beside the target, then rename over it.

Temporary names are ``.toppose-`` and 16 hex digits, then the target's suffix: short whatever the target's
name, and recognisable, so that :func:`remove_stale_temporaries` can clear what a killed run left behind.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from toppose.common.errors import UserError

TEMPORARY_PREFIX = ".toppose-"
TOKEN_BYTES = 8  # 16 hex digits
MAX_SUFFIX_BYTES = 32
TEMPORARY_NAME = re.compile(r"\.toppose-[0-9a-f]{16}(\..*)?", re.DOTALL)  # the prefix, the token, the suffix
STALE_SECONDS = 3600.0  # a temporary file unchanged this long belongs to no running write


def is_temporary(name: str) -> bool:
    """Whether a file name is one of :func:`atomic_path`'s temporary names."""
    return TEMPORARY_NAME.fullmatch(name) is not None


def _temporary_suffix(target: Path, suffix: str | None) -> str:
    """``suffix``, by default the target's own, or none where it is longer than :data:`MAX_SUFFIX_BYTES`."""
    suffix = target.suffix if suffix is None else suffix
    return suffix if len(os.fsencode(suffix)) <= MAX_SUFFIX_BYTES else ""


def _new_temporary(folder: Path, suffix: str) -> Path:
    """A new empty file in ``folder`` with a temporary name of ours, with the usual mode (the umask's)."""
    while True:
        path = folder / f"{TEMPORARY_PREFIX}{secrets.token_hex(TOKEN_BYTES)}{suffix}"
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return path


@contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces ``target``.

    On an exception the temporary file is removed and any earlier ``target`` is left untouched.
    ``suffix`` defaults to the target's own (encoders such as OpenCV's pick the format from it). The temporary
    name does not grow with the target's: ``.toppose-`` and 16 hex digits, then the suffix (left out where it is
    over 32 bytes), so any valid file name can be written.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _new_temporary(target.parent, _temporary_suffix(target, suffix))
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def remove_stale_temporaries(folder: str | os.PathLike[str], older_than: float = STALE_SECONDS) -> int:
    """Remove the temporary files of :func:`atomic_path` in ``folder`` last changed over ``older_than`` seconds
    ago (left by a killed run); returns how many were removed. A missing folder has none."""
    cutoff = time.time() - older_than
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return 0
    for entry in entries:
        if is_temporary(entry.name) and entry.is_file(follow_symlinks=False):
            with suppress(FileNotFoundError):  # removed meanwhile by another run
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.unlink(entry.path)
                    removed += 1
    return removed


def check_writable_folder(folder: str | os.PathLike[str]) -> None:
    """Make sure ``folder`` can be written, or created, before any work is done (it is not created here).

    A path that is a file, under a file, or in a folder that cannot be written is a :class:`UserError`.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"output path exists and is not a folder: {folder}")
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"cannot create the output folder {folder}: {existing} is a file")
    if existing != folder:
        if not os.access(existing, os.W_OK | os.X_OK):
            raise UserError(f"cannot create the output folder {folder}: {existing} is not writable")
        return
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as err:
        raise UserError(f"cannot write to the output folder {folder}: {err.strerror or err}") from None


def write_bytes(target: str | os.PathLike[str], data: bytes) -> None:
    """Atomically write ``data`` to ``target``."""
    with atomic_path(target) as tmp, open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def write_text(target: str | os.PathLike[str], text: str) -> None:
    """Atomically write UTF-8 ``text`` to ``target``."""
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | os.PathLike[str], obj: Any, indent: int | None = None) -> None:
    """Atomically write ``obj`` as strict JSON to ``target`` (a NaN or infinity is a ``ValueError``, never written)."""
    write_text(target, json.dumps(obj, indent=indent, allow_nan=False))
