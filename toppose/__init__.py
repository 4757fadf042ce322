"""toppose: multi-person top-down pose estimation.

The installed package holds every step, each a subpackage: :mod:`toppose.common` (errors, atomic output,
configs), :mod:`toppose.detector` (person boxes), :mod:`toppose.pose` (crops, networks, codecs),
:mod:`toppose.tracking` (tracks, smoothing, motion analysis), this application layer (the per-frame
pipeline, the frame loop, sources, video I/O, the Python API, the ``toppose`` command) and
:mod:`toppose.eval` (COCO evaluation).

The Python API is imported on first use, so that ``import toppose.common`` (or ``toppose --help``) does not
load torch::

    from toppose import PoseEstimator
"""

from __future__ import annotations

from typing import Any

__all__ = ["Person", "PoseEstimator", "VideoFrame"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from toppose import api

        return getattr(api, name)
    raise AttributeError(f"module 'toppose' has no attribute {name!r}")
