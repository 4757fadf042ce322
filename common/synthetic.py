"""Synthetic COCO-format person-keypoint data: stick figures with a colour per joint on textured backgrounds.

Used by the tests (the suite must mean something without the real COCO subset), by small training
runs and by demos. The figures are learnable: every joint has its own colour, so left and right
differ. ``python -m common.synthetic OUT_DIR --images 40`` writes ``OUT_DIR/images/*.jpg`` and
``OUT_DIR/annotations.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from toppose.common.atomic import atomic_path, write_json
from toppose.common.keypoint_sets import KeypointSet
from toppose.common.schema import COCO_PERSON_CATEGORY, NUM_KEYPOINTS, SKELETON
from toppose.common.schema import KEYPOINT_NAMES as COCO_NAMES

# A standing person facing the camera, in units of body height, origin at the hip centre, y down.
# The person's left side is on the image's right.
TEMPLATE = np.array(
    [
        [0.0, -0.42], [0.03, -0.45], [-0.03, -0.45], [0.07, -0.43], [-0.07, -0.43],  # face
        [0.12, -0.33], [-0.12, -0.33], [0.16, -0.17], [-0.16, -0.17], [0.18, -0.02], [-0.18, -0.02],  # arms
        [0.08, 0.0], [-0.08, 0.0], [0.09, 0.25], [-0.09, 0.25], [0.09, 0.5], [-0.09, 0.5],  # legs
    ]
)  # fmt: skip
# Each limb's child joint swings about its parent: (parent, child).
_LIMB_CHAINS = ((5, 7), (7, 9), (6, 8), (8, 10), (11, 13), (13, 15), (12, 14), (14, 16))
# One BGR colour per joint, evenly spaced in hue.
_HUES = np.uint8([[[int(180 * i / NUM_KEYPOINTS), 255, 255] for i in range(NUM_KEYPOINTS)]])
JOINT_COLOURS = cv2.cvtColor(_HUES, cv2.COLOR_HSV2BGR)[0].astype(int)
_SUBPIXEL_SHIFT = 4  # cv2 drawing at 1/16 pixel


@dataclass
class Person:
    """One figure: ``keypoints`` (17, 2) image coordinates and visibility flags (0, 1 or 2)."""

    keypoints: np.ndarray
    visibility: np.ndarray

    def bbox(self, margin: float = 0.08) -> list[float]:
        """COCO xywh box around the labelled keypoints, grown by ``margin`` of the height."""
        pts = self.keypoints[self.visibility > 0]
        x0, y0 = pts.min(axis=0)
        x1, y1 = pts.max(axis=0)
        pad = margin * max(y1 - y0, x1 - x0, 1.0)
        return [float(x0 - pad), float(y0 - pad), float(x1 - x0 + 2 * pad), float(y1 - y0 + 2 * pad)]

    def annotation(self, ann_id: int, image_id: int) -> dict:
        """The COCO keypoint annotation of this person."""
        box = self.bbox()
        flat = np.concatenate([self.keypoints, self.visibility[:, None]], axis=1)
        flat[self.visibility == 0] = 0
        return {
            "id": ann_id,
            "image_id": image_id,
            "category_id": 1,
            "bbox": [round(v, 2) for v in box],
            "area": round(box[2] * box[3] * 0.55, 2),
            "iscrowd": 0,
            "num_keypoints": int((self.visibility > 0).sum()),
            "keypoints": [round(float(v), 2) for v in flat.reshape(-1)],
        }


def extend_pose(keypoints: np.ndarray, keypoints_of: KeypointSet) -> np.ndarray:
    """A 17-point pose ``(17, 2)`` completed with the further points of a keypoint set (``(K, 2)``): Halpe's head,
    neck and hip, toes and heels off each ankle along the shin, the 68 face points on rings about the nose, and
    each hand's 21 points fanned out beyond its wrist. Where the set's points would really lie does not matter
    to the tests that use them (an oracle, OKS, drawing): they are distinct, and they move with the body."""
    points = {name: keypoints[i] for i, name in enumerate(COCO_NAMES)}
    shoulders = (points["left_shoulder"] + points["right_shoulder"]) / 2
    hips = (points["left_hip"] + points["right_hip"]) / 2
    eyes = max(float(np.linalg.norm(points["left_eye"] - points["right_eye"])), 2.0)
    points |= {"head": points["nose"] + 0.6 * (points["nose"] - shoulders), "neck": shoulders, "hip": hips}
    for side in ("left", "right"):
        shin = points[f"{side}_ankle"] - points[f"{side}_knee"]
        length = max(float(np.linalg.norm(shin)), 4.0)
        down, forward = shin / length, np.array([shin[1], -shin[0]]) / length
        ankle = points[f"{side}_ankle"]
        for name, (along, ahead) in {"big_toe": (0.12, 0.35), "small_toe": (0.16, 0.25), "heel": (0.1, -0.1)}.items():
            points[f"{side}_{name}"] = ankle + length * (along * down + ahead * forward)
        forearm = points[f"{side}_wrist"] - points[f"{side}_elbow"]
        reach = max(float(np.linalg.norm(forearm)), 4.0)
        ahead, across = forearm / reach, np.array([-forearm[1], forearm[0]]) / reach
        root = points[f"{side}_wrist"] + 0.15 * reach * ahead
        points[f"{side}_hand_root"] = root
        for finger, name in enumerate(("thumb", "forefinger", "middle_finger", "ring_finger", "pinky_finger")):
            spread = (finger - 2) * 0.07 * reach
            for joint in range(1, 5):
                points[f"{side}_{name}{joint}"] = (
                    root + reach * 0.07 * joint * ahead + spread * (1 + 0.2 * joint) * across
                )
    for i in range(68):
        angle = 2 * np.pi * i / 17
        radius = eyes * (0.4 + 0.3 * (i // 17))
        points[f"face-{i}"] = points["nose"] + radius * np.array([np.cos(angle), np.sin(angle)])
    return np.array([points[name] for name in keypoints_of.names])


def random_pose(rng: np.random.Generator, center: tuple[float, float], height: float) -> np.ndarray:
    """A plausible standing pose: the template with random limb swings, lean and scale jitter."""
    pose = TEMPLATE.copy()
    for parent, child in _LIMB_CHAINS:
        angle = rng.normal(0.0, 0.45)
        rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
        moved = [child] + ([child + 2] if child in (7, 8, 13, 14) else [])
        pose[moved] = (pose[moved] - pose[parent]) @ rot.T + pose[parent]
    lean = rng.normal(0.0, 0.08)
    rot = np.array([[np.cos(lean), -np.sin(lean)], [np.sin(lean), np.cos(lean)]])
    pose = pose @ rot.T
    pose[:, 0] *= rng.uniform(0.85, 1.15)
    return pose * height + np.asarray(center)


def textured_background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A smooth random colour field with mild noise."""
    small = rng.integers(40, 200, size=(4, 4, 3)).astype(np.uint8)
    image = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = rng.normal(0, 6, size=image.shape)
    return np.clip(image + noise, 0, 255).astype(np.uint8)


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(p[0] * (1 << _SUBPIXEL_SHIFT))), int(round(p[1] * (1 << _SUBPIXEL_SHIFT)))


