"""The pose network's arithmetic: fp32, bf16 or fp16 autocast, or "auto" (bf16 where the CPU does it natively).

"auto" follows OpenVINO's CPU plugin, which runs bf16 by default on processors with native bf16 dot
products (AVX512-BF16 or AMX) and fp32 elsewhere: emulated bf16 is slower than fp32. Under "auto" the
network runs bf16 autocast only with the torch backend on such a CPU; with ONNX Runtime (fp32 only),
on a GPU, or on another CPU it runs fp32.
"""

from __future__ import annotations

import torch
from toppose.common.config import InferenceConfig

AUTOCAST_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}  # autocast dtype of each precision


def native_bf16() -> bool:
    """Whether this CPU computes bf16 dot products in hardware (AVX512-BF16 or AMX tiles)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def resolved_precision(inference: InferenceConfig) -> str:
    """``inference.precision`` with "auto" resolved (see the module doc): "fp32", "bf16" or "fp16"."""
    if inference.precision != "auto":
        return inference.precision
    on_cpu = torch.device(inference.device).type == "cpu"
    return "bf16" if inference.backend == "torch" and on_cpu and native_bf16() else "fp32"


def describe_precision(inference: InferenceConfig) -> str:
    """The arithmetic in words, e.g. "bf16 autocast (auto)" or "fp32"."""
    precision = resolved_precision(inference)
    words = precision if precision == "fp32" else f"{precision} autocast"
    return words + (" (auto)" if inference.precision == "auto" else "")
