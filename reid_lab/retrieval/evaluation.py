"""ReID evaluation: feature extraction, distances and the Market-1501 ranking protocol (CMC, mAP, mINP).

What the official code does (docs/reference.md §4.6, TransReID-SSL ``transreid_pytorch/utils/metrics.py``):

* features of query and gallery, L2-normalised, squared Euclidean distance ‖q‖² + ‖g‖² − 2 q·g (no sqrt);
* ``eval_func``: rank each query's gallery by ascending distance, drop gallery entries with the **same pid
  and the same camid** as the query, skip queries left without a true match, then CMC (rank-k hit rate) and
  non-interpolated AP averaged over the valid queries; CMC truncated at ``max_rank`` (50).
* mINP is not computed by TransReID-SSL; we add it as the AGW / ReID-Survey ``eval_func`` defines it (Ye et al.,
  TPAMI 2021): INP = #matches / (position of the last match + 1), averaged over the valid queries.

:func:`evaluate_rank` computes exactly these numbers, with two deliberate differences from the official code:

* ties in distance are broken by gallery index (a *stable* sort). The official ``np.argsort`` default is an
  unstable quicksort, so on exact ties its ranking is arbitrary; with a stable sort it is reproducible.
* ``cmc`` is float64 (the official code casts the per-query curves to float32 before averaging; the
  difference is below 6e-8).

It is also vectorised and memory-bounded: queries are processed in chunks of ``chunk_size`` rows. Only the
part of each ranking up to the query's *last* true match matters for CMC, AP and INP, so for each chunk we
select the gallery entries no farther than that last match and sort only those (for good features a small
fraction of the gallery). When the selection is large (bad features) the chunk is sorted whole, with the
gallery index and the match flag packed into 64-bit keys beside the float32 distance so that one plain
``np.sort`` gives the stable order. Both routes give the same floats as a per-query loop port of
``eval_func`` (``benchmarks/bench_evaluation.py`` checks this and the speed-up).

:func:`evaluate_features` is the TransReID ``R1_mAP_eval`` path; :func:`extract_features` runs a model over a
loader. Distances: :func:`euclidean_distance` (the official squared form), :func:`cosine_distance`.
"""
from __future__ import annotations

import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import torch
import torch.nn.functional as F
from scipy.linalg.blas import sgemm

from ..engine import progress as progress_bar

logger = logging.getLogger(__name__)

__all__ = [
    "RankResult",
    "chance_map",
    "evaluate_rank",
    "evaluate_features",
    "euclidean_distance",
    "cosine_distance",
    "extract_features",
    "format_results",
    "re_ranking",
]

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence]

# Above this fraction of selected entries a chunk is sorted whole (measured cross-over on a 2-core CPU).
_DENSE_FRACTION = 0.2
# Sort key of a removed (same pid, same camera) gallery entry: larger than any real key, match bit 0.
_JUNK_KEY = np.uint64(0xFFFF_FFFF_FFFF_FFFE)
_LOW_BYTE = 0 if sys.byteorder == "little" else 7  # byte of a uint64 that holds the match bit


