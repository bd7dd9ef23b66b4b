"""Jaccard distance + DBSCAN pseudo labels vs a dense loop port of cluster-contrast (docs/reference.md §5.2 steps 2–3)."""
from __future__ import annotations

import logging
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.cluster import DBSCAN

from reid_lab.retrieval import neighbors
from reid_lab.retrieval.clustering import (
    dbscan_from_distance,
    dbscan_pseudo_labels,
    jaccard_distance,
    summarize_labels,
)
from reid_lab.retrieval.kreciprocal import to_dense_distance

# --------------------------------------------------------------------------------------------------------------
# Loop port of the official compute_jaccard_distance, written from docs/reference.md §5.2 step 2 (dense N x N, float32).
# The neighbour table is an exact stable argsort of squared L2 distances truncated to k1 columns (what the
# faiss IndexFlatL2 search returns for data without ties).


def _k_reciprocal(rank: np.ndarray, i: int, k: int) -> np.ndarray:
    forward = rank[i, : k + 1]
    backward = rank[forward, : k + 1]
    return forward[np.where(backward == i)[0]]


def official_jaccard(x: np.ndarray, k1: int, k2: int) -> np.ndarray:
    n = len(x)
    sq = (x * x).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)
    rank = np.argsort(d2, axis=1, kind="stable")[:, :k1]  # faiss search(x, k1): k1 columns only
    nn_k1 = [_k_reciprocal(rank, i, k1) for i in range(n)]
    nn_half = [_k_reciprocal(rank, i, int(np.around(k1 / 2))) for i in range(n)]
    v = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        r_i = nn_k1[i]
        expansion = r_i
        for c in r_i:
            h_c = nn_half[c]
            if len(np.intersect1d(h_c, r_i)) > 2 / 3 * len(h_c):
                expansion = np.append(expansion, h_c)
        expansion = np.unique(expansion)
        dist = 2 - 2 * (x[i][None, :] @ x[expansion].T)
        w = np.exp(-dist - (-dist).max())
        v[i, expansion] = (w / w.sum()).ravel()
    if k2 != 1:
        v = np.stack([v[rank[i, :k2]].mean(axis=0) for i in range(n)]).astype(np.float32)
    inv_index = [np.where(v[:, k] != 0)[0] for k in range(n)]
    jac = np.zeros((n, n), dtype=np.float32)
    for i in range(n):
        temp_min = np.zeros(n, dtype=np.float32)
        nz = np.where(v[i] != 0)[0]
        for k in nz:
            js = inv_index[k]
            temp_min[js] += np.minimum(v[i, k], v[js, k])
        jac[i] = 1 - temp_min / (2 - temp_min)
    jac[jac < 0] = 0.0
    return jac


def clustered(
    n_ids: int, per_id: int, dim: int, noise: float, seed: int, outliers: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_ids, dim))
    ids = np.repeat(np.arange(n_ids), per_id)
    x = centres[ids] + noise * rng.normal(size=(len(ids), dim))
    if outliers:
        x = np.concatenate([x, rng.normal(size=(outliers, dim)) * 1.5])
        ids = np.concatenate([ids, -1 - np.arange(outliers)])
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32), ids


# --------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("k1,k2", [(30, 6), (20, 6), (25, 1), (9, 3)])
def test_jaccard_matches_dense_official_port(k1: int, k2: int) -> None:
    x, _ = clustered(n_ids=20, per_id=8, dim=32, noise=0.8, seed=k1, outliers=20)
    ref = official_jaccard(x, k1, k2)
    ours = jaccard_distance(x, k1=k1, k2=k2)
    assert sp.isspmatrix_csr(ours) and ours.dtype == np.float32
    dense = to_dense_distance(ours)
    np.testing.assert_allclose(dense, ref, atol=2e-6, rtol=0)
    # absent entries are exactly the pairs the official gives distance 1 (no shared weight)
    stored = np.zeros(ref.shape, dtype=bool)
    stored[np.repeat(np.arange(len(x)), np.diff(ours.indptr)), ours.indices] = True
    assert stored.diagonal().all()
    assert np.all(ref[~stored] == 1.0)
    assert (ours != ours.T).nnz == 0  # symmetric


def test_diagonal_and_duplicate_zeros_stay_stored() -> None:
    x, _ = clustered(n_ids=10, per_id=6, dim=16, noise=0.5, seed=3)
    x = np.concatenate([x, x[:4]])  # exact duplicates of points 0..3 -> Jaccard distance 0 to them
    dist = jaccard_distance(x, k1=8, k2=2)
    n = len(x)
    rows = np.repeat(np.arange(n), np.diff(dist.indptr))
    diag = rows == dist.indices
    assert diag.sum() == n  # every diagonal entry explicitly stored
    assert np.all(dist.data[diag] <= 1e-6)
    # duplicate pairs have identical V rows -> distance 0, which must be stored, not dropped
    for a, b in [(0, n - 4), (n - 4, 0)]:  # upper and mirrored lower entry
        pair = (rows == a) & (dist.indices == b)
        assert pair.sum() == 1 and dist.data[pair][0] <= 1e-6
    assert (dist.data == 0.0).sum() >= 8  # exact zeros exist (clipped rounding) and were not eliminated
    assert dist.has_sorted_indices


