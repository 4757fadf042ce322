"""Limits on what an input may cost, each with a default that an environment variable can change."""

from __future__ import annotations

import os

from toppose.common.errors import UserError


def env_limit(name: str, default: int) -> int:
    """The whole number > 0 in the environment variable ``name``, or ``default`` where it is unset or empty.

    Any other value is a :class:`UserError` naming the variable."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise UserError(f"{name}: expected a whole number > 0, got {text!r}")
    return value
