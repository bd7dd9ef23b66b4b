"""Rank lists: a query and its nearest gallery images, coloured by what the Market protocol makes of them
(docs/reference.md §4.6, §7.3, §12.4).

Every gallery entry of a query's ranking gets one status (:func:`rank_status`):

============== ======= =====================================================================================
status          colour  meaning under the Market-1501 protocol
============== ======= =====================================================================================
``match``       green   same identity, other camera: a true match (a hit for CMC, AP and INP)
``wrong``       red     another identity: a miss
``distractor``  orange  identity 0, Market's distractor images: a miss like ``wrong``, shown apart
``same_camera`` blue    same identity, same camera: removed from the ranking before scoring (junk)
``junk``        grey    identity −1, Market's junk images: ignored (the official parsers drop them)
============== ======= =====================================================================================

Ignored entries (``same_camera``, ``junk``) are shown where their distance puts them, without a rank number; the
rank printed above every scored entry is its position in the protocol's ranking. AP and INP per query come from
:func:`reid_lab.retrieval.evaluation.evaluate_rank` (ties by gallery index, as there) on the gallery without ``junk``
columns.

:func:`select_queries` / :func:`best_and_worst_queries` pick the queries with the highest / lowest AP, e.g. the
successes and failures of a model. :func:`plot_rank_lists` draws the rows and attaches the :class:`RankList`
records it drew to the figure (``fig.rank_lists``).
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .figures import _figure, _save

__all__ = ["STATUS_STYLE", "RankList", "best_and_worst_queries", "per_query_metrics", "plot_rank_lists", "rank_list",
           "rank_status", "select_queries"]

# status -> (colour, legend text)
STATUS_STYLE: dict[str, tuple[str, str]] = {
    "match": ("#2ca02c", "true match"),
    "wrong": ("#d62728", "wrong identity"),
    "distractor": ("#ff7f0e", "distractor (id 0)"),
    "same_camera": ("#1f77b4", "same id + camera (ignored)"),
    "junk": ("#7f7f7f", "junk (id -1, ignored)"),
}
IGNORED = ("same_camera", "junk")


def rank_status(q_pid: int, q_camid: int, g_pids: Any, g_camids: Any) -> np.ndarray:
    """Status of every gallery entry for one query (module docstring): a str array of ``len(g_pids)``."""
    g_pids, g_camids = np.asarray(g_pids), np.asarray(g_camids)
    if g_pids.shape != g_camids.shape or g_pids.ndim != 1:
        raise ValueError(f"g_pids and g_camids must be 1-D of one length, got {g_pids.shape} and {g_camids.shape}")
    same = g_pids == q_pid
    return np.select(
        [g_pids == -1, same & (g_camids == q_camid), same, g_pids == 0],
        ["junk", "same_camera", "match", "distractor"],
        default="wrong",
    )


def per_query_metrics(distmat: Any, q_pids: Any, g_pids: Any, q_camids: Any, g_camids: Any
                      ) -> tuple[np.ndarray, np.ndarray]:
    """AP and INP of every query (NaN where a query has no true match), from
    :func:`~reid_lab.retrieval.evaluation.evaluate_rank` on the gallery without junk (id −1) columns."""
    from ..retrieval.evaluation import evaluate_rank

    d = np.asarray(distmat)
    g_pids, g_camids = np.asarray(g_pids), np.asarray(g_camids)
    if d.ndim != 2 or d.shape[1] != len(g_pids):
        raise ValueError(f"distmat must be (num_query, num_gallery={len(g_pids)}), got shape {d.shape}")
    keep = g_pids != -1
    # C order: evaluate_rank's dense path needs rows contiguous (column selection can return a Fortran array)
    result = evaluate_rank(np.ascontiguousarray(d[:, keep]), q_pids, g_pids[keep], q_camids, g_camids[keep],
                           max_rank=max(1, min(50, int(keep.sum()))))
    return np.asarray(result.per_query_ap), np.asarray(result.per_query_inp)


@dataclass(frozen=True, eq=False)
class RankList:
    """The top of one query's ranking as drawn.

    Attributes:
        query: query index.
        gallery: gallery indices, nearest first (ties by gallery index).
        distances: their distances.
        status: their :func:`rank_status`.
        rank: 1-based position in the protocol's ranking (ignored entries removed); 0 for ignored entries.
        ap, inp: the query's average precision and inverse negative penalty (NaN without a true match).
    """

    query: int
    gallery: np.ndarray
    distances: np.ndarray
    status: np.ndarray
    rank: np.ndarray
    ap: float
    inp: float

    @property
    def colors(self) -> list[str]:
        """Border colour of every shown entry (:data:`STATUS_STYLE`)."""
        return [STATUS_STYLE[s][0] for s in self.status]


def rank_list(distmat: Any, query: int, q_pids: Any, g_pids: Any, q_camids: Any, g_camids: Any, topk: int = 10, *,
              show_ignored: bool = True, metrics: tuple[np.ndarray, np.ndarray] | None = None) -> RankList:
    """The first ``topk`` gallery entries of query ``query`` with their statuses, ranks, AP and INP.

    Args:
        distmat: (num_query, num_gallery) distances, smaller = closer.
        query: row of ``distmat``.
        q_pids, g_pids, q_camids, g_camids: identities and cameras.
        topk: entries to return (fewer if the gallery is smaller).
        show_ignored: keep ``same_camera``/``junk`` entries in the list (unranked); False lists scored entries only.
        metrics: precomputed ``per_query_metrics(...)`` (avoids recomputing AP/INP for many queries).
    """
    d = np.asarray(distmat)
    q_pids, q_camids = np.asarray(q_pids), np.asarray(q_camids)
    if d.ndim != 2 or len(q_pids) != d.shape[0] or len(q_camids) != d.shape[0]:
        raise ValueError(f"distmat {d.shape} does not match {len(q_pids)} query pids / {len(q_camids)} camids")
    if not 0 <= query < d.shape[0]:
        raise IndexError(f"query index {query} out of range for {d.shape[0]} queries")
    if topk < 1:
        raise ValueError(f"topk must be >= 1, got {topk}")
    status = rank_status(q_pids[query], q_camids[query], g_pids, g_camids)
    order = np.argsort(d[query], kind="stable")
    scored = ~np.isin(status[order], IGNORED)
    rank = np.where(scored, np.cumsum(scored), 0)
    if not show_ignored:
        order, rank = order[scored], rank[scored]
    order, rank = order[:topk], rank[:topk]
    if metrics is not None:
        ap, inp = float(metrics[0][query]), float(metrics[1][query])
    elif (status == "match").any():
        ap_row, inp_row = per_query_metrics(d[query:query + 1], q_pids[query:query + 1], g_pids,
                                            q_camids[query:query + 1], g_camids)
        ap, inp = float(ap_row[0]), float(inp_row[0])
    else:
        ap = inp = float("nan")
    return RankList(query=int(query), gallery=order, distances=d[query, order], status=status[order], rank=rank,
                    ap=ap, inp=inp)


def select_queries(ap: Any, n: int, which: Literal["best", "worst"] = "best") -> np.ndarray:
    """Indices of the ``n`` queries with the highest (``best``) or lowest (``worst``) AP; NaN (no true match)
    skipped, ties by query index."""
    ap = np.asarray(ap, dtype=np.float64)
    if which not in ("best", "worst"):
        raise ValueError(f"which must be 'best' or 'worst', got {which!r}")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    valid = np.flatnonzero(~np.isnan(ap))
    key = -ap[valid] if which == "best" else ap[valid]
    return valid[np.lexsort((valid, key))][:n]


def best_and_worst_queries(ap: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(select_queries(ap, n, "best"), select_queries(ap, n, "worst"))``."""
    return select_queries(ap, n, "best"), select_queries(ap, n, "worst")


