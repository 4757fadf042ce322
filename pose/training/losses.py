"""Training losses, one per codec, as the families' published training uses them.

Heatmaps (SimpleBaseline, HRNet, ViTPose): target-weighted MSE, optionally over the hardest joints only.
SimCC (RTMPose): the KL divergence of MMPose's ``KLDiscretLoss`` as the RTMPose configs set it up
(``beta=10``, ``label_softmax=True`` with its default ``label_beta=10``, ``use_target_weight=True``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from toppose.pose.training.config import TrainConfig, loss_kind


def heatmap_loss(
    predicted: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, kind: str = "mse", topk: int = 8
) -> torch.Tensor:
    """Target-weighted heatmap MSE: ``0.5 * mean((w * (pred - target))^2)`` over batch, joints and pixels.

    ``ohkm_mse`` (online hard keypoint mining) averages only each example's ``topk`` largest joint losses.
    """
    per_joint = 0.5 * (predicted - target).square().mean(dim=(2, 3)) * weights.square()
    if kind == "ohkm_mse":
        return per_joint.topk(min(topk, per_joint.shape[1]), dim=1).values.mean()
    return per_joint.mean()


def simcc_loss(
    predicted: Sequence[torch.Tensor],
    labels: Sequence[torch.Tensor],
    weights: torch.Tensor,
    beta: float = 10.0,
    label_beta: float = 10.0,
    label_softmax: bool = True,
) -> torch.Tensor:
    """KL divergence between the label distributions and ``softmax(beta * logits)``, per joint and axis.

    ``predicted`` and ``labels`` are the x and y vectors ``(N, K, bins)``; with ``label_softmax`` the labels
    become ``softmax(label_beta * labels)``. Each vector's pointwise KL terms are averaged over its bins,
    weighted by ``weights`` ``(N, K)`` and summed over both axes and the joints, then divided by ``K``, as
    MMPose's ``KLDiscretLoss`` does; it is also divided by ``N`` here (MMPose sums over the batch), so the
    value does not grow with the batch and a distributed run averages to the single-process loss.
    """
    total = weights.new_zeros(())
    for logits, target in zip(predicted, labels, strict=True):
        log_p = F.log_softmax(logits * beta, dim=-1)
        q = F.softmax(target * label_beta, dim=-1) if label_softmax else target
        total = total + (F.kl_div(log_p, q, reduction="none").mean(dim=-1) * weights).sum()
    return total / weights.numel()


def training_loss(
    train_cfg: TrainConfig,
    codec_type: str,
    predicted: Sequence[torch.Tensor],
    targets: Sequence[torch.Tensor],
    weights: torch.Tensor,
) -> torch.Tensor:
    """The loss of a batch: the network's outputs against the codec's targets, as ``train.loss`` says."""
    kind = loss_kind(train_cfg, codec_type)
    if kind == "kl_discrete":
        beta, label_beta, label_softmax = train_cfg.kl_beta, train_cfg.kl_label_beta, train_cfg.kl_label_softmax
        return simcc_loss(predicted, targets, weights, beta, label_beta, label_softmax)
    return heatmap_loss(predicted[0], targets[0], weights, kind, train_cfg.ohkm_topk)
