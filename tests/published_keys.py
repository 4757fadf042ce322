"""State-dict key names and shapes of MMPose's published checkpoints, written down from the published sources'
construction rules (MMDetection's CSPNeXt and MMPose's RTMCCHead; MMPose's CSPNeXtPAFPN and RTMWHead; MMPose's
HRNet and HeatmapHead; mmpretrain's VisionTransformer as ViTPose configures it; torchvision's ResNet with the
SimpleBaseline head), independently of this project's modules: the reference the model-zoo tests check our
networks against.
"""

from __future__ import annotations

import torch
import torchvision

K = 17
Shapes = dict[str, tuple[int, ...]]


def _bn(prefix: str, channels: int) -> Shapes:
    shapes = {f"{prefix}.{name}": (channels,) for name in ("weight", "bias", "running_mean", "running_var")}
    shapes[f"{prefix}.num_batches_tracked"] = ()
    return shapes


def _conv_module(prefix: str, cin: int, cout: int, kernel: int, groups: int = 1) -> Shapes:
    """mmcv ConvModule: ``conv`` (no bias) and ``bn``."""
    return {f"{prefix}.conv.weight": (cout, cin // groups, kernel, kernel), **_bn(f"{prefix}.bn", cout)}


def _csp_layer(prefix: str, cin: int, cout: int, blocks: int, attention: bool) -> Shapes:
    """CSPLayer (expand 0.5) of CSPNeXt blocks (3x3, then a 5x5 depthwise-separable convolution), with or without
    channel attention."""
    mid = cout // 2
    shapes = _conv_module(f"{prefix}.main_conv", cin, mid, 1) | _conv_module(f"{prefix}.short_conv", cin, mid, 1)
    shapes |= _conv_module(f"{prefix}.final_conv", 2 * mid, cout, 1)
    for block in range(blocks):
        b = f"{prefix}.blocks.{block}"
        shapes |= _conv_module(f"{b}.conv1", mid, mid, 3)
        shapes |= _conv_module(f"{b}.conv2.depthwise_conv", mid, mid, 5, groups=mid)
        shapes |= _conv_module(f"{b}.conv2.pointwise_conv", mid, mid, 1)
    if attention:
        shapes |= {f"{prefix}.attention.fc.weight": (2 * mid, 2 * mid, 1, 1), f"{prefix}.attention.fc.bias": (2 * mid,)}
    return shapes


def _cspnext_keys(deepen: float, widen: float) -> Shapes:
    """CSPNeXt P5 (expand 0.5, channel attention, SPP at stage 4) under ``backbone.``."""
    shapes: Shapes = {}
    half, stem = int(64 * widen // 2), int(64 * widen)
    for index, (cin, cout) in enumerate([(3, half), (half, half), (half, stem)]):
        shapes |= _conv_module(f"backbone.stem.{index}", cin, cout, 3)
    arch = [(64, 128, 3, False), (128, 256, 6, False), (256, 512, 6, False), (512, 1024, 3, True)]
    for stage, (cin, cout, blocks, spp) in enumerate(arch, start=1):
        cin, cout, n = int(cin * widen), int(cout * widen), max(round(blocks * deepen), 1)
        prefix = f"backbone.stage{stage}"
        shapes |= _conv_module(f"{prefix}.0", cin, cout, 3)
        if spp:
            shapes |= _conv_module(f"{prefix}.1.conv1", cout, cout // 2, 1)
            shapes |= _conv_module(f"{prefix}.1.conv2", 4 * (cout // 2), cout, 1)
        shapes |= _csp_layer(f"{prefix}.{2 if spp else 1}", cout, cout, n, attention=True)
    return shapes


def _gau_and_classifiers(input_size: tuple[int, int]) -> Shapes:
    """RTMCCBlock (256 in and out, expansion 2, s 128, no relative bias) and the SimCC classifiers (split 2)."""
    width, height = input_size
    return {
        "head.gau.gamma": (2, 128),
        "head.gau.beta": (2, 128),
        "head.gau.o.weight": (256, 512),
        "head.gau.uv.weight": (2 * 512 + 128, 256),
        "head.gau.ln.g": (1,),
        "head.gau.res_scale.scale": (256,),
        "head.cls_x.weight": (2 * width, 256),
        "head.cls_y.weight": (2 * height, 256),
    }


def rtmpose_keys(deepen: float, widen: float, input_size: tuple[int, int], out_channels: int = K) -> Shapes:
    """CSPNeXt P5 + RTMCCHead (7x7 convolution with bias, GAU 256/512/128, split 2) with ``out_channels``
    keypoints (the configs' ``out_channels``: 17 for COCO, 26 for Body8-Halpe26, 133 for COCO-WholeBody)."""
    width, height = input_size
    channels, tokens = int(1024 * widen), (width // 32) * (height // 32)
    shapes = _cspnext_keys(deepen, widen) | _gau_and_classifiers(input_size)
    return shapes | {
        "head.final_layer.weight": (out_channels, channels, 7, 7),
        "head.final_layer.bias": (out_channels,),
        "head.mlp.0.g": (1,),
        "head.mlp.1.weight": (256, tokens),
    }


def rtmw_keys(deepen: float, widen: float, input_size: tuple[int, int], out_channels: int = 133) -> Shapes:
    """CSPNeXt P5 giving stages 2-4 + CSPNeXtPAFPN (``in_channels`` those stages' widths, no ``out_channels``, 2 CSP
    blocks, expand 0.5, no channel attention) + RTMWHead (``in_channels`` the widest, 7x7 ConvModules with BN,
    pixel shuffle 2, two 128-wide token MLPs, the RTMCC GAU, split 2), as the rtmw-{m,l,x} configs set them."""
    c = [int(channels * widen) for channels in (256, 512, 1024)]
    shapes = _cspnext_keys(deepen, widen)
    for index, level in enumerate(range(len(c) - 1, 0, -1)):  # top-down, from the coarsest map
        shapes |= _conv_module(f"neck.reduce_layers.{index}", c[level], c[level - 1], 1)
        shapes |= _csp_layer(f"neck.top_down_blocks.{index}", 2 * c[level - 1], c[level - 1], 2, attention=False)
    for level in range(len(c) - 1):  # bottom-up, from the finest map
        shapes |= _conv_module(f"neck.downsamples.{level}", c[level], c[level], 3)
        shapes |= _csp_layer(f"neck.bottom_up_blocks.{level}", 2 * c[level], c[level + 1], 2, attention=False)
    width, height = input_size
    top, tokens = c[-1], (width // 32) * (height // 32)
    shapes |= _conv_module("head.final_layer", top, out_channels, 7)
    shapes |= _conv_module("head.conv_dec", top // 4, top // 4, 7)
    shapes |= _conv_module("head.final_layer2", top // 2 + top // 4, out_channels, 7)
    shapes |= _gau_and_classifiers(input_size)
    return shapes | {
        "head.mlp.0.g": (1,),
        "head.mlp.1.weight": (128, tokens),
        "head.mlp2.0.g": (1,),
        "head.mlp2.1.weight": (128, 4 * tokens),
    }


def _plain_conv_bn(prefix: str, cin: int, cout: int, kernel: int) -> Shapes:
    """``Sequential(conv, bn[, relu])`` entries ``.0`` and ``.1``."""
    return {f"{prefix}.0.weight": (cout, cin, kernel, kernel), **_bn(f"{prefix}.1", cout)}


def hrnet_keys(width: int, head_prefix: str = "head.") -> Shapes:
    """HRNet (stages 2-4: 1, 4, 3 modules of 4 basic blocks; last module fuses into branch 0) + 1x1 head."""
    shapes: Shapes = {"backbone.conv1.weight": (64, 3, 3, 3), "backbone.conv2.weight": (64, 64, 3, 3)}
    shapes |= _bn("backbone.bn1", 64) | _bn("backbone.bn2", 64)
    for block in range(4):
        cin, prefix = (64 if block == 0 else 256), f"backbone.layer1.{block}"
        shapes |= {f"{prefix}.conv1.weight": (64, cin, 1, 1), f"{prefix}.conv2.weight": (64, 64, 3, 3),
                   f"{prefix}.conv3.weight": (256, 64, 1, 1)}  # fmt: skip
        shapes |= _bn(f"{prefix}.bn1", 64) | _bn(f"{prefix}.bn2", 64) | _bn(f"{prefix}.bn3", 256)
    shapes |= {"backbone.layer1.0.downsample.0.weight": (256, 64, 1, 1)} | _bn("backbone.layer1.0.downsample.1", 256)
    previous = [256]
    for stage, modules in ((2, 1), (3, 4), (4, 3)):
        channels = [width * 2**b for b in range(stage)]
        t = f"backbone.transition{stage - 1}"
        for i, c in enumerate(channels):
            if i < len(previous) and previous[i] != c:
                shapes |= _plain_conv_bn(f"{t}.{i}", previous[i], c, 3)
            elif i >= len(previous):
                shapes |= _plain_conv_bn(f"{t}.{i}.0", previous[-1], c, 3)
        for m in range(modules):
            prefix = f"backbone.stage{stage}.{m}"
            for b, c in enumerate(channels):
                for block in range(4):
                    p = f"{prefix}.branches.{b}.{block}"
                    shapes |= {f"{p}.conv1.weight": (c, c, 3, 3), f"{p}.conv2.weight": (c, c, 3, 3)}
                    shapes |= _bn(f"{p}.bn1", c) | _bn(f"{p}.bn2", c)
            outputs = 1 if (stage == 4 and m == modules - 1) else len(channels)
            for i in range(outputs):
                for j, cj in enumerate(channels):
                    f = f"{prefix}.fuse_layers.{i}.{j}"
                    if j > i:
                        shapes |= _plain_conv_bn(f, cj, channels[i], 1)
                    for k in range(i - j):
                        shapes |= _plain_conv_bn(f"{f}.{k}", cj, channels[i] if k == i - j - 1 else cj, 3)
        previous = channels
    return shapes | {f"{head_prefix}final_layer.weight": (K, width, 1, 1), f"{head_prefix}final_layer.bias": (K,)}


VIT = {"vit_s": (384, 12, 1536), "vit_b": (768, 12, 3072), "vit_l": (1024, 24, 4096), "vit_h": (1280, 32, 5120)}


def vitpose_keys(arch: str, classic: bool, class_token_slot: bool = False) -> Shapes:
    """mmpretrain ViT (patch 16, no class token, final ``ln1``) at 256x192 + classic or simple heatmap head."""
    dim, depth, hidden = VIT[arch]
    shapes: Shapes = {
        "backbone.pos_embed": (1, 192 + int(class_token_slot), dim),
        "backbone.patch_embed.projection.weight": (dim, 3, 16, 16),
        "backbone.patch_embed.projection.bias": (dim,),
        "backbone.ln1.weight": (dim,),
        "backbone.ln1.bias": (dim,),
    }
    for layer in range(depth):
        p = f"backbone.layers.{layer}"
        shapes |= {f"{p}.{n}.{w}": (dim,) for n in ("ln1", "ln2") for w in ("weight", "bias")}
        shapes |= {f"{p}.attn.qkv.weight": (3 * dim, dim), f"{p}.attn.qkv.bias": (3 * dim,),
                   f"{p}.attn.proj.weight": (dim, dim), f"{p}.attn.proj.bias": (dim,),
                   f"{p}.ffn.layers.0.0.weight": (hidden, dim), f"{p}.ffn.layers.0.0.bias": (hidden,),
                   f"{p}.ffn.layers.1.weight": (dim, hidden), f"{p}.ffn.layers.1.bias": (dim,)}  # fmt: skip
    if not classic:
        return shapes | {"head.final_layer.weight": (K, dim, 3, 3), "head.final_layer.bias": (K,)}
    shapes |= {"head.deconv_layers.0.weight": (dim, 256, 4, 4), "head.deconv_layers.3.weight": (256, 256, 4, 4)}
    shapes |= _bn("head.deconv_layers.1", 256) | _bn("head.deconv_layers.4", 256)
    return shapes | {"head.final_layer.weight": (K, 256, 1, 1), "head.final_layer.bias": (K,)}


def simplebaseline_keys(backbone: str) -> Shapes:
    """torchvision's ResNet trunk (its own state dict, less ``fc``) + three 256-channel deconvolutions + 1x1."""
    trunk = getattr(torchvision.models, backbone)()
    shapes = {k: tuple(v.shape) for k, v in trunk.state_dict().items() if not k.startswith("fc.")}
    cin = trunk.fc.in_features
    for index in range(3):
        shapes[f"deconv_layers.{3 * index}.weight"] = (cin, 256, 4, 4)
        shapes |= _bn(f"deconv_layers.{3 * index + 1}", 256)
        cin = 256
    return shapes | {"final_layer.weight": (K, 256, 1, 1), "final_layer.bias": (K,)}


def random_state(shapes: Shapes, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict of these shapes with distinct random values (counters as int64): for checking where values
    land, not for running (batch-norm variances may be negative)."""
    generator = torch.Generator().manual_seed(seed)
    return {
        key: torch.randint(0, 1000, shape, generator=generator) if key.endswith("num_batches_tracked")
        else torch.randn(shape, generator=generator)
        for key, shape in shapes.items()
    }  # fmt: skip
