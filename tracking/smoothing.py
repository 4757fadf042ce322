"""Per-track smoothing of the box and every keypoint: one Kalman filter per track, online or forward-backward.

The model splits a person's motion into body motion and articulation. A reference point moves with
the body; the box centre sits at an offset from it, and each keypoint at an offset from its parent
along the kinematic chain (wrist from elbow, elbow from shoulder, shoulder from the reference; knee
from hip; eye from nose), so a swinging upper arm carries the forearm with it; the box size is its
own point. Every point has a position and a velocity, x and y alike. The reference moves at constant
velocity with a large acceleration noise, so motion common to the whole person is followed at once
(no lag behind a fast or turning person: the reference is measured by all the keypoints together,
hence precisely). The keypoint offsets get small noise, growing along the chain, and keep only
``articulation_damping`` of their velocity from one frame to the next: limbs swing back and forth
and a joint hidden for a while stays near where it was, where a constant velocity would overshoot
every swing and let a hidden joint drift; each joint's own jitter is smoothed away.

A keypoint's measurement noise is ``keypoint_noise * 2 * sigma_k * scale / confidence`` (``sigma_k``
its OKS sigma in the keypoint set, ``scale`` the square root of the box area): the error at which its OKS would fall
to ``exp(-1/2)``, so confident joints with tight sigmas (eyes) stay sharp and doubtful ones are
smoothed harder; keypoints below ``min_confidence`` are not measured. If a frame's measurements are
implausible as a whole (normalized innovation above the chi-square ``manoeuvre_probability`` gate),
the reference's uncertainty is inflated until they are not, so a sudden manoeuvre resets the body
motion rather than being averaged away.

Offline, a Rauch-Tung-Striebel pass runs backwards over the track, which also fills the frames the
track was not measured in.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, cached_property

import numpy as np
from scipy.stats import chi2
from toppose.common.keypoint_sets import KeypointSet, set_of_size

# Points of the model, in state order: reference, box-centre offset, keypoint offsets, box size (see Layout).
REF, BOX = 0, 1
_INFLATION_STEP = 4.0
_MAX_INFLATIONS = 8


@dataclass
class SmootherConfig:
    """Noise model of the track smoother (lengths in units of the person's scale, the square root of the box area)."""

    keypoint_noise: float = 0.5  # measurement std of a keypoint at confidence 1, in OKS units 2 * sigma * scale
    box_noise: float = 0.04  # measurement std of the box centre and size at box score 1
    body_acceleration: float = 0.05  # process std (per frame^2) of the reference point
    articulation_acceleration: float = 0.015  # process std of the box centre's offset; keypoints: times mobility
    articulation_damping: float = 0.0  # share of a keypoint offset's velocity kept a frame (1: constant velocity)
    trunk_mobility: float = 0.4  # head (from the reference, the eyes and ears from it), shoulders and hips
    limb_mobility: float = 5.0  # elbows from their shoulders, knees from their hips
    extremity_mobility: float = 4.0  # wrists from their elbows, ankles from their knees
    size_acceleration: float = 0.005  # process std of the box size
    initial_velocity: float = 0.1  # std of a new track's unknown body velocity
    min_confidence: float = 0.05  # keypoints below are not measured
    manoeuvre_probability: float = 0.999  # chi-square gate on a frame's normalized innovation


@dataclass
class FilterState:
    """Mean ``(S, 2)`` (one column per image axis) and the covariance ``(S, S)`` they share (S: the layout's
    ``num_state``)."""

    mean: np.ndarray
    cov: np.ndarray


# Each keypoint's parent along the kinematic chain: its offset is from the parent (keypoints not listed: from the
# reference point). Feet hang from their ankles, the hand from its wrist and each finger joint from the one
# before, the face's points from the nose.
_PARENT_NAMES = {"left_eye": "nose", "right_eye": "nose", "left_ear": "left_eye", "right_ear": "right_eye",
                 "left_elbow": "left_shoulder", "right_elbow": "right_shoulder", "left_wrist": "left_elbow",
                 "right_wrist": "right_elbow", "left_knee": "left_hip", "right_knee": "right_hip",
                 "left_ankle": "left_knee", "right_ankle": "right_knee", "head": "nose",
                 **{f"{side}_{point}": f"{side}_ankle" for side in ("left", "right")
                    for point in ("big_toe", "small_toe", "heel")}}  # fmt: skip


def _parent_name(name: str) -> str | None:
    if name in _PARENT_NAMES:
        return _PARENT_NAMES[name]
    if name.startswith("face-"):
        return "nose"
    side, _, point = name.partition("_")
    if point == "hand_root":
        return f"{side}_wrist"
    if point[-1:].isdigit() and side in ("left", "right"):  # finger joints 1-4, from the root outwards
        joint = int(point[-1])
        return f"{side}_hand_root" if joint == 1 else f"{side}_{point[:-1]}{joint - 1}"
    return None


@dataclass(frozen=True)
class Layout:
    """The state of a person with ``keypoints`` (a keypoint set): where each point of the model sits, and the
    matrices that follow from the kinematic chain. One per set (:func:`layout`)."""

    keypoints: KeypointSet

    @property
    def count(self) -> int:
        return len(self.keypoints)

    @property
    def joints(self) -> slice:
        return slice(2, 2 + self.count)

    @property
    def size(self) -> int:
        return 2 + self.count

    @property
    def num_points(self) -> int:
        return self.size + 1

    @property
    def num_state(self) -> int:
        return 2 * self.num_points  # positions, then velocities

    @property
    def measured_points(self) -> np.ndarray:
        """Measurements, in order: box centre, keypoints, box size; each observes these points."""
        return np.array([BOX, *range(self.joints.start, self.joints.stop), self.size])

    @cached_property
    def parents(self) -> np.ndarray:
        """``(K,)`` index of each keypoint's parent, -1 for the reference."""
        names = self.keypoints.names
        return np.array([names.index(p) if (p := _parent_name(n)) in names else -1 for n in names])

    @cached_property
    def chain(self) -> np.ndarray:
        """``(K, num_points)``: keypoint positions as sums of the points of the model (reference plus offsets)."""
        chain = np.zeros((self.count, self.num_points))
        chain[:, REF] = 1.0
        for k in range(self.count):
            joint = k
            while joint >= 0:
                chain[k, self.joints.start + joint] = 1.0
                joint = self.parents[joint]
        return chain

    @cached_property
    def observation(self) -> np.ndarray:
        h = np.zeros((self.count + 2, self.num_state))
        h[0, [REF, BOX]] = 1.0  # the box centre is an offset from the reference
        h[1:-1, : self.num_points] = self.chain
        h[-1, self.size] = 1.0
        return h


@cache
def layout(count: int) -> Layout:
    """The layout of a person with ``count`` keypoints (17, 26 or 133)."""
    found = set_of_size(count)
    if found is None:
        raise ValueError(f"no keypoint set has {count} keypoints")
    return Layout(found)


@cache
def transition(articulation_damping: float, count: int = 17) -> np.ndarray:
    """``(S, S)``: one frame of motion; the keypoint offsets keep this share of their velocity."""
    where = layout(count)
    f = np.eye(where.num_state)
    f[: where.num_points, where.num_points :] = np.eye(where.num_points)
    joint_velocities = np.arange(where.joints.start, where.joints.stop) + where.num_points
    f[joint_velocities, joint_velocities] = articulation_damping
    return f


@cache  # scipy's ppf costs about a millisecond a call; a frame updates every track
def _gate(dof: int, probability: float) -> float:
    return float(chi2.ppf(probability, dof))


def measurement(
    box: np.ndarray, keypoints: np.ndarray, box_score: float, cfg: SmootherConfig
) -> tuple[np.ndarray, np.ndarray, float]:
    """One detection as ``(K + 2, 2)`` values, their noise std (inf: not measured), and its scale."""
    box = np.asarray(box, dtype=np.float64)
    scale = float(np.sqrt(max(box[2] * box[3], 1.0)))
    values = np.concatenate([[box[:2] + box[2:] / 2.0], keypoints[:, :2], [box[2:]]])
    confidence = keypoints[:, 2]
    sigmas = layout(len(keypoints)).keypoints.sigmas
    keypoint_std = cfg.keypoint_noise * 2.0 * sigmas * scale / np.maximum(confidence, cfg.min_confidence)
    keypoint_std = np.where(confidence >= cfg.min_confidence, keypoint_std, np.inf)
    box_std = cfg.box_noise * scale / np.sqrt(max(float(box_score), 0.05))
    return values, np.concatenate([[box_std], keypoint_std, [box_std]]), scale


EXTREMITIES = ("wrist", "ankle", "toe", "heel", "hand_root", *(str(joint) for joint in range(1, 5)))


def joint_mobility(cfg: SmootherConfig, count: int = 17) -> np.ndarray:
    """``(K,)`` factor on each keypoint's articulation noise, by its place along the kinematic chain: elbows and
    knees move most, then wrists, ankles, feet, hands and fingers; the trunk and the face least."""
    names = layout(count).keypoints.names
    mobility = np.full(count, cfg.trunk_mobility)
    for k, name in enumerate(names):
        if name.endswith(("elbow", "knee")):
            mobility[k] = cfg.limb_mobility
        elif name.endswith(EXTREMITIES) and not name.startswith("face-"):
            mobility[k] = cfg.extremity_mobility
    return mobility


def process_noise(scale: float, cfg: SmootherConfig, count: int = 17) -> np.ndarray:
    """``(S, S)`` white-acceleration process noise for one frame."""
    where = layout(count)
    accel = np.full(where.num_points, cfg.articulation_acceleration)
    accel[where.joints] *= joint_mobility(cfg, count)
    accel[REF], accel[where.size] = cfg.body_acceleration, cfg.size_acceleration
    q = np.square(accel * scale)
    n = where.num_points
    noise = np.zeros((where.num_state, where.num_state))
    points = np.arange(n)
    noise[points, points] = q / 4
    noise[points, points + n] = noise[points + n, points] = q / 2
    noise[points + n, points + n] = q
    return noise


def initial_state(values: np.ndarray, std: np.ndarray, scale: float, cfg: SmootherConfig) -> FilterState:
    """A state at a track's first measurement: the reference at the keypoints' weighted centre, offsets from it."""
    measured = np.isfinite(std)
    joints = measured[1:-1]
    if joints.any():
        weights = 1.0 / np.square(std[1:-1][joints])
        ref = (values[1:-1][joints] * weights[:, None]).sum(axis=0) / weights.sum()
        ref_std = 1.0 / np.sqrt(weights.sum())
    else:
        ref, ref_std = values[0], std[0]
    where = layout(len(values) - 2)
    mean = np.zeros((where.num_state, 2))
    mean[REF] = ref
    mean[BOX] = values[0] - ref
    mean[where.size] = values[-1]
    absolute = np.where(joints[:, None], values[1:-1], ref)
    parents = where.parents
    mean[where.joints] = absolute - np.where(parents[:, None] >= 0, absolute[parents], ref)
    variance = np.zeros(where.num_state)
    variance[REF] = ref_std**2
    variance[where.measured_points] = np.square(np.where(measured, std, 0.5 * scale))
    variance[where.num_points :] = (cfg.articulation_acceleration * scale * 3) ** 2
    variance[where.num_points + REF] = (cfg.initial_velocity * scale) ** 2
    return FilterState(mean, np.diag(variance))


def predict(state: FilterState, noise: np.ndarray, f: np.ndarray) -> FilterState:
    """One frame of motion under the transition ``f`` (:func:`transition`)."""
    return FilterState(f @ state.mean, f @ state.cov @ f.T + noise)


def update(
    prior: FilterState, values: np.ndarray, std: np.ndarray, probability: float
) -> tuple[FilterState, FilterState]:
    """Correct a predicted state with one detection; returns the posterior and the prior actually used.

    On a manoeuvre the returned prior is the input one with the reference's uncertainty inflated.
    """
    measured = np.isfinite(std)
    if not measured.any():
        return prior, prior
    where = layout(len(values) - 2)
    h = where.observation[measured]
    r = np.diag(np.square(std[measured]))
    innovation = values[measured] - h @ prior.mean
    gate = _gate(2 * int(measured.sum()), probability)
    cov = prior.cov
    for _ in range(_MAX_INFLATIONS):
        s = h @ cov @ h.T + r
        solved = np.linalg.solve(s, innovation)
        if float((innovation * solved).sum()) <= gate:
            break
        scaling = np.ones(where.num_state)
        scaling[[REF, where.num_points + REF]] = np.sqrt(_INFLATION_STEP)
        cov = cov * scaling[:, None] * scaling[None, :]
    prior = FilterState(prior.mean, cov)
    s = h @ cov @ h.T + r
    gain = np.linalg.solve(s, h @ cov).T  # cov H^T S^-1 (S symmetric)
    mean = prior.mean + gain @ innovation
    joseph = np.eye(where.num_state) - gain @ h
    posterior = joseph @ cov @ joseph.T + gain @ r @ gain.T
    return FilterState(mean, 0.5 * (posterior + posterior.T)), prior


def split_state(state: FilterState) -> tuple[np.ndarray, np.ndarray]:
    """The xywh box and ``(K, 2)`` keypoints a state stands for."""
    where = layout(len(state.mean) // 2 - 3)
    ref = state.mean[REF]
    centre, size = ref + state.mean[BOX], np.maximum(state.mean[where.size], 1.0)
    return np.concatenate([centre - size / 2.0, size]), where.chain @ state.mean[: where.num_points]


class TrackSmoother:
    """Online smoothing of one track: :meth:`step` with each new measurement, past frames only."""

    def __init__(self, cfg: SmootherConfig | None = None) -> None:
        self.cfg = cfg or SmootherConfig()
        self.state: FilterState | None = None
        self.frame = -1
        self.scale = 1.0

    def step(
        self, frame: int, box: np.ndarray, keypoints: np.ndarray, box_score: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Filter the measurement of ``frame`` (later than the last one); returns the smoothed box and keypoints."""
        values, std, scale = measurement(box, keypoints, box_score, self.cfg)
        if self.state is None:
            self.state = initial_state(values, std, scale, self.cfg)
        else:
            count = len(keypoints)
            noise = process_noise(self.scale, self.cfg, count)
            for _ in range(max(frame - self.frame, 1)):
                self.state = predict(self.state, noise, transition(self.cfg.articulation_damping, count))
            self.state, _ = update(self.state, values, std, self.cfg.manoeuvre_probability)
        self.frame, self.scale = frame, scale
        return split_state(self.state)


def smooth_track(
    frames: np.ndarray, boxes: np.ndarray, keypoints: np.ndarray, box_scores: np.ndarray, cfg: SmootherConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forward-backward (RTS) smoothing of one track measured at increasing ``frames``.

    Returns every frame from the first to the last measured one, with the smoothed ``(T, 4)`` boxes
    and ``(T, K, 2)`` keypoints there; unmeasured frames in between are filled by the smoother.
    """
    frames = np.asarray(frames, dtype=np.int64)
    span = np.arange(frames[0], frames[-1] + 1)
    measured_at = {int(frame): i for i, frame in enumerate(frames)}
    count = keypoints.shape[1]
    f = transition(cfg.articulation_damping, count)
    filtered: list[FilterState] = []
    priors: list[FilterState] = []
    scale = 1.0
    for frame in span:
        i = measured_at.get(int(frame))
        if i is not None:
            values, std, new_scale = measurement(boxes[i], keypoints[i], box_scores[i], cfg)
        if not filtered:
            state = prior = initial_state(values, std, new_scale, cfg)
        else:
            state = prior = predict(filtered[-1], process_noise(scale, cfg, count), f)
            if i is not None:
                state, prior = update(prior, values, std, cfg.manoeuvre_probability)
        if i is not None:
            scale = new_scale
        filtered.append(state)
        priors.append(prior)
    smoothed = rts(filtered, priors, f)
    out_boxes, out_keypoints = zip(*(split_state(s) for s in smoothed), strict=True)
    return span, np.array(out_boxes), np.array(out_keypoints)


def rts(filtered: list[FilterState], priors: list[FilterState], f: np.ndarray) -> list[FilterState]:
    """Rauch-Tung-Striebel backward pass: ``priors[t]`` is the prediction (by ``f``) that ``filtered[t]`` corrected."""
    smoothed = [filtered[-1]]
    for t in range(len(filtered) - 2, -1, -1):
        current, prior_next, next_smoothed = filtered[t], priors[t + 1], smoothed[-1]
        gain = np.linalg.solve(prior_next.cov, f @ current.cov).T  # P_f F^T P_p^-1 (P_p symmetric)
        mean = current.mean + gain @ (next_smoothed.mean - prior_next.mean)
        cov = current.cov + gain @ (next_smoothed.cov - prior_next.cov) @ gain.T
        smoothed.append(FilterState(mean, cov))
    return smoothed[::-1]
