"""BatchNorm statistics re-estimated on unlabelled images, without any gradient (AdaBN).

The ICS stem (docs/reference.md §2.2) holds BatchNorm layers (IBN's ``BN`` halves and ``conv.7``). A DINO run changes two
things in them: the learned affine parameters and filters, and the *running statistics* the teacher collected on
person images. :func:`reestimate_bn` gives a model the second part alone — the statistics of a set of images,
measured by forward passes in train mode under ``torch.no_grad()``.

What re-estimation can and cannot change:

* **frozen features** (eval mode: BN normalises with the running statistics) — a fresh model's running
  statistics are (0, 1), which leaves the stem's channel means in every token (ics.py docstring); re-estimated
  statistics remove them;
* **fine-tuning** runs in train mode, where BN normalises with each batch's own statistics and overwrites the
  running ones with momentum 0.1 (gone after ~50 steps), so re-estimation cannot change a fine-tuning curve beyond
  the first evaluations. That is why issue 11's "random + re-estimated BN" pre-training control equalled random
  weights by construction; the course study now uses :func:`reid_lab.models.permute_entries_` instead.

Its use here: the "BN-only adaptation" of UDA (notebook 05): the source model's statistics re-estimated on the
target, and the USL loop's BatchNorm refresh.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import torch
from torch import nn

logger = logging.getLogger(__name__)

__all__ = ["batchnorm_layers", "reestimate_bn"]


def batchnorm_layers(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    """Every BatchNorm layer of ``model`` that tracks running statistics (InstanceNorm excluded)."""
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


@torch.no_grad()
def reestimate_bn(model: nn.Module, batches: Iterable[torch.Tensor | Sequence], device: str | torch.device,
                  *, max_batches: int | None = None) -> int:
    """Replace the running statistics of every BatchNorm in ``model`` by their average over ``batches``.

    Each layer's statistics are reset and accumulated as a cumulative (equal-weight) average over the batches
    (``momentum=None``), so the result does not depend on the order of the batches; no parameter changes. A batch
    may be a tensor or a ``(images, ...)`` tuple as a ReID DataLoader yields. The model is returned to the mode
    it was in.

    Returns:
        the number of batches used (0 when ``model`` has no BatchNorm: nothing to do).

    Raises:
        ValueError: ``batches`` was empty while the model has BatchNorm layers.
    """
    layers = batchnorm_layers(model)
    if not layers:
        return 0
    was_training = model.training
    momenta = [m.momentum for m in layers]
    for m in layers:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch weighs the same
    model.train()
    used = 0
    try:
        for batch in batches:
            if max_batches is not None and used >= max_batches:
                break
            images = batch[0] if isinstance(batch, (list, tuple)) else batch
            model(images.to(device))
            used += 1
    finally:
        for m, momentum in zip(layers, momenta):
            m.momentum = momentum
        model.train(was_training)
    if used == 0:
        raise ValueError("reestimate_bn received no batches: pass a non-empty DataLoader of images")
    logger.info("re-estimated the statistics of %d BatchNorm layers on %d batches", len(layers), used)
    return used
