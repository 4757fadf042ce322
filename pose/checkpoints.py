"""Pose-network weights: public checkpoints through the torch hub cache, checked loading into any family.

``build_pose_model`` accepts, as ``weights``:

* a registry name (:data:`pose.registry.REGISTRY`): MMPose's COCO releases, fetched once into
  ``torch.hub.get_dir()/checkpoints/`` and checked against the sha256 prefix in their file name;
* a local file: the official SimpleBaseline release (Xiao et al.; our module names, optionally under
  ``state_dict`` and/or with DataParallel's ``module.`` prefix), an MMPose 0.x or 1.x checkpoint
  (``backbone.*`` for the trunk, ``keypoint_head.*`` (0.x) or ``head.*`` (1.x) for the head, under
  ``state_dict`` next to ``meta``), or one of our training checkpoints (``{"model": state_dict, ...}``);
* ``""``: random initialisation.

Every file is read with ``torch.load(..., weights_only=True)``: pickled Python objects are refused.
A model key missing from the file, or a shape mismatch, is a :class:`UserError` naming the file
and the first keys; keys the model does not have only print a ``warning:`` line.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from toppose.common.config import ModelConfig
from toppose.common.errors import UserError
from toppose.common.weights import fetch_checkpoint, load_checked, read_checkpoint, torch_device, unwrap_state_dict
from toppose.pose.models import FAMILY_NAMES, build_network, family_of_keys
from toppose.pose.registry import REGISTRY
from torch import nn

# Checkpoint-key prefixes of the public layouts, removed to reach SimpleBaseline's own module names.
KEY_PREFIXES = ("module.", "backbone.", "keypoint_head.", "head.")


def to_simplebaseline_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename official / MMPose 0.x / MMPose 1.x keys (and ``module.``-prefixed ones) to our module names."""
    renamed = {}
    for key, value in state.items():
        for prefix in KEY_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        renamed[key] = value
    return renamed


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


def to_family_keys(state: Mapping[str, torch.Tensor], family: str) -> dict[str, torch.Tensor]:
    """Rename a checkpoint's keys to the module names of ``family``'s network.

    SimpleBaseline: official / MMPose 0.x / 1.x keys to the official module names. The other families keep
    MMPose 1.x's ``backbone.``/``head.`` names: 0.x's ``keypoint_head.`` becomes ``head.``, DataParallel's
    ``module.`` goes, and so does ``data_preprocessor.*`` (normalisation constants some files carry).
    """
    if family == "simplebaseline":
        return to_simplebaseline_keys(state)
    renamed = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        if key.startswith("data_preprocessor."):
            continue
        if key.startswith("keypoint_head."):
            key = "head." + key.removeprefix("keypoint_head.")
        renamed[key] = value
    return renamed


def _drop_class_token_slot(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """A ViT ``pos_embed`` saved with a class-token slot (one position more than the model has) loses slot 0,
    as mmpretrain does when it loads such a file into a model without a class token."""
    key = "backbone.pos_embed"
    expected = model.state_dict().get(key)
    if expected is not None and key in state and state[key].shape[1] == expected.shape[1] + 1:
        state[key] = state[key][:, 1:]


def _check_family(state: Mapping[str, torch.Tensor], family: str, source: str | Path) -> None:
    found = family_of_keys(state)
    if found is not None and found != family:
        raise UserError(
            f"{source}: this is a {FAMILY_NAMES[found]} checkpoint, not a {FAMILY_NAMES[family]} one "
            f"(use a {found} setup, e.g. --config configs/{found}_*.toml, or set model.family = '{found}')"
        )


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
    path = resolve_weights(spec)
    if path is not None:
        state = unwrap_state_dict(read_checkpoint(path), path)
        _check_family(state, model_cfg.family, path)
        state = to_family_keys(state, model_cfg.family)
        _drop_class_token_slot(model, state)
        load_checked(model, state, path, f"{FAMILY_NAMES[model_cfg.family]} {model_cfg.backbone}")
    return model.to(target).eval()
