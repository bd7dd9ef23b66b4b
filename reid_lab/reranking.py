"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) as TransReID's ``utils/reranking.py`` computes it (SPEC §4.6).

The official function is wired into TransReID-SSL's evaluator with k1=20, k2=6, lambda=0.3 but never called
(SPEC §9 item 7); this module makes it usable. Numerics follow the official code step by step:

* ``dist`` = squared Euclidean distances of all query+gallery features, ``|a|^2 + |b|^2 - 2 a.b`` computed with
  ``torch.addmm`` in float32 (no clamping of tiny negatives, as the official);
* ``original_dist = (dist / dist.max(axis=0)).T``: every *column* is divided by its maximum and the result is
  transposed, so row i of ``original_dist`` is column i of ``dist`` over its maximum (= row i over its row
  maximum, up to float rounding, since ``dist`` is symmetric);
* initial ranking = argsort of each row of ``original_dist``; k-reciprocal sets from ``[:k1+1]``, half sets from
  ``[:round(k1/2)+1]``, expansion and weights ``exp(-original_dist)`` normalised over the expanded set, query
  expansion over ``initial_rank[i, :k2]``, Jaccard over *all* N columns of V for query rows vs gallery rows;
* ``final = (1 - lambda) * jaccard + lambda * original_dist[:nq, nq:]``.

Differences from the official (all documented, none changes the algorithm):

* V, the query expansion and the Jaccard sums are float32 (sums accumulated in float64) instead of the official
  float16. The official loses ~1e-3 to float16 rounding (it accumulates the Jaccard sums in float16):
  ``benchmarks/bench_reranking.py`` measures a max abs difference of ~5e-3 to the float16 original at
  800 x 3,200 (98.9 % same top-1, the rest near-ties) and ~5e-7 to the same loop port run in float32.
* Only ``original_dist`` is dense (N x N, N = nq + ng; transposed in place). The ranking keeps just the top
  ``k1 + 1`` per row (``torch.topk`` on row chunks), V is a sparse CSR matrix, and the Jaccard sums use a
  vectorised inverted index (:mod:`reid_lab.kreciprocal`). The official holds ~5 dense N x N arrays.
* Ranking ties: the official ``np.argsort`` (quicksort, not stable) orders exactly equal distances arbitrarily.
  We put each point itself first and break remaining ties by index, as a stable sort would
  (:func:`reid_lab.neighbors.topk_rows`). This only matters for exactly duplicated features (or exactly equal
  distances), where the official result itself depends on numpy's sort implementation.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

from reid_lab import kreciprocal
from reid_lab.neighbors import as_float32_matrix, topk_rows

logger = logging.getLogger(__name__)


def _transpose_inplace(a: np.ndarray, block: int = 512) -> None:
    """Transpose a square C-contiguous matrix in place, block by block (no second N x N array)."""
    n = a.shape[0]
    for i in range(0, n, block):
        ie = min(i + block, n)
        a[i:ie, i:ie] = a[i:ie, i:ie].T.copy()
        for j in range(ie, n, block):
            je = min(j + block, n)
            upper = a[i:ie, j:je].copy()
            a[i:ie, j:je] = a[j:je, i:ie].T
            a[j:je, i:ie] = upper.T


def normalized_distance(qf: Any, gf: Any) -> np.ndarray:
    """The official ``original_dist`` (N x N float32): squared distances, columns over their max, transposed."""
    import torch

    q = as_float32_matrix(qf, "qf")
    g = as_float32_matrix(gf, "gf")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"qf and gf must have the same feature dimension, got {q.shape[1]} and {g.shape[1]}")
    feat = torch.from_numpy(np.concatenate([q, g]))
    sq = feat.pow(2).sum(dim=1, keepdim=True)
    dist = (sq + sq.T).addmm_(feat, feat.T, beta=1, alpha=-2).numpy()  # |a|^2 + |b|^2 - 2 a.b
    col_max = dist.max(axis=0)
    if not (col_max > 0).all():
        raise ValueError("all query/gallery features are identical: the normalised distance is undefined")
    _transpose_inplace(dist)
    dist /= col_max[:, None]  # row i of the transpose is column i of dist, divided by that column's max
    return dist


def re_ranking(qf: Any, gf: Any, k1: int = 20, k2: int = 6, lambda_value: float = 0.3) -> np.ndarray:
    """k-reciprocal re-ranked distance matrix (SPEC §4.6; TransReID-SSL defaults k1=20, k2=6, lambda=0.3).

    Args:
        qf: (nq, D) query features, numpy or torch (any device; computed on CPU in float32).
        gf: (ng, D) gallery features.
        k1: k-reciprocal neighbourhood size; ``1 <= k1 < nq + ng``.
        k2: query-expansion size; ``1 <= k2 <= k1 + 1``.
        lambda_value: weight of the original distance, in [0, 1].

    Returns:
        (nq, ng) float32 ``(1 - lambda) * jaccard + lambda * original_dist`` (smaller = more similar).

    Examples:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> d = re_ranking(rng.normal(size=(5, 8)), rng.normal(size=(20, 8)), k1=4, k2=2)
        >>> d.shape, d.dtype
        ((5, 20), dtype('float32'))
    """
    q = as_float32_matrix(qf, "qf")
    g = as_float32_matrix(gf, "gf")
    nq, n = q.shape[0], q.shape[0] + g.shape[0]
    if not isinstance(k1, (int, np.integer)) or not 1 <= k1 < n:
        raise ValueError(f"k1 must be an integer in [1, nq + ng - 1 = {n - 1}], got {k1!r}")
    if not isinstance(k2, (int, np.integer)) or not 1 <= k2 <= k1 + 1:
        raise ValueError(f"k2 must be an integer in [1, k1 + 1 = {k1 + 1}], got {k2!r}")
    if not 0.0 <= float(lambda_value) <= 1.0:
        raise ValueError(f"lambda_value must be in [0, 1], got {lambda_value!r}")

    original = normalized_distance(q, g)
    rank = topk_rows(original, k1 + 1)  # the official slices argsort()[:, :k1+1] at most
    expanded = kreciprocal.expanded_sets(rank, k1)
    rows = np.repeat(np.arange(n), np.diff(expanded.indptr))
    v = kreciprocal.softmax_rows(expanded, -original[rows, expanded.indices].astype(np.float64))
    v = kreciprocal.query_expansion(v, rank, k2)
    final = kreciprocal.min_sums_dense(v[:nq], v[nq:])  # S, (nq, ng) float32, over all N columns of V
    final /= 2.0 - final
    np.subtract(1.0, final, out=final)  # Jaccard distance 1 - S / (2 - S)
    final *= np.float32(1.0 - lambda_value)
    final += np.float32(lambda_value) * original[:nq, nq:]
    logger.debug("re_ranking: %d queries x %d gallery, V nnz %d", nq, n - nq, v.nnz)
    return final
