"""Supervised ReID losses: ID cross-entropy and batch-hard triplet (docs/reference.md §4.2, ``loss/make_loss.py``).

Official setting (every SSL config): ``softmax_triplet`` → loss = 1.0 · CE(logits, pid) + 1.0 · triplet, with

* CE without label smoothing (``IF_LABELSMOOTH: 'off'``); ``label_smoothing=ε`` gives TransReID's
  ``CrossEntropyLabelSmooth`` targets (1 − ε)·onehot + ε/C, which equal PyTorch's ``label_smoothing=ε``;
* batch-hard mining on the Euclidean distance (squared distance clamped at 1e-12, then sqrt) of the **pre-BN**
  feature, not L2-normalised; hardest positive = farthest same-id sample (the anchor itself included, as in the
  official mask), hardest negative = closest other-id sample;
* ``NO_MARGIN: True`` → soft margin ``mean log(1 + exp(d_ap − d_an))``; a fixed ``margin`` m gives
  ``mean max(0, d_ap − d_an + m)`` (``MarginRankingLoss``).

Distances and losses are computed in float32 even under autocast.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["pairwise_euclidean", "hard_example_mining", "batch_hard_triplet_loss", "id_loss", "ReIDLoss",
           "LossParts"]


def pairwise_euclidean(x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
    """Euclidean distances sqrt(clamp(‖x‖² + ‖y‖² − 2 x·y, 1e-12)) in float32 (official ``euclidean_dist``)."""
    x = x.float()
    y = x if y is None else y.float()
    sq = (x * x).sum(1, keepdim=True) + (y * y).sum(1).unsqueeze(0) - 2.0 * x @ y.t()
    return sq.clamp(min=1e-12).sqrt()


def hard_example_mining(dist: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per anchor: (distance to the hardest positive, distance to the hardest negative).

    Raises ``ValueError`` when an anchor has no negative in the batch (a P×K batch needs P ≥ 2).
    """
    if dist.ndim != 2 or dist.shape[0] != dist.shape[1] or labels.shape[0] != dist.shape[0]:
        raise ValueError(f"need a square (N, N) distance matrix and N labels; got {tuple(dist.shape)} and "
                         f"{tuple(labels.shape)}")
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    if bool(same.all(dim=1).any()):
        raise ValueError("batch-hard triplet needs at least two identities per batch (an anchor has no negative)")
    d_ap = dist.masked_fill(~same, float("-inf")).amax(dim=1)
    d_an = dist.masked_fill(same, float("inf")).amin(dim=1)
    return d_ap, d_an


def batch_hard_triplet_loss(feat: torch.Tensor, labels: torch.Tensor, margin: float | None = None) -> torch.Tensor:
    """Batch-hard triplet loss on ``feat`` (B, D): soft margin when ``margin`` is None, else a hinge at ``margin``."""
    d_ap, d_an = hard_example_mining(pairwise_euclidean(feat), labels)
    if margin is None:
        return F.softplus(d_ap - d_an).mean()  # = SoftMarginLoss(d_an - d_ap, y=1)
    if margin < 0:
        raise ValueError(f"triplet margin must be >= 0 or None (soft margin), got {margin}")
    return F.relu(d_ap - d_an + margin).mean()  # = MarginRankingLoss(margin)(d_an, d_ap, y=1)


def id_loss(logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Cross-entropy on the classifier logits (float32), optionally label-smoothed."""
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= logits.shape[1]):
        raise ValueError(f"labels must lie in [0, {logits.shape[1]}) (the classifier's identities); got "
                         f"[{int(labels.min())}, {int(labels.max())}] — relabel the training pids to 0..N-1")
    return F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)


@dataclass
class LossParts:
    """The total loss and its parts (the parts detached)."""

    total: torch.Tensor
    id: torch.Tensor
    triplet: torch.Tensor
    accuracy: torch.Tensor  # ID classification accuracy on the batch


class ReIDLoss(nn.Module):
    """``id_weight · CE + triplet_weight · triplet`` (docs/reference.md §4.2; weights 1.0 and 1.0 in every config)."""

    def __init__(self, label_smoothing: float = 0.0, margin: float | None = None, id_weight: float = 1.0,
                 triplet_weight: float = 1.0) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing
        self.margin = margin
        self.id_weight = id_weight
        self.triplet_weight = triplet_weight

    def forward(self, logits: torch.Tensor, feat: torch.Tensor, labels: torch.Tensor) -> LossParts:
        ce = id_loss(logits, labels, self.label_smoothing)
        tri = batch_hard_triplet_loss(feat, labels, self.margin)
        total = self.id_weight * ce + self.triplet_weight * tri
        acc = (logits.detach().argmax(1) == labels).float().mean()
        return LossParts(total, ce.detach(), tri.detach(), acc)

    def extra_repr(self) -> str:
        margin = "soft" if self.margin is None else self.margin
        return f"label_smoothing={self.label_smoothing}, margin={margin}, weights=({self.id_weight}, {self.triplet_weight})"
