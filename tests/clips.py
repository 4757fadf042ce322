"""A small tracked clip for the video and API tests: rendered frames of a synthetic scenario, its true
boxes as a COCO detection file, and a small random pose network with its config."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch
from toppose.common.config import CONFIG_DIR
from toppose.pose.models.simplebaseline import SimpleBaseline

from benchmarks.sequences import make_sequence, render_frames

SMALL_NETWORK = (
    ("input_size = [192, 256]", "input_size = [64, 96]"),
    ("heatmap_size = [48, 64]", "heatmap_size = [16, 24]"),
)


def write_video(path: Path, frames: list[np.ndarray], fps: float, fourcc: str) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (frames[0].shape[1], frames[0].shape[0]))
    for frame in frames:
        writer.write(frame)
    writer.release()


def make_clip(
    tmp: Path, seed: int, frames: int, videos: dict[str, str], setup: tuple[tuple[str, str], ...] = ()
) -> dict:
    """``videos`` (file name -> fourcc) of the first ``frames`` of the "crossing" scenario, ``dets.json`` (the
    true boxes), ``small.toml`` (SimpleBaseline-18 at 64x96 with ``setup`` changes) and ``res18.pth``."""
    sequence = make_sequence("crossing", seed=seed)
    sequence.truth = sequence.truth[:frames]
    images = list(render_frames(sequence))
    for name, fourcc in videos.items():
        write_video(tmp / name, images, sequence.fps, fourcc)
    boxes = [
        {"image_id": t, "category_id": 1, "bbox": [round(float(v), 2) for v in box], "score": 1.0}
        for t, people in enumerate(sequence.truth)
        for box in people.boxes
    ]
    (tmp / "dets.json").write_text(json.dumps(boxes))
    config = (CONFIG_DIR / "simplebaseline_res18_256x192.toml").read_text()
    for old, new in SMALL_NETWORK + setup:
        assert old in config
        config = config.replace(old, new)
    (tmp / "small.toml").write_text(config)
    torch.manual_seed(0)
    torch.save(SimpleBaseline("resnet18").state_dict(), tmp / "res18.pth")
    return {"dir": tmp, "sequence": sequence, "frames": images}
