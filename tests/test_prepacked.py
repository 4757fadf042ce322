"""Packed oneDNN convolutions in the CPU inference copy: the same outputs in fp32, bf16 nearer fp32 than autocast."""

from __future__ import annotations

import pytest
import torch
from toppose.common.config import Config
from toppose.pose.models import build_network, prepacked
from toppose.pose.models.inputs import inference_copy
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

CPU = torch.device("cpu")
FAMILIES = [("rtmpose", "cspnext_t"), ("hrnet", "hrnet_w32"), ("vitpose", "vit_s"), ("simplebaseline", "resnet18")]

pytestmark = pytest.mark.skipif(not prepacked.available(CPU), reason="this PyTorch has no oneDNN on the CPU")


def small_network(family: str, backbone: str) -> nn.Module:
    cfg = Config()
    cfg.model.family, cfg.model.backbone = family, backbone
    cfg.model.input_size, cfg.model.heatmap_size = (64, 96), (16, 24)
    cfg.model.num_deconv = 2 if family == "vitpose" else 3
    torch.manual_seed(0)
    return build_network(cfg.model).eval()


def outputs(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
    out = model(images)
    return tuple(o.float() for o in (out if isinstance(out, tuple) else (out,)))


@pytest.mark.parametrize(("family", "backbone"), FAMILIES)
def test_a_packed_fp32_copy_gives_the_unpacked_outputs_at_every_batch_size(family: str, backbone: str) -> None:
    """One image and several get different oneDNN weight layouts; both, in either order, match the plain copy."""
    model = small_network(family, backbone)
    packed, plain = inference_copy(model, CPU), inference_copy(model, CPU, prepack=False)
    images = torch.randn(3, 3, 96, 64).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        for batch in (images[:1], images, images[1:2]):
            for got, want in zip(outputs(packed, batch), outputs(plain, batch), strict=True):
                torch.testing.assert_close(got, want, rtol=0, atol=1e-5 * want.abs().max().item())


def test_every_rtmpose_convolution_and_silu_is_packed_and_fused() -> None:
    model = small_network("rtmpose", "cspnext_t")
    copy = inference_copy(model, CPU, torch.bfloat16)
    convolutions = sum(isinstance(m, nn.Conv2d) for m in model.modules())
    packed = [m for m in copy.modules() if isinstance(m, prepacked.PackedConv2d)]
    assert len(packed) == convolutions and not any(isinstance(m, nn.Conv2d | nn.SiLU) for m in copy.modules())
    assert {m.dtype for m in copy.backbone.modules() if isinstance(m, prepacked.PackedConv2d)} == {torch.bfloat16}
    assert {m.dtype for m in copy.head.modules() if isinstance(m, prepacked.PackedConv2d)} == {torch.float32}
    assert sum(m.activation == "swish" for m in packed) == sum(isinstance(m, nn.SiLU) for m in model.modules())


def test_an_fp16_copy_is_not_packed() -> None:
    copy = inference_copy(small_network("rtmpose", "cspnext_t"), CPU, torch.float16)
    assert not any(isinstance(m, prepacked.PackedConv2d) for m in copy.modules())


def test_rtmpose_s_fused_silu_brings_bf16_features_nearer_fp32_than_autocast() -> None:
    """The SiLU inside the convolution acts on the float32 accumulator, so bf16 rounds once, not twice."""
    model = small_network("rtmpose", "cspnext_s")
    images = torch.randn(4, 3, 96, 64).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        reference = inference_copy(model, CPU, prepack=False).backbone(images)
        with torch.autocast("cpu", torch.bfloat16):
            autocast = inference_copy(model, CPU, prepack=False).backbone(images).float()
            packed = inference_copy(model, CPU, torch.bfloat16).backbone(images).float()
    autocast_error = (autocast - reference).abs().mean().item()
    packed_error = (packed - reference).abs().mean().item()
    assert 0 < packed_error < autocast_error


def test_flop_counting_counts_a_packed_convolution_as_the_convolution() -> None:
    model = small_network("rtmpose", "cspnext_t")
    images = torch.randn(2, 3, 96, 64)
    counts = []
    for prepack in (False, True):
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            inference_copy(model, CPU, prepack=prepack)(images)
        counts.append(counter.get_total_flops())
    assert counts[0] == counts[1] > 0
