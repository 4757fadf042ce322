"""Running a :class:`~toppose.runs.RunRequest`: its checks, the output folder's lock and setup record, then the
image mode (:mod:`toppose.images`: a file, a folder, a list of files) or the video mode (:mod:`toppose.video`:
videos, cameras and, with ``track``, folders of frames)."""

from __future__ import annotations

from toppose.common.atomic import check_writable_folder
from toppose.common.config import Config
from toppose.images import run_images
from toppose.run_folder import check_resumable, locked, setup_record
from toppose.runs import PipelineBuilder, RunRequest
from toppose.video import run_video


def run(request: RunRequest, cfg: Config, build: PipelineBuilder | None = None) -> int:
    """Check ``request``, then run it under ``cfg`` in the image or the video mode with a pipeline from ``build``
    (default :func:`toppose.pipeline.build_pipeline`); the exit code."""
    request.check()
    check_writable_folder(request.out)  # before any work: a run must not lose everything at the end
    record = setup_record(cfg, request.boxes, request.pose)
    with locked(request.out):
        if request.resume:
            check_resumable(request.out, record)
        if request.video_mode:
            return run_video(request, cfg, record, build)
        return run_images(request, cfg, record, build)
