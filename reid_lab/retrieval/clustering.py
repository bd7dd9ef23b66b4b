"""Pseudo labels for unsupervised ReID: k-reciprocal Jaccard distance + DBSCAN (docs/reference.md §5.2 steps 2–3).

:func:`jaccard_distance` is cluster-contrast's ``compute_jaccard_distance`` (k1=30, k2=6) and
:func:`dbscan_pseudo_labels` its per-epoch clustering (``DBSCAN(eps, min_samples=4, metric="precomputed")``).
:func:`eps_sweep` runs DBSCAN for several ``eps`` on one distance and :func:`cluster_purity` scores pseudo labels
against true ids (display only; their figures are in :mod:`reid_lab.viz.usl`).

Faithful details of the official code, reproduced on purpose:

* The k-NN table has only ``k1`` columns (self included) although the code then slices ``[:k1+1]``: R(i, k1) is
  computed from 30 neighbours, not 31 (docs/reference.md §5.2 step 2). Half sets use
  ``round(k1/2) + 1 = 16`` columns; query expansion ``initial_rank[i, :k2]``.
* Weights ``V[i, j] = softmax_j(-(2 - 2 x_i.x_j))`` over the expanded set, i.e. exp of minus the squared distance
  of L2-normalised features, normalised over the set (the k-NN itself uses faiss squared L2).
* ``d = 1 - S / (2 - S)``, negatives clipped to 0; no mixing with the original distance.

Differences (documented, none changes a label):

* **Sparse result.** The official returns a dense N x N float32 matrix (4.3 GB at N = 32,621) and builds a dense
  V of the same size. We return a ``scipy.sparse.csr_matrix`` holding every pair with ``S_ij > 0`` plus the
  diagonal; **an absent entry means distance exactly 1** (no shared k-reciprocal weight). Explicit zeros (the
  diagonal, duplicated features) stay stored. scikit-learn's DBSCAN treats only stored entries of a sparse
  precomputed matrix as candidate neighbours; since absent pairs are at distance 1 > eps they are never
  neighbours in the dense matrix either, so the clustering is identical for any ``eps < 1``.
* Memory O(N k) and vectorised (see :mod:`reid_lab.retrieval.kreciprocal`); V and the sums use float32/float64.
* Features must be L2-normalised (cluster-contrast's model output is). Non-normalised input triggers a
  ``UserWarning`` and is processed with the official formula anyway (the weights then no longer match the
  Euclidean k-NN ranking).
* The faiss GPU index is used when available, never required (docs/reference.md §12.2); self is first in every neighbour row
  even with duplicated features (:mod:`reid_lab.retrieval.neighbors`).
"""
from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import DBSCAN

from reid_lab.retrieval import kreciprocal
from reid_lab.retrieval.neighbors import as_float32_matrix, knn

logger = logging.getLogger(__name__)

_NORM_TOLERANCE = 1e-3


def _pattern_dots(x: np.ndarray, pattern: sp.csr_matrix, chunk_rows: int = 256) -> np.ndarray:
    """``x[i] . x[j]`` for every stored (i, j) of ``pattern``, in float32, a block of rows at a time.

    Row i's copies come from ``np.repeat`` (one contiguous copy per row) rather than a gather per pair.
    """
    out = np.empty(pattern.nnz, dtype=np.float32)
    indptr, counts = pattern.indptr, np.diff(pattern.indptr)
    for a in range(0, x.shape[0], chunk_rows):
        b = min(a + chunk_rows, x.shape[0])
        lo, hi = indptr[a], indptr[b]
        out[lo:hi] = np.einsum("ij,ij->i", np.repeat(x[a:b], counts[a:b], axis=0), x[pattern.indices[lo:hi]])
    return out


