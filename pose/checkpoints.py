"""Pose-network weights: public checkpoints through the torch hub cache, checked loading into any family.

``build_pose_model`` accepts, as ``weights``:

* a registry name (:data:`pose.registry.REGISTRY`): MMPose's releases, fetched once into
  ``torch.hub.get_dir()/checkpoints/`` and checked against the sha256 prefix in their file name (where the name
  publishes none, RTMW-m/l's, against the sha256 recorded beside the file at its download, at every use);
* a local file: the official SimpleBaseline release (Xiao et al.; our module names, optionally under
  ``state_dict`` and/or with DataParallel's ``module.`` prefix), an MMPose 0.x or 1.x checkpoint
  (``backbone.*`` for the trunk, ``keypoint_head.*`` (0.x) or ``head.*`` (1.x) for the head, under
  ``state_dict`` next to ``meta``), or one of our training checkpoints (``{"model": state_dict, ...}``);
* ``""``: random initialisation.

Every file is read by :func:`common.weights.load_checkpoint` (weights only, its unpacked size bounded), its keys
renamed by its family's hook (:attr:`FamilySpec.to_model_keys`). A model key missing from the file, or a shape
mismatch, is a :class:`UserError` naming the file and the first keys; keys the model does not have only print a
``warning:`` line.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from toppose.common.config import ModelConfig
from toppose.common.errors import UserError
from toppose.common.weights import fetch_checkpoint, load_checkpoint, torch_device
from toppose.pose.models import FAMILIES, FamilySpec, build_network, family_of_keys
from toppose.pose.registry import REGISTRY
from torch import nn


def resolve_local_weights(spec: str) -> Path:
    """A weights spec that is not a registry name, as an existing file."""
    path = Path(spec).expanduser()
    if not path.is_file():
        raise UserError(
            f"pose weights '{spec}' are neither a known name (e.g. simplebaseline_res50_coco_256x192, "
            f"rtmpose_m_coco_256x192; {len(REGISTRY)} in pose/registry.py) nor an existing file"
        )
    return path


def resolve_weights(spec: str) -> Path | None:
    """A weights spec as a file: registry names are fetched, paths checked; ``""`` is ``None`` (random)."""
    if not spec:
        return None
    if spec in REGISTRY:
        entry = REGISTRY[spec]
        return fetch_checkpoint(entry.url, entry.sha256_prefix)
    return resolve_local_weights(spec)


def _family_keys(
    state: Mapping[str, torch.Tensor], family: FamilySpec, model: nn.Module, source: str | Path
) -> dict[str, torch.Tensor]:
    """A checkpoint's tensors under the module names of ``family``'s ``model``; a file that carries another
    family's signature key is a :class:`UserError` naming that family."""
    found = family_of_keys(state)
    if found is not None and found is not family:
        raise UserError(
            f"{source}: this is a {found.title} checkpoint, not a {family.title} one "
            f"(use one of its setups: --pose-weights with a name of `toppose zoo --family {found.name}`, "
            f"or set model.family = '{found.name}')"
        )
    return family.to_model_keys(state, model)


def build_pose_model(
    model_cfg: ModelConfig, weights: str | None = None, device: str = "cpu", split_ratio: float = 2.0
) -> nn.Module:
    """The network of ``model_cfg`` with ``weights`` (default ``model_cfg.weights``) loaded, in eval mode.

    ``weights``: a :data:`REGISTRY` name, a local checkpoint file, or ``""`` for random initialisation.
    ``split_ratio``: SimCC bins per input pixel (RTMPose).
    """
    spec = model_cfg.weights if weights is None else weights
    target = torch_device(device)
    model = build_network(model_cfg, split_ratio)
    family = FAMILIES[model_cfg.family]
    path = resolve_weights(spec)
    if path is not None:
        what = f"{family.title} {model_cfg.backbone}"
        load_checkpoint(model, path, what, lambda state: _family_keys(state, family, model, path))
    return model.to(target).eval()
