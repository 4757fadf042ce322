"""``NAME:KEY=VALUE,...`` option values (``--filter butterworth:cutoff=6,order=4``), read against their defaults."""

from __future__ import annotations

import math
from dataclasses import dataclass

from toppose.common.errors import UserError


@dataclass(frozen=True)
class Spec:
    """A method and its parameters, every default filled in."""

    name: str
    params: dict[str, float]

    def __str__(self) -> str:
        return f"{self.name}:" + ",".join(f"{k}={v:g}" for k, v in self.params.items()) if self.params else self.name


def parse_spec(text: str, choices: dict[str, dict[str, float]], what: str) -> Spec:
    """``NAME[:KEY=VALUE,...]`` -> :class:`Spec`, each value a finite number > 0; anything else one clear line."""
    name, _, rest = text.strip().partition(":")
    if name not in choices:
        raise UserError(f"{what}: unknown method {name!r} (choose from {', '.join(choices)})")
    params = dict(choices[name])
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        if key.strip() not in params:
            known = ", ".join(params) or "none"
            raise UserError(f"{what}: {name} has no parameter {key.strip()!r} (its parameters: {known})")
        try:
            number = float(value)
        except ValueError:
            number = math.nan
        if not math.isfinite(number) or number <= 0:
            raise UserError(f"{what}: {name} {key.strip()} must be a number > 0, got {value!r}")
        params[key.strip()] = number
    return Spec(name, params)
