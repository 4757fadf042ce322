"""The decoder ceiling: ground-truth outputs pushed through the production crop, flip-test and decode path.

In place of the network, :func:`oracle_network_fn` plays a network trained in a given pixel convention:
for every crop the estimator actually cut (mirrored ones included) it renders the outputs (heatmaps,
or SimCC vectors) such a network would output, with the production codec. Everything else — crop
regions, flip test, decoding, the map back to the image, scoring and OKS-NMS — is what inference runs. COCOeval
of the result is the best AP any network could reach under this configuration; a value well below 1
points at a geometry or codec bug, and a network played in one convention but decoded in another
shows what that mismatch costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from toppose.common.keypoint_sets import flip_index_of
from toppose.common.poses import PoseResult
from toppose.pose import geometry
from toppose.pose.annotations import GroundTruthPeople
from toppose.pose.codecs import Outputs
from toppose.pose.inference import NetworkFn, TopDownEstimator


@dataclass(frozen=True)
class SimulatedNetwork:
    """How the oracle's stand-in network behaves.

    ``convention``: the pixel convention it was trained in (``None``: the estimator's own), i.e. where it
    puts the output peak of a joint it sees at input pixel ``u`` (:func:`pose.geometry.input_to_heatmap`).
    ``noise``: standard deviation of a Gaussian localisation error, in output grid pixels (heatmap pixels,
    SimCC bins), drawn afresh for every crop (plain and mirrored) from a generator seeded with ``seed``
    and the image id, so that runs that differ only in the conventions see the same errors.
    """

    convention: str | None = None
    noise: float = 0.0
    seed: int = 0


def oracle_network_fn(
    estimator: TopDownEstimator, people: GroundTruthPeople, network: SimulatedNetwork | None = None, image_id: int = 0
) -> NetworkFn:
    """A stand-in network returning what ``network`` would output for ``people``'s crops (in box order).

    Each crop's keypoints go through the affine that actually cut it (so the mirrored crops too), then
    through the simulated network's map to its output grid. For a mirrored crop a network sees the
    person's left side as a right side, so its channels are relabelled left/right, which the
    production codec's ``flip_back`` undoes.
    """
    network = network or SimulatedNetwork()
    convention = network.convention or estimator.convention
    rng = np.random.default_rng([network.seed, image_id])

    def outputs(crops_bgr: np.ndarray, matrices: np.ndarray, mirrored: np.ndarray) -> Outputs:
        if len(crops_bgr) % len(people) or not len(crops_bgr) == len(matrices) == len(mirrored):
            raise ValueError(f"oracle got {len(crops_bgr)} crops for {len(people)} people")
        person = np.arange(len(crops_bgr)) % len(people)  # the estimator passes whole copies of the box list
        matrices = np.asarray(matrices, dtype=np.float64)
        inputs = np.einsum("nij,nkj->nki", matrices[:, :, :2], people.keypoints[person]) + matrices[:, None, :, 2]
        points = geometry.input_to_heatmap(inputs, estimator.input_size, estimator.codec.grid_size, convention)
        visible = people.visible[person]
        count = people.keypoints.shape[1]
        relabel = np.where(mirrored[:, None], np.asarray(flip_index_of(count))[None, :], np.arange(count)[None, :])
        points = np.take_along_axis(points, relabel[..., None], axis=1)
        visible = np.take_along_axis(visible, relabel, axis=1)
        if network.noise > 0:
            points = points + rng.normal(0.0, network.noise, points.shape)
        return estimator.codec.encode(points, visible)[0]

    return outputs


def keypoints_outside_crops(estimator: TopDownEstimator, people: GroundTruthPeople) -> int:
    """How many labelled keypoints fall outside their person's crop, where no output can place them."""
    centers, sizes = estimator.crop_regions(people.boxes)
    grid = estimator.codec.grid_size
    points = geometry.image_to_crop(people.keypoints, centers, sizes, grid, estimator.convention)
    _, weights = estimator.codec.encode(points, people.visible)
    return int(people.visible.sum() - weights.sum())


def oracle_poses(
    estimator: TopDownEstimator,
    frame_bgr: np.ndarray,
    people: GroundTruthPeople,
    nms: bool = True,
    network: SimulatedNetwork | None = None,
    image_id: int = 0,
) -> PoseResult:
    """Poses of ``people`` (box score 1) decoded from ``network``'s outputs via ``estimator.estimate``."""
    network_fn = oracle_network_fn(estimator, people, network, image_id)
    return estimator.estimate(frame_bgr, people.boxes, np.ones(len(people)), network_fn=network_fn, nms=nms)