def _fmt(value: float) -> str:
    return "n/a" if np.isnan(value) else f"{100 * value:.1f}%"


def plot_rank_lists(distmat: Any, query: Sequence[Any], gallery: Sequence[Any], indices: Sequence[int], *,
                    topk: int = 10, show_ignored: bool = True, metrics: tuple[np.ndarray, np.ndarray] | None = None,
                    title: str | None = None, save: str | os.PathLike | None = None):
    """One row per query in ``indices``: the query, then its ``topk`` nearest gallery images with coloured borders.

    Args:
        distmat: (len(query), len(gallery)) distances.
        query, gallery: records ``(path, pid, camid)`` (e.g. a dataset's ``query`` / ``gallery`` splits).
        indices: queries to draw (e.g. from :func:`best_and_worst_queries`).
        topk, show_ignored, metrics: as in :func:`rank_list`; ``metrics`` default: :func:`per_query_metrics`.

    Returns:
        The Figure, with ``fig.rank_lists``: the :class:`RankList` of every row.
    """
    from PIL import Image

    indices = [int(i) for i in indices]
    if not indices:
        raise ValueError("indices is empty: pass the query indices to draw")
    q_pids, q_cams = np.array([s[1] for s in query]), np.array([s[2] for s in query])
    g_pids, g_cams = np.array([s[1] for s in gallery]), np.array([s[2] for s in gallery])
    if metrics is None:
        metrics = per_query_metrics(distmat, q_pids, g_pids, q_cams, g_cams)
    lists = [rank_list(distmat, i, q_pids, g_pids, q_cams, g_cams, topk, show_ignored=show_ignored, metrics=metrics)
             for i in indices]
    ncols = 1 + max(len(r.gallery) for r in lists)
    fig, axes = _figure(len(lists), ncols, figsize=(ncols * 0.95 + 0.4, len(lists) * 2.4 + 0.6), squeeze=False)
    for row, rl in zip(axes, lists):
        cells = [(query[rl.query], "black", f"query {rl.query}\nAP {_fmt(rl.ap)}\nINP {_fmt(rl.inp)}")]
        cells += [(gallery[g], STATUS_STYLE[s][0], f"#{r}" if r else "–")
                  for g, s, r in zip(rl.gallery, rl.status, rl.rank)]
        for ax, (sample, color, label) in zip(row, cells):
            with Image.open(sample[0]) as img:
                ax.imshow(img.convert("RGB"))
            ax.set_xticks([]), ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor(color), spine.set_linewidth(3.5)
            ax.set_title(label, fontsize=7)
            ax.set_xlabel(f"id {sample[1]} c{sample[2]}", fontsize=6)
        for ax in row[len(cells):]:
            ax.axis("off")
    shown = [s for s in STATUS_STYLE if any(s in rl.status for rl in lists)]
    handles = [_patch(STATUS_STYLE[s][0], STATUS_STYLE[s][1]) for s in shown]
    if handles:
        fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.05 if handles else 0, 1, 1))
    fig.rank_lists = lists
    return _save(fig, save)


def _patch(color: str, label: str):
    from matplotlib.patches import Patch

    return Patch(facecolor="white", edgecolor=color, linewidth=2.5, label=label)
