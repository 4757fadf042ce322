"""Writing the annotated video, atomically: H.264 where PyAV (the optional ``video`` extra) gives an encoder,
which browsers play; otherwise OpenCV's own MPEG-4 Part 2 (``mp4v``), which they do not, with a note saying so.

OpenCV's pip wheels carry no software H.264 encoder, hence PyAV (FFmpeg's libx264, in process: an
interrupt stops the run between frames and the file is still closed properly).
"""

from __future__ import annotations

from contextlib import ExitStack
from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np

from toppose.common.atomic import atomic_path
from toppose.common.errors import UserError

H264_SUFFIXES = frozenset({".mp4", ".m4v", ".mov"})
_OPENCV_FOURCC = {".avi": "MJPG"}  # everything else: mp4v


def h264_encoder_available() -> bool:
    """Whether PyAV is installed with FFmpeg's libx264 encoder."""
    try:
        import av

        av.codec.Codec("libx264", "w")
    except (ImportError, ValueError):
        return False
    return True


class _H264Writer:
    """libx264 through PyAV: yuv420p (the pixel format browsers decode), its index at the front of the file."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        import av

        self._av = av
        self._container = av.open(str(path), "w", options={"movflags": "faststart"})
        self._stream = self._container.add_stream("libx264", rate=Fraction(fps).limit_denominator(1001))
        # yuv420p needs even sides: an odd one gets a black row or column
        self._stream.width, self._stream.height = size[0] + size[0] % 2, size[1] + size[1] % 2
        self._stream.pix_fmt = "yuv420p"
        self._stream.options = {"crf": "23", "preset": "veryfast"}

    def write(self, image: np.ndarray) -> None:
        pad_y, pad_x = self._stream.height - image.shape[0], self._stream.width - image.shape[1]
        if pad_x or pad_y:
            image = cv2.copyMakeBorder(image, 0, pad_y, 0, pad_x, cv2.BORDER_CONSTANT)
        self._container.mux(self._stream.encode(self._av.VideoFrame.from_ndarray(image, format="bgr24")))

    def release(self) -> None:
        self._container.mux(self._stream.encode(None))
        self._container.close()


class VideoSink:
    """Writes frames of one size and rate to a video file, atomically (the file appears when closed).

    ``codec`` is what it encodes with (``h264``, ``mp4v`` or ``MJPG`` for .avi); ``note`` is a line to
    show the user when the video will not play in a browser, else ``None``.
    """

    def __init__(self, target: Path, fps: float, size: tuple[int, int], stack: ExitStack) -> None:
        self.size = size
        tmp = stack.enter_context(atomic_path(target))
        suffix = target.suffix.lower()
        self.note = None
        if suffix in H264_SUFFIXES and h264_encoder_available():
            self.codec = "h264"
            self._writer: _H264Writer | cv2.VideoWriter = _H264Writer(tmp, fps, size)
        else:
            self.codec = _OPENCV_FOURCC.get(suffix, "mp4v")
            self._writer = cv2.VideoWriter(str(tmp), cv2.VideoWriter_fourcc(*self.codec), fps, size)
            if not self._writer.isOpened():
                raise UserError(f"cannot write video {target} (no encoder for {target.suffix})")
            if suffix in H264_SUFFIXES:
                self.note = (f"{target.name} is MPEG-4 Part 2 (mp4v), which browsers do not play: "
                             "for H.264, install PyAV (pip install 'toppose[video]')")  # fmt: skip
        stack.callback(self._writer.release)  # released before atomic_path renames the file

    def write(self, image: np.ndarray) -> None:
        if (image.shape[1], image.shape[0]) != self.size:
            image = cv2.resize(image, self.size, interpolation=cv2.INTER_AREA)
        self._writer.write(image)
