"""What a batch does: its items, from inputs on the command line (video files, image folders, image files, globs) and
manifests (CSV or JSON lines: a path per row, with per-item options).

Each item is one :class:`~toppose.runs.RunRequest` into its own folder ``OUT/NAME``. The name is the input's file
name without its suffix (a folder's name), or a manifest row's ``name``; two items of one name are an error. Paths
are made absolute here, so that workers on other machines (sharing the file system) find them; a manifest's
relative paths are relative to the manifest's folder.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import glob
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toppose.common.errors import UserError
from toppose.runs import RunRequest

MANIFEST_SUFFIXES = (".csv", ".jsonl")
GLOB_CHARACTERS = frozenset("*?[")
# A manifest's columns beside ``path``: the item's folder name, its setup, and the request's per-item options.
PATH_OPTIONS = ("boxes", "ann")
FLAG_OPTIONS = ("draw", "track", "smooth", "camera_motion", "kinematics")
NUMBER_OPTIONS = {"det_every": int, "trails": int, "max_frames": int, "fps": float}
COLUMNS = ("path", "name", "setup", "config", *PATH_OPTIONS, *FLAG_OPTIONS, *NUMBER_OPTIONS)
TRUE, FALSE = ("true", "yes", "1"), ("false", "no", "0")
RESERVED_NAMES = frozenset({"done.jsonl", "failed.json"})  # the batch's own files in OUT


@dataclass
class ItemSpec:
    """One input before its setup is built: its folder name, its request, the setup it asks for (``None``: the
    command line's), and where it was given (for error lines)."""

    name: str
    request: RunRequest
    setup: str | None = None
    config: Path | None = None
    origin: str = "command line"


def absolute(path: str | os.PathLike[str], base: Path) -> Path:
    """``path`` made absolute against ``base`` (``~`` expanded)."""
    expanded = Path(path).expanduser()
    return expanded if expanded.is_absolute() else (base / expanded).absolute()


def item_name(path: Path) -> str:
    """An input's folder name: a file's name without its suffix, a folder's name."""
    return path.name if path.is_dir() or not path.suffix else path.stem


def read_specs(inputs: list[str], out: Path, defaults: dict[str, Any]) -> list[ItemSpec]:
    """The items of the command line's ``inputs`` (paths, globs, manifests) into ``out``, each request with the
    command line's ``defaults`` (RunRequest fields) unless its manifest row says otherwise."""
    specs: list[ItemSpec] = []
    for text in inputs:
        path = absolute(text, Path.cwd())
        if path.suffix.lower() in MANIFEST_SUFFIXES:
            specs += read_manifest(path, out, defaults)
        elif not path.exists() and GLOB_CHARACTERS & set(text):
            matches = sorted(glob.glob(os.path.expanduser(text), recursive=True))
            if not matches:
                raise UserError(f"no file or folder matches {text}")
            specs += [spec_of({"path": str(absolute(m, Path.cwd()))}, out, defaults, "command line") for m in matches]
        else:
            specs.append(spec_of({"path": str(path)}, out, defaults, "command line"))
    if not specs:
        raise UserError("no inputs given")
    check_names(specs, out)
    return specs


def read_manifest(path: Path, out: Path, defaults: dict[str, Any]) -> list[ItemSpec]:
    """The items of a manifest: CSV with a header row, or JSON lines (one object a line); blank lines are skipped."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UserError(f"cannot read the manifest {path}: {getattr(err, 'strerror', None) or err}") from None
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        numbered = [(i + 2, {k: v for k, v in row.items() if v not in (None, "")}) for i, row in enumerate(rows)]
    else:
        numbered = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError:
                raise UserError(f"{path} line {number}: not a JSON object") from None
            if not isinstance(row, dict):
                raise UserError(f"{path} line {number}: not a JSON object")
            numbered.append((number, {k: v for k, v in row.items() if v is not None}))
    if not numbered:
        raise UserError(f"the manifest {path} lists no inputs")
    return [spec_of(row, out, defaults, f"{path} line {number}", path.parent) for number, row in numbered]


def spec_of(
    row: dict[str, Any], out: Path, defaults: dict[str, Any], origin: str, base: Path | None = None
) -> ItemSpec:
    """One item from a row of ``column -> value`` (CSV cells are text, parsed here); a bad row is one line."""
    unknown = sorted(set(row) - set(COLUMNS))
    if unknown:
        raise UserError(f"{origin}: unknown column {unknown[0]!r} (columns: {', '.join(COLUMNS)})")
    if "path" not in row:
        raise UserError(f"{origin}: no path")
    base = base or Path.cwd()
    options = dict(defaults)
    for key in PATH_OPTIONS:
        if key in row:
            options[key] = absolute(text_value(row[key], key, origin), base)
    for key in FLAG_OPTIONS:
        if key in row:
            options[key] = flag_value(row[key], key, origin)
    for key, kind in NUMBER_OPTIONS.items():
        if key in row:
            options[key] = number_value(row[key], kind, key, origin)
    path = absolute(text_value(row["path"], "path", origin), base)
    name = text_value(row["name"], "name", origin) if "name" in row else item_name(path)
    request = RunRequest(input=path, out=out / name, **options)
    try:  # an input that is not there fails alone, when the batch comes to it
        request.check() if path.exists() else request.check_values()
    except UserError as err:
        raise UserError(f"{origin}: {err}") from None
    setup = text_value(row["setup"], "setup", origin) if "setup" in row else None
    config = absolute(text_value(row["config"], "config", origin), base) if "config" in row else None
    if setup is not None and config is not None:
        raise UserError(f"{origin}: setup and config both name a setup: give one")
    return ItemSpec(name, request, setup, config, origin)


def text_value(value: Any, key: str, origin: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{origin}: {key} must be a non-empty text, got {value!r}")
    return value.strip()


def flag_value(value: Any, key: str, origin: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE + FALSE:
        return value.strip().lower() in TRUE
    raise UserError(f"{origin}: {key} must be true or false, got {value!r}")


def number_value(value: Any, kind: type, key: str, origin: str) -> int | float:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            value = json.loads(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and not float(value).is_integer()):
        raise UserError(f"{origin}: {key} must be a {'whole ' if kind is int else ''}number, got {value!r}")
    return kind(value)


def check_names(specs: list[ItemSpec], out: Path) -> None:
    """Each item's folder is its own, a plain name inside ``out``, and not the input itself."""
    seen: dict[str, ItemSpec] = {}
    for spec in specs:
        name = spec.name
        if name in ("", ".", "..") or "/" in name or os.sep in name or name.startswith(".") or name in RESERVED_NAMES:
            raise UserError(f"{spec.origin}: {name!r} cannot name an output folder (a plain name, not hidden)")
        if name in seen:
            first = seen[name]
            inputs = f"{first.request.input} ({first.origin}) and {spec.request.input} ({spec.origin})"
            raise UserError(f"two inputs would write {out / name}: {inputs}; name them apart (a manifest's name)")
        seen[name] = spec


def recorded_options(request: RunRequest, det_every: int) -> dict[str, Any]:
    """The options of a request that shape its outputs beyond the setup (``run.json``), as the done manifest
    records them; ``det_every`` is the one in force (the request's, else the setup's)."""
    fields = {f.name: getattr(request, f.name) for f in dataclasses.fields(request)}
    del fields["out"], fields["resume"], fields["pose"], fields["boxes"]  # pose and boxes: in run.json
    fields["det_every"] = det_every if request.track else 1
    return json.loads(json.dumps(fields, default=jsonable))


def jsonable(value: Any) -> Any:
    """A value JSON does not know, as the done manifest records it: a dataclass's fields, else its text."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return str(value)
