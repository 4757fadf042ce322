"""torchvision's COCO detectors (the R-CNNs and SSDlite), reduced to people: score threshold,
class-agnostic NMS, top-k.

Weights are the architecture's default torchvision weights (``COCO_V1``), read from the torch hub
cache (``torch.hub.get_dir()/checkpoints/<file name>``, downloaded there when online), or a local
file given as ``detector.weights`` (a state dict, or a torchvision reference-training checkpoint with
a ``model`` entry). The network is built without weights (nothing else is downloaded) and the state
dict loaded here, with the trunk's BatchNorm frozen exactly as torchvision does for pretrained models
(a file from a model trained from scratch, whose trunk had plain BatchNorm, loads too: its
``num_batches_tracked`` counters are the only keys the frozen layers lack, and they are bookkeeping).
``pretrained=False`` keeps random weights: for tests and speed benchmarks only, it finds nothing real.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import torch
from toppose.common.config import DetectorConfig
from toppose.common.errors import UserError
from toppose.common.schema import PERSON_CATEGORY_ID
from toppose.common.weights import fetch_checkpoint, load_checkpoint, torch_device
from toppose.detector.detections import Detections, sigmoid
from toppose.detector.folding import for_inference
from torch import nn
from torch.nn import functional as F
from torchvision.models import WeightsEnum, detection
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection.ssd import SSD
from torchvision.ops import FrozenBatchNorm2d, clip_boxes_to_image, nms

DetectorOutput = Mapping[str, torch.Tensor]  # one image of a torchvision detector's output list


@dataclass(frozen=True)
class Architecture:
    """A torchvision detector builder, its default weights, and how torchvision loads them."""

    builder: Callable[..., nn.Module]
    weights: WeightsEnum
    frozen_batchnorm: bool  # torchvision builds the trunk with FrozenBatchNorm2d for pretrained weights
    zero_eps: bool  # ... and sets its eps to 0 for these (pre-0.8 trained) weights: torchvision's overwrite_eps


ARCHITECTURES: dict[str, Architecture] = {
    "keypointrcnn_resnet50_fpn": Architecture(
        detection.keypointrcnn_resnet50_fpn, detection.KeypointRCNN_ResNet50_FPN_Weights.COCO_V1, True, True
    ),
    "maskrcnn_resnet50_fpn": Architecture(
        detection.maskrcnn_resnet50_fpn, detection.MaskRCNN_ResNet50_FPN_Weights.COCO_V1, True, True
    ),
    "maskrcnn_resnet50_fpn_v2": Architecture(
        detection.maskrcnn_resnet50_fpn_v2, detection.MaskRCNN_ResNet50_FPN_V2_Weights.COCO_V1, False, False
    ),
    "fasterrcnn_resnet50_fpn": Architecture(
        detection.fasterrcnn_resnet50_fpn, detection.FasterRCNN_ResNet50_FPN_Weights.COCO_V1, True, True
    ),
    "fasterrcnn_resnet50_fpn_v2": Architecture(
        detection.fasterrcnn_resnet50_fpn_v2, detection.FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1, False, False
    ),
    "fasterrcnn_mobilenet_v3_large_fpn": Architecture(
        detection.fasterrcnn_mobilenet_v3_large_fpn,
        detection.FasterRCNN_MobileNet_V3_Large_FPN_Weights.COCO_V1,
        True,
        False,
    ),
    "fasterrcnn_mobilenet_v3_large_320_fpn": Architecture(
        detection.fasterrcnn_mobilenet_v3_large_320_fpn,
        detection.FasterRCNN_MobileNet_V3_Large_320_FPN_Weights.COCO_V1,
        True,
        False,
    ),
    "ssdlite320_mobilenet_v3_large": Architecture(
        detection.ssdlite320_mobilenet_v3_large,
        detection.SSDLite320_MobileNet_V3_Large_Weights.COCO_V1,
        False,
        False,
    ),
}


def _freeze_batchnorm(module: nn.Module) -> None:
    """Replace every ``BatchNorm2d`` below ``module`` by a ``FrozenBatchNorm2d`` with the same eps."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, FrozenBatchNorm2d(child.num_features, eps=child.eps))
        else:
            _freeze_batchnorm(child)


