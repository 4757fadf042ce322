"""One way in for every input: an image, a folder of images, a list of image files, a video file or a camera.

:func:`open_source` turns any of them into a :class:`FrameSource` whose :meth:`~FrameSource.frames` streams
:class:`Frame` objects one at a time, so memory stays flat however long the input is. Image sources name each
frame by its path relative to the input (``Frame.name``), which the image mode of a run uses for ids, resuming
and annotated copies; the video mode (and tracking) reads the same sources as a stream. A frame that cannot be
read or decoded is skipped and recorded in the source's ``problems`` (image sources also list it in
``skipped``); a video that stops before the frame count its header promised is reported as ended early.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from toppose.common.errors import UserError
from toppose.common.images import is_image_path, list_files, read_image

VIDEO_SUFFIXES = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"})
DEFAULT_FPS = 30.0
MAX_CONSECUTIVE_FAILURES = 25  # unreadable frames in a row after which a video is taken to have ended


Input = str | os.PathLike[str] | int | Sequence[str | os.PathLike[str]]  # what open_source takes


def is_camera_index(source: Input) -> bool:
    """Whether ``source`` names a camera: an ``int``, or a non-negative integer text that is not an existing path."""
    if isinstance(source, int) and not isinstance(source, bool):
        return True
    if not isinstance(source, str | os.PathLike):
        return False
    text = os.fspath(source)
    return text.isdigit() and not Path(text).exists()


def is_video_input(source: Input) -> bool:
    """Whether ``source`` is a video file (by suffix) or a camera index, i.e. needs the video mode."""
    if is_camera_index(source):
        return True
    return isinstance(source, str | os.PathLike) and Path(source).suffix.lower() in VIDEO_SUFFIXES


@dataclass
class Frame:
    """One decoded frame: its index in the stream (0-based), its timestamp in seconds, the BGR image, and for
    image sources its path relative to the input (``""`` for video and camera frames)."""

    index: int
    timestamp: float
    image: np.ndarray
    name: str = ""


class FrameSource(ABC):
    """Frames of a video, a camera or image files, streamed by :meth:`frames`; ``problems`` lists what went wrong.

    ``size`` is the (width, height) of the first frame; ``expected_frames`` what the input promises (``None`` for
    a camera).
    """

    def __init__(self, name: str, fps: float, size: tuple[int, int] | None, expected_frames: int | None) -> None:
        self.name = name
        self.fps = fps
        self._size = size
        self.expected_frames = expected_frames
        self.problems: list[str] = []
        self.unreadable = 0  # frames skipped because they could not be read or decoded

    @property
    def live(self) -> bool:
        """Whether frames arrive as they happen (a camera): waiting for more of them adds latency."""
        return False

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the first frame."""
        assert self._size is not None
        return self._size

    @abstractmethod
    def frames(self) -> Generator[Frame, None, None]:
        """The frames, in stream order (once); closing the iterator releases the file or device."""


class VideoFileSource(FrameSource):
    """A video file read with OpenCV (FFmpeg): any container it can open.

    Time stamps are the container's; a file whose header gives no frame rate is timed at ``fps`` (given, or
    :data:`DEFAULT_FPS` with a warning) from the frame index, since its container times follow the same missing
    rate."""

    def __init__(self, path: Path, fps: float | None = None) -> None:
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
        header = capture.get(cv2.CAP_PROP_FPS)
        self._header_rate = bool(0 < header < 1000)
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        rate = header if self._header_rate else (fps or DEFAULT_FPS)
        super().__init__(str(path), rate, (first.shape[1], first.shape[0]), count if count > 0 else None)
        if not self._header_rate and fps is None:
            self.problems.append(f"no frame rate in the file; timed at {DEFAULT_FPS:g} fps (--fps sets it)")
        self._capture = capture
        self._first = first

    def _timestamp(self, index: int) -> float:
        if not self._header_rate:
            return index / self.fps
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

    @property
    def live(self) -> bool:
        return True

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


