"""Distributed training support: the process's device and rank under ``torchrun``, and cross-process batch norm.

``torchrun --nproc_per_node N`` sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK``; :func:`start_runtime`
then joins the process group (NCCL on CUDA, gloo on CPU). Batch-norm statistics are synchronised over
all processes so that a distributed step equals a single-process step on the same global batch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist
from toppose.common.weights import torch_device
from torch import nn


@dataclass(frozen=True)
class Runtime:
    """Where this process trains: its device, and its place in a distributed run."""

    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str) -> torch.device:
    """``name`` as a device; ``auto`` is CUDA where available, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    return torch_device(name)


def start_runtime(device_name: str) -> Runtime:
    """Pick the device and, under ``torchrun``, join the process group (NCCL on CUDA, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    device = resolve_device(device_name)
    if world_size == 1:
        return Runtime(device)
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    # Rank 0 validates while the others wait, so allow for a long validation.
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=timedelta(hours=4))
    return Runtime(device, dist.get_rank(), dist.get_world_size())


def stop_runtime(runtime: Runtime) -> None:
    """Leave the process group of a distributed run."""
    if runtime.distributed and dist.is_initialized():
        dist.destroy_process_group()


class _SumOverProcesses(torch.autograd.Function):
    """All-reduce (sum) whose gradient is the all-reduced gradient: every process's loss depends on every
    process's input through the sum."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, tensor: torch.Tensor) -> torch.Tensor:
        total = tensor.clone()
        dist.all_reduce(total)
        return total

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> torch.Tensor:
        total = grad.clone()
        dist.all_reduce(total)
        return total


class ProcessGroupBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d with training statistics over the whole global batch, through differentiable all-reduces.

    :class:`torch.nn.SyncBatchNorm` runs on GPUs only; this one serves gloo runs on CPU. Mean and
    variance are reduced in two passes (sum, then sum of squared deviations); gradients flow back
    through the reductions, so the result equals one batch norm over the concatenated batch.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dims = (0, 2, 3)
        count = torch.tensor([x.numel() // x.shape[1]], dtype=x.dtype, device=x.device)
        sums = _SumOverProcesses.apply(torch.cat([x.sum(dims), count]))
        total = sums[-1]
        mean = sums[:-1] / total
        centred = x - mean.view(1, -1, 1, 1)
        var = _SumOverProcesses.apply(centred.square().sum(dims)) / total
        with torch.no_grad():
            self.num_batches_tracked.add_(1)
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * total / (total - 1), self.momentum)
        scale = (self.weight * torch.rsqrt(var + self.eps)).view(1, -1, 1, 1)
        return centred * scale + self.bias.view(1, -1, 1, 1)


def synchronise_batchnorm(module: nn.Module, device: torch.device) -> nn.Module:
    """Swap every BatchNorm2d for its cross-process version: SyncBatchNorm on CUDA, else ProcessGroupBatchNorm."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(module)
    converted = module
    if type(module) is nn.BatchNorm2d:
        converted = ProcessGroupBatchNorm(module.num_features, module.eps, module.momentum)
        converted.load_state_dict(module.state_dict())
    for name, child in module.named_children():
        converted.add_module(name, synchronise_batchnorm(child, device))
    return converted
