"""Controls for "what did pre-training learn?": pre-trained weights with their structure destroyed (issue 17).

Pre-trained weights can help fine-tuning through their per-layer *scale* alone: Raghu et al. (NeurIPS 2019,
"Transfusion") found that i.i.d. weights with each pre-trained layer's mean and variance recover much of the
speed-up of transfer. :func:`permute_entries_` builds the sharpest version of that control: every tensor of a
pre-trained backbone keeps exactly its own entries — so its mean, variance and whole value distribution — in a
random order. What such a backbone still gives a fine-tune is what the statistics explain; what it loses is what the
learned structure (which filter sees which pattern, which token attends where) explained.

``include`` limits the permutation to some tensors (e.g. ``("patch_embed.",)`` permutes only the ICS stem and keeps
the transformer's learned weights). Integer buffers (BatchNorm's ``num_batches_tracked``) are left alone.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

__all__ = ["permute_entries_"]


@torch.no_grad()
def permute_entries_(model: nn.Module, seed: int, include: Sequence[str] | None = None,
                     exclude: Sequence[str] = ()) -> list[str]:
    """Randomly permute the entries of every floating-point parameter and buffer of ``model``, in place.

    Args:
        model: the backbone (already holding the pre-trained weights).
        seed: the permutations' seed (one generator draws them all, in ``state_dict`` order).
        include: only tensors whose name starts with one of these prefixes (``None`` = all).
        exclude: tensors whose name starts with one of these prefixes are kept as they are.

    Returns:
        the names of the permuted tensors (tensors with one entry are listed but cannot change).
    """
    gen = torch.Generator().manual_seed(seed)
    permuted = []
    for name, tensor in model.state_dict(keep_vars=True).items():
        if not torch.is_floating_point(tensor):
            continue
        if include is not None and not name.startswith(tuple(include)):
            continue
        if exclude and name.startswith(tuple(exclude)):
            continue
        data = tensor.data if isinstance(tensor, nn.Parameter) else tensor
        order = torch.randperm(data.numel(), generator=gen).to(data.device)
        data.copy_(data.reshape(-1)[order].reshape(data.shape))
        permuted.append(name)
    if not permuted:
        raise ValueError(f"no floating-point tensor of {type(model).__name__} matches include={include!r} "
                         f"exclude={exclude!r}")
    return permuted
