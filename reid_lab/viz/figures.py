"""Shared figure plumbing (:func:`_figure`, :func:`_save`) and the data-overview plots of notebooks 00–02.

* :func:`camera_grid` — random images per camera;
* :func:`cmc_curves` — CMC curves of several methods;
* :func:`bar_chart` — a labelled bar chart with an optional reference line.

Every function returns a matplotlib ``Figure`` and saves a PNG when ``save`` is given.
"""
from __future__ import annotations

import os
from collections import defaultdict
from typing import Mapping, Sequence

import numpy as np

__all__ = ["bar_chart", "camera_grid", "cmc_curves"]


def _figure(nrows: int = 1, ncols: int = 1, **kwargs):
    """``plt.subplots`` that falls back to the Agg backend outside notebooks and GUIs (headless runs)."""
    import matplotlib

    if not matplotlib.get_backend().lower().startswith(("module://", "inline", "nbagg", "widget", "qt", "tk")):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(nrows, ncols, **kwargs)


def _save(fig, save: str | os.PathLike | None, dpi: int = 110):
    """Write ``fig`` as a PNG to ``save`` (when given) and return it."""
    if save:
        fig.savefig(save, dpi=dpi, bbox_inches="tight")
    return fig


def camera_grid(samples: Sequence, *, per_camera: int = 8, max_cameras: int | None = 6, title: str | None = None,
                seed: int = 0, save: str | os.PathLike | None = None):
    """One row per camera with ``per_camera`` random images of that camera (``samples``: ``(path, pid, camid)``);
    at most ``max_cameras`` rows (the first cameras; the title says how many of how many) so a 15-camera world
    stays a slide, not a scroll."""
    from PIL import Image

    by_camera: dict[int, list] = defaultdict(list)
    for sample in samples:
        by_camera[int(sample[2])].append(sample)
    every = sorted(by_camera)
    cameras = every[:max_cameras] if max_cameras else every
    rng = np.random.default_rng(seed)
    fig, axes = _figure(len(cameras), per_camera, figsize=(per_camera * 0.9, len(cameras) * 1.75 + 0.4),
                        squeeze=False, layout="constrained")
    for row, cam in enumerate(cameras):
        picks = rng.choice(len(by_camera[cam]), size=min(per_camera, len(by_camera[cam])), replace=False)
        for col in range(per_camera):
            ax = axes[row, col]
            ax.set_xticks([]), ax.set_yticks([])
            if col < len(picks):
                path, pid, _ = by_camera[cam][picks[col]][:3]
                ax.imshow(Image.open(path).convert("RGB"))
                ax.set_xlabel(f"id {pid}", fontsize=7)
            else:
                ax.axis("off")
        axes[row, 0].set_ylabel(f"cam {cam}", fontsize=8)
    if title or len(cameras) < len(every):
        shown = f" ({len(cameras)} of {len(every)} cameras)" if len(cameras) < len(every) else ""
        fig.suptitle(f"{title or ''}{shown}", fontsize=10)
    return _save(fig, save)


def cmc_curves(curves: Mapping[str, np.ndarray], *, max_rank: int = 20, title: str = "CMC",
               save: str | os.PathLike | None = None):
    """CMC curves (fractions, one per method) up to ``max_rank``."""
    fig, ax = _figure(figsize=(5, 3.5))
    for label, cmc in curves.items():
        cmc = np.asarray(cmc)[:max_rank]
        ax.plot(np.arange(1, len(cmc) + 1), 100 * cmc, marker="o", markersize=3, label=label)
    ax.set_xlabel("rank"), ax.set_ylabel("matching rate (%)"), ax.set_title(title)
    ax.set_ylim(0, 100), ax.grid(alpha=0.3), ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, save)


def bar_chart(values: Mapping[str, float], *, ylabel: str = "", title: str = "", reference: float | None = None,
              reference_label: str = "", errors: Mapping[str, float] | None = None,
              save: str | os.PathLike | None = None):
    """A labelled bar chart from 0, each bar in its initialisation's colour (:mod:`reid_lab.viz.style`), with
    optional error bars (``errors``, same keys) and a horizontal reference line (e.g. what chance predicts)."""
    from .style import CHANCE_STYLE, init_color

    fig, ax = _figure(figsize=(max(5.0, 0.9 * len(values) + 1.5), 3.4))
    names = list(values)
    yerr = [errors.get(n, 0.0) for n in names] if errors else None
    ax.bar(names, [values[n] for n in names], yerr=yerr, capsize=3,
           color=[init_color(n, "#4c72b0") for n in names])
    if reference is not None:
        ax.axhline(reference, label=reference_label, **CHANCE_STYLE)
        ax.legend(fontsize=8)
    ax.set_ylim(bottom=0)
    ax.set_ylabel(ylabel), ax.set_title(title)
    ax.tick_params(axis="x", labelrotation=20)
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    fig.tight_layout()
    return _save(fig, save)
