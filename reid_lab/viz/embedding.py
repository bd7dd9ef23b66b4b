"""t-SNE maps of ReID features (scikit-learn ``TSNE``): do images of one identity form a cluster, or do images of
one camera? One panel coloured by identity and, optionally, a second coloured by another label (e.g. camera)."""
from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from .figures import _figure, _save

logger = logging.getLogger(__name__)

__all__ = ["tsne"]


def _colors(labels: np.ndarray, cmap_name: str):
    """A colour per label: ``tab10``/``tab20`` when they suffice, else the labels spread over ``cmap_name``."""
    import matplotlib

    uniq, inverse = np.unique(labels, return_inverse=True)
    if len(uniq) <= 10:
        cmap, pos = matplotlib.colormaps["tab10"], inverse
    elif len(uniq) <= 20:
        cmap, pos = matplotlib.colormaps["tab20"], inverse
    else:  # many identities: neighbours in label order get distant hues
        cmap, pos = matplotlib.colormaps[cmap_name], (inverse * 0.381966) % 1.0  # golden-ratio stepping
    return uniq, cmap(pos)


def _highlighted(labels: np.ndarray, highlight: int | None, seed: int) -> np.ndarray:
    """``labels`` with all but ``highlight`` randomly chosen values replaced by the string "other" (drawn grey)."""
    uniq = np.unique(labels)
    if highlight is None or len(uniq) <= highlight:
        return labels
    keep = np.random.default_rng(seed).choice(uniq, size=highlight, replace=False)
    return np.where(np.isin(labels, keep), labels.astype(object), "other")


def tsne(features: Any, labels: Any, *, second: Any | None = None, label_name: str = "identity",
         second_name: str = "camera", max_points: int = 2000, perplexity: float = 30.0, seed: int = 0,
         threads: int | None = 1, highlight: int | None = 10, title: str | None = None,
         save: str | os.PathLike | None = None):
    """2-D t-SNE of ``features`` (N, D), points coloured by ``labels`` (N,) and, with ``second`` (N,), a second
    panel of the same map coloured by it.

    At most ``max_points`` points are embedded (a seeded random subset); the perplexity is lowered to
    (n − 1) / 3 for small n (scikit-learn requires perplexity < n). Returns the Figure; ``fig.embedding`` holds the
    (n, 2) coordinates and ``fig.indices`` the rows of ``features`` they belong to.

    ``threads`` caps the OpenMP threads of scikit-learn's Barnes-Hut gradient (``None``: its default, all cores).
    The default 1 is deliberate: on a busy 2-core machine OpenMP spin-waiting made 600 points take 25 s of CPU
    instead of 2.3 s with one thread (measured); for a few thousand points one thread takes seconds anyway.

    ``highlight``: with more label values than this, only that many (chosen at random with ``seed``) get a colour
    and a legend entry; the others are drawn light grey (dozens of hues cannot be told apart). ``None``: all.
    """
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    x = np.asarray(features, dtype=np.float32)
    labels = np.asarray(labels)
    if x.ndim != 2 or len(x) < 3:
        raise ValueError(f"features must be (N >= 3, D), got shape {x.shape}")
    if labels.shape != (len(x),):
        raise ValueError(f"labels must have one entry per feature row ({len(x)}), got shape {labels.shape}")
    if second is not None:
        second = np.asarray(second)
        if second.shape != (len(x),):
            raise ValueError(f"second must have one entry per feature row ({len(x)}), got shape {second.shape}")
    if not np.isfinite(x).all():
        raise ValueError("features hold NaN or infinite values")
    if max_points < 3:
        raise ValueError(f"max_points must be >= 3, got {max_points}")
    idx = np.arange(len(x))
    if len(x) > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(len(x), size=max_points, replace=False))
        logger.info("t-SNE of a random %d of %d points (max_points)", max_points, len(x))
    perplexity = float(min(perplexity, (len(idx) - 1) / 3))
    with threadpool_limits(limits=threads, user_api="openmp"):
        emb = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                   random_state=seed).fit_transform(x[idx])
    panels = [(labels[idx], label_name)] + ([(second[idx], second_name)] if second is not None else [])
    fig, axes = _figure(1, len(panels), figsize=(4.6 * len(panels), 4.2), squeeze=False)
    grey = (0.82, 0.82, 0.82, 1.0)
    for ax, (lab, name) in zip(axes[0], panels):
        total = len(np.unique(lab))
        shown = _highlighted(lab, highlight, seed)
        keep = np.asarray(shown != "other", dtype=bool) if shown.dtype == object else np.ones(len(lab), bool)
        colors = np.tile(grey, (len(lab), 1))
        if keep.any():
            colors[keep] = _colors(lab[keep], "hsv")[1]
        ax.scatter(emb[:, 0], emb[:, 1], c=colors, s=np.where(keep, 11, 7), linewidths=0)  # one collection
        kept = np.unique(lab[keep])
        count = f"{len(kept)} of {total} values coloured" if not keep.all() else f"{total} values"
        ax.set_title(f"coloured by {name} ({count})", fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
        if len(kept) <= 10:
            for u in kept:
                ax.scatter([], [], color=colors[np.flatnonzero(keep & (lab == u))[0]], s=12, label=str(u))
            if not keep.all():
                ax.scatter([], [], color=grey, s=12, label="others (grey)")
            ax.legend(fontsize=7, title=name, title_fontsize=7, markerscale=1.2, loc="best")
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.embedding, fig.indices = emb, idx
    return _save(fig, save)