# ---------------------------------------------------------------------------------------------------------
# Result container
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class RankResult:
    """Market-protocol ranking metrics (docs/reference.md §4.6). All values are fractions in [0, 1].

    Attributes:
        cmc: float64 array of length ``min(max_rank, num_gallery)``; ``cmc[k-1]`` is the fraction of valid
            queries with a true match within the first k kept gallery entries.
        mAP: mean over valid queries of the non-interpolated average precision.
        mINP: mean over valid queries of the inverse negative penalty #matches / (last match position + 1).
        num_valid_queries: queries with at least one true match left after the same-camera removal.
        per_query_ap: AP of every query (NaN for invalid queries), length num_query.
        per_query_inp: INP of every query (NaN for invalid queries), length num_query.
        num_gallery: number of gallery items (before the per-query removal).
    """

    cmc: np.ndarray
    mAP: float
    mINP: float
    num_valid_queries: int
    per_query_ap: np.ndarray
    per_query_inp: np.ndarray
    num_gallery: int

    def rank(self, k: int) -> float:
        """Rank-k accuracy (CMC at k) as a fraction.

        Beyond the gallery size the curve is 1 (every valid query has its matches somewhere in the gallery);
        beyond a smaller ``max_rank`` it was not computed, which raises ``ValueError``.
        """
        if k < 1:
            raise ValueError(f"rank k must be >= 1, got {k}")
        if k <= len(self.cmc):
            return float(self.cmc[k - 1])
        if len(self.cmc) == self.num_gallery:
            return 1.0
        raise ValueError(f"rank-{k} was not computed: CMC truncated at max_rank={len(self.cmc)}")

    def as_dict(self, prefix: str = "") -> dict[str, float]:
        """``{prefix}mAP``, ``{prefix}rank1``, ``rank5``, ``rank10``, ``mINP`` as fractions in [0, 1].

        A rank-k key is omitted when the CMC was truncated below k by a small ``max_rank``.
        """
        out = {f"{prefix}mAP": float(self.mAP)}
        for k in (1, 5, 10):
            try:
                out[f"{prefix}rank{k}"] = self.rank(k)
            except ValueError:
                pass
        out[f"{prefix}mINP"] = float(self.mINP)
        return out


def format_results(result: RankResult, title: str | None = None) -> str:
    """A small markdown table of mAP, Rank-1/5/10 and mINP in percent (the TransReID log's metrics + mINP)."""
    rows = [("mAP", result.mAP)]
    for k in (1, 5, 10):
        try:
            rows.append((f"Rank-{k}", result.rank(k)))
        except ValueError:
            pass
    rows.append(("mINP", result.mINP))
    lines = [f"**{title}**", ""] if title else []
    lines += ["| metric | % |", "|---|---:|"]
    lines += [f"| {name} | {100.0 * value:.2f} |" for name, value in rows]
    lines.append(f"\n{result.num_valid_queries} valid queries, {result.num_gallery} gallery images")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------
