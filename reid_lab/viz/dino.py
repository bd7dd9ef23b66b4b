"""Figures for DINO pre-training (notebook 02): the multi-crop views of one image and the collapse-monitor curves.

* :func:`plot_crops` — an image and its crops from :class:`reid_lab.ssl.PersonMultiCrop`, de-normalised;
* :func:`plot_training_curves` — per-step loss, teacher entropy and CLS cosine of several runs
  (:class:`reid_lab.ssl.CollapseMonitor` records), with ln K marked;
* :func:`plot_knn_curve` — frozen k-NN mAP of the teacher against steps (:class:`reid_lab.ssl.KNNProbe` records),
  with reference levels (e.g. random weights).

Every function returns a matplotlib ``Figure`` and saves a PNG when ``save`` is given.
"""
from __future__ import annotations

import math
import os
from collections.abc import Sequence

import torch
from PIL import Image

from ..ssl.multicrop import IMAGENET_MEAN, IMAGENET_STD
from .figures import _figure, _save

__all__ = ["plot_crops", "plot_knn_curve", "plot_training_curves"]


def plot_crops(image: Image.Image, crops: Sequence[torch.Tensor], *, mean: Sequence[float] = IMAGENET_MEAN,
               std: Sequence[float] = IMAGENET_STD, title: str | None = None, save: str | os.PathLike | None = None):
    """The original image followed by its crops (de-normalised), globals then locals, at their relative sizes."""
    fig, axes = _figure(1, len(crops) + 1, figsize=(1.3 * (len(crops) + 1), 3.2),
                        gridspec_kw={"width_ratios": [1] + [c.shape[-1] / crops[0].shape[-1] for c in crops]})
    axes[0].imshow(image)
    axes[0].set_title("image", fontsize=8)
    m, s = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)
    for i, (ax, crop) in enumerate(zip(axes[1:], crops)):
        ax.imshow((crop * s + m).clamp(0, 1).permute(1, 2, 0).numpy())
        ax.set_title(f"global {i + 1}" if i < 2 else f"local {i - 1}", fontsize=8)
    for ax in axes:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=10)
    return _save(fig, save)


def plot_training_curves(runs: dict[str, list[dict]], out_dim: int, *, smooth: int = 5, title: str | None = None,
                         save: str | os.PathLike | None = None):
    """Per-step loss, teacher entropy and CLS cosine of several runs (``steps.jsonl`` records), with ln K marked.

    A healthy run ends with the loss and the teacher entropy clearly below ln K and a CLS cosine well below 1;
    a uniform collapse sits on ln K, a single-prototype collapse has a batch-mean entropy near 0.
    """
    import numpy as np

    fig, axes = _figure(1, 3, figsize=(13, 3.4))
    ln_k = math.log(out_dim)
    for name, steps in runs.items():
        for ax, key in zip(axes, ("loss", "teacher_entropy", "cls_cosine")):
            values = np.array([s[key] if s.get(key) is not None else np.nan for s in steps], dtype=float)
            if smooth > 1 and len(values) >= smooth:
                values = np.convolve(values, np.ones(smooth) / smooth, mode="valid")
            ax.plot(values, label=name)
    for ax, label in zip(axes, ("DINO loss", "teacher entropy (nats)", "mean CLS cosine (teacher)")):
        ax.set_xlabel("iteration")
        ax.set_title(label, fontsize=10)
    for ax in axes[:2]:
        ax.axhline(ln_k, color="grey", ls="--", lw=1, label=f"ln K = {ln_k:.2f} (uniform)")
    axes[2].set_ylim(-0.05, 1.05)
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, save)


def plot_knn_curve(runs: dict[str, Sequence[tuple[int, float]]], *, references: dict[str, float] | None = None,
                   ylabel: str = "frozen k-NN mAP (%)", title: str | None = None,
                   save: str | os.PathLike | None = None):
    """Frozen k-NN mAP against DINO steps for several runs (``{name: [(step, mAP in %), ...]}``), with horizontal
    reference lines (``{label: mAP in %}``, e.g. the random initialisation). A pre-training that learns identity
    rises above the random-weights line; one that learns "which image" but not "which person" stays flat or falls."""
    fig, ax = _figure(1, 1, figsize=(6.5, 3.6))
    for name, points in runs.items():
        steps, values = zip(*points) if points else ((), ())
        ax.plot(steps, values, marker="o", ms=3, label=name)
    for i, (label, value) in enumerate((references or {}).items()):
        ax.axhline(value, color=f"C{i + len(runs)}", ls="--", lw=1, label=label)
    ax.set_xlabel("DINO step")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return _save(fig, save)
