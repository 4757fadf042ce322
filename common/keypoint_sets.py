"""Keypoint sets as data: COCO-17 (the default), Halpe-26 (body and feet) and COCO-WholeBody-133 (body, feet,
face, hands), each with its names, left/right pairs, skeleton, OKS sigmas and parts.

Transcribed from the published dataset definitions: COCO's person keypoints (pycocotools' ``kpt_oks_sigmas``),
Halpe-FullBody's 26 points as MMPose 1.x describes them (``configs/_base_/datasets/halpe26.py``, sigmas from
Halpe's own COCOeval) and COCO-WholeBody (``configs/_base_/datasets/coco_wholebody.py``; Jin et al., ECCV 2020,
whose sigmas are the paper's). In every set the first 17 points are COCO's, in COCO's order, so the body of any
set is scored and analysed as COCO-17. A set is recognised from a checkpoint's or a results file's number of
keypoints (:func:`set_of_size`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from toppose.common import schema


@dataclass(frozen=True)
class KeypointSet:
    """One keypoint set: ``names`` in output-channel order; ``flip_pairs`` (left, right) indices swapped by a
    horizontal flip; ``skeleton`` the published links; ``detail_links`` further lines drawn thin (the face's
    contours, wrist to hand);
    ``sigmas`` the per-point OKS falloff; ``parts`` name -> indices (the COCO-WholeBody protocol's parts)."""

    name: str
    title: str
    names: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    skeleton: tuple[tuple[int, int], ...]
    sigmas: np.ndarray = field(repr=False)
    parts: dict[str, tuple[int, ...]] = field(default_factory=dict, repr=False)
    detail_links: tuple[tuple[int, int], ...] = ()  # face and hand lines: drawn thin

    def __len__(self) -> int:
        return len(self.names)

    @property
    def flip_index(self) -> tuple[int, ...]:
        """``keypoints[flip_index]`` reorders the keypoints of a horizontally flipped person."""
        order = list(range(len(self.names)))
        for left, right in self.flip_pairs:
            order[left], order[right] = right, left
        return tuple(order)

    @property
    def body(self) -> tuple[int, ...]:
        """The indices of the COCO-17 body points (the first 17 of every set)."""
        return tuple(range(schema.NUM_KEYPOINTS))

    @property
    def detail(self) -> tuple[int, ...]:
        """Points drawn small: the face and the hands."""
        return tuple(i for part in ("face", "left_hand", "right_hand") for i in self.parts.get(part, ()))

    def index(self, name: str) -> int:
        """The index of the keypoint ``name``; an unknown name is a KeyError listing a few known ones."""
        try:
            return self.names.index(name)
        except ValueError:
            shown = ", ".join(self.names[:6])
            raise KeyError(f"unknown keypoint '{name}' in {self.title} (e.g. {shown}, ...)") from None


def _pairs_by_side(names: tuple[str, ...]) -> list[tuple[int, int]]:
    """(left, right) index pairs of the names that differ only by their ``left_``/``right_`` prefix."""
    return [(i, names.index("right_" + n[5:])) for i, n in enumerate(names) if n.startswith("left_")]


def _chain(points: list[int], closed: bool = False) -> list[tuple[int, int]]:
    links = list(zip(points[:-1], points[1:], strict=True))
    return links + [(points[-1], points[0])] if closed else links


FEET = tuple(f"{side}_{point}" for side in ("left", "right") for point in ("big_toe", "small_toe", "heel"))
FINGERS = ("thumb", "forefinger", "middle_finger", "ring_finger", "pinky_finger")
HAND = ("hand_root", *(f"{finger}{joint}" for finger in FINGERS for joint in range(1, 5)))

COCO17 = KeypointSet(
    "coco17", "COCO-17", schema.KEYPOINT_NAMES, schema.FLIP_PAIRS, schema.SKELETON, schema.OKS_SIGMAS,
    {"body": tuple(range(17))},
)  # fmt: skip

_HALPE_NAMES = (*schema.KEYPOINT_NAMES, "head", "neck", "hip", "left_big_toe", "right_big_toe", "left_small_toe",
                "right_small_toe", "left_heel", "right_heel")  # fmt: skip
HALPE26 = KeypointSet(
    "halpe26", "Halpe-26", _HALPE_NAMES, tuple(_pairs_by_side(_HALPE_NAMES)),
    ((15, 13), (13, 11), (11, 19), (16, 14), (14, 12), (12, 19), (17, 18), (18, 19), (18, 5), (5, 7), (7, 9),
     (18, 6), (6, 8), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6), (15, 20), (15, 22),
     (15, 24), (16, 21), (16, 23), (16, 25)),
    np.array([*schema.OKS_SIGMAS, 0.026, 0.026, 0.066, 0.079, 0.079, 0.079, 0.079, 0.079, 0.079]),
    {"body": tuple(range(17)), "head_neck_hip": (17, 18, 19), "foot": tuple(range(20, 26))},
)  # fmt: skip

