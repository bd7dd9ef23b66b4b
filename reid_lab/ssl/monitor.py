"""Collapse monitoring for DINO: teacher entropy, batch-mean entropy, CLS similarity, and a guard that stops a dead run.

DINO can collapse in two ways (Caron et al. 2021, §5.3; docs/reference.md §11.4):

* **uniform** — the centred teacher output is flat: per-sample teacher entropy → ln K and the loss → ln K.
  Centring pushes towards it; sharpening (τ_t = 0.04) pushes away. An ICS stem with a default-initialised token
  projection starts here (CLS cosine 0.9 between distinct images) and never leaves.
* **one prototype** — every image gets the same sharp target: the entropy of the batch-*mean* teacher
  distribution → 0 (and the per-sample entropy with it).

:class:`CollapseMonitor` keeps a window of per-step statistics and, once the learning-rate warm-up is over,
raises :class:`CollapseError` with a clear message if the window's mean says the run is stuck in either state.
:func:`mean_pairwise_cosine` is the feature-similarity check docs/reference.md §11.4 recommends at initialisation (< 0.5 on
a batch of distinct images).
"""
from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

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
                "(docs/reference.md §11.4: zero-mean token projection init, teacher in train mode with its own BN buffers)",
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

    def drifting(self, entropy_fraction: float = 0.85, cosine: float = 0.9) -> str | None:
        """A warning if the window drifts towards a collapse without having reached the guard's thresholds.

        Towards **uniform**: mean teacher entropy ≥ ``entropy_fraction`` · ln K. Towards a **constant** feature:
        mean CLS cosine of distinct images ≥ ``cosine``. Either is how the first course run of the tiny profile
        ended (issue 17: entropy 75 % of ln K, cosine 0.88, rising); the run goes on, the log says so.
        """
        s = self.summary()
        if not s:
            return None
        notes = []
        if s["teacher_entropy"] >= entropy_fraction * self.ln_k:
            notes.append(f"teacher entropy {s['teacher_entropy']:.2f} = {100 * s['teacher_entropy'] / self.ln_k:.0f} % "
                         "of ln K (drifting towards uniform targets)")
        if s.get("cls_cosine") is not None and s["cls_cosine"] >= cosine:
            notes.append(f"CLS cosine of distinct images {s['cls_cosine']:.2f} (drifting towards one constant "
                         "feature)")
        return "; ".join(notes) or None

    def check(self, *, epoch: int, step: int) -> None:
        """Raise :class:`CollapseError` if :meth:`collapsed` finds a collapse."""
        reason = self.collapsed()
        if reason is not None:
            raise CollapseError(
                f"DINO run collapsed at epoch {epoch}, global step {step} — {reason}. Training stopped; the checkpoint "
                "of the last finished epoch is kept. Check the backbone init (mean CLS cosine of distinct images at "
                "step 0 should be < 0.5), a teacher temperature warm-up, a lower lr, or the augmentation strength; "
                "pass collapse_check=False to train on regardless.")


class KNNProbe:
    """Frozen k-NN retrieval of a backbone on a fixed subset of a ReID test split, cheap enough to run every N steps.

    The images of the first ``num_ids`` test identities (query and gallery, Market protocol) are decoded and
    transformed once at ``image_size`` with the pre-training normalisation; :meth:`__call__` embeds them with the
    backbone in eval mode (CLS feature, L2-normalised, squared Euclidean distance — the evaluation of
    :func:`reid_lab.ssl.evaluate_retrieval`) and restores the backbone's mode. It is a health signal for a DINO run
    (issue 17): features that carry identity rise above the random-initialisation value; a run that learns
    "which image" but not "which person" stays flat or falls.

    Args:
        dataset: a :class:`reid_lab.data.ReIDDataset` (e.g. SynthMarket).
        image_size: (height, width) the backbone runs at (the pre-training global crop size).
        num_ids: keep the query identities with the ``num_ids`` smallest ids and their gallery images, distractors
            left out (``None`` = the whole split, as :func:`reid_lab.ssl.evaluate_retrieval`).
        batch_size: images per forward pass.
    """

    def __init__(self, dataset: Any, image_size: Sequence[int], num_ids: int | None = 75, batch_size: int = 256):
        from ..data import build_reid_transforms, read_image
        from .multicrop import IMAGENET_MEAN, IMAGENET_STD

        ids = sorted({s.pid for s in dataset.query})
        if num_ids is not None and num_ids < 2:
            raise ValueError(f"num_ids must be ≥ 2, got {num_ids}")
        keep = None if num_ids is None else set(ids[:num_ids])  # None: every image, distractors included
        height, width = (int(v) for v in image_size)
        transform = build_reid_transforms(height, width, train=False, mean=IMAGENET_MEAN, std=IMAGENET_STD)
        self.splits = []
        for split in (dataset.query, dataset.gallery):
            samples = [s for s in split if keep is None or s.pid in keep]
            if not samples:
                raise ValueError(f"the probe subset of {getattr(dataset, 'title', dataset)} has an empty split")
            images = torch.stack([transform(read_image(s.path)) for s in samples])
            self.splits.append((images, [s.pid for s in samples], [s.camid for s in samples]))
        self.image_size = (height, width)
        self.num_ids = len(ids) if keep is None else len(keep)
        self.batch_size = batch_size

    @property
    def num_images(self) -> int:
        return sum(len(images) for images, _, _ in self.splits)

    @torch.no_grad()
    def __call__(self, backbone: torch.nn.Module, device: torch.device | str) -> dict[str, float]:
        """``{"mAP": …, "rank1": …}`` (fractions) of ``backbone``'s frozen CLS features on the subset."""
        from ..retrieval.evaluation import evaluate_features

        was_training = backbone.training
        backbone.eval()
        try:
            feats = [torch.cat([backbone(images[i:i + self.batch_size].to(device)).float().cpu()
                                for i in range(0, len(images), self.batch_size)]) for images, _, _ in self.splits]
        finally:
            backbone.train(was_training)
        (qf, qp, qc), (gf, gp, gc) = [(f, pids, cams) for f, (_, pids, cams) in zip(feats, self.splits)]
        result = evaluate_features(qf, gf, qp, gp, qc, gc)
        return {"mAP": float(result.mAP), "rank1": float(result.cmc[0])}


def knn_curve(steps: Sequence[dict[str, Any]], history: Sequence[dict[str, Any]] = ()) -> list[tuple[int, float]]:
    """``[(step, frozen k-NN mAP in %)]`` of a run with a :class:`KNNProbe`: the probes before every N-th step
    (``steps.jsonl`` records) and the finished teacher's (the last ``log.jsonl`` record's ``knn_step``)."""
    points = [(int(r["step"]), 100 * r["knn_mAP"]) for r in steps if "knn_mAP" in r]
    if history and "knn_step" in history[-1] and (not points or history[-1]["knn_step"] > points[-1][0]):
        points.append((int(history[-1]["knn_step"]), 100 * history[-1]["knn_mAP"]))
    return points


def __getattr__(name: str):
    """``plot_training_curves`` moved to :mod:`reid_lab.viz.dino`; this alias will be removed in the next release."""
    if name == "plot_training_curves":
        from ..viz.dino import plot_training_curves

        return plot_training_curves
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["CollapseError", "CollapseMonitor", "KNNProbe", "knn_curve", "StepStats", "entropy", "mean_pairwise_cosine", "plot_training_curves"]
