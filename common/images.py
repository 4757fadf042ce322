"""Finding and reading image files.

Decoding is bounded before it starts: :func:`read_image` reads the width and height from the file's header
(PNG, JPEG, BMP, TIFF and BigTIFF, WebP, GIF, PNM) and refuses an image of more than
``TOPPOSE_MAX_IMAGE_PIXELS`` pixels (environment variable; default :data:`DEFAULT_MAX_IMAGE_PIXELS`, 64
million: an 8K video frame has 33 million, the largest full-frame camera photos 61 million; decoded as
BGR it takes 192 MB). A small file may claim a huge canvas: a 1.2 MB PNG of 20000x20000 pixels took 10.4 GB
on its way through the pipeline. Other formats OpenCV reads keep OpenCV's own bound
(``OPENCV_IO_MAX_IMAGE_PIXELS``, 2^30 pixels, read when OpenCV loads). Arrays given directly are not checked.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from toppose.common.errors import UserError
from toppose.common.limits import env_limit

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})
MAX_PIXELS_VARIABLE = "TOPPOSE_MAX_IMAGE_PIXELS"
DEFAULT_MAX_IMAGE_PIXELS = 64_000_000
MAX_TIFF_TAGS = 4096  # tags read from a TIFF directory in search of its size (real files have some 10-50)
JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}  # SOF0..SOF15 (not DHT, JPG, DAC)
JPEG_LONE_MARKERS = frozenset({0x00, 0x01, *range(0xD0, 0xD9)})  # markers without a length: TEM, RSTn, SOI
PNM_HEADER = re.compile(rb"P[1-6](?:\s|#[^\r\n]*)+(\d+)(?:\s|#[^\r\n]*)+(\d+)")

Size = tuple[int, int]  # (width, height)


class ImageTooLargeError(UserError):
    """An image file whose header claims more pixels than the limit allows."""


def is_image_path(path: Path) -> bool:
    """Whether the file name has an image suffix (case-insensitive)."""
    return path.suffix.lower() in IMAGE_SUFFIXES


def list_files(root: str | Path) -> list[Path]:
    """Every file under ``root`` (recursively), hidden files excluded, in sorted order."""
    root = Path(root)
    if not root.exists():
        raise UserError(f"no such file or folder: {root}")
    if root.is_file():
        return [root]
    files = [
        p
        for p in root.rglob("*")
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    return sorted(files)


def max_image_pixels() -> int:
    """The most pixels an image file may decode to: ``$TOPPOSE_MAX_IMAGE_PIXELS``, else the default."""
    return env_limit(MAX_PIXELS_VARIABLE, DEFAULT_MAX_IMAGE_PIXELS)


def _png_size(data: bytes) -> Size | None:
    return struct.unpack_from(">II", data, 16) if data[12:16] == b"IHDR" else None


def _jpeg_size(data: bytes) -> Size | None:
    """The frame header's size, found by walking the segments before it (bytes between them skipped)."""
    pos = 2
    while (pos := data.find(b"\xff", pos)) >= 0:
        while data[pos] == 0xFF:  # fill bytes
            pos += 1
        marker, pos = data[pos], pos + 1
        if marker in JPEG_FRAME_MARKERS:
            height, width = struct.unpack_from(">HH", data, pos + 3)  # after the length and the sample precision
            return width, height
        if marker in (0xD9, 0xDA):  # the image's end, or its scan, before any frame header
            return None
        if marker not in JPEG_LONE_MARKERS:
            pos += struct.unpack_from(">H", data, pos)[0]
    return None


def _bmp_size(data: bytes) -> Size:
    if struct.unpack_from("<I", data, 14)[0] == 12:  # OS/2 BITMAPCOREHEADER: 16-bit sizes
        return struct.unpack_from("<HH", data, 18)
    width, height = struct.unpack_from("<ii", data, 18)  # a negative height: rows stored top-down
    return abs(width), abs(height)