_WHOLEBODY_NAMES = (
    *schema.KEYPOINT_NAMES, *FEET, *(f"face-{i}" for i in range(68)),
    *(f"{side}_{point}" for side in ("left", "right") for point in HAND),
)  # fmt: skip
# The 68 face landmarks (the 300-W layout) mirrored: jaw, brows, nose, eyes, mouth.
_FACE_PAIRS = ((0, 16), (1, 15), (2, 14), (3, 13), (4, 12), (5, 11), (6, 10), (7, 9), (17, 26), (18, 25), (19, 24),
               (20, 23), (21, 22), (31, 35), (32, 34), (36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46),
               (48, 54), (49, 53), (50, 52), (55, 59), (56, 58), (60, 64), (61, 63), (65, 67))  # fmt: skip
_FACE, _LEFT_HAND, _RIGHT_HAND = 23, 91, 112  # where the face and the hands start


def _hand_links(root: int) -> list[tuple[int, int]]:
    return [
        link for finger in range(5) for link in _chain([root, *range(root + 1 + 4 * finger, root + 5 + 4 * finger)])
    ]


def _face_links() -> list[tuple[int, int]]:
    """The 300-W contours: jaw, brows, nose bridge and base, eyes and lips (closed)."""
    spans = ((0, 17, False), (17, 22, False), (22, 27, False), (27, 31, False), (31, 36, False), (36, 42, True),
             (42, 48, True), (48, 60, True), (60, 68, True))  # fmt: skip
    return [(_FACE + a, _FACE + b) for start, end, closed in spans for a, b in _chain(list(range(start, end)), closed)]


WHOLEBODY133 = KeypointSet(
    "wholebody", "COCO-WholeBody-133", _WHOLEBODY_NAMES,
    tuple([*_pairs_by_side(_WHOLEBODY_NAMES), *((_FACE + a, _FACE + b) for a, b in _FACE_PAIRS)]),
    (*COCO17.skeleton, (15, 17), (15, 18), (15, 19), (16, 20), (16, 21), (16, 22), *_hand_links(_LEFT_HAND),
     *_hand_links(_RIGHT_HAND)),
    np.array([
        *schema.OKS_SIGMAS, 0.068, 0.066, 0.066, 0.092, 0.094, 0.094,
        0.042, 0.043, 0.044, 0.043, 0.040, 0.035, 0.031, 0.025, 0.020, 0.023, 0.029, 0.032,
        0.037, 0.038, 0.043, 0.041, 0.045, 0.013, 0.012, 0.011, 0.011, 0.012, 0.012, 0.011,
        0.011, 0.013, 0.015, 0.009, 0.007, 0.007, 0.007, 0.012, 0.009, 0.008, 0.016, 0.010,
        0.017, 0.011, 0.009, 0.011, 0.009, 0.007, 0.013, 0.008, 0.011, 0.012, 0.010, 0.034,
        0.008, 0.008, 0.009, 0.008, 0.008, 0.007, 0.010, 0.008, 0.009, 0.009, 0.009, 0.007,
        0.007, 0.008, 0.011, 0.008, 0.008, 0.008, 0.010, 0.008,
        *[0.029, 0.022, 0.035, 0.037, 0.047, 0.026, 0.025, 0.024, 0.035, 0.018, 0.024, 0.022,
          0.026, 0.017, 0.021, 0.021, 0.032, 0.020, 0.019, 0.022, 0.031] * 2,
    ]),
    {"body": tuple(range(17)), "foot": tuple(range(17, 23)), "face": tuple(range(_FACE, _LEFT_HAND)),
     "left_hand": tuple(range(_LEFT_HAND, _RIGHT_HAND)), "right_hand": tuple(range(_RIGHT_HAND, 133))},
    (*_face_links(), (9, _LEFT_HAND), (10, _RIGHT_HAND)),
)  # fmt: skip

KEYPOINT_SETS: dict[str, KeypointSet] = {s.name: s for s in (COCO17, HALPE26, WHOLEBODY133)}


def keypoint_set(name: str) -> KeypointSet:
    """The set named ``name`` (``coco17``, ``halpe26``, ``wholebody``)."""
    try:
        return KEYPOINT_SETS[name]
    except KeyError:
        raise KeyError(f"unknown keypoint set '{name}' (one of {', '.join(KEYPOINT_SETS)})") from None


def flip_index_of(count: int) -> list[int]:
    """The flip reordering of the set with ``count`` keypoints (a network's output channels)."""
    found = set_of_size(count)
    if found is None:
        raise ValueError(
            f"no keypoint set has {count} keypoints ({', '.join(str(len(s)) for s in KEYPOINT_SETS.values())})"
        )
    return list(found.flip_index)


def set_of_size(count: int) -> KeypointSet | None:
    """The set with ``count`` keypoints (17, 26 or 133), or ``None``."""
    return next((s for s in KEYPOINT_SETS.values() if len(s) == count), None)
