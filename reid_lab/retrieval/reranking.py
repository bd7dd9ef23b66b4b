"""k-reciprocal re-ranking (Zhong et al., CVPR 2017) as TransReID's ``utils/reranking.py`` computes it (docs/reference.md §4.6).

The official function is wired into TransReID-SSL's evaluator with k1=20, k2=6, lambda=0.3 but never called
(docs/reference.md §9.7); this module makes it usable. Numerics follow the official code step by step:

* ``dist`` = squared Euclidean distances of all query+gallery features, ``|a|^2 + |b|^2 - 2 a.b`` computed with
  ``torch.addmm`` in float32 (no clamping of tiny negatives, as the official);
* ``original_dist = (dist / dist.max(axis=0)).T``: every *column* is divided by its maximum and the result is
  transposed, so row i of ``original_dist`` is column i of ``dist`` over that column's maximum. ``dist`` is
  symmetric, so this is row i of ``dist`` over its own maximum: each row is divided by one positive constant;
* initial ranking = argsort of each row of ``original_dist``; k-reciprocal sets from ``[:k1+1]``, half sets from
  ``[:round(k1/2)+1]``, expansion and weights ``exp(-original_dist)`` normalised over the expanded set, query
  expansion over ``initial_rank[i, :k2]``, Jaccard over *all* N columns of V for query rows vs gallery rows;
* ``final = (1 - lambda) * jaccard + lambda * original_dist[:nq, nq:]``.

Differences from the official (all documented, none changes the algorithm):

* No N x N matrix (N = nq + ng). The official holds ~5 dense N x N arrays; here ``original_dist`` is streamed in
  row blocks (:func:`scan_normalized_distance`: one ``addmm`` per block of ~1,000 rows, row maximum, division,
  ``torch.topk``), keeping only the top ``k1 + 1`` per row, the row maxima and the (nq, ng) query-gallery block.
  The weights need ``original_dist`` at the expanded sets E(i) only (~k1 entries per row, not all inside the
  top ``k1 + 1``): ~3/4 are looked up in the kept top ``k1 + 1``, the rest recomputed per pair
  (:func:`_expanded_distances`), equal to the matrix product up to float rounding (~1e-7). V is a sparse CSR
  matrix and the Jaccard sums use a vectorised inverted index (:mod:`reid_lab.retrieval.kreciprocal`).
  Memory is O(nq ng + N k1) plus one block (~1,000 x N float32).
* Row blocks vs the official full product: on MKL (this project's torch) the full ``addmm`` is bitwise symmetric
  and a block of >= 64 rows reproduces its rows bitwise (``tests/test_reranking.py`` checks the ranking and the
  query block against the dense formula), so rankings, row maxima and the final block are the official float32
  values. A BLAS that rounds ``a.b`` and ``b.a`` differently would change the last bit of some distances, as
  running the official on another device does.
* V, the query expansion and the Jaccard sums are float32 (sums accumulated in float64) instead of the official
  float16. The official loses ~1e-3 to float16 rounding (it accumulates the Jaccard sums in float16):
  ``benchmarks/bench_reranking.py`` measures a max abs difference of ~5e-3 to the float16 original at
  800 x 3,200 (98.9 % same top-1, the rest near-ties) and ~5e-7 to the same loop port run in float32.
* Ranking ties: the official ``np.argsort`` (quicksort, not stable) orders exactly equal distances arbitrarily.
  We put each point itself first and break remaining ties by index, as a stable sort would (as
  :func:`reid_lab.retrieval.neighbors.topk_rows`). Ties are decided on the *divided* values, as in the official, so two
  distances that round to the same normalised value tie. This only matters for exactly duplicated features (or
  exactly equal distances), where the official result itself depends on numpy's sort implementation.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp

from reid_lab.retrieval import kreciprocal
from reid_lab.retrieval.neighbors import as_float32_matrix, topk_block

logger = logging.getLogger(__name__)

_BLOCK_ROWS = 1024  # target rows of original_dist per addmm (~1,000 x N float32: 16 MB at N = 4,000)
_PAIRS_PER_CHUNK = 8192  # gathered feature pairs per chunk in _expanded_distances (2 x 8192 x D float32)


def _features(qf: Any, gf: Any) -> np.ndarray:
    q = as_float32_matrix(qf, "qf")
    g = as_float32_matrix(gf, "gf")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"qf and gf must have the same feature dimension, got {q.shape[1]} and {g.shape[1]}")
    return np.concatenate([q, g])


def _row_blocks(n: int, block_rows: int) -> np.ndarray:
    """Boundaries of near-equal row blocks (no small trailing block, whose BLAS path may round differently)."""
    n_blocks = max(1, -(-n // block_rows))
    return np.linspace(0, n, n_blocks + 1).round().astype(np.int64)


def _normalized_blocks(x: np.ndarray, block_rows: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Yield ``(start, rows start.. of original_dist, their divisors)`` for near-equal row blocks of ``x``."""
    import torch

    feat = torch.from_numpy(x)
    sq = feat.pow(2).sum(dim=1, keepdim=True)
    bounds = _row_blocks(len(x), block_rows)
    for s, e in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        block = (sq[s:e] + sq.T).addmm_(feat[s:e], feat.T, beta=1, alpha=-2).numpy()  # rows s..e of dist
        peak = block.max(axis=1)  # numpy: cheap single-threaded passes over a cache-sized block
        if not (peak > 0).all():
            raise ValueError("all query/gallery features are identical: the normalised distance is undefined")
        block /= peak[:, None]
        yield s, block, peak