def test_dense_flag_and_torch_input() -> None:
    x, _ = clustered(n_ids=6, per_id=8, dim=16, noise=0.6, seed=1)
    sparse = jaccard_distance(torch.from_numpy(x), k1=10, k2=3)
    dense = jaccard_distance(x, k1=10, k2=3, dense=True)
    assert isinstance(dense, np.ndarray) and dense.shape == (48, 48)
    np.testing.assert_array_equal(dense, to_dense_distance(sparse))
    np.testing.assert_allclose(dense, official_jaccard(x, 10, 3), atol=2e-6, rtol=0)


@pytest.mark.parametrize("eps", [0.5, 0.6, 0.7])
def test_dbscan_labels_identical_to_dense_official(eps: float) -> None:
    x, _ = clustered(n_ids=12, per_id=16, dim=32, noise=0.8, seed=7, outliers=30)
    ref = DBSCAN(eps=eps, min_samples=4, metric="precomputed").fit_predict(official_jaccard(x, 30, 6))
    ours = dbscan_pseudo_labels(x, eps=eps, min_samples=4)
    assert ours.dtype == np.int64
    assert len(set(ref)) > 6 and (ref == -1).any()  # not degenerate: clusters and outliers
    np.testing.assert_array_equal(ours, ref)


def test_hand_computed_two_clusters_and_an_outlier() -> None:
    # Two tight groups of 4 near orthogonal directions + 1 point orthogonal to both.
    rng = np.random.default_rng(0)
    e = np.eye(8, dtype=np.float32)
    x = np.concatenate([e[0] + 0.01 * rng.normal(size=(4, 8)), e[1] + 0.01 * rng.normal(size=(4, 8)), e[[2]]])
    x = (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)
    # k1 = 4: each point's 4 nearest are its own group (itself first); the outlier's R set is {itself}.
    dist = jaccard_distance(x, k1=4, k2=1, dense=True)
    # within a group V rows are ~uniform over the group: weights exp(-d) with squared distances d < 2e-3, so
    # rows differ by < 1e-3 per entry and the distance is ~ half the L1 difference of the rows -> < 5e-3
    assert dist[:4, :4].max() < 5e-3 and dist[4:8, 4:8].max() < 5e-3
    # across groups and to the outlier nothing is shared -> exactly 1
    assert np.all(dist[:4, 4:] == 1.0) and np.all(dist[8, :8] == 1.0) and dist[8, 8] == 0.0
    labels = dbscan_pseudo_labels(x, eps=0.6, min_samples=4, k1=4, k2=1)
    np.testing.assert_array_equal(labels, [0, 0, 0, 0, 1, 1, 1, 1, -1])


def test_dbscan_from_distance_sparse_equals_dense() -> None:
    x, _ = clustered(n_ids=15, per_id=6, dim=16, noise=0.8, seed=11)
    sparse = jaccard_distance(x, k1=12, k2=4)
    for eps in (0.3, 0.55, 0.8):
        a = dbscan_from_distance(sparse, eps=eps, min_samples=3)
        b = DBSCAN(eps=eps, min_samples=3, metric="precomputed").fit_predict(to_dense_distance(sparse))
        np.testing.assert_array_equal(a, b)


def test_max_distance_prunes_but_keeps_diagonal() -> None:
    x, _ = clustered(n_ids=8, per_id=6, dim=16, noise=0.9, seed=5)
    full = jaccard_distance(x, k1=10, k2=3)
    pruned = jaccard_distance(x, k1=10, k2=3, max_distance=0.5)
    assert pruned.nnz < full.nnz
    rows = np.repeat(np.arange(len(x)), np.diff(pruned.indptr))
    assert np.all((pruned.data <= 0.5) | (rows == pruned.indices))
    a, b = to_dense_distance(full), to_dense_distance(pruned)
    np.testing.assert_array_equal(np.where(a <= 0.5, a, 1.0), b)