# Input conversion
# ---------------------------------------------------------------------------------------------------------
def _to_numpy(x: ArrayLike, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu()
        if x.dtype in (torch.bfloat16, torch.float16):
            x = x.float()  # exact; numpy has no bfloat16
        return x.numpy()
    try:
        return np.asarray(x)
    except Exception as exc:  # pragma: no cover - exotic inputs
        raise TypeError(f"{name} must be a numpy array, a torch tensor or a sequence, got {type(x).__name__}") from exc


def _as_distmat(distmat: ArrayLike) -> np.ndarray:
    d = _to_numpy(distmat, "distmat")
    if d.ndim != 2:
        raise ValueError(f"distmat must be 2-D (num_query, num_gallery), got shape {d.shape}")
    if d.shape[0] == 0 or d.shape[1] == 0:
        raise ValueError(f"distmat is empty (shape {d.shape}); need at least one query and one gallery item")
    if d.dtype == np.float16:
        d = d.astype(np.float32)  # exact
    elif d.dtype.kind in "iu":
        d = d.astype(np.float64)  # exact for |values| < 2**53
    elif d.dtype.kind != "f":
        raise TypeError(f"distmat must hold real numbers, got dtype {d.dtype}")
    return np.ascontiguousarray(d)  # the tie-breaking key view needs C order (column subsets, Fortran arrays)


def _as_labels(x: ArrayLike, name: str, n: int, axis: str) -> np.ndarray:
    a = _to_numpy(x, name)
    if a.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {a.shape}")
    if len(a) != n:
        raise ValueError(f"{name} has {len(a)} entries but distmat has {n} {axis} (distmat shape mismatch)")
    return a


def _sortable_u32(x: np.ndarray, nonnegative: bool) -> np.ndarray:
    """Map float32 to uint32 so that unsigned order = float order (−0.0 and +0.0 map to the same key)."""
    if nonnegative:  # x >= 0 everywhere (−0.0 included): setting the sign bit is enough, and maps −0.0 to +0.0
        return x.view(np.uint32) | np.uint32(0x8000_0000)
    u = (x + np.float32(0.0)).view(np.uint32)  # x + 0 turns -0.0 into +0.0
    flip = ((u >> np.uint32(31)) * np.uint32(0x7FFF_FFFF)) | np.uint32(0x8000_0000)
    return u ^ flip


# ---------------------------------------------------------------------------------------------------------
# Ranking protocol
# ---------------------------------------------------------------------------------------------------------
def evaluate_rank(
    distmat: ArrayLike,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    max_rank: int = 50,
    *,
    chunk_size: int = 256,
) -> RankResult:
    """CMC, mAP and mINP under the Market-1501 protocol (official ``eval_func``, docs/reference.md §4.6).

    Args:
        distmat: (num_query, num_gallery) distances, smaller = more similar; numpy or torch, any real dtype
            (float32 is the fast path; NaN is rejected).
        q_pids, g_pids: identities of queries / gallery items (1-D). Distractors (pid 0) are ordinary
            negatives; junk (pid −1) should have been removed when the dataset was parsed.
        q_camids, g_camids: camera ids (1-D).
        max_rank: length of the CMC curve; if larger than the gallery, the gallery size is used (with a
            warning), as in the official code.
        chunk_size: queries processed at once; peak extra memory is O(chunk_size × num_gallery).

    Returns:
        :class:`RankResult`. Ties in distance are ranked by gallery index (stable sort).

    Raises:
        ValueError: on shape mismatches, NaN distances, or when no query has a valid match.
    """
    d = _as_distmat(distmat)
    num_q, num_g = d.shape
    q_pids = _as_labels(q_pids, "q_pids", num_q, "rows (queries)")
    g_pids = _as_labels(g_pids, "g_pids", num_g, "columns (gallery items)")
    q_camids = _as_labels(q_camids, "q_camids", num_q, "rows (queries)")
    g_camids = _as_labels(g_camids, "g_camids", num_g, "columns (gallery items)")
    max_rank = int(max_rank)
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    if int(chunk_size) < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    if num_g < max_rank:
        logger.warning("Number of gallery samples (%d) is smaller than max_rank=%d; using max_rank=%d",
                       num_g, max_rank, num_g)
        max_rank = num_g

    # Gallery grouped by pid, to list each query's same-pid gallery items without a dense comparison.
    g_by_pid = np.argsort(g_pids, kind="stable")
    g_pids_sorted = g_pids[g_by_pid]

    per_query_ap = np.full(num_q, np.nan)
    per_query_inp = np.full(num_q, np.nan)
    first_hit = np.full(num_q, -1, dtype=np.int64)
    for start in range(0, num_q, int(chunk_size)):
        stop = min(start + int(chunk_size), num_q)
        chunk = d[start:stop]
        smallest = chunk.min()  # NaN if any entry is NaN
        if np.isnan(smallest):
            bad = start + int(np.flatnonzero(np.isnan(chunk).any(axis=1))[0])
            raise ValueError(f"distmat contains NaN (first in query row {bad})")
        rows, pos = _hit_positions(chunk, q_pids[start:stop], q_camids[start:stop], g_pids, g_camids,
                                   g_by_pid, g_pids_sorted, nonnegative=bool(smallest >= 0))
        _chunk_metrics(rows, pos, stop - start, per_query_ap[start:stop], per_query_inp[start:stop],
                       first_hit[start:stop])

    valid = first_hit >= 0
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise ValueError(
            f"No valid query: none of the {num_q} queries has a gallery item with the same pid from a "
            "different camera (check that query and gallery share identities and that camids are set)")
    counts = np.bincount(first_hit[valid & (first_hit < max_rank)], minlength=max_rank)
    cmc = np.cumsum(counts) / num_valid
    for a in (cmc, per_query_ap, per_query_inp):
        a.setflags(write=False)
    return RankResult(cmc=cmc, mAP=float(np.mean(per_query_ap[valid])), mINP=float(np.mean(per_query_inp[valid])),
                      num_valid_queries=num_valid, per_query_ap=per_query_ap, per_query_inp=per_query_inp,
                      num_gallery=num_g)


def chance_map(q_pids: ArrayLike, g_pids: ArrayLike, q_camids: ArrayLike, g_camids: ArrayLike, *,
               seeds: int = 5) -> tuple[float, float]:
    """mAP of a random ranking under the same protocol: ``(mean, sd)`` over ``seeds`` uniform random distance
    matrices (fractions). The floor every figure's mAP axis should show: a model near it has learned nothing."""
    values = []
    for seed in range(int(seeds)):
        noise = np.random.default_rng(seed).random((len(q_pids), len(g_pids)), dtype=np.float32)
        values.append(evaluate_rank(noise, q_pids, g_pids, q_camids, g_camids, max_rank=1).mAP)
    return float(np.mean(values)), float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def _hit_positions(
    d: np.ndarray,
    q_pids: np.ndarray,
    q_camids: np.ndarray,
    g_pids: np.ndarray,
    g_camids: np.ndarray,
    g_by_pid: np.ndarray,
    g_pids_sorted: np.ndarray,
    nonnegative: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Positions of the true matches in each row's ranking (same-pid-same-camera entries removed).

    Returns (rows, pos), both int64, ordered by row then by position; pos is 0-based among kept entries.
    """
    b, num_g = d.shape
    # ---- same-pid pairs (row, gallery index), split into true matches and removed (same camera) ----
    lo = np.searchsorted(g_pids_sorted, q_pids, side="left")
    hi = np.searchsorted(g_pids_sorted, q_pids, side="right")
    n_same = hi - lo
    pair_rows = np.repeat(np.arange(b), n_same)
    offsets = np.arange(len(pair_rows)) - np.repeat(np.cumsum(n_same) - n_same, n_same)
    pair_cols = g_by_pid[np.repeat(lo, n_same) + offsets]
    junk = g_camids[pair_cols] == q_camids[pair_rows]
    m_rows, m_cols = pair_rows[~junk], pair_cols[~junk]
    if len(m_rows) == 0:
        return m_rows, m_rows.copy()

    # ---- only entries no farther than the row's last true match can precede a match ----
    last = np.full(b, -np.inf, dtype=d.dtype)
    np.maximum.at(last, m_rows, d[m_rows, m_cols])
    last[np.bincount(m_rows, minlength=b) == 0] = np.nan  # no match: select nothing
    selected = d <= last[:, None]
    n_selected = int(np.count_nonzero(selected))

    if d.dtype == np.float32 and n_selected > _DENSE_FRACTION * d.size and num_g < 2**31:
        # Whole-row sort of packed keys: [distance (32 bits) | gallery index | match bit].
        keys = _sortable_u32(d, nonnegative).astype(np.uint64)
        keys <<= np.uint64(32)
        keys |= np.arange(num_g, dtype=np.uint64) << np.uint64(1)
        keys[m_rows, m_cols] |= np.uint64(1)
        keys[pair_rows[junk], pair_cols[junk]] = _JUNK_KEY  # removed entries sort after every kept one
        keys.sort(axis=1)
        match_bits = keys.view(np.uint8)[:, _LOW_BYTE::8] & np.uint8(1)  # 0/1 bytes
        rows, pos = np.divmod(np.flatnonzero(match_bits.view(bool)), num_g)
        return rows, pos

    # Sparse route: sort the selected entries of each row by (distance, gallery index).
    rows, cols = np.divmod(np.flatnonzero(selected), num_g)  # row-major: columns ascending within each row
    same = g_pids[cols] == q_pids[rows]
    keep = ~(same & (g_camids[cols] == q_camids[rows]))
    rows, cols, is_match = rows[keep], cols[keep], same[keep]
    vals = d[rows, cols]
    row_key = rows.astype(np.int16) if b <= np.iinfo(np.int16).max else rows
    # np.lexsort is stable: equal (row, distance) keep their column order, i.e. ties by gallery index.
    order = np.lexsort((vals, row_key))
    hit = np.flatnonzero(is_match[order])
    hit_rows = rows[order[hit]].astype(np.int64)
    row_start = np.cumsum(np.bincount(rows, minlength=b)) - np.bincount(rows, minlength=b)
    return hit_rows, hit - row_start[hit_rows]


def _chunk_metrics(
    rows: np.ndarray,
    pos: np.ndarray,
    b: int,
    ap_out: np.ndarray,
    inp_out: np.ndarray,
    first_out: np.ndarray,
) -> None:
    """AP, INP and first-hit position per row from the hit positions (rows sorted, pos ascending per row)."""
    num_rel = np.bincount(rows, minlength=b)
    valid = num_rel > 0
    first_idx = np.cumsum(num_rel) - num_rel  # index in `rows` of each row's first hit
    hit_number = np.arange(len(rows)) - first_idx[rows] + 1  # 1, 2, ... within a row
    # AP = (1/#rel) * sum over hits of (#hits so far) / (position + 1)      (non-interpolated)
    ap_sum = np.bincount(rows, weights=hit_number / (pos + 1.0), minlength=b)
    last_pos = pos[(first_idx + num_rel - 1)[valid]]
    ap_out[valid] = ap_sum[valid] / num_rel[valid]
    inp_out[valid] = num_rel[valid] / (last_pos + 1.0)
    first_out[valid] = pos[first_idx[valid]]


# ---------------------------------------------------------------------------------------------------------
# Distances
# ---------------------------------------------------------------------------------------------------------
def _as_features(x: ArrayLike, name: str) -> torch.Tensor:
    t = x.detach() if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim != 2:
        raise ValueError(f"{name} must be 2-D (num_items, dim), got shape {tuple(t.shape)}")
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"{name} must hold real numbers, got dtype {t.dtype}")
    return t.float()


def _check_pair(qf: torch.Tensor, gf: torch.Tensor) -> None:
    if qf.shape[1] != gf.shape[1]:
        raise ValueError(f"feature dims differ: qf {tuple(qf.shape)} vs gf {tuple(gf.shape)}")
    if qf.device != gf.device:
        raise ValueError(f"qf is on {qf.device} but gf is on {gf.device}")


def _row_chunks(n: int, chunk_size: int | None) -> range:
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1 or None, got {chunk_size}")
    step = n if chunk_size is None else chunk_size
    return range(0, n, max(step, 1))


def euclidean_distance(qf: ArrayLike, gf: ArrayLike, *, chunk_size: int | None = None) -> np.ndarray:
    """Squared Euclidean distance ‖q‖² + ‖g‖² − 2 q·g (no sqrt), float32, as the official code (docs/reference.md §4.6).

    Same operations as the official ``euclidean_distance``: the two squared-norm terms are added, then one
    GEMM accumulates −2 q·gᵀ into that matrix in place (torch ``addmm_`` there). CPU features go through
    BLAS ``sgemm`` straight into the numpy result (no second num_q × num_g buffer; on the 2-core test
    machine OpenBLAS was faster than torch's GEMM); features on a GPU use ``addmm_`` on the device, rows in
    chunks of ``chunk_size`` (bounding the device memory to chunk_size × num_g). Float32 rounding differs
    between BLAS libraries by ~1e-6. Features are cast to float32; the result is a numpy (num_q, num_g) array.
    """
    q, g = _as_features(qf, "qf"), _as_features(gf, "gf")
    _check_pair(q, g)
    out = np.empty((q.shape[0], g.shape[0]), dtype=np.float32)
    if out.size == 0:
        return out
    if q.device.type != "cpu":
        return _sq_euclidean_torch(q, g, chunk_size, out)
    qn, gn = q.contiguous().numpy(), g.contiguous().numpy()
    g2 = np.einsum("ij,ij->i", gn, gn)
    for i in _row_chunks(q.shape[0], chunk_size):
        qc = qn[i:i + (chunk_size or q.shape[0])]
        block = out[i:i + qc.shape[0]]
        np.add(np.einsum("ij,ij->i", qc, qc)[:, None], g2[None, :], out=block)
        # block.T is the Fortran-ordered (num_g, b) view BLAS wants: block.T += -2 · g · qcᵀ
        res = sgemm(-2.0, gn.T, qc.T, beta=1.0, c=block.T, trans_a=1, overwrite_c=1)
        if not np.shares_memory(res, block):  # pragma: no cover - BLAS had to copy
            block[...] = res.T
    return out


def _sq_euclidean_torch(q: torch.Tensor, g: torch.Tensor, chunk_size: int | None, out: np.ndarray) -> np.ndarray:
    """The official torch sequence (norms added, then ``addmm_``) on the features' device, in row chunks."""
    g2 = g.pow(2).sum(dim=1)
    for i in _row_chunks(q.shape[0], chunk_size):
        qc = q[i:i + (chunk_size or q.shape[0])]
        block = qc.pow(2).sum(dim=1, keepdim=True) + g2[None, :]
        block.addmm_(qc, g.t(), beta=1, alpha=-2)
        out[i:i + qc.shape[0]] = block.cpu().numpy()
    return out


def cosine_distance(qf: ArrayLike, gf: ArrayLike, *, chunk_size: int | None = None) -> np.ndarray:
    """Cosine distance 1 − cos(q, g), float32 numpy (num_q, num_g); zero vectors get cos = 0."""
    q, g = _as_features(qf, "qf"), _as_features(gf, "gf")
    _check_pair(q, g)
    q, g = F.normalize(q, dim=1), F.normalize(g, dim=1)
    out = np.empty((q.shape[0], g.shape[0]), dtype=np.float32)
    for i in _row_chunks(q.shape[0], chunk_size):
        qc = q[i:i + (chunk_size or q.shape[0])]
        out[i:i + qc.shape[0]] = (1.0 - qc @ g.t()).cpu().numpy()
    return out


# ---------------------------------------------------------------------------------------------------------
# Re-ranking (implemented in reid_lab.retrieval.reranking) and the R1_mAP_eval path
# ---------------------------------------------------------------------------------------------------------
def re_ranking(qf: ArrayLike, gf: ArrayLike, k1: int = 20, k2: int = 6, lambda_value: float = 0.3) -> np.ndarray:
    """k-reciprocal re-ranking (Zhong et al. 2017; docs/reference.md §4.6); see :func:`reid_lab.retrieval.reranking.re_ranking`.

    Imported lazily so this module does not depend on it at import time.
    """
    from .reranking import re_ranking as _re_ranking

    return _re_ranking(qf, gf, k1, k2, lambda_value)


def evaluate_features(
    qf: ArrayLike,
    gf: ArrayLike,
    q_pids: ArrayLike,
    g_pids: ArrayLike,
    q_camids: ArrayLike,
    g_camids: ArrayLike,
    *,
    normalize: bool = True,
    rerank: bool = False,
    k1: int = 20,
    k2: int = 6,
    lambda_value: float = 0.3,
    max_rank: int = 50,
) -> RankResult:
    """The TransReID ``R1_mAP_eval`` path (docs/reference.md §4.6): optional L2 normalisation, squared Euclidean distance
    (or k-reciprocal re-ranking), then :func:`evaluate_rank`.

    Differences from the official code (docs/reference.md §9.6, §9.7): there ``TEST.FEAT_NORM`` is the string
    ``'yes'``/``'no'`` used as a boolean, so features are normalised even with ``'no'``; and
    ``TEST.RE_RANKING`` is never forwarded, so re-ranking never runs. Here ``normalize`` and ``rerank`` are
    real booleans and both are honoured. The official setting is ``normalize=True, rerank=False``;
    the re-ranking parameters default to the fork's k1=20, k2=6, λ=0.3.
    """
    q, g = _as_features(qf, "qf"), _as_features(gf, "gf")
    _check_pair(q, g)
    if normalize:
        q, g = F.normalize(q, dim=1, p=2), F.normalize(g, dim=1, p=2)
    if rerank:
        logger.info("Re-ranking with k1=%d, k2=%d, lambda=%.2f", k1, k2, lambda_value)
        distmat = re_ranking(q, g, k1, k2, lambda_value)
    else:
        distmat = euclidean_distance(q, g)
    return evaluate_rank(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=max_rank)


# ---------------------------------------------------------------------------------------------------------
# Feature extraction
# ---------------------------------------------------------------------------------------------------------
def _model_output(out: Any) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"model must return a feature tensor in eval mode, got {type(out).__name__}")
    if out.ndim != 2:
        raise ValueError(f"model must return (batch, dim) features, got shape {tuple(out.shape)}")
    return out


def extract_features(
    model: torch.nn.Module,
    loader: Any,
    device: torch.device | str,
    *,
    flip: bool = False,
    normalize: bool = False,
    progress: bool = True,
    amp: bool | None = None,
) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Run ``model`` over ``loader`` and return (features, pids, camids) in dataset-index order.

    Args:
        model: already on ``device``; put in eval mode for the run, its previous mode restored afterwards.
        loader: yields ``(images, pids, camids, index)`` batches (``reid_lab.data`` ImageDataset); ``index``
            (the dataset position of each image) is used to put the rows back in dataset order, so a
            shuffling loader gives the same result as a sequential one.
        device: where the images are sent.
        flip: test-time augmentation: average the features of the image and its horizontal mirror.
        normalize: L2-normalise the final features.
        progress: show a tqdm progress bar.
        amp: bfloat16 autocast; ``None`` means on for CUDA devices, off otherwise.

    Returns:
        features (N, D) float32 on the CPU, pids (N,) and camids (N,) numpy int64 arrays, rows sorted by
        dataset index.
    """
    device = torch.device(device)
    amp = (device.type == "cuda") if amp is None else bool(amp)
    param = next(iter(model.parameters()), None)
    if param is not None and param.device.type != device.type:
        raise ValueError(f"model parameters are on {param.device} but device={device}; move the model first")

    feats, pid_list, cam_list, idx_list = [], [], [], []
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            for batch in progress_bar(loader, desc="extract features", enabled=progress):
                if not isinstance(batch, (tuple, list)) or len(batch) != 4:
                    raise ValueError("loader batches must be (images, pids, camids, index) tuples; got "
                                     f"{type(batch).__name__} of length {len(batch) if hasattr(batch, '__len__') else '?'}")
                images, pids, camids, index = batch
                images = images.to(device, non_blocking=True)
                f = _model_output(model(images)).float()
                if flip:
                    f = (f + _model_output(model(images.flip(-1))).float()) / 2
                feats.append(f.cpu())
                pid_list.append(np.asarray(_to_numpy(pids, "pids")).reshape(-1))
                cam_list.append(np.asarray(_to_numpy(camids, "camids")).reshape(-1))
                idx_list.append(np.asarray(_to_numpy(index, "index")).reshape(-1))
    finally:
        model.train(was_training)
    if not feats:
        raise ValueError("loader yielded no batches")

    features = torch.cat(feats)
    index = np.concatenate(idx_list).astype(np.int64)
    if len(index) != features.shape[0]:
        raise ValueError(f"got {len(index)} indices for {features.shape[0]} images")
    order = np.argsort(index, kind="stable")
    if np.any(np.diff(index[order]) == 0):
        dup = index[order][np.flatnonzero(np.diff(index[order]) == 0)[0]]
        raise ValueError(f"dataset index {dup} appears more than once; the loader must visit each image once")
    features = features[torch.from_numpy(order)]
    if normalize:
        features = F.normalize(features, dim=1)
    pids = np.concatenate(pid_list).astype(np.int64)[order]
    camids = np.concatenate(cam_list).astype(np.int64)[order]
    return features, pids, camids
