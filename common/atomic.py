"""Atomic output: write to a temporary file beside the target, then rename over it."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from toppose.common.errors import UserError


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(target: str | os.PathLike[str], suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success it replaces ``target``.

    On an exception the temporary file is removed and any earlier ``target`` is left untouched.
    ``suffix`` defaults to the target's own (encoders such as OpenCV's pick the format from it).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=suffix if suffix is not None else target.suffix, dir=target.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_current_umask())  # mkstemp makes it owner-only; outputs get the usual mode
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


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
