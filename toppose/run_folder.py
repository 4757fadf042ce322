"""The output folder of a run: one run at a time (a lock), the setup it was written with (``run.json``), and the
journal of an image run, so that a killed run loses at most the image in flight.

* **Lock.** ``OUT/.toppose.lock`` is locked with ``flock`` for the whole run; a second run into ``OUT`` is
  refused with one line naming the first (its pid and command). The kernel releases the lock when the process
  ends, however it ends, so a killed run never leaves ``OUT`` locked.
* **Setup record.** ``OUT/run.json`` holds what decides the keypoints: the setup's fields (how the network runs
  on this machine left out: device, batch size, backend, precision), the weights and the boxes file, with their
  fingerprint. ``--resume`` with another setup is refused: it would mix two networks' keypoints in one file.
* **Journal.** An image run appends each image's result entries to ``OUT/results.journal.jsonl`` as soon as the
  image is done (one line, flushed); ``results.json`` is written atomically from it at the end and the journal
  removed. After a SIGKILL or an out-of-memory kill the journal holds every image finished; ``--resume``
  continues from it (a last line cut short by the kill is dropped).
* **Stale temporaries** of atomic writes that a killed run left in ``OUT`` are removed once the lock is held.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from toppose.common.atomic import atomic_path, remove_stale_temporaries, write_json
from toppose.common.config import Config
from toppose.common.errors import UserError
from toppose.common.numbers import finite_or_none

LOCK_NAME = ".toppose.lock"
RECORD_NAME = "run.json"
JOURNAL_NAME = "results.journal.jsonl"
# How the network runs here, not what it computes: left out of the setup a resumed run must share.
RUNTIME_FIELDS = (
    "inference.device",
    "inference.batch_size",
    "inference.frame_batch",
    "inference.backend",
    "inference.precision",
)


@contextmanager
def locked(out: Path) -> Iterator[None]:
    """Hold ``out``'s lock for the block; a folder another run holds is one :class:`UserError` line. A folder the
    block made and left with nothing in it but the lock (a run that failed before any output) is removed."""
    created = not out.exists()
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_NAME
    try:
        handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held open for the whole block
    except OSError as err:
        raise UserError(f"cannot lock {out}: {err.strerror or err}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise UserError(f"{out} is in use by another run ({holder}): wait for it, or write elsewhere") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}: {' '.join(sys.argv)}"[:500])
        handle.flush()
        for folder, _, _ in os.walk(out):
            remove_stale_temporaries(folder, older_than=0)  # ours, and no write of ours is under way
        try:
            yield
        finally:
            if created and [p.name for p in out.iterdir()] == [LOCK_NAME]:
                path.unlink()
                out.rmdir()


def setup_record(cfg: Config, boxes: Path | None, pose: str) -> dict[str, Any]:
    """What decides a run's keypoints, with its fingerprint (``setup_sha256``)."""
    fields = {
        f"{section}.{key}": value
        for section, table in dataclasses.asdict(cfg).items()
        if section in ("model", "crop", "codec", "inference", "detector")
        for key, value in table.items()
        if f"{section}.{key}" not in RUNTIME_FIELDS
    }
    fields = json.loads(json.dumps(fields, default=str))  # as run.json holds them (tuples as lists)
    setup = {"pose": pose, "boxes": None if boxes is None else str(boxes), "fields": fields}
    digest = hashlib.sha256(json.dumps(setup, sort_keys=True, default=str).encode()).hexdigest()
    return {"setup_sha256": digest, **setup}


def differences(earlier: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The setup fields that differ between two records, as ``name: earlier -> now``."""
    before, after = earlier.get("fields", {}), now["fields"]
    changed = [f"{k}: {before.get(k)!r} -> {after.get(k)!r}" for k in sorted(after) if before.get(k) != after.get(k)]
    changed += [f"{k}: {earlier.get(k)!r} -> {now[k]!r}" for k in ("pose", "boxes") if earlier.get(k) != now[k]]
    return changed


def check_resumable(out: Path, record: dict[str, Any]) -> None:
    """A resumed run must have the setup of the run it continues (when that run recorded one)."""
    path = out / RECORD_NAME
    if not path.is_file():
        return
    try:
        earlier = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise UserError(f"cannot resume: {path} is unreadable; remove it to resume without the check") from None
    if not isinstance(earlier, dict) or earlier.get("setup_sha256") != record["setup_sha256"]:
        changed = differences(earlier if isinstance(earlier, dict) else {}, record)
        shown = "; ".join(changed[:3]) + (" ..." if len(changed) > 3 else "")
        raise UserError(f"cannot resume: {out} was written with another setup ({shown or 'unrecorded'}); "
                        "resume with the same setup, or write to another folder")  # fmt: skip


def write_record(out: Path, record: dict[str, Any]) -> None:
    try:
        write_json(out / RECORD_NAME, record, indent=2)
    except OSError as err:
        raise UserError(f"cannot write {out / RECORD_NAME}: {err.strerror or err}") from None


class Journal:
    """The image results of a run, one line per image as it finishes: ``{"file_name": ..., "entries": [...]}``."""

    def __init__(self, out: Path) -> None:
        self.path = out / JOURNAL_NAME
        self._file: IO[str] | None = None

    def read(self) -> list[dict[str, Any]] | None:
        """The entries of every image an earlier, killed run of this folder finished (a cut-short line dropped);
        ``None`` where there is no journal (the earlier run ended: its ``results.json`` holds its results)."""
        if not self.path.is_file():
            return None
        entries: list[dict[str, Any]] = []
        with open(self.path, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if not line.endswith("\n"):
                    break  # the last line, cut short by a kill (even where what is left of it parses)
                try:
                    item = json.loads(line)
                except ValueError:
                    continue  # a damaged line: the others still count
                if isinstance(item, dict) and isinstance(item.get("entries"), list):
                    entries += item["entries"]
        return entries

    def start(self, kept: list[dict[str, Any]]) -> None:
        """Begin a fresh journal holding ``kept`` (every entry a resumed run keeps), atomically replacing any
        earlier one: from then on the journal alone holds everything the run has done."""
        self.close()
        try:
            with atomic_path(self.path) as tmp, open(tmp, "w", encoding="utf-8") as fresh:
                if kept:
                    fresh.write(json.dumps({"file_name": None, "entries": finite_or_none(kept)}, allow_nan=False))
                    fresh.write("\n")
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - appended to for the whole run
        except OSError as err:
            raise UserError(f"cannot write {self.path}: {err.strerror or err}") from None

    def append(self, file_name: str, entries: list[dict[str, Any]]) -> None:
        """Record one finished image (one write, flushed to the kernel: a killed process keeps it)."""
        assert self._file is not None
        line = {"file_name": file_name, "entries": finite_or_none(entries)}
        try:
            self._file.write(json.dumps(line, allow_nan=False) + "\n")
            self._file.flush()
        except OSError as err:
            raise UserError(f"cannot write {self.path}: {err.strerror or err}") from None

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def remove(self) -> None:
        """The run's results are in ``results.json``: the journal is no longer needed."""
        self.close()
        self.path.unlink(missing_ok=True)