def draw_figure(image: np.ndarray, person: Person, height: float) -> None:
    """Draw ``person`` in place: grey limbs, then a coloured disc centred exactly on each joint."""
    thickness = max(2, int(round(height * 0.035)))
    radius = max(2.0, height * 0.025)
    for a, b in SKELETON:
        cv2.line(image, _pt(person.keypoints[a]), _pt(person.keypoints[b]), (90, 90, 90), thickness,
                 cv2.LINE_AA, _SUBPIXEL_SHIFT)  # fmt: skip
    for k in np.argsort(person.keypoints[:, 1]):
        if person.visibility[k] == 2:
            colour = tuple(int(c) for c in JOINT_COLOURS[k])
            cv2.circle(image, _pt(person.keypoints[k]), int(radius * (1 << _SUBPIXEL_SHIFT)), colour, -1,
                       cv2.LINE_AA, _SUBPIXEL_SHIFT)  # fmt: skip


def render_scene(
    rng: np.random.Generator, width: int = 320, height: int = 240, max_people: int = 3
) -> tuple[np.ndarray, list[Person]]:
    """One image with 1..``max_people`` non-overlapping figures; a few joints hidden (v=1) per person."""
    image = textured_background(rng, width, height)
    people: list[Person] = []
    count = int(rng.integers(1, max_people + 1))
    slots = rng.permutation(count)
    for slot in slots:
        person_height = rng.uniform(0.45, 0.85) * height
        cx = (slot + 0.5) * width / count + rng.uniform(-0.05, 0.05) * width
        cy = rng.uniform(0.45, 0.55) * height
        keypoints = random_pose(rng, (cx, cy), person_height)
        visibility = np.full(NUM_KEYPOINTS, 2.0)
        visibility[rng.random(NUM_KEYPOINTS) < 0.05] = 1.0
        inside = (keypoints[:, 0] >= 0) & (keypoints[:, 0] <= width - 1) & (keypoints[:, 1] >= 0)
        inside &= keypoints[:, 1] <= height - 1
        visibility[~inside] = 0.0
        person = Person(keypoints, visibility)
        draw_figure(image, person, person_height)
        people.append(person)
    return image, people


def make_dataset(out_dir: str | Path, num_images: int = 40, seed: int = 0, width: int = 320, height: int = 240) -> Path:
    """Write ``num_images`` scenes as JPEGs plus a COCO keypoint annotation file; returns its path."""
    out_dir = Path(out_dir)
    image_dir = out_dir / "images"
    image_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    images, annotations = [], []
    for image_id in range(1, num_images + 1):
        image, people = render_scene(rng, width, height)
        file_name = f"synthetic_{image_id:05d}.jpg"
        with atomic_path(image_dir / file_name) as tmp:
            cv2.imwrite(str(tmp), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        for person in people:
            annotations.append(person.annotation(len(annotations) + 1, image_id))
    ann_path = out_dir / "annotations.json"
    write_json(ann_path, {"images": images, "annotations": annotations, "categories": [COCO_PERSON_CATEGORY]})
    return ann_path


if __name__ == "__main__":  # a checkout's python -m alias of `toppose synthetic`
    from toppose.cli import alias

    alias("synthetic")
