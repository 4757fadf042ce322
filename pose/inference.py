"""Top-down inference for one frame: person boxes -> normalized crops -> heatmaps -> image keypoints.

Frames are OpenCV BGR ``uint8`` arrays; the network sees them ImageNet-normalized in the channel order
it was trained on (``model.channel_order``). Crops are cut, mirrored for the flip test and decoded in
the pixel convention the network was trained in (``codec.convention``, see :mod:`pose.geometry`).
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from toppose.common.allocator import keep_freed_memory
from toppose.common.config import PRECISION_NAMES, Config
from toppose.common.errors import UserError
from toppose.common.keypoint_sets import keypoint_set
from toppose.common.poses import PoseResult
from toppose.pose import geometry
from toppose.pose.codecs import Outputs, TensorOutputs, build_codec
from toppose.pose.models import FAMILIES
from toppose.pose.models.inputs import in_channel_order, inference_copy, to_input_tensor
from toppose.pose.oks import oks_nms
from toppose.pose.precision import AUTOCAST_DTYPES, describe_precision, resolved_precision
from toppose.pose.runtime import OnnxRuntimeNetwork
from torch import nn

# (crops (N, H, W, 3) BGR uint8, their image-to-input affines (N, 2, 3), mirrored (N,) bool)
# -> the network's outputs (heatmaps (N, K, h, w), or SimCC x and y vectors); see TopDownEstimator.estimate.
NetworkFn = Callable[[np.ndarray, np.ndarray, np.ndarray], Outputs]


def instance_scores(box_scores: np.ndarray, keypoint_scores: np.ndarray, threshold: float) -> np.ndarray:
    """Box score times the mean confidence of the keypoints above ``threshold`` (0 when there are none)."""
    confident = keypoint_scores > threshold
    counts = confident.sum(axis=1)
    means = np.where(counts > 0, (keypoint_scores * confident).sum(axis=1) / np.maximum(counts, 1), 0.0)
    return np.asarray(box_scores, dtype=np.float64) * means


@dataclass
class StageTimer:
    """Wall-clock seconds spent per pipeline stage, summed over calls, and the items (frames, images) of each."""

    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, stage: str, started: float, count: int = 1) -> None:
        """Add the time since ``started`` to ``stage``, for ``count`` items (e.g. frames read at once)."""
        self.seconds[stage] += time.perf_counter() - started
        self.calls[stage] += count


class TopDownEstimator:
    """Runs the single-person network on every person box of a frame, in one batch."""

    def __init__(
        self,
        model: nn.Module | None,
        cfg: Config,
        device: str | torch.device = "cpu",
        optimize: bool = False,
        device_path: bool | None = None,
    ) -> None:
        """``device_path`` cuts crops, runs the flip test and decodes on ``device`` so that only keypoints come
        back to the host (default: on CUDA; CPU keeps the OpenCV/NumPy path); it needs a torch network.
        ``optimize`` runs a frozen copy of ``model``: under ``inference.backend`` "torch" with batch norms
        folded, channels-last (see ``inference_copy``), under "onnxruntime" its ONNX export in an ONNX Runtime
        session (:mod:`pose.runtime`). Without it the estimator calls ``model`` itself in eval mode (as
        validation during training must)."""
        self.cfg = cfg
        self.device = torch.device(device)
        if cfg.inference.precision not in PRECISION_NAMES:
            raise UserError(f"unknown precision '{cfg.inference.precision}' (choose from {', '.join(PRECISION_NAMES)})")
        self.precision = resolved_precision(cfg.inference)  # "auto" resolved for this machine
        family = FAMILIES.get(cfg.model.family)
        if self.precision == "fp16" and family is not None and not family.fp16_safe:
            raise UserError(f"precision fp16 breaks {family.title} (its features leave fp16's range): use bf16 or fp32")
        self.autocast_dtype = AUTOCAST_DTYPES[self.precision]
        self.optimized = optimize and model is not None
        if self.optimized and self.device.type == "cpu":
            keep_freed_memory()  # process-wide: the network's activations stay mapped between calls
        self.runtime: OnnxRuntimeNetwork | None = None
        if model is None:
            self.model = None
        elif optimize and cfg.inference.backend == "onnxruntime":
            self.model, self.runtime = model, OnnxRuntimeNetwork(model, cfg)
        elif optimize:
            self.model = inference_copy(model, self.device, self.autocast_dtype)
        else:
            self.model = model.to(self.device).eval()
        self.input_size = tuple(cfg.model.input_size)
        self.keypoint_set = keypoint_set(cfg.model.keypoints)
        self.codec = build_codec(cfg)
        self.aspect_ratio = self.input_size[0] / self.input_size[1]
        self.convention = cfg.codec.convention
        try:
            geometry.check_convention(self.convention)
        except ValueError as err:
            raise UserError(f"codec.convention: {err}") from None
        wanted = self.device.type == "cuda" if device_path is None else device_path
        self.device_path = wanted and self.model is not None and self.runtime is None
        self.timer = StageTimer()

    def describe(self) -> str:
        """The network and how it runs, in one line: "rtmpose cspnext_s 192x256, bf16 autocast (auto), no flip"."""
        model, inference = self.cfg.model, self.cfg.inference
        how = describe_precision(inference) if self.runtime is None else "fp32, onnxruntime"
        flip = "flip test" if inference.flip_test else "no flip"
        return f"{model.family} {model.backbone} {model.input_size[0]}x{model.input_size[1]}, {how}, {flip}"

    def crop_regions(self, boxes_xywh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """DeepPose crop regions (centres, sizes) for ``(N, 4)`` boxes under this configuration."""
        return geometry.box_to_center_size(boxes_xywh, self.aspect_ratio, self.cfg.crop.padding)

    def crop_matrices(self, centers: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """The image-to-input affines ``(N, 2, 3)`` of the crops of these regions, in this setup's convention."""
        return geometry.crop_matrices(centers, sizes, self.input_size, self.convention)

    def network_outputs(
        self, crops_bgr: np.ndarray, matrices: np.ndarray | None = None, mirrored: np.ndarray | None = None
    ) -> Outputs:
        """Run the network on ``(N, H, W, 3)`` BGR crops in batches of ``inference.batch_size``.

        ``matrices`` and ``mirrored`` (see :data:`NetworkFn`) are not needed: the network sees the pixels."""
        if self.model is None:
            raise RuntimeError("this estimator has no network; pass network_fn to estimate()")
        del matrices, mirrored
        run = self.runtime or self.torch_outputs  # the ONNX graph takes the BGR crops themselves
        batch_size = max(1, self.cfg.inference.batch_size)
        batches = [run(crops_bgr[start : start + batch_size]) for start in range(0, len(crops_bgr), batch_size)]
        return tuple(np.concatenate(parts, axis=0) for parts in zip(*batches, strict=True))

    @torch.inference_mode()
    def torch_outputs(self, crops_bgr: np.ndarray) -> Outputs:
        """The torch network's outputs for one batch of BGR crops, as float32 arrays."""
        crops = torch.from_numpy(in_channel_order(crops_bgr, self.cfg.model.channel_order)).to(self.device)
        inputs = to_input_tensor(crops)  # channels-last, as the inference copy
        with torch.autocast(self.device.type, self.autocast_dtype, enabled=self.autocast_dtype is not None):
            out = self.model(inputs)
        return tuple(o.float().cpu().numpy() for o in (out if isinstance(out, tuple) else (out,)))

    def fused_outputs(self, crops_bgr: np.ndarray, matrices: np.ndarray, network_fn: NetworkFn) -> Outputs:
        """Network outputs of the crops, averaged with those of the mirrored crops when flip test is on.

        With flip test, the crops and their mirror images (mirrored in the setup's convention, see
        :func:`pose.geometry.mirror`) go to ``network_fn`` in one call (one batch); the mirrored
        crops' outputs are mirrored back the same way (:meth:`Codec.flip_back`) before they are averaged.
        """
        count = len(crops_bgr)
        if not self.cfg.inference.flip_test:
            return network_fn(crops_bgr, matrices, np.zeros(count, dtype=bool))
        mirrored = geometry.mirror(crops_bgr, 2, self.convention)
        mirrored_matrices = geometry.mirror_matrix(matrices, self.input_size[0], self.convention)
        outputs = network_fn(
            np.concatenate([crops_bgr, mirrored]),
            np.concatenate([matrices, mirrored_matrices]),
            np.arange(2 * count) >= count,
        )
        flipped_back = self.codec.flip_back(tuple(o[count:] for o in outputs), self.convention)
        return tuple(0.5 * (o[:count] + f) for o, f in zip(outputs, flipped_back, strict=True))

    def upload(self, frame_bgr: np.ndarray) -> torch.Tensor:
        """The frame on the network's device, once: from pinned memory without blocking the host on CUDA."""
        frame = torch.from_numpy(np.ascontiguousarray(frame_bgr))
        if self.device.type == "cuda":
            frame = frame.pin_memory()
        return frame.to(self.device, non_blocking=True)

    def device_crops(self, frame: torch.Tensor, matrices: np.ndarray) -> torch.Tensor:
        """``(N, 3, H, W)`` crops of an uploaded BGR frame, cut on its device, in the network's channel order."""
        crops = geometry.warp_crops_torch(frame, matrices, self.input_size)
        return crops.flip(1) if self.cfg.model.channel_order == "rgb" else crops

    def device_network(self, crops: torch.Tensor) -> TensorOutputs:
        """The torch network's float32 outputs for ``(B, 3, H, W)`` crops, left on the device."""
        images = crops.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1)
        with torch.autocast(self.device.type, self.autocast_dtype, enabled=self.autocast_dtype is not None):
            out = self.model(to_input_tensor(images))
        return tuple(o.float() for o in (out if isinstance(out, tuple) else (out,)))

    @torch.inference_mode()
    def device_outputs(self, crops: torch.Tensor) -> TensorOutputs:
        """:meth:`fused_outputs` on the device: batches of ``inference.batch_size``, flip test mirrored there."""
        count = len(crops)
        if self.cfg.inference.flip_test:
            crops = torch.cat([crops, geometry.mirror_torch(crops, 3, self.convention)])
        batch_size = max(1, self.cfg.inference.batch_size)
        batches = [self.device_network(crops[start : start + batch_size]) for start in range(0, len(crops), batch_size)]
        outputs = tuple(torch.cat(parts) for parts in zip(*batches, strict=True))
        if not self.cfg.inference.flip_test:
            return outputs
        flipped_back = self.codec.flip_back_tensors(tuple(o[count:] for o in outputs), self.convention)
        return tuple(0.5 * (o[:count] + f) for o, f in zip(outputs, flipped_back, strict=True))

    def device_keypoints(self, outputs: TensorOutputs, centers: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """:meth:`outputs_to_keypoints` with decoding on the device: only keypoints come back to the host."""
        coords, confidences = self.codec.decode_tensors(outputs)
        decoded = torch.cat([coords, confidences[..., None]], dim=-1).cpu().numpy()  # one copy to the host
        return self.grid_to_image(decoded[..., :2], decoded[..., 2], centers, sizes)

    def outputs_to_keypoints(self, outputs: Outputs, centers: np.ndarray, sizes: np.ndarray) -> np.ndarray:
        """Decode network outputs and map them back to the image: ``(N, K, 3)`` x, y, confidence."""
        return self.grid_to_image(*self.codec.decode(outputs), centers, sizes)

    def grid_to_image(
        self, coords: np.ndarray, confidences: np.ndarray, centers: np.ndarray, sizes: np.ndarray
    ) -> np.ndarray:
        """Decoded grid coordinates ``(N, K, 2)`` and confidences ``(N, K)`` as image keypoints ``(N, K, 3)``."""
        points = geometry.crop_to_image(coords, centers, sizes, self.codec.grid_size, self.convention)
        return np.concatenate([points, confidences[..., None]], axis=-1)

    def stage_done(self, stage: str, started: float) -> None:
        """Time ``stage`` since ``started``; on CUDA once the device has finished its work (so shares are true)."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.timer.add(stage, started)

    def estimate(
        self,
        frame_bgr: np.ndarray,
        boxes_xywh: np.ndarray,
        box_scores: np.ndarray | None = None,
        network_fn: NetworkFn | None = None,
        nms: bool = True,
    ) -> PoseResult:
        """Poses of the people in ``boxes_xywh`` (``(N, 4)``, COCO xywh) of one frame.

        ``network_fn`` replaces the network (the oracle renders ground-truth outputs); it is
        called with all of the frame's crops at once, in box order, on the host (whatever ``device_path``).
        ``nms`` applies OKS-NMS and puts the people best score first; without it they stay one per box, in the
        order of the boxes.
        """
        return self.estimate_frames([frame_bgr], [boxes_xywh], [box_scores], network_fn, nms)[0]

    def estimate_frames(
        self,
        frames_bgr: Sequence[np.ndarray],
        boxes_xywh: Sequence[np.ndarray],
        box_scores: Sequence[np.ndarray | None] | None = None,
        network_fn: NetworkFn | None = None,
        nms: bool = True,
    ) -> list[PoseResult]:
        """:meth:`estimate` for several frames at once, one result per frame: the crops of every frame go to the
        network together, in batches of ``inference.batch_size``, and are decoded in one call, so a chunk of
        frames with a few people each fills the network's batches. Each crop's outputs depend on its own pixels
        alone, so the poses are each frame's own :meth:`estimate` (within float rounding of the batch's size)."""
        if box_scores is None:
            box_scores = [None] * len(frames_bgr)
        if not len(frames_bgr) == len(boxes_xywh) == len(box_scores):
            raise ValueError("give one boxes array (and one scores array) per frame")
        boxes = [np.asarray(b, dtype=np.float64).reshape(-1, 4) for b in boxes_xywh]
        scores = [
            np.ones(len(b)) if s is None else np.asarray(s, dtype=np.float64)
            for b, s in zip(boxes, box_scores, strict=True)
        ]
        counts = [len(b) for b in boxes]
        if sum(counts) == 0:
            return [PoseResult.empty(len(self.keypoint_set)) for _ in frames_bgr]
        started = time.perf_counter()
        centers, sizes = self.crop_regions(np.concatenate(boxes))
        matrices = self.crop_matrices(centers, sizes)
        splits = np.cumsum(counts)[:-1]  # where the second and later frames' crops start
        per_frame = np.split(matrices, splits)
        on_device = self.device_path and network_fn is None
        cut = [(frame, m) for frame, m in zip(frames_bgr, per_frame, strict=True) if len(m)]
        if on_device:
            crops = torch.cat([self.device_crops(self.upload(frame), m) for frame, m in cut])
        else:
            crops = np.concatenate([geometry.warp_crops(frame, m, self.input_size) for frame, m in cut])
        self.stage_done("crop", started)

        started = time.perf_counter()
        if on_device:
            outputs = self.device_outputs(crops)
        else:
            outputs = self.fused_outputs(crops, matrices, network_fn or self.network_outputs)
        self.stage_done("pose", started)

        started = time.perf_counter()
        if on_device:
            keypoints = self.device_keypoints(outputs, centers, sizes)
        else:
            keypoints = self.outputs_to_keypoints(outputs, centers, sizes)
        results = [
            self.frame_result(b, s, k, nms) for b, s, k in zip(boxes, scores, np.split(keypoints, splits), strict=True)
        ]
        self.stage_done("decode", started)
        return results

    def frame_result(self, boxes: np.ndarray, box_scores: np.ndarray, keypoints: np.ndarray, nms: bool) -> PoseResult:
        """One frame's people from their boxes and decoded keypoints: instance scores, then OKS-NMS if ``nms``."""
        if len(boxes) == 0:
            return PoseResult.empty(len(self.keypoint_set))
        scores = instance_scores(box_scores, keypoints[..., 2], self.cfg.inference.keypoint_score_threshold)
        result = PoseResult(boxes, box_scores, keypoints, scores)
        if nms:
            keep = oks_nms(
                keypoints[..., :2], scores, boxes[:, 2] * boxes[:, 3], self.cfg.inference.oks_nms_threshold,
                keypoints[..., 2], self.cfg.inference.keypoint_score_threshold, self.keypoint_set.sigmas,
            )  # fmt: skip
            result = result.select(keep)
        return result
