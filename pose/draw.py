"""Drawing poses on frames: a skeleton and points per person, one colour each, faded by confidence.

Keypoints below the threshold are not drawn, nor is any limb with such an end; above it, opacity
and point size grow with confidence. Lines and circles are anti-aliased at sub-pixel precision. The skeleton is
the keypoint set's (:mod:`toppose.common.keypoint_sets`, recognised by the number of keypoints); with 133 points
the body is drawn first and the face's and hands' lines and points thin, so that the body stays readable.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from toppose.common.keypoint_sets import set_of_size
from toppose.common.poses import PoseResult

Colour = tuple[int, int, int]  # BGR

_SHIFT = 4  # cv2 drawing at 1/16 pixel
_SCALE = 1 << _SHIFT
_GOLDEN_RATIO = 0.618033988749895
_MIN_OPACITY = 0.35  # opacity of a keypoint exactly at the threshold; 1.0 at full confidence


def palette_colour(index: int) -> Colour:
    """A saturated BGR colour for person (or track) ``index``; nearby indices get distant hues."""
    hue = (index * _GOLDEN_RATIO) % 1.0
    hsv = np.uint8([[[round(hue * 179), 220, 255]]])
    b, g, r = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)[0, 0]
    return int(b), int(g), int(r)


def person_colours(count: int) -> list[Colour]:
    """Distinct colours for ``count`` people."""
    return [palette_colour(i) for i in range(count)]


def _opacity(confidence: np.ndarray, threshold: float) -> np.ndarray:
    """0 below ``threshold``, then rising linearly from ``_MIN_OPACITY`` to 1 at confidence 1."""
    span = max(1.0 - threshold, 1e-6)
    ramp = np.clip((confidence - threshold) / span, 0.0, 1.0)
    return np.where(confidence >= threshold, _MIN_OPACITY + (1.0 - _MIN_OPACITY) * ramp, 0.0)


def _fixed(point: np.ndarray) -> tuple[int, int]:
    return round(float(point[0]) * _SCALE), round(float(point[1]) * _SCALE)


def _draw_label(image: np.ndarray, text: str, anchor: np.ndarray, colour: Colour, scale: float) -> None:
    font, font_scale, thickness = cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, max(1, round(scale))
    (w, h), baseline = cv2.getTextSize(text, font, font_scale, thickness)
    x = int(np.clip(anchor[0], 0, max(image.shape[1] - w - 4, 0)))
    y = int(np.clip(anchor[1], h + baseline + 4, image.shape[0] - 1))
    cv2.rectangle(image, (x, y - h - baseline - 4), (x + w + 4, y), colour, cv2.FILLED)
    text_colour = (0, 0, 0) if sum(colour) > 380 else (255, 255, 255)
    cv2.putText(image, text, (x + 2, y - baseline - 2), font, font_scale, text_colour, thickness, cv2.LINE_AA)


def draw_poses(
    frame_bgr: np.ndarray,
    result: PoseResult,
    colours: Sequence[Colour] | None = None,
    keypoint_threshold: float = 0.2,
    labels: Sequence[str] | None = None,
) -> np.ndarray:
    """An annotated copy of ``frame_bgr`` showing every person of ``result``.

    ``colours`` (BGR, one per person) defaults to :func:`person_colours`; ``labels`` (one string
    per person, e.g. track ids) are written at the top-left of each person's box.
    """
    out = frame_bgr.copy()
    count = len(result)
    if count == 0:
        return out
    colours = list(colours) if colours is not None else person_colours(count)
    if len(colours) < count or (labels is not None and len(labels) < count):
        raise ValueError(f"need one colour and label per person ({count})")
    scale = max(frame_bgr.shape[:2]) / 640.0
    thickness = max(1, round(2 * scale))
    keypoints = set_of_size(result.keypoints.shape[1])
    links = [(link, thickness) for link in keypoints.skeleton] if keypoints is not None else []
    if keypoints is not None:
        detail = set(keypoints.detail)
        links = [(link, 1 if detail & set(link) else width) for link, width in links]
        links += [(link, 1) for link in keypoints.detail_links]
    point_scale = np.full(result.keypoints.shape[1], scale)
    if keypoints is not None:
        point_scale[list(keypoints.detail)] = 0.4 * scale
    # Premultiplied layers: each element adds colour * opacity and opacity (both scaled by AA coverage).
    paint = np.zeros_like(frame_bgr)
    alpha = np.zeros(frame_bgr.shape[:2], dtype=np.uint8)
    for person in range(count):
        points = result.keypoints[person, :, :2]
        finite = np.isfinite(result.keypoints[person]).all(axis=1)
        opacity = np.where(finite, _opacity(np.nan_to_num(result.keypoints[person, :, 2]), keypoint_threshold), 0.0)
        colour = np.asarray(colours[person], dtype=np.float64)
        for (a, b), width in links:
            limb_opacity = min(opacity[a], opacity[b])
            if limb_opacity > 0:
                ends = _fixed(points[a]), _fixed(points[b])
                cv2.line(paint, *ends, (colour * limb_opacity).tolist(), width, cv2.LINE_AA, _SHIFT)
                cv2.line(alpha, *ends, round(255 * limb_opacity), width, cv2.LINE_AA, _SHIFT)
        for k in np.flatnonzero(opacity > 0):
            radius = round((1.5 + 2.5 * opacity[k]) * point_scale[k] * _SCALE)
            centre = _fixed(points[k])
            cv2.circle(paint, centre, radius, (colour * opacity[k]).tolist(), cv2.FILLED, cv2.LINE_AA, _SHIFT)
            cv2.circle(alpha, centre, radius, round(255 * opacity[k]), cv2.FILLED, cv2.LINE_AA, _SHIFT)
    blended = out.astype(np.uint16) * (255 - alpha[..., None]) // 255 + paint
    out = np.minimum(blended, 255).astype(np.uint8)
    if labels is not None:
        for person in range(count):
            _draw_label(out, str(labels[person]), result.boxes[person, :2], colours[person], scale)
    return out