def _tiff_size(data: bytes) -> Size | None:
    """ImageWidth and ImageLength of the first directory, of a classic TIFF or a BigTIFF."""
    order = "<" if data[:2] == b"II" else ">"
    big = struct.unpack_from(order + "H", data, 2)[0] == 43
    offset_format, count_format, entry_size, value_at = ("Q", "Q", 20, 12) if big else ("I", "H", 12, 8)
    directory = struct.unpack_from(order + offset_format, data, 8 if big else 4)[0]
    count = struct.unpack_from(order + count_format, data, directory)[0]
    first = directory + struct.calcsize(count_format)
    sizes = {}
    for entry in range(first, first + min(count, MAX_TIFF_TAGS) * entry_size, entry_size):
        tag, kind = struct.unpack_from(order + "HH", data, entry)
        value_format = {3: "H", 4: "I", 16: "Q"}.get(kind)  # SHORT, LONG, LONG8; left-justified in the entry
        if tag in (256, 257) and value_format:
            sizes[tag] = struct.unpack_from(order + value_format, data, entry + value_at)[0]
    return (sizes[256], sizes[257]) if len(sizes) == 2 else None


def _webp_size(data: bytes) -> Size | None:
    chunk = data[12:16]
    if chunk == b"VP8 ":  # lossy: 14-bit sizes after the frame tag and the start code
        width, height = struct.unpack_from("<HH", data, 26)
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":  # lossless: 14 bits each of width - 1 and height - 1 after the signature byte
        bits = struct.unpack_from("<I", data, 21)[0]
        return (bits & 0x3FFF) + 1, (bits >> 14 & 0x3FFF) + 1
    if chunk == b"VP8X":  # extended: 24-bit canvas width - 1 and height - 1 after the flags
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    return None


def _pnm_size(data: bytes) -> Size | None:
    match = PNM_HEADER.match(data, 0, 4096)
    return (int(match[1]), int(match[2])) if match else None


HEADER_READERS: tuple[tuple[tuple[bytes, ...], Callable[[bytes], Size | None]], ...] = (
    ((b"\x89PNG\r\n\x1a\n",), _png_size),
    ((b"\xff\xd8",), _jpeg_size),
    ((b"BM",), _bmp_size),
    ((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"), _tiff_size),
    ((b"RIFF",), lambda data: _webp_size(data) if data[8:12] == b"WEBP" else None),
    ((b"GIF87a", b"GIF89a"), lambda data: struct.unpack_from("<HH", data, 6)),
    ((b"P1", b"P2", b"P3", b"P4", b"P5", b"P6"), _pnm_size),
)


def image_size(data: bytes) -> Size | None:
    """(width, height) from an image file's header, without decoding its pixels; ``None`` for a format not
    read here or a header cut short."""
    for magics, reader in HEADER_READERS:
        if data.startswith(magics):
            try:
                return reader(data)
            except (struct.error, IndexError):
                return None
    return None


def check_image_size(path: Path, data: bytes) -> None:
    """An :class:`ImageTooLargeError` naming ``path`` where its header claims more pixels than the limit."""
    size = image_size(data)
    limit = max_image_pixels()
    if size is not None and size[0] * size[1] > limit:
        width, height = size
        raise ImageTooLargeError(
            f"{path}: {width}x{height} image ({width * height / 1e6:.1f} megapixels) is over the limit of "
            f"{limit / 1e6:g} megapixels ({MAX_PIXELS_VARIABLE} raises it)"
        )


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as a BGR ``uint8`` array; a missing, unreadable, undecodable or too large file (see the
    module's notes) is a :class:`UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"image not found: {path}")
    try:
        data = path.read_bytes()
    except OSError as err:
        raise UserError(f"cannot read image {path}: {err.strerror or err}") from None
    check_image_size(path, data)
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise UserError(f"cannot decode image: {path}")
    return image