def default_weights_file(name: str) -> str:
    """The file name of architecture ``name``'s default torchvision weights (as cached by torch hub)."""
    return ARCHITECTURES[name].weights.url.rsplit("/", 1)[-1]


def _detector_keys(state: Mapping[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """A torchvision checkpoint's tensors for ``model``: DataParallel's ``module.`` prefix removed, and the
    BatchNorm counters of layers ``model`` has frozen (which keep none) dropped."""
    expected = model.state_dict()
    state = {k.removeprefix("module."): v for k, v in state.items()}
    return {k: v for k, v in state.items() if k in expected or not k.endswith(".num_batches_tracked")}


def _load_weights(model: nn.Module, name: str, arch: Architecture, weights: str) -> None:
    if weights:
        path = Path(weights).expanduser()
    else:
        hash_prefix = torch.hub.HASH_REGEX.search(default_weights_file(name))
        path = fetch_checkpoint(arch.weights.url, hash_prefix.group(1) if hash_prefix else None)
    load_checkpoint(model, path, name, lambda state: _detector_keys(state, model), allow_extra=False)
    if not weights and arch.zero_eps:
        for module in model.modules():
            if isinstance(module, FrozenBatchNorm2d):
                module.eps = 0.0


def _drop_mask_branch(model: nn.Module) -> None:
    """Mask R-CNN without its mask head: same boxes, no per-pixel masks computed and pasted."""
    heads = getattr(model, "roi_heads", None)
    if heads is not None and heads.has_mask():
        heads.mask_roi_pool = heads.mask_head = heads.mask_predictor = None


def _drop_keypoint_branch(model: nn.Module) -> None:
    """Keypoint R-CNN as a box detector: same boxes, no keypoint head run on each of them."""
    heads = getattr(model, "roi_heads", None)
    if heads is not None and heads.has_keypoint():
        heads.keypoint_roi_pool = heads.keypoint_head = heads.keypoint_predictor = None


def person_detections(output: DetectorOutput, cfg: DetectorConfig) -> Detections:
    """One image's torchvision output -> people: score > ``score_threshold``, class-agnostic NMS, top ``max_people``.

    ``max_people`` <= 0 keeps every person. Boxes become COCO xywh; keypoints (Keypoint R-CNN) get
    ``sigmoid(keypoints_scores)`` as their third value (see :class:`Detections`).
    """
    scores = output["scores"].detach().float().cpu()
    boxes = output["boxes"].detach().float().cpu().reshape(-1, 4)
    keep = torch.nonzero((output["labels"].cpu() == PERSON_CATEGORY_ID) & (scores > cfg.score_threshold))[:, 0]
    keep = keep[nms(boxes[keep], scores[keep], cfg.nms_threshold)]  # best score first
    keep = keep[: cfg.max_people] if cfg.max_people > 0 else keep  # only those Detections.top keeps are converted
    xyxy = boxes[keep].double().numpy()
    detections = Detections(
        np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1), scores[keep].double().numpy()
    )
    if "keypoints" in output:
        points = output["keypoints"].detach().cpu()[keep, :, :2].double().numpy()
        logits = output["keypoints_scores"].detach().cpu()[keep].double().numpy()
        detections.keypoints = np.concatenate([points, sigmoid(logits)[..., None]], axis=-1)
        detections.keypoint_logits = logits
    return detections.top(cfg.max_people)


def ssd_person_postprocess(
    model: SSD,
    head_outputs: dict[str, torch.Tensor],
    image_anchors: list[torch.Tensor],
    image_shapes: list[tuple[int, int]],
) -> list[dict[str, torch.Tensor]]:
    """SSD's ``postprocess_detections`` for the person class alone (torchvision loops over all 90, a kernel
    launch chain each on a GPU): the same person boxes, scores and order, save that its
    ``detections_per_img`` cap counts people only."""
    scores = F.softmax(head_outputs["cls_logits"], dim=-1)[..., PERSON_CATEGORY_ID]
    detections = []
    per_image = zip(head_outputs["bbox_regression"], scores, image_anchors, image_shapes, strict=True)
    for regression, score, anchors, shape in per_image:
        boxes = clip_boxes_to_image(model.box_coder.decode_single(regression, anchors), shape)
        keep = score > model.score_thresh
        score, boxes = score[keep], boxes[keep]
        score, order = score.topk(det_utils._topk_min(score, model.topk_candidates, 0))
        boxes = boxes[order]
        keep = nms(boxes, score, model.nms_thresh)[: model.detections_per_img]
        labels = torch.full_like(keep, PERSON_CATEGORY_ID)
        detections.append({"boxes": boxes[keep], "scores": score[keep], "labels": labels})
    return detections


class PersonDetector:
    """A torchvision detector run on OpenCV BGR ``uint8`` frames, returning people only."""

    def __init__(self, model: nn.Module, cfg: DetectorConfig, device: str | torch.device = "cpu") -> None:
        self.cfg = cfg
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()

    def _to_tensor(self, frame_bgr: np.ndarray) -> torch.Tensor:
        if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 BGR frame, got {frame_bgr.dtype} {frame_bgr.shape}")
        rgb = torch.from_numpy(np.ascontiguousarray(frame_bgr[:, :, ::-1])).to(self.device)
        return rgb.permute(2, 0, 1).float().div_(255.0)

    @torch.inference_mode()
    def detect_batch(self, frames_bgr: Sequence[np.ndarray]) -> list[Detections]:
        """The people in each frame (frames may differ in size), one network call for all of them."""
        if not frames_bgr:
            return []
        outputs = self.model([self._to_tensor(frame) for frame in frames_bgr])
        return [person_detections(output, self.cfg) for output in outputs]

    def detect(self, frame_bgr: np.ndarray) -> Detections:
        """The people in one frame."""
        return self.detect_batch([frame_bgr])[0]


def build_model(name: str, weights: str = "", pretrained: bool = True) -> nn.Module:
    """torchvision detector ``name`` on the CPU, in eval mode, with its weights (see the module docstring)."""
    if name not in ARCHITECTURES:
        raise UserError(f"unknown detector '{name}' (choose from {', '.join(ARCHITECTURES)})")
    arch = ARCHITECTURES[name]
    model = arch.builder(weights=None, weights_backbone=None)
    if arch.frozen_batchnorm:
        _freeze_batchnorm(model.backbone.body)
    if pretrained:
        _load_weights(model, name, arch, weights)
    _drop_mask_branch(model)
    return model.eval()


def build_detector(
    cfg: DetectorConfig, device: str = "cpu", pretrained: bool = True, keypoints: bool = True
) -> PersonDetector:
    """The person detector ``cfg.name`` on ``device``; ``pretrained=False`` is for tests and speed benchmarks only.

    ``keypoints=False`` turns Keypoint R-CNN into a plain box detector (when the pose network makes
    the poses, its keypoint head is wasted work). Default weights that are neither cached nor
    downloadable raise :class:`MissingWeightsError`.
    """
    target = torch_device(device)
    model = build_model(cfg.name, cfg.weights, pretrained)
    if not keypoints:
        _drop_keypoint_branch(model)
    for_inference(model)
    # Dropping low-scoring boxes inside the model gives the same people and skips their keypoint head.
    getattr(model, "roi_heads", model).score_thresh = cfg.score_threshold  # SSD keeps it on the model
    if isinstance(model, SSD):
        model.postprocess_detections = partial(ssd_person_postprocess, model)
    return PersonDetector(model, cfg, target)
