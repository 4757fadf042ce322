"""Streaming frames in (video file, camera, folder of frames) and results out (results JSON; the video: video_sink).

Frames are read one at a time, so memory stays flat however long the input is. A frame that cannot
be read or decoded is skipped and recorded in the source's ``problems``; a video that stops before
the frame count its header promised is reported as ended early. Outputs are written to a temporary
file beside the target and renamed over it only when complete.
"""

from __future__ import annotations

import json
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Generator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from toppose.common.atomic import atomic_path
from toppose.common.errors import UserError
from toppose.common.images import is_image_path, list_files, read_image

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"})
DEFAULT_FPS = 30.0
MAX_CONSECUTIVE_FAILURES = 25  # unreadable frames in a row after which a video is taken to have ended


def is_camera_index(source: str | os.PathLike[str]) -> bool:
    """Whether ``source`` names a camera: a non-negative integer that is not an existing path."""
    text = os.fspath(source)
    return text.isdigit() and not Path(text).exists()


def is_video_input(source: str | os.PathLike[str]) -> bool:
    """Whether ``source`` is a video file (by suffix) or a camera index, i.e. needs the video mode."""
    return is_camera_index(source) or Path(source).suffix.lower() in VIDEO_SUFFIXES


@dataclass
class Frame:
    """One decoded frame: its index in the stream (0-based), its timestamp in seconds, the BGR image."""

    index: int
    timestamp: float
    image: np.ndarray


@dataclass
class FrameSource(ABC):
    """Frames of a video, a camera or a folder, streamed by :meth:`frames`; ``problems`` lists what went wrong."""

    name: str
    fps: float
    size: tuple[int, int]  # (width, height) of the first frame
    expected_frames: int | None  # what the container promises; None for a camera
    problems: list[str] = field(default_factory=list)
    unreadable: int = 0  # frames skipped because they could not be read or decoded

    @abstractmethod
    def frames(self) -> Generator[Frame, None, None]:
        """The frames, in stream order (once); closing the iterator releases the file or device."""


class VideoFileSource(FrameSource):
    """A video file read with OpenCV (FFmpeg): any container it can open."""

    def __init__(self, path: Path) -> None:
        if not path.is_file():
            raise UserError(f"video not found: {path}")
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # decoder chatter off: problems are reported here
        capture = cv2.VideoCapture(str(path))
        if not capture.isOpened():
            raise UserError(f"cannot open video {path}: not a video format OpenCV can read")
        ok, first = capture.read()
        if not ok or first is None:
            capture.release()
            raise UserError(f"video {path} has no readable frames (empty or corrupt)")
        fps = capture.get(cv2.CAP_PROP_FPS)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        super().__init__(str(path), fps if 0 < fps < 1000 else DEFAULT_FPS, (first.shape[1], first.shape[0]),
                         count if count > 0 else None)  # fmt: skip
        if not 0 < fps < 1000:
            self.problems.append(f"no frame rate in the file; assumed {DEFAULT_FPS:g} fps")
        self._capture = capture
        self._first = first

    def _timestamp(self, index: int) -> float:
        position = self._capture.get(cv2.CAP_PROP_POS_MSEC)
        if np.isfinite(position) and position >= 0 and (position > 0 or index == 0):
            return position / 1000.0
        return index / self.fps

    def frames(self) -> Generator[Frame, None, None]:
        try:
            yield from self._decode()
        finally:
            self._capture.release()

    def _decode(self) -> Generator[Frame, None, None]:
        yield Frame(0, self._timestamp(0), self._first)
        index, failures = 1, 0
        while True:
            ok, image = self._capture.read()
            if ok and image is not None:
                if failures:
                    self._skipped(index - failures, failures)
                failures = 0
                yield Frame(index, self._timestamp(index), image)
            else:
                failures += 1
                past_end = self.expected_frames is None or index >= self.expected_frames - 1
                if past_end or failures >= MAX_CONSECUTIVE_FAILURES:
                    break
            index += 1
        read = index - failures + 1  # frames up to the last one decoded
        if self.expected_frames is not None and read < self.expected_frames:
            self.problems.append(f"video ended early: only {read} of its {self.expected_frames} frames could be read")

    def _skipped(self, first: int, count: int) -> None:
        self.unreadable += count
        which = f"frame {first}" if count == 1 else f"frames {first}-{first + count - 1}"
        self.problems.append(f"{which} could not be decoded (skipped)")


class CameraSource(FrameSource):
    """A live camera; runs until it stops delivering frames (or the caller stops)."""

    def __init__(self, index: int, fps: float | None) -> None:
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # a missing device is reported below
        try:
            capture = cv2.VideoCapture(index)
            ok, first = capture.read() if capture.isOpened() else (False, None)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not ok or first is None:
            capture.release()
            raise UserError(f"cannot open camera {index} (no such device, or it delivers no frames)")
        reported = capture.get(cv2.CAP_PROP_FPS)
        rate = fps or (reported if 0 < reported < 1000 else DEFAULT_FPS)
        super().__init__(f"camera {index}", rate, (first.shape[1], first.shape[0]), None)
        self._capture = capture
        self._first = first

    def frames(self) -> Generator[Frame, None, None]:
        started = time.perf_counter()
        try:
            yield Frame(0, 0.0, self._first)
            index = 1
            while True:
                ok, image = self._capture.read()
                if not ok or image is None:
                    self.problems.append(f"camera stopped delivering frames after {index} frames")
                    return
                yield Frame(index, time.perf_counter() - started, image)
                index += 1
        finally:
            self._capture.release()


class FolderSource(FrameSource):
    """A folder of frame images in sorted path order (searched recursively); timestamps from ``fps``."""

    def __init__(self, folder: Path, fps: float | None) -> None:
        files = [p for p in list_files(folder) if is_image_path(p)]
        if not files:
            raise UserError(f"no frame images found in {folder}")
        self._files = files
        first = None
        for path in files:
            try:
                first = read_image(path)
                break
            except UserError:
                continue
        if first is None:
            raise UserError(f"none of the {len(files)} frame images in {folder} can be decoded")
        super().__init__(str(folder), fps or DEFAULT_FPS, (first.shape[1], first.shape[0]), len(files))

    def frames(self) -> Generator[Frame, None, None]:
        for index, path in enumerate(self._files):
            try:
                image = read_image(path)
            except UserError:
                self.unreadable += 1
                self.problems.append(f"frame {index} ({path.name}) could not be decoded (skipped)")
                continue
            yield Frame(index, index / self.fps, image)


def open_source(source: str | os.PathLike[str], fps: float | None = None) -> FrameSource:
    """A video file, a camera index or a folder of frames; ``fps`` sets the rate of frames and cameras."""
    if is_camera_index(source):
        return CameraSource(int(os.fspath(source)), fps)
    path = Path(source)
    if path.is_dir():
        return FolderSource(path, fps)
    if not path.exists():
        raise UserError(f"no such video, camera or folder: {path}")
    return VideoFileSource(path)


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