def jaccard_distance(
    features: Any,
    k1: int = 30,
    k2: int = 6,
    *,
    use_gpu: bool | None = None,
    dense: bool | None = None,
    max_distance: float | None = None,
) -> sp.csr_matrix | np.ndarray:
    """k-reciprocal Jaccard distance between all rows of ``features`` (cluster-contrast, docs/reference.md §5.2 step 2).

    Args:
        features: (N, D) L2-normalised features, numpy or torch.
        k1: neighbours per point including itself (official default 30); ``1 <= k1 < N``.
        k2: query-expansion size; ``1 <= k2 <= k1``.
        use_gpu: faiss GPU index: None = when available, True = ask (CPU fallback with an info log), False = CPU.
        dense: True returns a dense (N, N) float32 ndarray like the official (absent entries filled with 1).
            None or False returns the sparse matrix (one return type regardless of N).
        max_distance: if given, store only entries ``<= max_distance`` (plus the diagonal); exact for DBSCAN with
            ``eps <= max_distance`` and much smaller.

    Returns:
        Symmetric float32 ``csr_matrix`` (N, N) with sorted indices: stored entries are the pairs with a shared
        k-reciprocal weight (``S_ij > 0``) and the whole diagonal; absent entries mean distance 1.

    Note:
        Work and memory are O(N k) except for the result itself: how many pairs share weight depends on the data
        (after query expansion a row of V has ~30-150 entries). With small N or diffuse features nearly all pairs
        do (600 points of 60 ids: 100 %; 3,000 points of 300 ids: 97 %), and then the sparse matrix costs more
        than the dense one; the synthetic 32,621-point benchmark has ~6k per row (~200 M entries, ~1.7 GB,
        estimated from one block). For clustering pass ``max_distance=eps`` (:func:`dbscan_pseudo_labels`
        does), which keeps ~25 entries per row there.
    """
    x = as_float32_matrix(features)
    n = x.shape[0]
    if not isinstance(k1, (int, np.integer)) or not 1 <= k1 < n:
        raise ValueError(f"k1 must be an integer in [1, N - 1 = {n - 1}] (N = number of features), got {k1!r}")
    if not isinstance(k2, (int, np.integer)) or not 1 <= k2 <= k1:
        raise ValueError(f"k2 must be an integer in [1, k1 = {k1}] (the k-NN table has k1 columns), got {k2!r}")
    norms = np.linalg.norm(x, axis=1)
    if np.abs(norms - 1.0).max() > _NORM_TOLERANCE:
        warnings.warn(
            f"jaccard_distance expects L2-normalised features (row norms in [{norms.min():.4g}, {norms.max():.4g}]);"
            " computing with the official formula exp(-(2 - 2 x.y)) anyway — normalise them first",
            UserWarning,
            stacklevel=2,
        )

    t0 = time.perf_counter()
    _, rank = knn(x, int(k1), metric="l2", use_gpu=use_gpu)
    t1 = time.perf_counter()
    # Official quirk: rank has k1 columns, and rank[:, :k1+1] is what it slices.
    expanded = kreciprocal.expanded_sets(rank, int(k1), width=k1 + 1, half_width=kreciprocal.half_k(k1) + 1)
    logits = -(2.0 - 2.0 * _pattern_dots(x, expanded))  # float32 as the official torch.mm
    v = kreciprocal.softmax_rows(expanded, logits)
    v = kreciprocal.query_expansion(v, rank, int(k2))
    t2 = time.perf_counter()
    dist = kreciprocal.jaccard_sparse(v, max_distance=max_distance)
    t3 = time.perf_counter()
    logger.info(
        "Jaccard distance: %d features, V nnz %d, %d stored distances; k-NN %.1f s, sets+weights %.1f s, "
        "Jaccard %.1f s",
        n, v.nnz, dist.nnz, t1 - t0, t2 - t1, t3 - t2,
    )
    if dense:
        return kreciprocal.to_dense_distance(dist)
    return dist


