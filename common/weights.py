"""Checkpoint files: public ones through the torch hub cache, bounded weights-only reading, checked loading.

:func:`load_checkpoint` is the one way a network's weights file is loaded (pose networks and detectors): read,
its state dict taken out, its keys renamed by the caller's hook, checked against the network.

Every file is read with ``torch.load(..., weights_only=True)``: pickled Python objects are refused. Before
anything is unpacked, the size it unpacks to is checked against a bound: the environment variable
``TOPPOSE_MAX_CHECKPOINT_BYTES`` (bytes; default 4 GiB, room for ViTPose-H's 2.5 GB fp32 checkpoints). The size
of a zip checkpoint (torch's format since 1.6) is the sum of its records' sizes in the archive's directory, which
is what torch allocates (a record may be compressed far below it); a legacy (pre-zip) file is read as stored, its
size is its size on disk.
"""

from __future__ import annotations

import hashlib
import http.client
import pickle
import re
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from toppose.common.atomic import atomic_path, write_text
from toppose.common.console import error_console, warn
from toppose.common.errors import MissingWeightsError, UserError
from toppose.common.limits import env_limit
from torch import nn

SHOWN_KEYS = 3  # how many offending keys an error message lists
MAX_BYTES_VARIABLE = "TOPPOSE_MAX_CHECKPOINT_BYTES"
DEFAULT_MAX_BYTES = 4 * 2**30
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


def sha256_sidecar(path: Path) -> Path:
    """Where the cache records the sha256 of a file whose name publishes none: ``<file>.sha256`` beside it."""
    return path.with_name(path.name + ".sha256")


def file_sha256(path: Path) -> str:
    """The sha256 of the file at ``path``, as 64 hex digits."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _check_recorded_sha256(path: Path) -> None:
    """A cached file without a published hash against the sha256 recorded beside it at its download: a missing
    record, or a file that no longer matches it, is a :class:`UserError`."""
    sidecar = sha256_sidecar(path)
    redo = f"delete {path} and run again to download it anew"
    try:
        recorded = sidecar.read_text().split()
    except FileNotFoundError:
        raise UserError(f"{path}: its sha256, recorded at download, is missing ({sidecar}): {redo}") from None
    except OSError as err:
        raise UserError(f"{sidecar}: cannot read the recorded sha256 ({_one_line(err)}): {redo}") from None
    if not recorded or recorded[0].lower() != file_sha256(path):
        raise UserError(f"{path}: changed since its download (its sha256 differs from {sidecar}'s): {redo}")


def _download(url: str, path: Path, sha256_prefix: str | None) -> None:
    """``url`` to ``path``, checked by torch hub against ``sha256_prefix``; without one, its sha256 recorded in
    :func:`sha256_sidecar` before the file takes its name (a download cut short leaves no file to trust)."""
    if sha256_prefix is not None:
        torch.hub.download_url_to_file(url, str(path), hash_prefix=sha256_prefix, progress=True)
        return
    with atomic_path(path) as tmp:
        torch.hub.download_url_to_file(url, str(tmp), progress=True)
        write_text(sha256_sidecar(path), file_sha256(tmp) + "\n")


def fetch_checkpoint(url: str, sha256_prefix: str | None = None) -> Path:
    """The cached copy of ``url`` in the torch hub dir, downloading it first when absent.

    A failed download (offline, HTTP error) is a :class:`MissingWeightsError` naming the file, where
    to put it and the URL; a download whose sha256 does not start with ``sha256_prefix`` is a
    :class:`UserError`. A file with no published ``sha256_prefix`` has its sha256 recorded at download
    (:func:`sha256_sidecar`) and the cached file checked against it on every fetch.
    """
    path = hub_checkpoint_path(url)
    if path.is_file():
        if sha256_prefix is None:
            _check_recorded_sha256(path)
        return path
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _download(url, path, sha256_prefix)
    except (OSError, http.client.HTTPException) as err:
        sidecar = sha256_sidecar(path)
        record = "" if sha256_prefix else f", then record its sha256: sha256sum {path} > {sidecar}"
        raise MissingWeightsError(
            f"pretrained weights {path.name} are not cached and could not be downloaded ({_one_line(err)}): "
            f"fetch {url} and save it as {path}{record}"
        ) from None
    except RuntimeError as err:  # torch.hub's hash check
        raise UserError(f"download of {url} failed its integrity check ({_one_line(err)})") from None
    return path


def max_checkpoint_bytes() -> int:
    """The bound on what a checkpoint may unpack to: ``$TOPPOSE_MAX_CHECKPOINT_BYTES``, else 4 GiB."""
    return env_limit(MAX_BYTES_VARIABLE, DEFAULT_MAX_BYTES)


def unpacked_size(path: Path) -> int:
    """What reading the checkpoint at ``path`` unpacks, in bytes, from its zip directory alone (nothing is
    decompressed); a file that is not a zip archive (torch's legacy format) is read as stored: its size."""
    try:
        with zipfile.ZipFile(path) as archive:
            return sum(record.file_size for record in archive.infolist())
    except (zipfile.BadZipFile, OSError):
        return path.stat().st_size


def read_checkpoint(path: str | Path) -> Any:
    """``torch.load(path, map_location="cpu", weights_only=True)``, any failure as a one-line :class:`UserError`.

    A file that unpacks to more than :func:`max_checkpoint_bytes` is refused before torch reads any of it."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint file not found: {path}")
    size, limit = unpacked_size(path), max_checkpoint_bytes()
    if size > limit:
        raise UserError(
            f"{path}: refused to load: the checkpoint unpacks to {size:,} bytes, over the limit of {limit:,} bytes "
            f"({MAX_BYTES_VARIABLE} raises it)"
        )
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


def load_checkpoint(
    model: nn.Module,
    path: str | Path,
    what: str,
    rename: Callable[[dict[str, torch.Tensor]], Mapping[str, torch.Tensor]] | None = None,
    allow_extra: bool = True,
) -> None:
    """Load the checkpoint file at ``path`` into ``model`` (a ``what``, for messages): read it
    (:func:`read_checkpoint`), take out its state dict (:func:`unwrap_state_dict`), rename its keys to the model's
    with ``rename`` (which may refuse the file with a :class:`UserError`), load it checked (:func:`load_checked`)."""
    path = Path(path)
    state = unwrap_state_dict(read_checkpoint(path), path)
    load_checked(model, rename(state) if rename is not None else state, path, what, allow_extra)
