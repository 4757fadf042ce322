"""Object keypoint similarity (COCO's OKS), and OKS-based non-maximum suppression."""

from __future__ import annotations

import numpy as np
from toppose.common.keypoint_sets import set_of_size


def oks(
    reference: np.ndarray,
    candidates: np.ndarray,
    area: float,
    reference_valid: np.ndarray | None = None,
    sigmas: np.ndarray | None = None,
) -> np.ndarray:
    """OKS of ``(M, K, 2)`` candidate poses against one ``(K, 2)`` reference pose of ``area`` (pixels^2).

    As in the COCO evaluation: ``exp(-d^2 / (2 * area * (2 sigma)^2))`` averaged over the
    reference's valid keypoints (all of them when ``reference_valid`` is None). Returns ``(M,)``;
    0 where the reference has no valid keypoint. ``sigmas`` default to those of the keypoint set with K points.
    """
    reference = np.asarray(reference, dtype=np.float64)
    candidates = np.asarray(candidates, dtype=np.float64).reshape(-1, *reference.shape)
    valid = np.ones(reference.shape[0], bool) if reference_valid is None else np.asarray(reference_valid, bool)
    if not valid.any():
        return np.zeros(len(candidates))
    if sigmas is None:
        found = set_of_size(reference.shape[0])
        if found is None:
            raise ValueError(f"no keypoint set has {reference.shape[0]} keypoints: give the OKS sigmas")
        sigmas = found.sigmas
    variances = (2.0 * np.asarray(sigmas)) ** 2
    d2 = ((candidates - reference) ** 2).sum(axis=-1)
    e = d2 / variances / (max(float(area), np.spacing(1)) * 2.0)
    return np.exp(-e)[:, valid].mean(axis=1)


def oks_nms(
    keypoints: np.ndarray,
    scores: np.ndarray,
    areas: np.ndarray,
    threshold: float = 0.9,
    keypoint_scores: np.ndarray | None = None,
    keypoint_threshold: float = 0.2,
    sigmas: np.ndarray | None = None,
) -> list[int]:
    """Greedy NMS on poses: keep the best-scoring pose, drop others with OKS above ``threshold``.

    ``keypoints`` is ``(N, K, 2)``; a kept pose's keypoints with score below ``keypoint_threshold``
    do not count towards the OKS. Returns the kept indices, best first.
    """
    order = list(np.argsort(-np.asarray(scores), kind="stable"))
    keep: list[int] = []
    while order:
        best = order.pop(0)
        keep.append(best)
        if not order:
            break
        valid = None if keypoint_scores is None else keypoint_scores[best] > keypoint_threshold
        similarity = oks(keypoints[best], keypoints[order], areas[best], valid, sigmas)
        order = [i for i, s in zip(order, similarity, strict=True) if s <= threshold]
    return keep
