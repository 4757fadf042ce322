"""Finding and reading image files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from toppose.common.errors import UserError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"})


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


def read_image(path: str | Path) -> np.ndarray:
    """Read an image as a BGR ``uint8`` array; a missing or undecodable file is a :class:`UserError`."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"image not found: {path}")
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise UserError(f"cannot decode image: {path}")
    return image
