"""toppose's application layer: the per-frame pipeline (detector -> crops -> pose network), the frame
loop with tracking, video input and output, and the Python API (:class:`PoseEstimator`)."""

from toppose.api import Person, PoseEstimator, VideoFrame

__all__ = ["Person", "PoseEstimator", "VideoFrame"]
