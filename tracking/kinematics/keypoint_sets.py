"""The keypoint sets a results file can carry, told apart by their number of keypoints per entry, as motion
analysis looks them up: by name.

The sets themselves (names, in their order) are :mod:`toppose.common.keypoint_sets`' COCO-17, Halpe-26 and
COCO-WholeBody-133; this view adds what the analysis asks of them (a name -> index map, the body points whose
speeds are reported, the markers written to TRC and C3D). Angles and markers look points up by name, so a
definition works in every set that has its points.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from toppose.common.keypoint_sets import FINGERS, KEYPOINT_SETS


@dataclass(frozen=True)
class KeypointSet:
    """A keypoint set: its name and keypoint names, in the order results list them."""

    name: str
    names: tuple[str, ...]
    index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "index", {name: i for i, name in enumerate(self.names)})

    @property
    def body(self) -> tuple[str, ...]:
        """The points of the body and feet (no face, no hands): the ones whose speeds are reported."""
        return tuple(n for n in self.names if not n.startswith("face-") and "_hand_root" not in n
                     and not any(f"_{finger}" in n for finger in FINGERS))  # fmt: skip

    @property
    def markers(self) -> tuple[str, ...]:
        """The points written to TRC and C3D files: all but the face."""
        return tuple(n for n in self.names if not n.startswith("face-"))

    def pairs(self, names: tuple[str, ...]) -> list[tuple[int, int]]:
        """(left, right) index pairs for the ``left_``/``right_`` names among ``names`` that the set holds."""
        return [
            (self.index[name], self.index["right_" + name[5:]])
            for name in names
            if name.startswith("left_") and name in self.index and "right_" + name[5:] in self.index
        ]


SETS = {len(s): KeypointSet(s.title, s.names) for s in KEYPOINT_SETS.values()}


def keypoint_set(count: int) -> KeypointSet | None:
    """The set with ``count`` keypoints per entry, None where no set has that many."""
    return SETS.get(count)
