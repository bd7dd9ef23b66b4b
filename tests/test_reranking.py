"""k-reciprocal re-ranking vs a dense loop port of TransReID ``utils/reranking.py`` (docs/reference.md §4.6)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from reid_lab.retrieval.neighbors import topk_rows
from reid_lab.retrieval import kreciprocal
from reid_lab.retrieval.reranking import (_expanded_distances, normalized_distance, re_ranking,
                                         scan_normalized_distance)

# --------------------------------------------------------------------------------------------------------------
# Loop port of the official re_ranking, written from docs/reference.md §4.6 (dense, float32 V instead of float16; stable sort).


def official_re_ranking(qf: np.ndarray, gf: np.ndarray, k1: int, k2: int, lam: float) -> np.ndarray:
    nq = len(qf)
    feat = torch.from_numpy(np.concatenate([qf, gf]).astype(np.float32))
    n = feat.shape[0]
    sq = feat.pow(2).sum(1, keepdim=True).expand(n, n)
    dist = (sq + sq.t()).addmm(feat, feat.t(), beta=1, alpha=-2).numpy()
    original = np.transpose(dist / np.max(dist, axis=0))
    v = np.zeros_like(original, dtype=np.float32)
    rank = np.argsort(original, axis=1, kind="stable").astype(np.int32)
    for i in range(n):
        forward = rank[i, : k1 + 1]
        backward = rank[forward, : k1 + 1]
        r_i = forward[np.where(backward == i)[0]]
        expansion = r_i
        for c in r_i:
            c_forward = rank[c, : int(np.around(k1 / 2)) + 1]
            c_backward = rank[c_forward, : int(np.around(k1 / 2)) + 1]
            h_c = c_forward[np.where(c_backward == c)[0]]
            if len(np.intersect1d(h_c, r_i)) > 2 / 3 * len(h_c):
                expansion = np.append(expansion, h_c)
        expansion = np.unique(expansion)
        w = np.exp(-original[i, expansion])
        v[i, expansion] = w / np.sum(w)
    original = original[:nq]
    if k2 != 1:
        v = np.stack([np.mean(v[rank[i, :k2]], axis=0) for i in range(n)])
    inv_index = [np.where(v[:, k] != 0)[0] for k in range(n)]
    jaccard = np.zeros((nq, n), dtype=np.float32)
    for i in range(nq):
        temp_min = np.zeros(n, dtype=np.float32)
        nz = np.where(v[i] != 0)[0]
        for k in nz:
            js = inv_index[k]
            temp_min[js] += np.minimum(v[i, k], v[js, k])
        jaccard[i] = 1 - temp_min / (2 - temp_min)
    final = jaccard * (1 - lam) + original * lam
    return final[:, nq:]


def person_like(nq: int, ng: int, n_ids: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_ids, dim))
    x = centres[rng.integers(0, n_ids, nq + ng)] + 0.9 * rng.normal(size=(nq + ng, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x = x.astype(np.float32)
    return x[:nq], x[nq:]


# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k1,k2,lam", [(20, 6, 0.3), (10, 3, 0.5), (25, 1, 0.0), (7, 8, 1.0)])
def test_matches_official_port(k1: int, k2: int, lam: float) -> None:
    qf, gf = person_like(nq=40, ng=140, n_ids=25, dim=32, seed=k1)
    ref = official_re_ranking(qf, gf, k1, k2, lam)
    ours = re_ranking(qf, gf, k1=k1, k2=k2, lambda_value=lam)
    assert ours.shape == (40, 140) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=0)


def test_unnormalised_features_and_torch_input() -> None:
    rng = np.random.default_rng(3)
    qf = rng.normal(size=(15, 12)).astype(np.float32) * 4
    gf = rng.normal(size=(60, 12)).astype(np.float32) * 4
    ref = official_re_ranking(qf, gf, 20, 6, 0.3)
    np.testing.assert_allclose(re_ranking(torch.from_numpy(qf), torch.from_numpy(gf)), ref, atol=1e-5, rtol=0)
    np.testing.assert_allclose(re_ranking(qf.astype(np.float64), gf), ref, atol=1e-5, rtol=0)


def test_hand_computed_identical_pairs() -> None:
    # Each query has one exact copy in the gallery and nothing else nearby: with k1 = 1, R(i) = {i, copy} for both
    # copies (self first, then the copy), V rows are identical -> Jaccard 0 between copies and 1 elsewhere; the
    # final distance is lambda * normalised original distance (0 for the copy).
    e = np.eye(6, dtype=np.float32)
    qf, gf = e[:3], e[[2, 0, 1, 3, 4, 5]]
    out = re_ranking(qf, gf, k1=1, k2=1, lambda_value=0.3)
    expected = np.full((3, 6), 0.7 + 0.3 * 1.0, dtype=np.float32)  # squared distance 2 over row max 2
    expected[0, 1] = expected[1, 2] = expected[2, 0] = 0.0
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_reranking_improves_retrieval_on_clustered_data() -> None:
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(30), 6)
    x = rng.normal(size=(30, 32))[ids] + 1.1 * rng.normal(size=(180, 32))
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    q, g = np.arange(0, 180, 6), np.setdiff1d(np.arange(180), np.arange(0, 180, 6))

    def mean_ap(d: np.ndarray) -> float:
        aps = []
        for i, row in enumerate(d):
            match = ids[g][np.argsort(row, kind="stable")] == ids[q][i]
            hits = np.flatnonzero(match)
            aps.append(np.mean(np.arange(1, len(hits) + 1) / (hits + 1)))
        return float(np.mean(aps))

    plain = ((x[q][:, None] - x[g][None]) ** 2).sum(-1)
    assert mean_ap(re_ranking(x[q], x[g], k1=6, k2=3)) > mean_ap(plain) + 0.02


def test_official_orientation() -> None:
    rng = np.random.default_rng(1)
    qf, gf = rng.normal(size=(4, 5)) * 3, rng.normal(size=(9, 5))
    x = np.concatenate([qf, gf])
    dist = ((x[:, None] - x[None]) ** 2).sum(-1)
    expected = (dist / dist.max(axis=0)).T  # each column over its max, then transposed
    np.testing.assert_allclose(normalized_distance(qf, gf), expected, atol=1e-5)
    np.testing.assert_allclose(normalized_distance(qf, gf, block_rows=5), expected, atol=1e-5)


@pytest.mark.parametrize("duplicates", [False, True])
def test_streamed_scan_matches_dense_matrix(duplicates: bool) -> None:
    # The row-block scan (several blocks) must give the dense matrix's ranking (stable ties, self first), values,
    # row divisors and query block; duplicated features create exact ties that straddle the k-th position.
    qf, gf = person_like(nq=60, ng=240, n_ids=30, dim=16, seed=5)
    if duplicates:
        gf[::3] = gf[0]  # 80 copies of one gallery image (also a tie among more than k rows)
        qf[1] = gf[0]
    dense = normalized_distance(qf, gf, block_rows=10**6)  # one block: the official single matrix product
    x = np.concatenate([qf, gf])
    literal = ((x[:, None].astype(np.float64) - x[None]) ** 2).sum(-1)
    np.testing.assert_allclose(dense, literal / literal.max(axis=1, keepdims=True), atol=1e-5)
    rank, rank_dist, row_max, query_block = scan_normalized_distance(qf, gf, 21, block_rows=64)
    np.testing.assert_array_equal(rank, topk_rows(dense, 21))
    np.testing.assert_array_equal(rank[:, 0], np.arange(300))
    np.testing.assert_array_equal(rank_dist, np.take_along_axis(dense, rank, axis=1))
    np.testing.assert_allclose(row_max, literal.max(axis=1), rtol=1e-5)
    np.testing.assert_array_equal(query_block, dense[:60, 60:])


def test_expanded_distances_inside_and_outside_top_k() -> None:
    qf, gf = person_like(nq=30, ng=120, n_ids=20, dim=16, seed=7)
    scan = scan_normalized_distance(qf, gf, 11)
    expanded = kreciprocal.expanded_sets(scan[0], 10)
    dense = normalized_distance(qf, gf)
    rows = np.repeat(np.arange(150), np.diff(expanded.indptr))
    inside = (scan[0][rows] == expanded.indices[:, None]).any(axis=1)
    assert inside.any() and (~inside).any()  # both paths (lookup and recomputation) are exercised
    got = _expanded_distances(np.concatenate([qf, gf]), scan, expanded)
    np.testing.assert_array_equal(got[inside], dense[rows, expanded.indices][inside])
    np.testing.assert_allclose(got, dense[rows, expanded.indices], atol=1e-6)


def test_topk_rows_ties_and_self_first() -> None:
    d = np.array(
        [
            [0.0, 0.0, 0.5, 0.2, 0.2],
            [0.0, 0.0, 0.3, 0.3, 0.3],
            [0.5, 0.3, 0.0, 0.1, 0.1],
            [0.2, 0.3, 0.1, 0.0, 0.1],
            [0.2, 0.3, 0.1, 0.1, 0.0],
        ],
        dtype=np.float32,
    )
    out = topk_rows(d, 3, chunk_rows=2)
    np.testing.assert_array_equal(out, [[0, 1, 3], [1, 0, 2], [2, 3, 4], [3, 2, 4], [4, 2, 3]])


def test_invalid_inputs() -> None:
    qf, gf = person_like(nq=3, ng=5, n_ids=2, dim=4, seed=0)
    with pytest.raises(ValueError, match="k1 must be"):
        re_ranking(qf, gf, k1=8)  # k1 >= nq + ng
    assert re_ranking(qf, gf, k1=7, k2=8).shape == (3, 5)  # k1 = N - 1, k2 = k1 + 1: the largest valid values
    with pytest.raises(ValueError, match="k2 must be"):
        re_ranking(qf, gf, k1=3, k2=5)
    with pytest.raises(ValueError, match="lambda_value"):
        re_ranking(qf, gf, k1=3, k2=2, lambda_value=1.5)
    with pytest.raises(ValueError, match="same feature dimension"):
        re_ranking(qf, gf[:, :3], k1=3, k2=2)
    with pytest.raises(ValueError, match="2-D"):
        re_ranking(qf[0], gf, k1=3, k2=2)
    with pytest.raises(ValueError, match="identical"):
        re_ranking(np.ones((2, 4)), np.ones((3, 4)), k1=2, k2=1)
