"""Person detection: torchvision COCO detectors reduced to people, or boxes read from a COCO results file."""

from toppose.detector.boxes_file import BoxesByImage, boxes_outside, load_boxes
from toppose.detector.detections import Detections
from toppose.detector.torchvision_detector import (
    ARCHITECTURES,
    PersonDetector,
    build_detector,
    build_model,
    default_weights_file,
    person_detections,
)

__all__ = [
    "ARCHITECTURES",
    "BoxesByImage",
    "boxes_outside",
    "Detections",
    "PersonDetector",
    "build_detector",
    "build_model",
    "default_weights_file",
    "load_boxes",
    "person_detections",
]
