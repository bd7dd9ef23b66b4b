"""The cluster memory of Cluster Contrast with the hard-sample update (docs/reference.md §5.3).

One L2-normalised centroid per pseudo-identity, ``M`` of shape (C, D), initialised every epoch with the mean
feature of each cluster (:func:`cluster_centroids`). For a batch of features ``f`` (normalised again) with pseudo
labels ``y``:

* loss = cross-entropy of the logits ``f · Mᵀ / τ`` with ``y`` (τ = 0.05, ``--temp``);
* after the gradient has been taken, for every cluster present in the batch the **hardest** instance — the lowest
  similarity to the current centroid (the official variable is called ``median``) — moves it:
  ``c ← m·c + (1 − m)·x_hard``, then ``c ← c / ‖c‖`` (m = 0.2, ``--momentum``). Ties go to the first instance in
  batch order (``np.argmin``).

As in the official ``CM_Hard`` autograd function, the gradient with respect to ``f`` is ``grad · M`` with the memory
*before* the update, and the update runs inside ``backward``. It is vectorised (one scatter per batch instead of a
python loop over clusters and instances) and the memory is a registered buffer, so ``state_dict`` carries it.

Distributed training: the official code runs under ``nn.DataParallel``, so the memory saw the whole batch. Under DDP
each process holds a slice of it; :class:`ClusterMemory` all-gathers the (detached) features and labels of every
rank in rank order during ``forward`` and updates with the whole global batch, so the memories of all ranks stay
identical and equal to the single-process memory. The loss itself is the mean over the local slice; DDP's gradient
averaging turns that into the global mean for equal slices.
"""
from __future__ import annotations

import logging

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["ClusterMemory", "cluster_centroids", "hardest_per_cluster"]


def cluster_centroids(features: torch.Tensor, labels: torch.Tensor | np.ndarray) -> torch.Tensor:
    """L2-normalised mean feature of each cluster ``0..C-1`` (outliers, label −1, ignored): (C, D) float32.

    The official code stacks each cluster's features and takes ``mean(0)``, then ``F.normalize``; here one
    ``index_add_`` (the sums are in float64, so the order of summation does not matter).
    """
    labels = torch.as_tensor(np.asarray(labels), dtype=torch.long, device=features.device).reshape(-1)
    if features.ndim != 2 or features.shape[0] != labels.shape[0]:
        raise ValueError(f"need (N, D) features and N labels, got {tuple(features.shape)} and {tuple(labels.shape)}")
    keep = labels >= 0
    if not bool(keep.any()):
        raise ValueError("no clustered sample (every label is -1): cannot build a cluster memory")
    num_clusters = int(labels.max()) + 1
    counts = torch.bincount(labels[keep], minlength=num_clusters)
    if bool((counts == 0).any()):
        raise ValueError(f"cluster labels must be 0..C-1 without gaps; empty clusters {torch.nonzero(counts == 0)[:5].flatten().tolist()}")
    sums = torch.zeros(num_clusters, features.shape[1], dtype=torch.float64, device=features.device)
    sums.index_add_(0, labels[keep], features[keep].double())
    return F.normalize((sums / counts[:, None]).float(), dim=1)


def hardest_per_cluster(inputs: torch.Tensor, targets: torch.Tensor, memory: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """For every cluster in ``targets``: the row of ``inputs`` least similar to its centroid (first on ties).

    Returns ``(clusters, rows)``: the distinct cluster ids (ascending) and, for each, the index into ``inputs``.
    """
    sims = (inputs.float() * memory[targets].float()).sum(1)
    # Sort by (cluster, similarity, position): the first row of each cluster's run is its hardest instance.
    order = np.lexsort((np.arange(len(targets)), sims.detach().cpu().numpy(), targets.cpu().numpy()))
    order_t = torch.as_tensor(order, device=targets.device)
    sorted_targets = targets[order_t]
    first = torch.ones_like(sorted_targets, dtype=torch.bool)
    first[1:] = sorted_targets[1:] != sorted_targets[:-1]
    return sorted_targets[first], order_t[first]


class _HardMemoryProduct(torch.autograd.Function):
    """``inputs · memoryᵀ``; its backward returns ``grad · memory`` and then applies the hard-sample update."""

    @staticmethod
    def forward(ctx, inputs, update_inputs, update_targets, memory, momentum):  # type: ignore[override]
        ctx.memory, ctx.momentum = memory, momentum
        ctx.save_for_backward(update_inputs, update_targets)
        return inputs.mm(memory.t().to(inputs.dtype))

    @staticmethod
    def backward(ctx, grad_output):  # type: ignore[override]
        update_inputs, update_targets = ctx.saved_tensors
        memory, m = ctx.memory, ctx.momentum
        grad_inputs = grad_output.mm(memory.to(grad_output.dtype)) if ctx.needs_input_grad[0] else None
        with torch.no_grad():
            clusters, rows = hardest_per_cluster(update_inputs, update_targets, memory)
            moved = m * memory[clusters] + (1.0 - m) * update_inputs[rows].to(memory.dtype)
            memory[clusters] = F.normalize(moved, dim=1)
        return grad_inputs, None, None, None, None


class ClusterMemory(nn.Module):
    """Cluster-contrast memory with the hard-sample momentum update (module docstring, docs/reference.md §5.3).

    Args:
        centroids: (C, D) initial centroids (e.g. :func:`cluster_centroids`); stored normalised, float32.
        temperature: τ of the logits (0.05).
        momentum: m of the update (0.2; the *old* centroid's weight).

    ``memory(features, targets)`` returns the mean cross-entropy loss over the batch; calling ``backward`` on it
    updates :attr:`features` in place.
    """

    def __init__(self, centroids: torch.Tensor, temperature: float = 0.05, momentum: float = 0.2) -> None:
        super().__init__()
        if centroids.ndim != 2 or centroids.shape[0] < 1:
            raise ValueError(f"centroids must be a non-empty (C, D) matrix, got shape {tuple(centroids.shape)}")
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"momentum must be in [0, 1], got {momentum}")
        self.temperature = float(temperature)
        self.momentum = float(momentum)
        self.register_buffer("features", F.normalize(centroids.detach().float(), dim=1).clone())

    @property
    def num_clusters(self) -> int:
        return int(self.features.shape[0])

    def forward(self, inputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if inputs.ndim != 2 or inputs.shape[1] != self.features.shape[1]:
            raise ValueError(f"inputs must be (B, {self.features.shape[1]}), got {tuple(inputs.shape)}")
        targets = targets.to(self.features.device, torch.long)
        if targets.numel() and (int(targets.min()) < 0 or int(targets.max()) >= self.num_clusters):
            raise ValueError(f"targets must lie in [0, {self.num_clusters}), got [{int(targets.min())}, "
                             f"{int(targets.max())}] (outliers must be dropped before training)")
        inputs = F.normalize(inputs, dim=1)
        all_inputs, all_targets = _gather(inputs.detach().float()), _gather(targets)
        logits = _HardMemoryProduct.apply(inputs, all_inputs, all_targets, self.features, self.momentum)
        return F.cross_entropy(logits / self.temperature, targets)

    def extra_repr(self) -> str:
        return f"clusters={self.num_clusters}, dim={self.features.shape[1]}, temperature={self.temperature}, " \
               f"momentum={self.momentum}"


def _gather(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` of every rank in rank order (itself without a process group). Equal sizes required."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)
