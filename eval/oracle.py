"""The decoder ceiling: ground-truth heatmaps pushed through the production crop, flip-test and decode path.

In place of the network, :func:`oracle_heatmap_fn` renders each crop's heatmaps from the annotated
keypoints with the production codec, so everything else — crop regions, flip test, DARK/argmax
decoding, the map back to the image, scoring and OKS-NMS — is exactly what inference runs. COCOeval
of the result is the best AP any network could reach under this configuration; a value well below 1
points at a geometry or codec bug.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pycocotools.coco import COCO

from pose import codec, geometry
from pose.inference import HeatmapFn, PoseResult, TopDownEstimator
from pose.schema import FLIP_INDEX, NUM_KEYPOINTS


@dataclass
class GroundTruthPeople:
    """The annotated people of one image that top-down evaluation uses."""

    boxes: np.ndarray  # (N, 4) xywh
    keypoints: np.ndarray  # (N, K, 2) image pixels
    visible: np.ndarray  # (N, K) bool: labelled (v > 0)

    def __len__(self) -> int:
        return len(self.boxes)


def ground_truth_people(coco: COCO, image_id: int) -> GroundTruthPeople:
    """Non-crowd annotations of ``image_id`` with at least one labelled keypoint.

    These are the people COCOeval scores (it ignores crowd regions and people without keypoints),
    and the usual choice for top-down evaluation with ground-truth boxes.
    """
    anns = [
        a
        for a in coco.loadAnns(coco.getAnnIds(imgIds=[image_id], iscrowd=False))
        if a.get("num_keypoints", 0) > 0 and len(a.get("keypoints", ())) == 3 * NUM_KEYPOINTS
    ]
    if not anns:
        empty = np.zeros((0, NUM_KEYPOINTS))
        return GroundTruthPeople(np.zeros((0, 4)), np.zeros((0, NUM_KEYPOINTS, 2)), empty.astype(bool))
    flat = np.array([a["keypoints"] for a in anns], dtype=np.float64).reshape(-1, NUM_KEYPOINTS, 3)
    boxes = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
    return GroundTruthPeople(boxes, flat[..., :2], flat[..., 2] > 0)


def oracle_heatmap_fn(estimator: TopDownEstimator, people: GroundTruthPeople) -> HeatmapFn:
    """A stand-in network returning the ground-truth heatmaps of ``people``'s crops (in box order).

    For the mirrored crops it returns what a perfect network would see there: the mirrored points
    with left and right swapped, which the production :func:`pose.codec.flip_heatmaps` undoes.
    """
    centers, sizes = estimator.crop_regions(people.boxes)
    heatmap_size = estimator.heatmap_size
    points = geometry.image_to_crop(people.keypoints, centers, sizes, heatmap_size)
    mirrored = geometry.flip_crop_points(points, heatmap_size[0])[:, list(FLIP_INDEX)]
    mirrored_visible = people.visible[:, list(FLIP_INDEX)]
    sigma = estimator.cfg.codec.sigma

    plain_maps = codec.encode(points, people.visible, heatmap_size, sigma)[0]
    mirrored_maps = codec.encode(mirrored, mirrored_visible, heatmap_size, sigma)[0]

    def heatmaps(crops_bgr: np.ndarray, mirrored_crops: np.ndarray) -> np.ndarray:
        if len(crops_bgr) % len(people) or len(crops_bgr) != len(mirrored_crops):
            raise ValueError(f"oracle got {len(crops_bgr)} crops for {len(people)} people")
        person = np.arange(len(crops_bgr)) % len(people)  # the estimator passes whole copies of the box list
        return np.where(mirrored_crops[:, None, None, None], mirrored_maps[person], plain_maps[person])

    return heatmaps


def keypoints_outside_crops(estimator: TopDownEstimator, people: GroundTruthPeople) -> int:
    """How many labelled keypoints fall outside their person's crop, where no heatmap can place them."""
    centers, sizes = estimator.crop_regions(people.boxes)
    points = geometry.image_to_crop(people.keypoints, centers, sizes, estimator.heatmap_size)
    _, weights = codec.encode(points, people.visible, estimator.heatmap_size, estimator.cfg.codec.sigma)
    return int(people.visible.sum() - weights.sum())


def oracle_poses(
    estimator: TopDownEstimator, frame_bgr: np.ndarray, people: GroundTruthPeople, nms: bool = True
) -> PoseResult:
    """Poses of ``people`` (box score 1) decoded from their ground-truth heatmaps via ``estimator.estimate``."""
    return estimator.estimate(
        frame_bgr, people.boxes, np.ones(len(people)), heatmap_fn=oracle_heatmap_fn(estimator, people), nms=nms
    )