def dbscan_from_distance(
    dist: sp.spmatrix | np.ndarray, eps: float = 0.6, min_samples: int = 4, *, n_jobs: int | None = -1
) -> np.ndarray:
    """DBSCAN labels (−1 = outlier) on a precomputed Jaccard matrix, sparse (absent = 1) or dense.

    Entries above ``eps`` are dropped and rows sorted before calling scikit-learn (smaller input, no
    ``EfficiencyWarning``); this cannot change the result because only entries ``<= eps`` are neighbours.
    Useful for eps sweeps (docs/reference.md §12.7): compute :func:`jaccard_distance` once, cluster many times.
    """
    if not 0.0 < float(eps) < 1.0:
        raise ValueError(f"eps must be in (0, 1) for a Jaccard distance (absent entries are 1), got {eps!r}")
    if not isinstance(min_samples, (int, np.integer)) or min_samples < 1:
        raise ValueError(f"min_samples must be a positive integer, got {min_samples!r}")
    if sp.issparse(dist):
        dist = _prune_sorted(sp.csr_matrix(dist), float(eps))
    model = DBSCAN(eps=float(eps), min_samples=int(min_samples), metric="precomputed", n_jobs=n_jobs)
    return model.fit_predict(dist).astype(np.int64)


def _prune_sorted(dist: sp.csr_matrix, eps: float) -> sp.csr_matrix:
    """Keep stored entries ``<= eps`` and the diagonal; sort every row by value (sklearn's preferred layout)."""
    n = dist.shape[0]
    rows = np.repeat(np.arange(n), np.diff(dist.indptr))
    keep = (dist.data <= eps) | (rows == dist.indices)
    rows, cols, vals = rows[keep], dist.indices[keep], dist.data[keep]
    order = np.lexsort((vals, rows))  # stable: equal values keep ascending column order
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
    return sp.csr_matrix((vals[order], cols[order], indptr), shape=dist.shape)


def dbscan_pseudo_labels(
    features: Any,
    eps: float = 0.6,
    min_samples: int = 4,
    k1: int = 30,
    k2: int = 6,
    *,
    use_gpu: bool | None = None,
    n_jobs: int | None = -1,
) -> np.ndarray:
    """Cluster-contrast pseudo labels: Jaccard distance + ``DBSCAN(eps, min_samples, metric="precomputed")``.

    docs/reference.md §5.2 step 3: eps 0.6 (Market scripts) / 0.7 (MSMT scripts), min_samples 4. Returns int64 labels,
    −1 for outliers (which the official drops from the epoch's training set). Identical labels to DBSCAN on the
    official dense matrix (see module docstring).
    """
    if not 0.0 < float(eps) < 1.0:
        raise ValueError(f"eps must be in (0, 1) for a Jaccard distance (absent entries are 1), got {eps!r}")
    dist = jaccard_distance(features, k1, k2, use_gpu=use_gpu, max_distance=float(eps))
    t0 = time.perf_counter()
    labels = dbscan_from_distance(dist, eps, min_samples, n_jobs=n_jobs)
    stats = summarize_labels(labels)
    logger.info(
        "DBSCAN eps=%.3g min_samples=%d: %d clusters, %d outliers of %d (%.1f s)",
        eps, min_samples, stats.num_clusters, stats.num_outliers, len(labels), time.perf_counter() - t0,
    )
    return labels


@dataclass(frozen=True)
class PseudoLabelStats:
    """Display-only summary of a pseudo-labelling (eps sweeps with cluster statistics, docs/reference.md §12.7)."""

    num_samples: int
    num_clusters: int  # excludes the outlier label −1, as the official ``num_cluster``
    num_outliers: int
    largest_cluster: int
    mean_cluster_size: float
    ari: float | None = None  # adjusted Rand index vs true ids, outliers as one extra "cluster" (sklearn)
    nmi: float | None = None  # normalised mutual information vs true ids (sklearn)
    ari_clustered: float | None = None  # ARI restricted to non-outlier samples

    @property
    def outlier_fraction(self) -> float:
        return self.num_outliers / self.num_samples if self.num_samples else 0.0


