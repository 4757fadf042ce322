"""Reading JSON inputs (boxes, results and annotation files), bounded before they are parsed.

A missing, unreadable, oversized, too deeply nested, non-UTF-8 or malformed file is one :class:`UserError`
line naming the file. A file of more than ``TOPPOSE_MAX_JSON_BYTES`` bytes (environment variable; default
:data:`DEFAULT_MAX_JSON_BYTES`, 2 GiB: COCO's largest annotation file, instances_train2017.json, has 448 MB,
COCO-WholeBody's 1.4 GB; Python's objects take some ten times the text) is refused before it is read.
Arrays and objects nested more than :data:`MAX_JSON_DEPTH` levels deep (COCO files nest five) are refused
before parsing: Python's parser recurses, and a few thousand levels ended in a ``RecursionError``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from toppose.common.errors import UserError
from toppose.common.limits import env_limit

MAX_BYTES_VARIABLE = "TOPPOSE_MAX_JSON_BYTES"
DEFAULT_MAX_JSON_BYTES = 2 * 1024**3
MAX_JSON_DEPTH = 64
NOT_STRUCTURE = bytes(set(range(256)) - set(b'"[]{}'))  # every byte but quotes and brackets
STRING = re.compile(rb'"[^"]*"')


class JsonLimitError(UserError):
    """A JSON input over a size or nesting limit."""


def max_json_bytes() -> int:
    """The largest JSON file read: ``$TOPPOSE_MAX_JSON_BYTES``, else the default."""
    return env_limit(MAX_BYTES_VARIABLE, DEFAULT_MAX_JSON_BYTES)


def nesting_depth(text: bytes) -> int:
    """How deep arrays and objects nest in the JSON ``text``, brackets inside strings not counted; no recursion.

    Escaped backslashes, then escaped quotes are dropped (pairs from the left, as a parser reads them), so every
    quote left opens or closes a string; only quotes and brackets are kept, the strings dropped, the brackets
    counted."""
    unescaped = text.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = np.frombuffer(STRING.sub(b"", unescaped.translate(None, NOT_STRUCTURE)), dtype=np.uint8)
    if not brackets.size:
        return 0
    steps = np.where((brackets == ord("[")) | (brackets == ord("{")), 1, -1)
    return int(np.cumsum(steps).max())


def _read_bytes(path: Path, what: str) -> bytes:
    """The bytes of ``path``, refused before reading when the file is over the size limit."""
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    limit = max_json_bytes()
    try:
        size = path.stat().st_size
        if size > limit:
            raise JsonLimitError(
                f"{path}: {what} of {size:,} bytes is over the limit of {limit:,} bytes "
                f"({MAX_BYTES_VARIABLE} raises it)"
            )
        return path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read {what} {path}: {err.strerror or err}") from None


def read_json(path: str | Path, what: str) -> Any:
    """The parsed content of the JSON file at ``path``; ``what`` names it in errors ("results file")."""
    path = Path(path)
    data = _read_bytes(path, what)
    depth = nesting_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise JsonLimitError(f"{path}: JSON nested {depth} levels deep, more than the {MAX_JSON_DEPTH} allowed")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise UserError(f"{path}: not a {what}: byte 0x{data[err.start]:02x} on line {line} is not UTF-8") from None
    try:
        return json.loads(text)
    except ValueError as err:  # JSONDecodeError, or an integer of more digits than Python converts
        raise UserError(f"{path}: not a {what}: malformed JSON ({err})") from None
