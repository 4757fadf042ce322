"""What a batch has finished: ``OUT/done.jsonl``, one line per item, appended by the driver once the item's outputs
are complete, and ``OUT/failed.json``, the items the last run could not do.

An item is done when its line is there, its outputs are there and its ``run.json`` has the line's setup: a rerun
skips it. A line of another setup or other options is refused (it would mix two setups' outputs under one name); a
last line cut short by a kill is dropped, and the item done again.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toppose.batch.items import ItemSpec
from toppose.common.atomic import write_json
from toppose.common.config import Config
from toppose.common.errors import UserError
from toppose.run_folder import RECORD_NAME, differences
from toppose.video import KINEMATICS_DIR, VIDEO_NAME

DONE_NAME = "done.jsonl"
FAILED_NAME = "failed.json"


@dataclass
class Item:
    """One input with its setup built: what ``toppose run INPUT -o OUT/NAME`` would run, the setup record its
    ``run.json`` gets, and the options the done manifest records."""

    spec: ItemSpec
    cfg: Config
    record: dict[str, Any]
    options: dict[str, Any]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def out(self) -> Path:
        return self.spec.request.out

    def outputs(self) -> list[Path]:
        """The outputs a finished run of the item leaves."""
        request = self.spec.request
        found = [self.out / "results.json", self.out / RECORD_NAME]
        if request.draw:
            found.append(self.out / (VIDEO_NAME if request.video_mode else "images"))
        if request.kinematics:
            found.append(self.out / KINEMATICS_DIR)
        return found


class DoneLog:
    """``OUT/done.jsonl``: read once at the start, appended to as items finish."""

    def __init__(self, out: Path) -> None:
        self.path = out / DONE_NAME

    def read(self) -> dict[str, dict[str, Any]]:
        """The last line of each item name (lines that do not parse, as one a kill cut short, dropped)."""
        lines: dict[str, dict[str, Any]] = {}
        if not self.path.is_file():
            return lines
        with open(self.path, encoding="utf-8", errors="replace") as handle:
            for text in handle:
                try:
                    line = json.loads(text)
                except ValueError:
                    continue
                if isinstance(line, dict) and isinstance(line.get("name"), str):
                    lines[line["name"]] = line
        return lines

    def append(self, line: dict[str, Any]) -> None:
        """Record a finished item: one line, written and synced before the next item is recorded."""
        try:
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(line, allow_nan=False) + "\n")
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as err:
            raise UserError(f"cannot write {self.path}: {err.strerror or err}") from None


def is_done(item: Item, line: dict[str, Any] | None) -> bool:
    """Whether ``line`` (the item's in the done manifest, if any) records the item finished with its outputs there.

    A line of another setup or other options is one :class:`UserError` line naming what differs."""
    if line is None:
        return False
    if line.get("setup_sha256") != item.record["setup_sha256"] or line.get("options") != item.options:
        raise UserError(f"{item.out} was done with another setup ({changes(item, line)}): use the same setup and "
                        "options, or write to another folder")  # fmt: skip
    return all(path.exists() for path in item.outputs()) and recorded_setup(item.out) == line["setup_sha256"]


def changes(item: Item, line: dict[str, Any]) -> str:
    """What differs between the item and its done line, shortly."""
    found = []
    if line.get("setup_sha256") != item.record["setup_sha256"]:
        try:
            earlier = json.loads((item.out / RECORD_NAME).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            earlier = {}
        found += differences(earlier if isinstance(earlier, dict) else {}, item.record) or ["setup"]
    before = line.get("options") if isinstance(line.get("options"), dict) else {}
    found += [f"{k}: {before.get(k)!r} -> {v!r}" for k, v in sorted(item.options.items()) if before.get(k) != v]
    return "; ".join(found[:3]) + (" ..." if len(found) > 3 else "")


def recorded_setup(out: Path) -> str | None:
    """The ``setup_sha256`` of ``out/run.json`` (``None``: none readable)."""
    try:
        record = json.loads((out / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record.get("setup_sha256") if isinstance(record, dict) else None


def write_failures(out: Path, failures: list[dict[str, Any]]) -> None:
    """``OUT/failed.json``: this run's failed items with their error lines (removed when none failed)."""
    path = out / FAILED_NAME
    try:
        if failures:
            write_json(path, failures, indent=2)
        else:
            path.unlink(missing_ok=True)
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None
