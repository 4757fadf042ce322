"""Named setups and config building: ``fast``, ``balanced``, ``accurate`` (``configs/setup_NAME.toml``), a config
file, or a :class:`Config`, with overrides applied and the setup the pose weights record merged in.

The command line (``--setup``, ``--config``, the model flags) and the Python API (``PoseEstimator(setup)``) both
build their config here.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toppose.common.config import CONFIG_DIR, Config, load_config, override
from toppose.common.errors import UserError
from toppose.pose.setup import apply_weights_setup, explicit_fields
from toppose.pose.training.config import TrainingConfig

# Named setups users pick by intent (``--setup NAME``: configs/setup_NAME.toml); see docs/setups-and-weights.md.
SETUPS = ("fast", "balanced", "accurate")


def setup_path(name: str) -> Path:
    """The config file of the named setup ``name`` (one of :data:`SETUPS`)."""
    return CONFIG_DIR / f"setup_{name}.toml"


def setup_file(setup: str | os.PathLike[str]) -> Path:
    """The config file of a named setup or a ``.toml`` path; anything else is one :class:`UserError` line."""
    if isinstance(setup, str) and setup in SETUPS:
        return setup_path(setup)
    path = Path(setup)
    if path.suffix != ".toml":
        raise UserError(f"setup '{setup}': expected one of {', '.join(SETUPS)} or a .toml config file")
    return path


def build_config(
    path: Path | None,
    overrides: Sequence[tuple[str, Any, str]] = (),
    weights_setup: bool = True,
    base: Config | None = None,
) -> Config:
    """The config file at ``path`` (``None``: the default setup; or a copy of ``base``) with ``overrides`` applied.

    Each override is (dotted field, value, where it came from); ``None`` values are skipped. With
    ``weights_setup`` the setup the pose weights record or imply is merged in, and an override that
    contradicts the weights is an error (see :func:`toppose.pose.setup.apply_weights_setup`).
    """
    cfg = copy.deepcopy(base) if base is not None else load_config(path, cls=TrainingConfig)
    given = {}
    for dotted, value, source in overrides:
        override(cfg, dotted, value, source)
        if value is not None:
            given[dotted] = source
    if weights_setup:
        apply_weights_setup(cfg, explicit_fields(path, given))
    return cfg
