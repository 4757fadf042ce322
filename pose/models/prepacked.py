"""Convolutions of the CPU inference copy run by oneDNN with their weights packed once, and the ReLU or SiLU
that follows a convolution applied inside it (a oneDNN post-op).

PyTorch's CPU convolution hands oneDNN plain weights, which oneDNN reorders into its blocked layout on every
call (about 5 % of RTMPose-s at batch 9 in bf16). :class:`PackedConv2d` keeps the reordered weights, one
packing for a batch of one crop and one for larger batches (oneDNN picks another layout for one image).
A fused ReLU is exact. A fused SiLU is computed on the convolution's float32 accumulator before the result
is rounded: in bf16 one rounding fewer than autocast's convolution-then-SiLU, in float32 oneDNN's SiLU to
float rounding. This is the weight packing and post-op fusion that ``torch.compile``'s freezing passes
apply (``torch.ops.mkldnn``), here without compiling.
"""

from __future__ import annotations

import torch
from torch import fx, nn
from torch.utils.flop_counter import conv_flop_count, flop_registry, register_flop_formula

ACTIVATIONS = {nn.ReLU: "relu", nn.SiLU: "swish"}  # activation module -> oneDNN post-op


def available(device: torch.device) -> bool:
    """Whether this PyTorch can run packed oneDNN convolutions on ``device`` (a CPU build with oneDNN)."""
    mkldnn = torch.ops.mkldnn
    return (
        device.type == "cpu"
        and torch.backends.mkldnn.is_available()
        and hasattr(mkldnn, "_convolution_pointwise")
        and hasattr(mkldnn, "_reorder_convolution_weight")
    )


def packable(module: nn.Module) -> bool:
    """A plain 2-d convolution with zero padding given in pixels (not "same"/"valid")."""
    return type(module) is nn.Conv2d and module.padding_mode == "zeros" and not isinstance(module.padding, str)


if available(torch.device("cpu")) and torch.ops.mkldnn._convolution_pointwise not in flop_registry:

    @register_flop_formula(torch.ops.mkldnn._convolution_pointwise)
    def _packed_convolution_flops(x_shape: list[int], w_shape: list[int], *args: object, out_shape: list[int],
                                  **kwargs: object) -> int:  # fmt: skip
        """What ``FlopCounterMode`` counts for a packed convolution: the plain convolution's FLOPs."""
        return conv_flop_count(x_shape, w_shape, out_shape)


class PackedConv2d(nn.Module):
    """``activation(conv(x))`` with ``conv``'s weights in ``dtype``, reordered for oneDNN at the first call of
    each batch kind (one image, several) and kept. The input is cast to ``dtype`` as autocast casts it."""

    def __init__(self, conv: nn.Conv2d, dtype: torch.dtype, activation: str = "none") -> None:
        super().__init__()
        self.dtype, self.activation = dtype, activation
        self.weight = conv.weight.detach().to(dtype).contiguous()
        self.bias = None if conv.bias is None else conv.bias.detach().to(dtype)
        self.settings = (list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups)
        self.packed: dict[bool, torch.Tensor] = {}  # one image? -> weights in oneDNN's layout for it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.dtype)
        single = x.shape[0] == 1
        weight = self.packed.get(single)
        if weight is None:
            weight = torch.ops.mkldnn._reorder_convolution_weight(self.weight, *self.settings, list(x.shape))
            self.packed[single] = weight
        return torch.ops.mkldnn._convolution_pointwise(x, weight, self.bias, *self.settings, self.activation, [], "")


def _activation(graph_module: fx.GraphModule, node: fx.Node) -> tuple[str, fx.Node | None]:
    """The oneDNN post-op of the activation module that alone uses ``node``'s output, if any."""
    users = list(node.users)
    if len(users) != 1 or users[0].op != "call_module":
        return "none", None
    kind = ACTIVATIONS.get(type(graph_module.get_submodule(str(users[0].target))))
    return (kind, users[0]) if kind else ("none", None)


def pack_convolutions(graph_module: fx.GraphModule, dtype: torch.dtype) -> int:
    """Replace, in place, every packable convolution of ``graph_module`` (a traced network whose batch norms
    are folded) by a :class:`PackedConv2d` computing in ``dtype``, its activation fused; returns the count."""
    graph, count = graph_module.graph, 0
    for node in list(graph.nodes):
        if node.op != "call_module" or not packable(conv := graph_module.get_submodule(str(node.target))):
            continue
        activation, user = _activation(graph_module, node)
        if user is not None:
            user.replace_all_uses_with(node)
            graph.erase_node(user)
        graph_module.add_submodule(str(node.target), PackedConv2d(conv, dtype, activation))
        count += 1
    graph.lint()
    graph_module.delete_all_unused_submodules()
    graph_module.recompile()
    return count