def summarize_labels(labels: Any, true_ids: Any | None = None) -> PseudoLabelStats:
    """Cluster count, outliers and (given ground-truth ids) ARI / NMI via ``sklearn.metrics``."""
    labels = np.asarray(labels).ravel()
    clustered = labels[labels >= 0]
    sizes = np.bincount(clustered) if clustered.size else np.zeros(0, np.int64)
    sizes = sizes[sizes > 0]
    ari = nmi = ari_in = None
    if true_ids is not None:
        from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

        true_ids = np.asarray(true_ids).ravel()
        if true_ids.shape != labels.shape:
            raise ValueError(f"true_ids must have one id per label: {true_ids.shape} vs {labels.shape}")
        ari = float(adjusted_rand_score(true_ids, labels))
        nmi = float(normalized_mutual_info_score(true_ids, labels))
        mask = labels >= 0
        ari_in = float(adjusted_rand_score(true_ids[mask], labels[mask])) if mask.any() else None
    return PseudoLabelStats(
        num_samples=int(labels.size),
        num_clusters=int(sizes.size),
        num_outliers=int((labels < 0).sum()),
        largest_cluster=int(sizes.max()) if sizes.size else 0,
        mean_cluster_size=float(sizes.mean()) if sizes.size else 0.0,
        ari=ari,
        nmi=nmi,
        ari_clustered=ari_in,
    )


# ------------------------------------------------------------------------------------------------ eps sweep
# (moved from reid_lab.usl_plots: the computations behind its figures, now in reid_lab.viz.usl)
def _labels(values: Any, name: str, n: int | None = None) -> np.ndarray:
    array = np.asarray(values).ravel()
    if n is not None and array.shape[0] != n:
        raise ValueError(f"{name} must have one entry per point ({n}), got {array.shape[0]}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer labels, got dtype {array.dtype}")
    return array


def cluster_purity(labels: Any, true_ids: Any) -> float | None:
    """Fraction of *clustered* points (label >= 0) whose cluster's most frequent true id is their own.

    1.0 means no cluster mixes identities (it may still split one identity into several clusters — ARI/NMI see
    that); ``None`` when every point is an outlier.
    """
    from sklearn.metrics.cluster import contingency_matrix

    labels = _labels(labels, "labels")
    true_ids = _labels(true_ids, "true_ids", len(labels))
    keep = labels >= 0
    if not keep.any():
        return None
    table = contingency_matrix(true_ids[keep], labels[keep], sparse=True)  # (ids, clusters)
    return float(table.max(axis=0).sum() / keep.sum())


def eps_sweep(distance: Any, eps_values: Sequence[float], true_ids: Any | None = None, *,
              min_samples: int = 4) -> list[dict[str, Any]]:
    """DBSCAN on one precomputed Jaccard matrix for every ``eps`` (the distance is computed once).

    Returns one dict per eps: ``eps``, ``num_clusters``, ``num_outliers``, ``outlier_fraction``,
    ``largest_cluster`` and, with ``true_ids``, ``purity``, ``ari``, ``nmi`` (display only).
    """
    if len(eps_values) == 0:
        raise ValueError("eps_values is empty: give at least one eps in (0, 1)")
    rows = []
    for eps in eps_values:
        labels = dbscan_from_distance(distance, float(eps), min_samples)
        stats = summarize_labels(labels, true_ids)
        row = dict(eps=float(eps), num_clusters=stats.num_clusters, num_outliers=stats.num_outliers,
                   outlier_fraction=stats.outlier_fraction, largest_cluster=stats.largest_cluster)
        if true_ids is not None:
            row.update(purity=cluster_purity(labels, true_ids), ari=stats.ari, nmi=stats.nmi)
        rows.append(row)
    return rows
