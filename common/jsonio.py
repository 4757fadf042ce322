"""Reading JSON inputs: a missing file or malformed JSON is one :class:`UserError` line naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from toppose.common.errors import UserError


def read_json(path: str | Path, what: str) -> Any:
    """The parsed content of the JSON file at ``path``; ``what`` names it in errors ("results file")."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what} not found: {path}")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise UserError(f"{path}: malformed JSON ({err})") from None