def test_invalid_inputs() -> None:
    x, _ = clustered(n_ids=3, per_id=5, dim=8, noise=0.5, seed=0)
    with pytest.raises(ValueError, match="k1 must be"):
        jaccard_distance(x, k1=15)  # k1 >= N
    assert jaccard_distance(x, k1=14, k2=6).shape == (15, 15)  # k1 = N - 1 is the largest valid value
    with pytest.raises(ValueError, match="k2 must be"):
        jaccard_distance(x, k1=5, k2=6)
    with pytest.raises(ValueError, match="2-D"):
        jaccard_distance(x[0], k1=2)
    with pytest.raises(ValueError, match="NaN"):
        jaccard_distance(np.full((5, 3), np.nan), k1=2)
    with pytest.raises(ValueError, match="eps"):
        dbscan_pseudo_labels(x, eps=1.0, k1=5)
    with pytest.warns(UserWarning, match="L2-normalised"):
        jaccard_distance(3.0 * x, k1=5, k2=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        jaccard_distance(x, k1=5, k2=2)  # normalised input: no warning


def test_knn_self_first_with_duplicates() -> None:
    rng = np.random.default_rng(0)
    base = rng.normal(size=(30, 8)).astype(np.float32)
    x = np.concatenate([base, base[:5], base[:5], base[:5]])  # points 0..4 appear 4 times each
    d, idx = neighbors.knn(x, 6)
    assert idx.shape == (45, 6) and d.dtype == np.float32 and idx.dtype == np.int64
    np.testing.assert_array_equal(idx[:, 0], np.arange(45))
    # the other copies follow self, in index order (distance 0, ties by index)
    np.testing.assert_array_equal(idx[0, :4], [0, 30, 35, 40])
    np.testing.assert_array_equal(idx[35, :4], [35, 0, 30, 40])
    # exact against brute force for a point without duplicates
    d2 = ((x[10] - x) ** 2).sum(1)
    np.testing.assert_array_equal(idx[10], np.argsort(d2, kind="stable")[:6])
    np.testing.assert_allclose(d[10], np.sort(d2)[:6], atol=1e-4)


def test_knn_self_inserted_when_more_duplicates_than_k() -> None:
    x = np.ones((6, 4), dtype=np.float32)  # six identical points, k = 3
    _, idx = neighbors.knn(x, 3)
    np.testing.assert_array_equal(idx[:, 0], np.arange(6))
    assert all(len(set(r)) == 3 for r in idx.tolist())


def test_knn_ip_metric_and_bad_args() -> None:
    x, _ = clustered(n_ids=4, per_id=5, dim=8, noise=0.5, seed=2)
    s, idx = neighbors.knn(x, 4, metric="ip")
    assert np.all(np.diff(s[:, 1:], axis=1) <= 1e-6)  # descending similarities after self
    np.testing.assert_allclose(s[:, 0], 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="metric"):
        neighbors.knn(x, 3, metric="cosine")
    with pytest.raises(ValueError, match="k must be"):
        neighbors.knn(x, 21)


def test_knn_gpu_request_falls_back_to_cpu(caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    import faiss

    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 0)
    x, _ = clustered(n_ids=4, per_id=5, dim=8, noise=0.5, seed=2)
    with caplog.at_level(logging.INFO, logger="reid_lab.retrieval.neighbors"):
        d_gpu, i_gpu = neighbors.knn(x, 5, use_gpu=True)
    assert "CPU" in caplog.text
    d_cpu, i_cpu = neighbors.knn(x, 5, use_gpu=False)
    np.testing.assert_array_equal(i_gpu, i_cpu)


def test_knn_broken_faiss_gpu_falls_back_to_cpu(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import faiss

    x, _ = clustered(n_ids=4, per_id=5, dim=8, noise=0.5, seed=2)
    _, expected = neighbors.knn(x, 5, use_gpu=False)

    def broken(index: object) -> object:
        raise RuntimeError("CUDA driver version is insufficient")

    monkeypatch.setattr(faiss, "StandardGpuResources", object, raising=False)
    monkeypatch.setattr(faiss, "get_num_gpus", lambda: 1)
    monkeypatch.setattr(faiss, "index_cpu_to_all_gpus", broken, raising=False)
    with caplog.at_level(logging.WARNING, logger="reid_lab.retrieval.neighbors"):
        _, idx = neighbors.knn(x, 5)  # use_gpu=None: GPU looks available, fails, CPU answers
    assert "falling back" in caplog.text
    np.testing.assert_array_equal(idx, expected)


def test_knn_torch_fallback_without_faiss(monkeypatch: pytest.MonkeyPatch) -> None:
    x, _ = clustered(n_ids=5, per_id=6, dim=8, noise=0.7, seed=4)
    ref_d, ref_i = neighbors.knn(x, 7)
    monkeypatch.setitem(sys.modules, "faiss", None)  # import faiss -> ImportError
    d, i = neighbors.knn(x, 7)
    np.testing.assert_array_equal(i, ref_i)
    np.testing.assert_allclose(d, ref_d, atol=1e-5)


def test_summarize_labels() -> None:
    labels = np.array([0, 0, 0, 1, 1, -1, -1, 2, 2, 2, 2])
    ids = np.array([5, 5, 5, 6, 6, 7, 8, 9, 9, 9, 9])
    stats = summarize_labels(labels, ids)
    assert (stats.num_clusters, stats.num_outliers, stats.largest_cluster) == (3, 2, 4)
    assert stats.mean_cluster_size == pytest.approx(3.0)
    assert stats.outlier_fraction == pytest.approx(2 / 11)
    assert stats.ari_clustered == pytest.approx(1.0)
    assert 0 < stats.ari < 1 and 0 < stats.nmi < 1  # the two outliers form one predicted "cluster"
    assert summarize_labels(labels).ari is None
    assert summarize_labels(np.full(4, -1)).num_clusters == 0
    with pytest.raises(ValueError, match="one id per label"):
        summarize_labels(labels, ids[:-1])
