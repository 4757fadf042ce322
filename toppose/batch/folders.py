"""The driver's side of an image item: its images listed and numbered as ``toppose run`` lists and numbers them, split
into shards for the workers, each image's entries journaled as its shard comes back (``results.journal.jsonl``, as
an image run journals them), and ``results.json`` written in the input's order once every shard is in.

An earlier attempt's journal (or results) under the same setup is continued: its images are not done again, unless
their image id or annotated copy no longer fits the item.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from toppose.batch.done import Item, recorded_setup
from toppose.batch.worker import Unit
from toppose.common.atomic import remove_stale_temporaries, write_json
from toppose.common.errors import UserError
from toppose.common.numbers import finite_or_none
from toppose.images import annotation_image_ids, assign_image_ids, resumed_entries
from toppose.run_folder import Journal, write_record
from toppose.sources import image_source


@dataclass
class Folder:
    """An image item under way: every image in the input's order, the entries of the images done, the shards out."""

    item: Item
    names: list[str]
    journal: Journal
    entries: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    pending: set[int] = field(default_factory=set)
    frames: int = 0  # images processed, kept from an earlier attempt included
    seconds: float = 0.0  # worker seconds of its shards
    attempts: int = 1  # the most tries any of its shards took


def open_folder(item: Item, shard_size: int, out: Path, keys: Iterator[int]) -> tuple[Folder, list[Unit], list[str]]:
    """List and number the item's images, continue an earlier attempt, and split what is left into shards of
    ``shard_size`` images (their keys taken from ``keys``); with the warnings to show. The batch's own folder
    ``out`` is left out of the listing."""
    request = item.spec.request
    source = image_source(Path(request.input), request.fps, exclude=[out])
    warnings = [f"skipped {name}: {reason}" for name, reason in source.skipped]
    names = source.names
    ids = assign_image_ids([Path(n) for n in names], annotation_image_ids(request.ann) if request.ann else None)
    warnings += [f"skipped {n}: not listed in {request.ann}" for n, i in zip(names, ids, strict=True) if i is None]
    folder = Folder(item, names, Journal(item.out))
    kept = earlier_entries(folder, dict(zip(names, ids, strict=True)))
    folder.journal.start(kept)
    write_record(item.out, item.record)
    for entry in kept:
        folder.entries.setdefault(entry["file_name"], []).append(entry)
    folder.frames = len(folder.entries)
    todo = [(n, i) for n, i in zip(names, ids, strict=True) if i is not None and n not in folder.entries]
    units = []
    for start in range(0, len(todo), shard_size):
        shard = todo[start : start + shard_size]
        units.append(Unit(next(keys), item, [n for n, _ in shard], [i for _, i in shard]))
        folder.pending.add(units[-1].key)
    return folder, units, warnings


def earlier_entries(folder: Folder, ids: dict[str, int | None]) -> list[dict[str, Any]]:
    """The entries an earlier attempt at the item finished under its setup, of images whose id is still theirs and
    (when drawing) whose annotated copy is there; none where the item's folder holds another setup's outputs."""
    item = folder.item
    if recorded_setup(item.out) != item.record["setup_sha256"]:
        return []
    try:
        entries = resumed_entries(item.out, folder.journal, set(folder.names))
    except UserError:
        return []  # another input's results: the item starts afresh
    images = item.out / "images"
    stale = {e["file_name"] for e in entries if e.get("image_id") != ids.get(e["file_name"])}
    if item.spec.request.draw:
        stale |= {e["file_name"] for e in entries if not (images / e["file_name"]).is_file()}
    return [e for e in entries if e["file_name"] not in stale]


def add_shard(folder: Folder, key: int, entries: dict[str, list[dict[str, Any]]], frames: int) -> None:
    """A shard's images done: journaled at once, so that an interrupted batch keeps them."""
    for name, found in entries.items():
        folder.journal.append(name, found)
        folder.entries[name] = found
    folder.frames += frames
    folder.pending.discard(key)


def finish_folder(folder: Folder) -> int:
    """Every shard in: ``results.json`` in the input's order (as ``toppose run`` writes it), the journal removed;
    the number of people found."""
    if folder.frames == 0:
        raise UserError(
            f"none of the {len(folder.names)} images in {folder.item.spec.request.input} could be processed"
        )
    order = {name: i for i, name in enumerate(folder.names)}
    entries = [e for name in sorted(folder.entries, key=order.__getitem__) for e in folder.entries[name]]
    path = folder.item.out / "results.json"
    try:
        write_json(path, finite_or_none(entries))
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None
    folder.journal.remove()
    for place, _, _ in os.walk(folder.item.out):  # left by a worker that died mid-shard; none writes there now
        remove_stale_temporaries(place, older_than=0)
    return len(entries)
