"""The pose network as an ONNX graph that takes the crops themselves: ``uint8`` BGR in, the network's outputs out.

The graph's input ``crops`` is what :meth:`pose.inference.TopDownEstimator.network_outputs` is given:
person crops ``(N, H, W, 3)``, OpenCV BGR ``uint8``, ``N`` free (a dynamic batch axis). Inside it, the
crops are put in the channel order the weights were trained on and ImageNet-normalized
(:func:`pose.models.inputs.network_input`) before the network runs, so a deployment feeds cut-out
crops and nothing else. Outputs, float32: ``heatmaps`` ``(N, K, h, w)``, or SimCC ``simcc_x``
``(N, K, W * split_ratio)`` and ``simcc_y`` ``(N, K, H * split_ratio)``; the file's metadata records
how to cut the crops and decode them (``toppose.*`` keys). Exported with torch's ``torch.export``-based
exporter (it needs the ``onnx`` and ``onnxscript`` packages).
"""

from __future__ import annotations

import torch
from toppose.common.config import Config
from toppose.common.errors import UserError
from toppose.pose.models.inputs import network_input
from torch import nn

INPUT_NAME = "crops"
OUTPUT_NAMES = {"heatmap": ("heatmaps",), "simcc": ("simcc_x", "simcc_y")}
EXAMPLE_BATCH = 2  # the batch traced; the batch axis is exported as dynamic
FINGERPRINT_KEY = "toppose.fingerprint"  # metadata of cached graphs: what they were exported from
MAX_GRAPH_BYTES = 2**31 - 2**26  # a single ONNX file holds at most 2 GB (protobuf), weights included


class CropsInput(nn.Module):
    """``network`` behind the input step of the estimator: BGR ``uint8`` crops ``(N, H, W, 3)`` in."""

    def __init__(self, network: nn.Module, channel_order: str) -> None:
        super().__init__()
        self.network = network
        self.channel_order = channel_order

    def forward(self, crops: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        return self.network(network_input(crops, self.channel_order))


def metadata(cfg: Config) -> dict[str, str]:
    """What a deployment needs to cut the crops and decode the outputs, as ONNX metadata properties."""
    width, height = cfg.model.input_size
    props = {
        "toppose.input": f"{INPUT_NAME}: (N, {height}, {width}, 3) uint8 BGR person crops",
        "toppose.outputs": ", ".join(OUTPUT_NAMES[cfg.codec.type]),
        "toppose.codec": cfg.codec.type,
        "toppose.convention": cfg.codec.convention,
        "toppose.crop_padding": f"{cfg.crop.padding:g}",
        "toppose.network": f"{cfg.model.family} {cfg.model.backbone}",
        "toppose.keypoints": cfg.model.keypoints,
    }
    if cfg.codec.type == "simcc":
        props["toppose.split_ratio"] = f"{cfg.codec.split_ratio:g}"
    return props


def export_onnx(model: nn.Module, cfg: Config, fingerprint: str = "") -> bytes:
    """The serialized ONNX model of ``model`` (on the CPU, eval mode) under the setup ``cfg``; a ``fingerprint``
    (of the weights and setup, see :func:`pose.runtime.graph_key`) is recorded in its metadata.

    A network too large for one ONNX file (over 2 GB of weights: ViTPose-H) is a :class:`UserError`.
    """
    weight_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    if weight_bytes > MAX_GRAPH_BYTES:
        raise UserError(
            f"{cfg.model.family} {cfg.model.backbone}: {weight_bytes / 1e9:.1f} GB of weights do not fit in one "
            "ONNX file (2 GB at most); use backend 'torch'"
        )
    import onnx  # optional: needed by torch's exporter too

    width, height = cfg.model.input_size
    example = torch.zeros((EXAMPLE_BATCH, height, width, 3), dtype=torch.uint8)
    program = torch.onnx.export(
        CropsInput(model, cfg.model.channel_order).eval(),
        (example,),
        dynamo=True,
        verbose=False,
        input_names=[INPUT_NAME],
        output_names=list(OUTPUT_NAMES[cfg.codec.type]),
        dynamic_shapes=({0: torch.export.Dim("batch")},),
    )
    proto = program.model_proto
    onnx.helper.set_model_props(proto, metadata(cfg) | ({FINGERPRINT_KEY: fingerprint} if fingerprint else {}))
    return proto.SerializeToString()
