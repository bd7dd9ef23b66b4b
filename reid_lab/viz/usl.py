"""Figures for unsupervised and domain-adaptive ReID (notebooks 04 and 05; docs/reference.md §5).

Every ``plot_*`` function returns a matplotlib ``Figure`` and saves a PNG when ``save`` is given
(:func:`reid_lab.viz.figures._figure` / :func:`reid_lab.viz.figures._save`).

* :func:`plot_kreciprocal` — a handful of points: k-nearest neighbours, which of them are *reciprocal*, and the
  Jaccard distance matrix of docs/reference.md §5.2 step 2;
* :func:`plot_eps_sweep` — DBSCAN ``eps`` against clusters, outliers and pseudo-label quality, the rows of
  :func:`reid_lab.retrieval.clustering.eps_sweep` ("how do I pick eps?", docs/reference.md §12.7);
* :func:`plot_usl_history` — clusters, outliers, mAP and (display-only) ARI/NMI per epoch of one or several runs;
* :func:`plot_tsne` — a t-SNE of features (:func:`reid_lab.viz.tsne`), coloured by pseudo-label and by true identity;
* :func:`plot_uda_results` — grouped bars: source-domain, direct-transfer and adapted mAP per setting.

Pseudo-label quality against true ids (:func:`reid_lab.retrieval.clustering.cluster_purity`, ARI, NMI) needs
labels that unsupervised training never has: these numbers are for the reader, never for training or model
selection.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from ..retrieval.clustering import _labels
from .figures import _figure, _save

logger = logging.getLogger(__name__)

__all__ = ["plot_eps_sweep", "plot_kreciprocal", "plot_tsne", "plot_uda_results", "plot_usl_history"]

_OUTLIER_COLOR = "#b0b0b0"


# ------------------------------------------------------------------------------------------------ helpers
def _dense(matrix: Any, name: str) -> np.ndarray:
    array = matrix.toarray() if sp.issparse(matrix) else np.asarray(matrix)
    if array.ndim != 2 or array.shape[0] != array.shape[1]:
        raise ValueError(f"{name} must be a square (N, N) matrix, got shape {array.shape}")
    return array


# ------------------------------------------------------------------------------------------------ k-reciprocal
def plot_kreciprocal(points: Any, neighbours: Any, reciprocal: Any, distance: Any, *, title: str = "",
                     save: str | os.PathLike | None = None):
    """Left: 2-D points, an arrow i → j for each one-way neighbour, a thick line for each reciprocal pair.
    Right: the Jaccard distance matrix with its values.

    Args:
        points: (N, 2) coordinates (a small N: the picture labels every point and every matrix cell).
        neighbours: (N, K) neighbour table, row i = the K nearest points of i, itself first
            (:func:`reid_lab.retrieval.neighbors.knn`).
        reciprocal: (N, N) 0/1 matrix (dense or scipy sparse), 1 where j is a k-reciprocal neighbour of i
            (:func:`reid_lab.retrieval.kreciprocal.reciprocal_sets`).
        distance: (N, N) Jaccard distance (:func:`reid_lab.retrieval.clustering.jaccard_distance` with ``dense=True``).
    """
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must be (N, 2) coordinates, got shape {pts.shape}")
    n = len(pts)
    rank = np.asarray(neighbours)
    if rank.ndim != 2 or rank.shape[0] != n:
        raise ValueError(f"neighbours must be an (N={n}, K) table, got shape {rank.shape}")
    mutual, dist = _dense(reciprocal, "reciprocal") > 0, _dense(distance, "distance")
    if mutual.shape[0] != n or dist.shape[0] != n:
        raise ValueError(f"reciprocal {mutual.shape} and distance {dist.shape} must be ({n}, {n})")

    fig, (ax, mx) = _figure(1, 2, figsize=(10, 4.2), gridspec_kw={"width_ratios": [1.1, 1]})
    for i in range(n):
        for j in rank[i]:
            if j == i or mutual[i, j]:
                continue
            ax.annotate("", xy=pts[j], xytext=pts[i],
                        arrowprops=dict(arrowstyle="->", color="#999999", lw=0.8, shrinkA=7, shrinkB=7))
    for i, j in zip(*np.nonzero(np.triu(mutual, 1))):
        ax.plot(*pts[[i, j]].T, color="#c44e52", lw=2.5, zorder=1)
    if np.allclose(np.linalg.norm(pts, axis=1), 1.0, atol=1e-3):  # L2-normalised 2-D features: the unit circle
        t = np.linspace(0, 2 * np.pi, 200)
        ax.plot(np.cos(t), np.sin(t), color="#dddddd", lw=1, zorder=0)
    ax.scatter(*pts.T, s=260, color="#4c72b0", zorder=2)
    for i, (x, y) in enumerate(pts):
        ax.text(x, y, str(i), color="white", ha="center", va="center", fontsize=9, zorder=3)
    ax.plot([], [], color="#c44e52", lw=2.5, label="reciprocal pair")
    ax.plot([], [], color="#999999", lw=0.8, label="one-way neighbour (→)")
    ax.legend(fontsize=8, loc="best"), ax.set_aspect("equal"), ax.set_xticks([]), ax.set_yticks([])
    ax.set_title(f"{rank.shape[1] - 1} nearest neighbours of each point")

    im = mx.imshow(dist, cmap="viridis_r", vmin=0, vmax=1)
    for i in range(n):
        for j in range(n):
            mx.text(j, i, f"{dist[i, j]:.2f}".lstrip("0") if dist[i, j] < 1 else "1", ha="center", va="center",
                    fontsize=7, color="black" if dist[i, j] < 0.5 else "white")
    mx.set_xticks(range(n)), mx.set_yticks(range(n)), mx.set_title("Jaccard distance")
    fig.colorbar(im, ax=mx, fraction=0.046)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, save)


# ------------------------------------------------------------------------------------------------ eps sweep
def plot_eps_sweep(sweep: Sequence[Mapping[str, Any]], *, num_ids: int | None = None, chosen_eps: float | None = None,
                   title: str = "", save: str | os.PathLike | None = None):
    """Clusters and outlier fraction (left) and purity / ARI / NMI (right, when present) against eps."""
    if not sweep:
        raise ValueError("sweep is empty: pass the rows of eps_sweep()")
    eps = [r["eps"] for r in sweep]
    has_truth = any(r.get("ari") is not None for r in sweep)
    fig, axes = _figure(1, 2 if has_truth else 1, figsize=(10 if has_truth else 5, 3.4), squeeze=False)
    ax = axes[0, 0]
    ax.plot(eps, [r["num_clusters"] for r in sweep], marker="o", color="#4c72b0", label="clusters")
    if num_ids is not None:
        ax.axhline(num_ids, color="#4c72b0", linestyle=":", label=f"true identities ({num_ids})")
    ax.set_xlabel("DBSCAN eps"), ax.set_ylabel("clusters")
    twin = ax.twinx()
    twin.plot(eps, [100 * r["outlier_fraction"] for r in sweep], marker="s", color="#c44e52", label="outliers")
    twin.set_ylabel("outliers (% of images)"), twin.set_ylim(0, 100)
    handles = ax.get_legend_handles_labels()[0] + twin.get_legend_handles_labels()[0]
    ax.legend(handles, [h.get_label() for h in handles], fontsize=8, loc="upper right")
    if has_truth:
        bx = axes[0, 1]
        for key, label in (("purity", "purity (clustered images)"), ("ari", "ARI"), ("nmi", "NMI")):
            values = [np.nan if r.get(key) is None else r[key] for r in sweep]
            bx.plot(eps, values, marker="o", label=label)
        bx.set_xlabel("DBSCAN eps"), bx.set_ylabel("agreement with true ids"), bx.set_ylim(-0.05, 1.05)
        bx.set_title("display only: needs the true ids", fontsize=9), bx.legend(fontsize=8)
    for a in axes[0]:
        a.grid(alpha=0.3)
        if chosen_eps is not None:
            a.axvline(chosen_eps, color="black", linestyle="--", lw=0.8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, save)


# ------------------------------------------------------------------------------------------------ training curves
def _as_runs(histories: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Mapping[str, Any]]]
             ) -> dict[str, list[Mapping[str, Any]]]:
    if isinstance(histories, Mapping):
        return {str(k): list(v) for k, v in histories.items()}
    return {"": list(histories)}


def plot_usl_history(histories: Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Mapping[str, Any]]], *,
                     initial: Mapping[str, Any] | None = None, num_ids: int | None = None,
                     chance: float | None = None, title: str = "", save: str | os.PathLike | None = None):
    """Clusters, outlier fraction, test mAP and ARI/NMI/purity per epoch; the mAP axis starts at 0 and, with
    ``chance`` (a fraction, e.g. :func:`reid_lab.retrieval.evaluation.chance_map`), shows the chance line, so a gain
    of one point near chance looks like one.

    Args:
        histories: one run's per-epoch records (``USLResult.history``) or ``{label: records}`` for several runs.
            Records need ``epoch``, ``num_clusters``, ``outlier_fraction``; ``mAP`` (fraction) on evaluation
            epochs; ``ari``/``nmi`` when true ids were known.
        initial: the starting model's metrics (``USLResult.initial``) for one run, or ``{label: metrics}``;
            drawn at epoch 0 of the mAP panel.
        num_ids: the true number of training identities (a dotted line on the clusters panel).
    """
    from matplotlib.ticker import MaxNLocator

    runs = _as_runs(histories)
    if not any(runs.values()):
        raise ValueError("no epochs to plot: every history is empty")
    if initial is not None and "mAP" in initial:
        initial = {label: initial for label in runs}
    fig, axes = _figure(1, 4, figsize=(15, 3.3))
    for label, hist in runs.items():
        epochs = [r["epoch"] for r in hist]
        line = axes[0].plot(epochs, [r["num_clusters"] for r in hist], marker="o", markersize=3, label=label or None)
        color = line[0].get_color()
        axes[1].plot(epochs, [100 * r["outlier_fraction"] for r in hist], marker="o", markersize=3, color=color)
        points = [(r["epoch"], r["mAP"]) for r in hist if r.get("mAP") is not None]
        if initial is not None and (initial.get(label) or {}).get("mAP") is not None:
            points = [(0, initial[label]["mAP"])] + points
        if points:
            axes[2].plot(*zip(*[(e, 100 * m) for e, m in points]), marker="o", markersize=3, color=color)
        for key, style in (("ari", "-"), ("nmi", "--"), ("purity", ":")):
            vals = [np.nan if r.get(key) is None else r[key] for r in hist]
            axes[3].plot(epochs, vals, linestyle=style, color=color, marker=".")
    if num_ids is not None:
        axes[0].axhline(num_ids, color="black", linestyle=":", lw=1, label=f"true ids ({num_ids})")
    axes[3].plot([], [], "k-", label="ARI"), axes[3].plot([], [], "k--", label="NMI")
    axes[3].plot([], [], "k:", label="purity")
    names = ("clusters", "outliers (% of images)", "test mAP (%) (epoch 0 = start)", "ARI / NMI / purity (display only)")
    for ax, name in zip(axes, names):
        ax.set_xlabel("epoch"), ax.set_ylabel(name), ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[1].set_ylim(0, 100)
    from .style import percent_axis

    maps = [100 * r["mAP"] for hist in runs.values() for r in hist if r.get("mAP") is not None]
    maps += [100 * v["mAP"] for v in (initial or {}).values() if v and v.get("mAP") is not None]
    percent_axis(axes[2], maps, chance_percent=None if chance is None else 100 * chance,
                 label="test mAP (%) (epoch 0 = start)")
    if chance is not None:
        axes[2].legend(fontsize=8)
    axes[3].set_ylim(-0.05, 1.05), axes[3].legend(fontsize=8)
    handles, labels = axes[0].get_legend_handles_labels()
    rows = 0
    if handles:  # the runs' names are sentences: one legend under the panels, never over the curves
        rows = -(-len(handles) // 2)
        fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.07 * rows, 1, 1))
    return _save(fig, save)


# ------------------------------------------------------------------------------------------------ t-SNE
def plot_tsne(features: Any, pseudo_labels: Any, true_ids: Any, *, perplexity: float = 30.0, seed: int = 0,
              max_points: int = 2000, title: str = "", save: str | os.PathLike | None = None):
    """One t-SNE map of ``features`` drawn twice: coloured by pseudo-label (outliers, label −1, in grey) and by the
    true identity (display only).

    The map itself is :func:`reid_lab.viz.tsne` (scikit-learn, one OpenMP thread, at most ``max_points`` points, a
    seeded subset); here the outliers of the first panel are greyed. ``fig.embedding`` / ``fig.indices`` as there.
    """
    import matplotlib

    from .embedding import tsne

    pseudo = _labels(pseudo_labels, "pseudo_labels")
    truth = _labels(true_ids, "true_ids", len(pseudo))
    fig = tsne(features, pseudo, second=truth, label_name="pseudo-label", second_name="true identity (display only)",
               max_points=max_points, perplexity=perplexity, seed=seed, title=title or None)
    shown = pseudo[fig.indices]
    ax = fig.axes[0]
    points = ax.collections[0]
    colors = points.get_facecolors().copy()
    colors[shown < 0] = matplotlib.colors.to_rgba(_OUTLIER_COLOR)
    points.set_facecolors(colors)
    if ax.get_legend() is not None:  # its swatches would show the pre-grey colours
        ax.get_legend().remove()
    num_clusters = len(np.unique(shown[shown >= 0]))
    ax.set_title(f"pseudo-labels: {num_clusters} clusters, {int((shown < 0).sum())} outliers (grey)", fontsize=9)
    return _save(fig, save)


# ------------------------------------------------------------------------------------------------ UDA table
def plot_uda_results(results: Mapping[str, Mapping[str, float | None]], *, ylabel: str = "mAP (%)",
                     title: str = "", save: str | os.PathLike | None = None):
    """Grouped bars: one group per setting (e.g. "MSMT→Market, ViT"), one bar per stage (fractions → %).

    ``results = {"MSMT→Market ViT": {"source": 0.4, "direct transfer": 0.1, "after UDA": 0.2}, ...}``; a missing
    or ``None`` value leaves its bar out.
    """
    if not results:
        raise ValueError("results is empty: give {setting: {stage: value}}")
    stages = list(dict.fromkeys(stage for row in results.values() for stage in row))
    fig, ax = _figure(figsize=(max(5.0, 1.6 * len(results) + 1), 3.5))
    width = 0.8 / len(stages)
    x = np.arange(len(results))
    for s, stage in enumerate(stages):
        values = [row.get(stage) for row in results.values()]
        heights = [np.nan if v is None else 100 * v for v in values]
        bars = ax.bar(x + (s - (len(stages) - 1) / 2) * width, heights, width, label=stage)
        ax.bar_label(bars, labels=["" if np.isnan(h) else f"{h:.1f}" for h in heights], fontsize=7)
    ax.set_xticks(x, list(results), fontsize=8), ax.set_ylabel(ylabel), ax.legend(fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return _save(fig, save)
