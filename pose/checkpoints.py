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

import http.client
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from common.config import ModelConfig
from common.console import error_console, warn
from common.errors import MissingWeightsError, UserError
from pose.models import FAMILY_NAMES, build_network, family_of_keys
from pose.registry import REGISTRY

# Checkpoint-key prefixes of the public layouts, removed to reach SimpleBaseline's own module names.
KEY_PREFIXES = ("module.", "backbone.", "keypoint_head.", "head.")
SHOWN_KEYS = 3  # how many offending keys an error message lists
# Plain-data numpy globals that training frameworks leave in checkpoint metadata (a best score saved as
# a numpy float; mmengine's ``meta.dataset_meta`` with arrays of sigmas and colours), under the module
# names of numpy 2.x and 1.x, on top of torch's weights-only set. Arrays of numeric dtypes rebuild from
# their raw bytes; object arrays and anything else that carries code stay refused.
NUMPY_DATA_GLOBALS = [
    np.dtype,
    np.ndarray,
    *{type(np.dtype(code)) for code in "?bBhHiIlLqQefdgFDG"},  # numeric dtype classes
    np._core.multiarray.scalar,
    (np._core.multiarray.scalar, "numpy.core.multiarray.scalar"),  # pickled by numpy < 2
    np._core.multiarray._reconstruct,
    (np._core.multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
]


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def torch_device(name: str) -> torch.device:
    """``name`` as a :class:`torch.device`; asking for CUDA where there is none is a :class:`UserError`."""
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise UserError(f"unknown device '{name}' ({_one_line(err)})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device '{name}' requested but CUDA is not available here (use --device cpu)")
    return device


def hub_checkpoint_path(url: str) -> Path:
    """Where torch hub caches the file at ``url``: ``torch.hub.get_dir()/checkpoints/<file name>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def fetch_checkpoint(url: str, sha256_prefix: str | None = None) -> Path:
    """The cached copy of ``url`` in the torch hub dir, downloading it first when absent.

    A failed download (offline, HTTP error) is a :class:`MissingWeightsError` naming the file, where
    to put it and the URL; a download whose sha256 does not start with ``sha256_prefix`` is a
    :class:`UserError`.
    """
    path = hub_checkpoint_path(url)
    if path.is_file():
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.hub.download_url_to_file(url, str(path), hash_prefix=sha256_prefix, progress=True)
    except (OSError, http.client.HTTPException) as err:
        raise MissingWeightsError(
            f"pretrained weights {path.name} are not cached and could not be downloaded ({_one_line(err)}): "
            f"fetch {url} and save it as {path}"
        ) from None
    except RuntimeError as err:  # torch.hub's hash check
        raise UserError(f"download of {url} failed its integrity check ({_one_line(err)})") from None
    return path


def read_checkpoint(path: str | Path) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``, any failure as a one-line :class:`UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint file not found: {path}")
    try:
        with torch.serialization.safe_globals(NUMPY_DATA_GLOBALS):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        found = re.search(r"GLOBAL ([\w.]+)|but got <class '([\w.]+)'>", str(err))
        what = f" ({found.group(1) or found.group(2)})" if found else ""
        raise UserError(
            f"{path}: refused to load: it holds pickled Python objects{what}, not only tensors "
            "(only weights-only checkpoints are accepted)"
        ) from None
    except Exception as err:  # torch.load raises many types on non-checkpoint bytes
        raise UserError(f"{path}: not a readable PyTorch checkpoint ({_one_line(err)})") from None


def unwrap_state_dict(checkpoint: Any, source: str | Path) -> dict[str, torch.Tensor]:
    """The tensor mapping inside a checkpoint: under ``state_dict`` or ``model`` when present, else itself."""
    state = checkpoint
    if isinstance(state, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(state.get(key), Mapping):
                state = state[key]
                break
    if not isinstance(state, Mapping) or not state:
        raise UserError(f"{source}: no state dict found (expected a mapping of parameter names to tensors)")
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if len(tensors) != len(state):
        bad = next(k for k, v in state.items() if not isinstance(v, torch.Tensor))
        raise UserError(f"{source}: state dict entry '{bad}' is not a tensor")
    return tensors


def to_simplebaseline_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename official / MMPose 0.x / MMPose 1.x keys (and ``module.``-prefixed ones) to our module names."""
    renamed = {}
    for key, value in state.items():
        for prefix in KEY_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix) :]
        renamed[key] = value
    return renamed


def _listed(keys: list[str]) -> str:
    more = f" (+{len(keys) - SHOWN_KEYS} more)" if len(keys) > SHOWN_KEYS else ""
    return ", ".join(keys[:SHOWN_KEYS]) + more


def load_checked(
    model: nn.Module, state: Mapping[str, torch.Tensor], source: str | Path, what: str, allow_extra: bool = True
) -> None:
    """Load ``state`` into ``model``: missing keys or shape mismatches are a :class:`UserError`.

    Keys the model does not have print a warning, or are a :class:`UserError` when not ``allow_extra``.
    BatchNorm's ``num_batches_tracked`` counters are bookkeeping, not weights: they may be absent.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise UserError(f"{source}: not a {what} checkpoint: missing {len(missing)} keys: {_listed(missing)}")
    mismatched = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if mismatched:
        raise UserError(f"{source}: not a {what} checkpoint: shape mismatch (file vs model): {_listed(mismatched)}")
    unexpected = [k for k in state if k not in expected]
    if unexpected and not allow_extra:
        raise UserError(f"{source}: not a {what} checkpoint: unexpected keys: {_listed(unexpected)}")
    if unexpected:
        warn(
            error_console(), f"{source}: ignored {len(unexpected)} keys the {what} does not have: {_listed(unexpected)}"
        )
    model.load_state_dict({k: v for k, v in state.items() if k in expected}, strict=False)


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
