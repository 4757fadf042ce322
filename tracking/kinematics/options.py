"""What a motion analysis does: thresholds, cleaning, filter, metres, repetitions and the files it writes."""

from __future__ import annotations

from dataclasses import dataclass, field

from toppose.tracking.kinematics.filters import FILTERS
from toppose.tracking.kinematics.repetitions import RepetitionOptions
from toppose.tracking.kinematics.scale import Camera
from toppose.tracking.kinematics.specs import Spec

FORMATS = ("csv", "png", "trc", "mot", "c3d", "html")


@dataclass
class KinematicsOptions:
    """Confidence threshold, frame rate without timestamps, shortest track, the track ids to keep (None: all);
    then the cleaning (swaps, outliers, gaps), the filter, the metre scale (heights in metres per track id, or
    one for every track; the floor angle, None: estimated; a camera for perspective), the repetitions (None:
    not counted) and the files to write."""

    min_confidence: float = 0.3
    fps: float | None = None
    min_frames: int = 10
    tracks: tuple[int, ...] | None = None
    fix_swaps: bool = True
    outliers: Spec | None = None
    fill_gaps: int = 0
    filter: Spec = field(default_factory=lambda: Spec("none", dict(FILTERS["none"])))
    heights: dict[int, float] = field(default_factory=dict)
    height: float | None = None
    floor_angle: float | None = None
    camera: Camera | None = None
    repetitions: RepetitionOptions | None = None
    formats: tuple[str, ...] = FORMATS

    def height_of(self, track_id: int) -> float | None:
        """The height in metres given for a track (its own, else the one for all), None where none is."""
        return self.heights.get(track_id, self.height)