def scan_normalized_distance(
    qf: Any, gf: Any, k: int, *, block_rows: int = _BLOCK_ROWS
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stream the official ``original_dist`` (docs/reference.md §4.6) in row blocks without building it.

    Args:
        qf: (nq, D) query features.
        gf: (ng, D) gallery features.
        k: neighbours kept per row, ``1 <= k <= nq + ng``.
        block_rows: target rows per block (working memory ~2 x block_rows x N float32).

    Returns:
        ``rank`` (N, k) int64: the k nearest of every row (self first, ties by index as a stable sort);
        ``rank_dist`` (N, k) float32: ``original_dist`` at ``rank``;
        ``row_max`` (N,) float32: each row's divisor (= the column maxima of the symmetric ``dist``);
        ``query_block`` (nq, ng) float32: ``original_dist[:nq, nq:]``.
    """
    x = _features(qf, gf)
    nq, n = len(x) - len(as_float32_matrix(gf, "gf")), len(x)
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ValueError(f"k must be an integer in [1, nq + ng = {n}], got {k!r}")
    rank = np.empty((n, k), dtype=np.int64)
    rank_dist = np.empty((n, k), dtype=np.float32)
    row_max = np.empty(n, dtype=np.float32)
    query_block = np.empty((nq, n - nq), dtype=np.float32)
    for s, block, peak in _normalized_blocks(x, block_rows):
        e = s + len(block)
        row_max[s:e] = peak
        rank_dist[s:e], rank[s:e] = topk_block(block, k, s)
        if s < nq:
            query_block[s : min(e, nq)] = block[: min(e, nq) - s, nq:]
    return rank, rank_dist, row_max, query_block


def normalized_distance(qf: Any, gf: Any, *, block_rows: int = _BLOCK_ROWS) -> np.ndarray:
    """The official dense ``original_dist`` (N x N float32) from the same row blocks :func:`re_ranking` streams.

    For inspection and small problems only; :func:`re_ranking` never builds it.
    """
    x = _features(qf, gf)
    out = np.empty((len(x), len(x)), dtype=np.float32)
    for s, block, _ in _normalized_blocks(x, block_rows):
        out[s : s + len(block)] = block
    return out


def _expanded_distances(
    x: np.ndarray, scan: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray], expanded: sp.csr_matrix
) -> np.ndarray:
    """``original_dist`` at every stored entry (i, j) of ``expanded`` (CSR, sorted rows), float32.

    Entries among row i's top ``k1 + 1`` (most of them) are looked up in the scan, i.e. the exact matrix-product
    values; the others are ``(|a|^2 + |b|^2 - 2 a.b) / row_max[i]`` from float64 dot products rounded to float32,
    equal to the matrix-product value up to float32 rounding.
    """
    rank, rank_dist, row_max, _ = scan
    n, k = rank.shape
    rows = np.repeat(np.arange(n, dtype=np.int64), np.diff(expanded.indptr))
    cols = expanded.indices.astype(np.int64)
    keys = rows * n + cols  # sorted: rows ascending, columns sorted within rows
    order = np.argsort(rank, axis=1)
    table = (np.arange(n, dtype=np.int64)[:, None] * n + np.take_along_axis(rank, order, axis=1)).ravel()
    table_dist = np.take_along_axis(rank_dist, order, axis=1).ravel()
    pos = np.minimum(np.searchsorted(table, keys), len(table) - 1)
    found = table[pos] == keys
    out = np.where(found, table_dist[pos], np.float32(0.0))
    miss = np.flatnonzero(~found)
    sq = np.einsum("ij,ij->i", x, x, dtype=np.float64)
    for c0 in range(0, len(miss), _PAIRS_PER_CHUNK):
        m = miss[c0 : c0 + _PAIRS_PER_CHUNK]
        r, c = rows[m], cols[m]
        dist = sq[r] + sq[c] - 2.0 * np.einsum("ij,ij->i", x[r], x[c])
        out[m] = dist.astype(np.float32) / row_max[r]
    logger.debug("re_ranking: %d of %d expanded-set distances recomputed outside the top-%d", len(miss), len(keys), k)
    return out


def re_ranking(qf: Any, gf: Any, k1: int = 20, k2: int = 6, lambda_value: float = 0.3) -> np.ndarray:
    """k-reciprocal re-ranked distance matrix (docs/reference.md §4.6; TransReID-SSL defaults k1=20, k2=6, lambda=0.3).

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
    x = _features(qf, gf)
    nq, n = len(x) - len(as_float32_matrix(gf, "gf")), len(x)
    if not isinstance(k1, (int, np.integer)) or not 1 <= k1 < n:
        raise ValueError(f"k1 must be an integer in [1, nq + ng - 1 = {n - 1}], got {k1!r}")
    if not isinstance(k2, (int, np.integer)) or not 1 <= k2 <= k1 + 1:
        raise ValueError(f"k2 must be an integer in [1, k1 + 1 = {k1 + 1}], got {k2!r}")
    if not 0.0 <= float(lambda_value) <= 1.0:
        raise ValueError(f"lambda_value must be in [0, 1], got {lambda_value!r}")

    q, g = x[:nq], x[nq:]
    scan = scan_normalized_distance(q, g, k1 + 1)  # the official slices argsort()[:, :k1+1] at most
    rank, query_block = scan[0], scan[3]
    expanded = kreciprocal.expanded_sets(rank, k1)
    v = kreciprocal.softmax_rows(expanded, -_expanded_distances(x, scan, expanded).astype(np.float64))
    v = kreciprocal.query_expansion(v, rank, k2)
    final = kreciprocal.min_sums_dense(v[:nq], v[nq:])  # S, (nq, ng) float32, over all N columns of V
    final /= 2.0 - final
    np.subtract(1.0, final, out=final)  # Jaccard distance 1 - S / (2 - S)
    final *= np.float32(1.0 - lambda_value)
    query_block *= np.float32(lambda_value)
    final += query_block
    logger.debug("re_ranking: %d queries x %d gallery, V nnz %d", nq, n - nq, v.nnz)
    return final
