"""Per-epoch cosine schedule with linear warm-up for supervised fine-tuning (docs/reference.md §4.4, §9.8).

The official scheduler (timm ``CosineLRScheduler``: ``t_initial=E``, ``warmup_t=W``, ``warmup_lr_init=0.01·lr``,
``lr_min=0.002·lr``, no ``warmup_prefix``) is stepped at the **end** of each epoch, so 0-based epoch ``e`` trains
with ``lr(t=e)``::

    lr_g(t) = init + t · (base_g − init) / W                         t < W
    lr_g(t) = lr_min + ½ (base_g − lr_min) (1 + cos(π t / E))       t ≥ W

with one shared ``init`` and ``lr_min`` for every group. Consequences (docs/reference.md §9.8): epoch 1 trains at 1 % of the
base lr for *all* groups (the bias lr ×2 is ignored there), the peak ``base`` is never used (3.80e-4 instead of
4e-4 at BASE_LR 4e-4), and lr drops by 2 % between the last warm-up epoch and the first cosine epoch.

Two behaviours, both here:

* ``official=True`` — exactly the numbers above (to reproduce released results);
* ``official=False`` (default) — the evident intent: each group warms up linearly from 1 % of *its own* base lr
  (bias groups included) and reaches its peak at epoch ``W``; the cosine then runs over the remaining ``E − W``
  epochs (timm's ``warmup_prefix=True``) down towards ``min_lr_factor ·`` its base lr. Epoch 0 still trains at
  1 %, so the start is as gentle as the official one.

The schedule is a pure function of the epoch, so resuming needs no scheduler state.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch

__all__ = ["WarmupCosineLR"]


class WarmupCosineLR:
    """Per-epoch learning rates of every parameter group (module docstring).

    Args:
        base_lrs: the peak lr of each parameter group (bias groups already × ``bias_lr_factor``).
        epochs: E, total epochs.
        warmup_epochs: W (0 = no warm-up).
        warmup_lr_factor: warm-up start as a fraction of the base lr (0.01).
        min_lr_factor: floor of the cosine as a fraction of the base lr (0.002).
        base_lr: the config's ``BASE_LR``, which sets the official shared ``init``/``lr_min``; default
            ``min(base_lrs)`` (the weight groups' lr when a bias factor ≥ 1 is used).
        official: reproduce the official numbers (module docstring).
    """

    def __init__(self, base_lrs: Sequence[float], epochs: int, warmup_epochs: int, warmup_lr_factor: float = 0.01,
                 min_lr_factor: float = 0.002, *, base_lr: float | None = None, official: bool = False) -> None:
        if epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {epochs}")
        if not 0 <= warmup_epochs <= epochs:
            raise ValueError(f"warmup_epochs={warmup_epochs} must lie in [0, epochs={epochs}]")
        if not base_lrs:
            raise ValueError("base_lrs is empty: the optimizer has no parameter groups")
        self.base_lrs = [float(v) for v in base_lrs]
        self.epochs = epochs
        self.warmup_epochs = warmup_epochs
        self.warmup_lr_factor = warmup_lr_factor
        self.min_lr_factor = min_lr_factor
        self.base_lr = float(min(self.base_lrs) if base_lr is None else base_lr)
        self.official = official

    def _one(self, base: float, e: int) -> float:
        E, W = self.epochs, self.warmup_epochs
        if self.official:
            init, lr_min = self.warmup_lr_factor * self.base_lr, self.min_lr_factor * self.base_lr
            if e < W:
                return init + e * (base - init) / W
            return lr_min + 0.5 * (base - lr_min) * (1 + math.cos(math.pi * e / E))
        init, lr_min = self.warmup_lr_factor * base, self.min_lr_factor * base
        if e < W:
            return init + e * (base - init) / W
        return lr_min + 0.5 * (base - lr_min) * (1 + math.cos(math.pi * (e - W) / (E - W)))

    def lrs(self, epoch: int) -> list[float]:
        """The lr of every group while training 0-based ``epoch``."""
        if not 0 <= epoch < self.epochs:
            raise ValueError(f"epoch {epoch} outside [0, {self.epochs})")
        return [self._one(b, epoch) for b in self.base_lrs]

    def apply(self, optimizer: torch.optim.Optimizer, epoch: int) -> list[float]:
        """Set every group's lr for ``epoch``; returns the values."""
        if len(optimizer.param_groups) != len(self.base_lrs):
            raise ValueError(f"optimizer has {len(optimizer.param_groups)} groups, schedule {len(self.base_lrs)}")
        values = self.lrs(epoch)
        for group, lr in zip(optimizer.param_groups, values):
            group["lr"] = lr
        return values

    def __repr__(self) -> str:
        return (f"WarmupCosineLR(epochs={self.epochs}, warmup_epochs={self.warmup_epochs}, "
                f"warmup_lr_factor={self.warmup_lr_factor}, min_lr_factor={self.min_lr_factor}, "
                f"official={self.official})")
