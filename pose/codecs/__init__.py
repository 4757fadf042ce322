"""Codecs, one module each, in the manner of MMPose 1.x: heatmaps (MSRA/UDP targets, argmax/DARK decoding)
and SimCC coordinate classification. The pixel convention is not theirs: :mod:`pose.geometry` owns it."""

from __future__ import annotations

from toppose.common.config import CODEC_TYPES, Config
from toppose.common.errors import UserError
from toppose.pose.codecs.base import Codec, Outputs, TensorOutputs
from toppose.pose.codecs.heatmap import DECODE_METHODS, HeatmapCodec
from toppose.pose.codecs.simcc import SimCCCodec

__all__ = [
    "CODEC_TYPES",
    "DECODE_METHODS",
    "Codec",
    "HeatmapCodec",
    "Outputs",
    "SimCCCodec",
    "TensorOutputs",
    "build_codec",
]


def build_codec(cfg: Config) -> Codec:
    """The codec of a model setup (``codec.type``)."""
    codec = cfg.codec
    if codec.type == "heatmap":
        return HeatmapCodec(tuple(cfg.model.heatmap_size), codec.sigma, codec.decode, codec.blur_kernel)
    if codec.type == "simcc":
        return SimCCCodec(tuple(cfg.model.input_size), codec.split_ratio, tuple(codec.simcc_sigma))
    raise UserError(f"codec.type: unknown codec '{codec.type}' (choose from {', '.join(CODEC_TYPES)})")
