"""Figures for CFS (notebook 01): the score histogram per group and image grids of the ranked pool.

The scores come from :mod:`reid_lab.cfs` (:func:`~reid_lab.cfs.score_pool`, :func:`~reid_lab.cfs.cfs_scores`).
Every function returns a matplotlib ``Figure`` and saves a PNG when ``save`` is given.
"""
from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ..data import read_image
from .figures import _save

__all__ = ["plot_image_grid", "plot_score_histogram"]


def plot_score_histogram(scores: np.ndarray, groups: Sequence[str], *, bins: int = 40, title: str = "",
                         save: str | os.PathLike | None = None):
    """Histogram of CFS scores, one colour per group label (e.g. person / background / vehicle); returns the Figure."""
    import matplotlib.pyplot as plt

    scores, groups = np.asarray(scores), np.asarray(groups)
    fig, ax = plt.subplots(figsize=(6, 3.3))
    edges = np.histogram_bin_edges(scores, bins=bins)
    for g in sorted(set(groups.tolist()), key=lambda g: (g != "person", g)):
        ax.hist(scores[groups == g], bins=edges, alpha=0.6, label=f"{g} ({int((groups == g).sum())})")
    ax.set_xlabel("CFS = cos(source feature, target feature)"), ax.set_ylabel("images")
    ax.legend(fontsize=8), ax.grid(alpha=0.3)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _save(fig, save)


def plot_image_grid(paths: Sequence[str | os.PathLike], *, captions: Sequence[str] | None = None, cols: int = 12,
                    title: str = "", save: str | os.PathLike | None = None):
    """The images in a grid (reading order), with optional captions; returns the Figure."""
    import matplotlib.pyplot as plt

    rows = max(1, -(-len(paths) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 1.9), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < len(paths):
            ax.imshow(read_image(paths[i]))
            if captions is not None:
                ax.set_title(captions[i], fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, save, dpi=100)
