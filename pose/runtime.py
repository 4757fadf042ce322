"""ONNX Runtime as the pose network's backend (``[inference] backend = "onnxruntime"``, ``--backend``).

The network is exported once per weights (:func:`pose.onnx_export.export_onnx`) into a cache file beside
the torch hub checkpoints, ``<torch hub dir>/onnx/<family>_<backbone>_<W>x<H>-<key>.onnx``, keyed by a
hash of the weights, the setup fields the graph depends on and torch's version; later runs load it
instead of exporting again (seconds). The whole hash is also recorded in the file's metadata
(``toppose.fingerprint``) and checked when loading: a file of other weights or another setup under the
cache's name, or a damaged one, is exported again, with a note. An unwritable cache only costs the export at
every start (a warning says so). ONNX Runtime runs the graph in fp32 on the CPU, with ``inference.ort_threads``
intra-op threads (0: torch's thread count, ``torch.get_num_threads()``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from toppose.common.atomic import write_bytes
from toppose.common.config import Config
from toppose.common.console import error_console, warn
from toppose.common.errors import UserError
from toppose.pose.onnx_export import FINGERPRINT_KEY, INPUT_NAME, export_onnx, metadata
from toppose.pose.precision import resolved_precision
from torch import nn

ONNX_PACKAGES = ("onnxruntime", "onnx", "onnxscript")
INSTALL_COMMAND = "python -m pip install onnxruntime onnx onnxscript"  # the extra toppose[onnx]
# graph optimization levels, named as onnxruntime.GraphOptimizationLevel names them
OPTIMIZATION_LEVELS = {"all": "ORT_ENABLE_ALL", "extended": "ORT_ENABLE_EXTENDED", "basic": "ORT_ENABLE_BASIC",
                       "disabled": "ORT_DISABLE_ALL"}  # fmt: skip
KEY_IN_NAME = 20  # hex digits of the graph key in the cache file's name
GRAPH_VERSION = 2  # bump when CropsInput or the export settings change: older cache files are then not used


def require_onnx(what: str, packages: tuple[str, ...] = ONNX_PACKAGES) -> None:
    """A :class:`UserError` naming the pip command when one of ``packages`` (of the ``onnx`` extra) is missing."""
    missing = [name for name in packages if importlib.util.find_spec(name) is None]
    if missing:
        raise UserError(f"{what} needs {', '.join(missing)}, not installed here: {INSTALL_COMMAND}")


def check_backend_setup(cfg: Config) -> None:
    """The onnxruntime backend runs fp32 on the CPU: another precision or device is a :class:`UserError`."""
    if resolved_precision(cfg.inference) != "fp32":  # "auto" runs fp32 here
        raise UserError(
            f"inference.backend 'onnxruntime' runs fp32 only, not precision '{cfg.inference.precision}' "
            "(use --precision fp32, or --backend torch for autocast)"
        )
    if torch.device(cfg.inference.device).type != "cpu":
        raise UserError(f"inference.backend 'onnxruntime' runs on the CPU, not device '{cfg.inference.device}'")
    require_onnx("inference.backend 'onnxruntime'")


def graph_key(model: nn.Module, cfg: Config) -> str:
    """A hex digest of everything the exported graph depends on: weights, setup fields (those of its metadata
    included), torch's version."""
    fields = {
        "graph": GRAPH_VERSION,
        "torch": torch.__version__,
        "model": [cfg.model.family, cfg.model.backbone, list(cfg.model.input_size), cfg.model.channel_order],
        "metadata": metadata(cfg),
    }
    digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode())
    for name, tensor in model.state_dict().items():
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def cache_file(cfg: Config, key: str) -> Path:
    """Where the exported graph of :func:`graph_key` ``key`` under ``cfg`` is cached."""
    width, height = cfg.model.input_size
    name = f"{cfg.model.family}_{cfg.model.backbone}_{width}x{height}-{key[:KEY_IN_NAME]}.onnx"
    return Path(torch.hub.get_dir()) / "onnx" / name


def cache_path(model: nn.Module, cfg: Config) -> Path:
    """Where the exported graph of ``model`` under ``cfg`` is cached."""
    return cache_file(cfg, graph_key(model, cfg))


def ort_session(graph: bytes | Path, threads: int, optimization: str = "all") -> Any:
    """An ONNX Runtime CPU session of ``graph`` (a serialized model or a file) with ``threads`` intra-op threads
    and graph ``optimization`` (one of :data:`OPTIMIZATION_LEVELS`; "all" is ONNX Runtime's default)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    # Idle threads sleep instead of spinning: spinning ones took the cores from the torch detector that runs next
    # (measured: detector 26.5 -> 18.7 ms a frame in the crowd benchmark, the pose stage unchanged).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.graph_optimization_level = getattr(onnxruntime.GraphOptimizationLevel, OPTIMIZATION_LEVELS[optimization])
    source = str(graph) if isinstance(graph, Path) else graph
    return onnxruntime.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def _verified_session(path: Path, key: str, threads: int) -> Any | None:
    """The session of the cache file ``path`` when its graph is the one of ``key``; else ``None``, with a note."""
    try:
        session = ort_session(path, threads)
    except Exception as err:  # onnxruntime's own error types: a damaged or foreign file
        warn(error_console(), f"ignoring unreadable ONNX cache file {path} ({type(err).__name__}); exporting again")
        return None
    if session.get_modelmeta().custom_metadata_map.get(FINGERPRINT_KEY) != key:
        warn(error_console(), f"ignoring ONNX cache file {path}: not exported from these weights and setup "
                              f"(no matching {FINGERPRINT_KEY}); exporting again")  # fmt: skip
        return None
    return session


def cached_session(model: nn.Module, cfg: Config, threads: int) -> Any:
    """The session of ``model``'s graph from the cache, exporting (and caching) it first where it is absent.

    A cache file ONNX Runtime cannot read, or whose recorded fingerprint is not ``model``'s and ``cfg``'s, is
    replaced by a fresh export."""
    key = graph_key(model, cfg)
    path = cache_file(cfg, key)
    if path.is_file() and (session := _verified_session(path, key, threads)) is not None:
        return session
    graph = export_onnx(model, cfg, key)
    try:
        write_bytes(path, graph)
    except OSError as err:
        reason = err.strerror or err
        warn(error_console(), f"cannot cache the ONNX export in {path.parent} ({reason}); using it unsaved")
        return ort_session(graph, threads)
    return ort_session(path, threads)


class OnnxRuntimeNetwork:
    """The pose network run by ONNX Runtime: ``(N, H, W, 3)`` BGR ``uint8`` crops -> its float32 outputs."""

    def __init__(self, model: nn.Module, cfg: Config) -> None:
        check_backend_setup(cfg)
        self.session = cached_session(model.eval(), cfg, cfg.inference.ort_threads or torch.get_num_threads())

    def __call__(self, crops_bgr: np.ndarray) -> tuple[np.ndarray, ...]:
        return tuple(self.session.run(None, {INPUT_NAME: np.ascontiguousarray(crops_bgr, dtype=np.uint8)}))
