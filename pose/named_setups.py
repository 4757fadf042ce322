"""Named setups and config building: ``fast``, ``balanced``, ``accurate`` (``configs/setup_NAME.toml``), a config
file, or a :class:`Config`, with overrides applied and the setup the pose weights record merged in.

The command line (``--setup``, ``--config``, the model flags) and the Python API (``PoseEstimator(setup)``) both
build their config here. Asking for another keypoint set (``--keypoints``, or ``model.keypoints`` in the API's
settings) without naming weights swaps the setup's published checkpoint for its counterpart in that set
(:func:`weights_for_set`): ``--setup fast --keypoints halpe26`` runs RTMPose-s Halpe-26.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from toppose.common.config import CONFIG_DIR, Config, load_config, override
from toppose.common.errors import UserError
from toppose.pose.registry import REGISTRY
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


def weights_for_set(weights: str, keypoints: str, source: str) -> str:
    """The published checkpoint of the keypoint set ``keypoints`` that stands in for the registry entry ``weights``
    (a setup's default weights): the same family, backbone and input size, the best published figure among them.
    Other weights (a file, random) stay as they are; a registry entry with no counterpart in the set is a
    :class:`UserError` naming what there is."""
    entry = REGISTRY.get(weights)
    if entry is None or entry.keypoints == keypoints:
        return weights
    same = [
        (other.published_ap, name)
        for name, other in REGISTRY.items()
        if other.keypoints == keypoints
        and (other.family, other.backbone, other.input_size) == (entry.family, entry.backbone, entry.input_size)
    ]
    if not same:
        offered = sorted(name for name, other in REGISTRY.items() if other.keypoints == keypoints)
        raise UserError(f"{source} {keypoints}: no published {keypoints} checkpoint for the setup's {weights} "
                        f"(give --pose-weights, e.g. one of {', '.join(offered[:4])}, ...)")  # fmt: skip
    return max(same)[1]


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
    if "model.keypoints" in given and "model.weights" not in given:
        cfg.model.weights = weights_for_set(cfg.model.weights, cfg.model.keypoints, given["model.keypoints"])
    if weights_setup:
        apply_weights_setup(cfg, explicit_fields(path, given))
    return cfg
