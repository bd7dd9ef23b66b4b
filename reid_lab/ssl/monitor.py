"""Collapse monitoring for DINO: teacher entropy, batch-mean entropy, CLS similarity, and a guard that stops a dead run.

DINO can collapse in two ways (Caron et al. 2021, §5.3; FINDINGS.md "Why the ICS-like stem collapsed"):

* **uniform** — the centred teacher output is flat: per-sample teacher entropy → ln K and the loss → ln K.
  Centring pushes towards it; sharpening (τ_t = 0.04) pushes away. An ICS stem with a default-initialised token
  projection starts here (CLS cosine 0.9 between distinct images) and never leaves.
* **one prototype** — every image gets the same sharp target: the entropy of the batch-*mean* teacher
  distribution → 0 (and the per-sample entropy with it).

:class:`CollapseMonitor` keeps a window of per-step statistics and, once the learning-rate warm-up is over,
raises :class:`CollapseError` with a clear message if the window's mean says the run is stuck in either state.
:func:`mean_pairwise_cosine` is the feature-similarity check FINDINGS.md recommends at initialisation (< 0.5 on
a batch of distinct images).
"""
from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)


class CollapseError(RuntimeError):
    """The DINO run has collapsed (uniform or single-prototype teacher); continuing would waste compute."""


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) along the last dimension."""
    return -(probs * torch.log(probs.clamp_min(1e-30))).sum(-1)


def mean_pairwise_cosine(features: torch.Tensor) -> float:
    """Mean cosine similarity over all pairs of distinct rows of ``features`` (B, D); needs B ≥ 2."""
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"need a (B>=2, D) feature matrix, got shape {tuple(features.shape)}")
    f = F.normalize(features.detach().float(), dim=-1)
    sim = f @ f.T
    n = f.shape[0]
    return float((sim.sum() - sim.diagonal().sum()) / (n * (n - 1)))


@dataclass
class StepStats:
    """One step's monitoring numbers."""

    loss: float
    teacher_entropy: float
    batch_mean_entropy: float
    cls_cosine: float | None = None


class CollapseMonitor:
    """Watches DINO statistics and raises :class:`CollapseError` when a run is stuck after warm-up.

    Args:
        out_dim: K; ``ln K`` is the entropy of the uniform distribution.
        window: number of recent steps averaged for the decision.
        uniform_fraction: collapsed to uniform if mean teacher entropy **and** mean loss are ≥ this × ln K.
        min_batch_entropy_fraction: collapsed to one prototype if the mean batch-mean entropy is below this × ln K.
        init_cosine_warning: warn at the first step if teacher CLS features of distinct images are more similar.
    """

    def __init__(self, out_dim: int, window: int = 50, uniform_fraction: float = 0.98,
                 min_batch_entropy_fraction: float = 0.02, init_cosine_warning: float = 0.5):
        if out_dim < 2:
            raise ValueError(f"out_dim must be ≥ 2, got {out_dim}")
        if window < 1:
            raise ValueError(f"window must be ≥ 1, got {window}")
        self.ln_k = math.log(out_dim)
        self.window = window
        self.uniform_fraction = uniform_fraction
        self.min_batch_entropy_fraction = min_batch_entropy_fraction
        self.init_cosine_warning = init_cosine_warning
        self.recent: deque[StepStats] = deque(maxlen=window)
        self.steps = 0

    def update(self, stats: StepStats) -> None:
        if self.steps == 0 and stats.cls_cosine is not None and stats.cls_cosine > self.init_cosine_warning:
            logger.warning(
                "at the first step the teacher's CLS features of distinct images have mean cosine %.2f (> %.2f): "
                "the backbone maps every image to nearly the same vector and DINO may collapse to a uniform teacher "
                "(FINDINGS.md: zero-mean token projection init, teacher in train mode with its own BN buffers)",
                stats.cls_cosine, self.init_cosine_warning)
        self.recent.append(stats)
        self.steps += 1

    def summary(self) -> dict[str, float]:
        """Means over the current window (empty dict before the first step)."""
        if not self.recent:
            return {}
        n = len(self.recent)
        out = {
            "loss": sum(s.loss for s in self.recent) / n,
            "teacher_entropy": sum(s.teacher_entropy for s in self.recent) / n,
            "batch_mean_entropy": sum(s.batch_mean_entropy for s in self.recent) / n,
            "ln_out_dim": self.ln_k,
        }
        cos = [s.cls_cosine for s in self.recent if s.cls_cosine is not None]
        if cos:
            out["cls_cosine"] = sum(cos) / len(cos)
        return out

    def collapsed(self) -> str | None:
        """A description of the collapse if the full window shows one, else None."""
        if len(self.recent) < self.window:
            return None
        s = self.summary()
        if s["teacher_entropy"] >= self.uniform_fraction * self.ln_k and s["loss"] >= self.uniform_fraction * self.ln_k:
            return (f"uniform collapse: over the last {self.window} steps the teacher entropy averaged "
                    f"{s['teacher_entropy']:.3f} and the loss {s['loss']:.3f}, both at ln(out_dim) = {self.ln_k:.3f} "
                    f"(the centred teacher output is flat; CLS cosine {s.get('cls_cosine', float('nan')):.2f})")
        if s["batch_mean_entropy"] <= self.min_batch_entropy_fraction * self.ln_k:
            return (f"single-prototype collapse: over the last {self.window} steps the entropy of the batch-mean "
                    f"teacher distribution averaged {s['batch_mean_entropy']:.3f} (ln(out_dim) = {self.ln_k:.3f}): "
                    "every image gets the same target")
        return None

    def check(self, *, epoch: int, step: int) -> None:
        """Raise :class:`CollapseError` if :meth:`collapsed` finds a collapse."""
        reason = self.collapsed()
        if reason is not None:
            raise CollapseError(
                f"DINO run collapsed at epoch {epoch}, global step {step} — {reason}. Training stopped; the checkpoint "
                "of the last finished epoch is kept. Check the backbone init (mean CLS cosine of distinct images at "
                "step 0 should be < 0.5), a teacher temperature warm-up, a lower lr, or the augmentation strength; "
                "pass collapse_check=False to train on regardless.")


def __getattr__(name: str):
    """``plot_training_curves`` moved to :mod:`reid_lab.viz.dino`; this alias will be removed in the next release."""
    if name == "plot_training_curves":
        from ..viz.dino import plot_training_curves

        return plot_training_curves
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CollapseError", "CollapseMonitor", "StepStats", "entropy", "mean_pairwise_cosine", "plot_training_curves"]