class ImageSource(FrameSource):
    """Image files in the given order, named by their paths relative to ``base``; timestamps from ``fps``.

    Files without an image suffix are listed in ``skipped`` (not frames); a file that cannot be decoded is
    skipped as it comes (see :meth:`frames`). ``size`` decodes the first decodable image.
    """

    def __init__(self, files: Sequence[Path], base: Path, name: str, fps: float | None = None) -> None:
        super().__init__(name, fps or DEFAULT_FPS, None, None)
        self.skipped: list[tuple[str, str]] = []  # (name, reason) of the files that are not images
        self._files: list[tuple[str, Path]] = []
        for path in files:
            relative = path.relative_to(base).as_posix() if path.is_relative_to(base) else path.as_posix()
            if is_image_path(path):
                self._files.append((relative, path))
            else:
                self.skipped.append((relative, "not an image"))
        self.expected_frames = len(self._files)

    @property
    def names(self) -> list[str]:
        """The images' names (paths relative to the input), in frame order."""
        return [name for name, _ in self._files]

    @property
    def size(self) -> tuple[int, int]:
        if self._size is None:
            for _, path in self._files:
                try:
                    image = read_image(path)
                except UserError:
                    continue
                self._size = (image.shape[1], image.shape[0])
                break
            else:
                raise UserError(f"none of the {len(self._files)} images in {self.name} can be decoded")
        return self._size

    def frames(
        self, only: set[str] | None = None, on_skip: Callable[[str, str], None] | None = None
    ) -> Generator[Frame, None, None]:
        """The decodable images as frames (indexed by their place among all images); ``only``: just these names.

        An image that cannot be decoded is counted, listed in ``problems`` and passed to ``on_skip(name, reason)``.
        """
        for index, (name, path) in enumerate(self._files):
            if only is not None and name not in only:
                continue
            try:
                image = read_image(path)
            except UserError:
                self.unreadable += 1
                self.problems.append(f"frame {index} ({name}) could not be decoded (skipped)")
                if on_skip is not None:
                    on_skip(name, "cannot read or decode the image")
                continue
            yield Frame(index, index / self.fps, image, name)


def image_source(root: Path, fps: float | None = None, exclude: Sequence[Path] = ()) -> ImageSource:
    """The images of ``root``: one image file, or a folder searched recursively in sorted path order (hidden files
    and anything under ``exclude``, e.g. a run's own outputs inside it, left out)."""
    base = root if root.is_dir() else root.parent
    excluded = [p.resolve() for p in exclude]
    files = [p for p in list_files(root) if not any(p.resolve().is_relative_to(e) for e in excluded)]
    source = ImageSource(files, base, str(root), fps)
    if not source.names:
        raise UserError(f"no images found in {root}")
    return source


def open_source(source: Input, fps: float | None = None) -> FrameSource:
    """Any input as frames: a camera index (an ``int`` or its digits), a video file, a folder of images, an image
    file, or a list of image files (named relative to their common folder). ``fps`` sets the rate of image frames,
    cameras and videos whose file gives none."""
    if is_camera_index(source):
        index = int(source if isinstance(source, int) else os.fspath(source))
        if index < 0:
            raise UserError(f"camera index must be 0 or more, got {index}")
        return CameraSource(index, fps)
    if not isinstance(source, str | os.PathLike):
        files = [Path(p) for p in source]
        if not files:
            raise UserError("no image files given")
        missing = [p for p in files if not p.is_file()]
        if missing:
            raise UserError(f"image not found: {missing[0]}")
        base = Path(os.path.commonpath([p.resolve().parent for p in files]))
        return ImageSource([p.resolve() for p in files], base, f"{len(files)} image files", fps)
    path = Path(source)
    if not path.exists():
        raise UserError(f"no such file, folder or camera: {path}")
    if path.is_dir() or is_image_path(path):
        return image_source(path, fps)
    return VideoFileSource(path, fps)
