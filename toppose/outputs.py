"""A run's outputs: the results JSON streamed as the run goes, annotated images, each written atomically."""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from toppose.common.atomic import atomic_path
from toppose.common.errors import UserError


def write_image(path: Path, image: np.ndarray) -> None:
    """Atomically write ``image`` with the encoder its suffix names; a failure is one :class:`UserError` line."""
    try:
        with atomic_path(path) as tmp:
            if not cv2.imwrite(str(tmp), image):
                raise UserError(f"cannot write image {path}")
    except OSError as err:
        raise UserError(f"cannot write {path}: {err.strerror or err}") from None


class ResultsWriter:
    """Streams COCO result entries into a JSON list, atomically (the file appears when closed)."""

    def __init__(self, target: Path, stack: ExitStack) -> None:
        tmp = stack.enter_context(atomic_path(target))
        self._file = stack.enter_context(tmp.open("w", encoding="utf-8"))
        self._file.write("[")
        self._count = 0
        stack.callback(self._finish)

    def write(self, entries: list[dict[str, Any]]) -> None:
        """Append ``entries`` (one frame's) in one write: an interrupt never leaves part of a frame."""
        chunk = "".join(
            ("," if self._count + i else "") + "\n" + json.dumps(entry, allow_nan=False)
            for i, entry in enumerate(entries)
        )
        self._file.write(chunk)
        self._count += len(entries)

    def _finish(self) -> None:
        self._file.write("\n]\n")
        self._file.flush()
        os.fsync(self._file.fileno())
