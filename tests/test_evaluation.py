"""Tests for reid_lab.retrieval.evaluation: the Market protocol on hand-computed cases, a plain-Python reference port of
docs/reference.md §4.6 on random cases, distances, the R1_mAP_eval path and feature extraction."""
from __future__ import annotations

import logging
import sys
import types

import numpy as np
import pytest
import torch
from torch import nn

import reid_lab.retrieval.evaluation as ev
from reid_lab.retrieval.evaluation import (
    RankResult,
    cosine_distance,
    euclidean_distance,
    evaluate_features,
    evaluate_rank,
    extract_features,
    format_results,
)


# evaluate_rank has two internal routes (sort the selected prefix of each ranking / sort whole rows); float64
# always takes the first. Every protocol test runs on all three so each route is held to the hand results.
@pytest.fixture(params=["sparse-f32", "dense-f32", "f64"])
def route(request, monkeypatch):
    if request.param == "dense-f32":
        monkeypatch.setattr(ev, "_DENSE_FRACTION", 0.0)
    else:
        monkeypatch.setattr(ev, "_DENSE_FRACTION", 2.0)
    return np.float64 if request.param == "f64" else np.float32


# ---------------------------------------------------------------------------------------------------------
# Hand-computed protocol cases
# ---------------------------------------------------------------------------------------------------------
# Gallery (index: pid, cam):  g0 (1, 0)  g1 (2, 1)  g2 (1, 1)  g3 (0, 2)  g4 (1, 2)  g5 (3, 0)
G_PIDS = np.array([1, 2, 1, 0, 1, 3])
G_CAMS = np.array([0, 1, 1, 2, 2, 0])
# Queries: q0 (1, 0), q1 (2, 0), q2 (3, 0): its only same-pid item g5 is in its camera, q3 (9, 1): pid absent.
Q_PIDS = np.array([1, 2, 3, 9])
Q_CAMS = np.array([0, 0, 0, 1])
DIST = np.array([
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    [0.1, 0.5, 0.2, 0.3, 0.9, 0.8],
    [0.3, 0.2, 0.1, 0.4, 0.5, 0.0],
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
])


def test_market_protocol_by_hand(route):
    res = evaluate_rank(DIST.astype(route), Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=5)
    # q0: g0 is pid 1 in camera 0 (same pid AND camera) -> removed although it is nearest.
    #     kept ranking g1(neg) g2(hit) g3(distractor pid 0 = negative) g4(hit) g5(neg): hits at positions 1, 3
    #     AP = (1/1+1 ... ) -> (1/2)·(1/2 + 2/4) = 1/2 ;  INP = 2 hits / (last position 3 + 1) = 2/4 = 1/2
    # q1: ranking g0 g2 g3 g1 ...: only hit g1 at position 3 -> AP = (1/1)·(1/4) = 1/4 ; INP = 1/4
    # q2: g5 removed (same camera) -> no match left -> skipped ; q3: pid 9 absent -> skipped
    assert res.num_valid_queries == 2
    assert res.mAP == pytest.approx((1 / 2 + 1 / 4) / 2, abs=1e-15)  # 3/8
    assert res.mINP == pytest.approx((1 / 2 + 1 / 4) / 2, abs=1e-15)
    # first hits: q0 at rank 2, q1 at rank 4 -> CMC = [0, 1/2, 1/2, 2/2, 2/2]
    np.testing.assert_allclose(res.cmc, [0, 0.5, 0.5, 1, 1], atol=1e-15)
    np.testing.assert_allclose(res.per_query_ap, [0.5, 0.25, np.nan, np.nan], atol=1e-15)
    np.testing.assert_allclose(res.per_query_inp, [0.5, 0.25, np.nan, np.nan], atol=1e-15)
    assert res.as_dict("val/") == pytest.approx(
        {"val/mAP": 0.375, "val/rank1": 0.0, "val/rank5": 1.0, "val/mINP": 0.375})  # rank10 > max_rank: left out


def test_same_camera_removal_needs_both_pid_and_camera(route):
    # Query (1, cam 0). g0 (2, cam 0) is a same-camera NEGATIVE: kept. g1 (1, cam 0) is removed. g2 (1, cam 1) hit.
    d = np.array([[0.1, 0.2, 0.3]], dtype=route)
    res = evaluate_rank(d, [1], [2, 1, 1], [0], [0, 0, 1])
    # kept ranking g0 g2 -> hit at position 1 -> AP = 1/2, rank-1 miss, rank-2 hit
    assert res.mAP == pytest.approx(0.5, abs=1e-15)
    np.testing.assert_allclose(res.cmc, [0, 1, 1], atol=0)


def test_ties_broken_by_gallery_index(route):
    # All distances equal: the stable order is g0 g1 g2 g3 = (neg, hit, neg, hit)
    pids, cams = [2, 1, 3, 1], [1, 1, 2, 2]
    res = evaluate_rank(np.ones((1, 4), dtype=route), [1], pids, [0], cams)
    assert res.per_query_ap[0] == pytest.approx((1 / 2 + 2 / 4) / 2, abs=1e-15)  # hits at positions 1, 3
    # Same gallery read backwards (hit, neg, hit, neg): hits at 0, 2 -> AP = (1/1 + 2/3)/2 = 5/6
    res = evaluate_rank(np.ones((1, 4), dtype=route), [1], pids[::-1], [0], cams[::-1])
    assert res.per_query_ap[0] == pytest.approx(5 / 6, abs=1e-15)
    # Partial ties: d = (0.5, 0.5, 0.2, 0.5) for (hit, neg, neg, hit): order g2 g0 g1 g3 -> hits at 1, 3
    d = np.array([[0.5, 0.5, 0.2, 0.5]], dtype=route)
    res = evaluate_rank(d, [1], [1, 2, 3, 1], [0], [1, 1, 1, 2])
    assert res.per_query_ap[0] == pytest.approx((1 / 2 + 2 / 4) / 2, abs=1e-15)
    # -0.0 and +0.0 are equal distances: g0 (neg, +0.0) still comes before g1 (hit, -0.0)
    d = np.array([[0.0, -0.0, 1.0]], dtype=route)
    res = evaluate_rank(d, [1], [2, 1, 3], [0], [1, 1, 1])
    np.testing.assert_allclose(res.cmc, [0, 1, 1], atol=0)


def test_minp_uses_the_last_hit(route):
    # hits at kept positions 0 and 4 (negatives in between)
    d = np.array([[0.0, 0.1, 0.2, 0.3, 0.4, 0.5]], dtype=route)
    res = evaluate_rank(d, [1], [1, 2, 3, 4, 1, 5], [0], [1, 1, 1, 1, 1, 1])
    assert res.mINP == pytest.approx(2 / 5, abs=1e-15)  # 2 hits / (last position 4 + 1)
    assert res.mAP == pytest.approx((1 / 1 + 2 / 5) / 2, abs=1e-15)  # 0.7
    assert res.rank(1) == 1.0


def test_max_rank_larger_than_gallery(route, caplog):
    # 3 gallery items, one removed: kept ranking g0 (neg) g1 (hit)
    d = np.array([[0.1, 0.2, 0.05]], dtype=route)
    with caplog.at_level(logging.WARNING, logger="reid_lab.retrieval.evaluation"):
        res = evaluate_rank(d, [1], [2, 1, 1], [0], [1, 1, 0], max_rank=50)
    assert "smaller than max_rank=50" in caplog.text
    assert len(res.cmc) == 3  # truncated to the gallery size, as the official code does
    np.testing.assert_allclose(res.cmc, [0, 1, 1], atol=0)
    assert res.rank(10) == 1.0  # the whole gallery has been ranked
    assert res.as_dict()["rank10"] == 1.0


def test_small_max_rank():
    res = evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=2)
    np.testing.assert_allclose(res.cmc, [0, 0.5], atol=0)
    with pytest.raises(ValueError, match="max_rank=2"):
        res.rank(5)
    assert set(res.as_dict()) == {"mAP", "rank1", "mINP"}


def test_result_is_immutable():
    res = evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS)
    assert isinstance(res, RankResult)
    with pytest.raises(Exception):
        res.mAP = 1.0
    with pytest.raises(ValueError):
        res.cmc[0] = 1.0


def test_format_results():
    text = format_results(evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS), title="toy")
    assert "**toy**" in text
    assert "| mAP | 37.50 |" in text and "| Rank-1 | 0.00 |" in text and "| Rank-5 | 100.00 |" in text
    assert "| mINP | 37.50 |" in text and "2 valid queries" in text


# ---------------------------------------------------------------------------------------------------------
# Random cases against a plain-Python port of docs/reference.md §4.6
# ---------------------------------------------------------------------------------------------------------
def reference_eval(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """docs/reference.md §4.6 in plain Python: sort each row by (distance, gallery index), drop same pid+camera, skip
    queries without a match, CMC / non-interpolated AP / INP averaged over valid queries."""
    num_q, num_g = len(distmat), len(distmat[0])
    max_rank = min(max_rank, num_g)
    cmc_hits, per_ap, per_inp = [0] * max_rank, [], []
    for i in range(num_q):
        order = sorted(range(num_g), key=lambda j: (float(distmat[i][j]), j))
        kept = [j for j in order if not (g_pids[j] == q_pids[i] and g_camids[j] == q_camids[i])]
        hit_pos = [p for p, j in enumerate(kept) if g_pids[j] == q_pids[i]]
        if not hit_pos:
            per_ap.append(float("nan"))
            per_inp.append(float("nan"))
            continue
        per_ap.append(sum((n + 1) / (p + 1) for n, p in enumerate(hit_pos)) / len(hit_pos))
        per_inp.append(len(hit_pos) / (hit_pos[-1] + 1))
        for k in range(max_rank):
            cmc_hits[k] += hit_pos[0] <= k
    valid = [a for a in per_ap if a == a]
    valid_inp = [a for a in per_inp if a == a]
    return ([c / len(valid) for c in cmc_hits], sum(valid) / len(valid), sum(valid_inp) / len(valid_inp),
            per_ap, per_inp)


@pytest.mark.parametrize("seed", range(4))
def test_random_cases_match_reference(route, seed):
    rng = np.random.default_rng(seed)
    num_q, num_g = 37, 101
    # coarse distances -> many exact ties; some negative, some -0.0, a few +inf
    d = (rng.integers(-3, 15, size=(num_q, num_g)) / 4).astype(route)
    d[rng.random(d.shape) < 0.05] = -0.0
    d[rng.random(d.shape) < 0.02] = np.inf
    q_pids = rng.integers(1, 12, size=num_q)
    g_pids = rng.integers(0, 12, size=num_g)  # pid 0 = distractors
    q_cams, g_cams = rng.integers(0, 3, size=num_q), rng.integers(0, 3, size=num_g)
    cmc, m_ap, m_inp, per_ap, per_inp = reference_eval(d.tolist(), q_pids, g_pids, q_cams, g_cams, max_rank=20)
    for chunk in (5, 256):
        res = evaluate_rank(d, q_pids, g_pids, q_cams, g_cams, max_rank=20, chunk_size=chunk)
        np.testing.assert_allclose(res.cmc, cmc, rtol=0, atol=1e-12)
        assert res.mAP == pytest.approx(m_ap, abs=1e-12) and res.mINP == pytest.approx(m_inp, abs=1e-12)
        np.testing.assert_allclose(res.per_query_ap, per_ap, rtol=0, atol=1e-12)
        np.testing.assert_allclose(res.per_query_inp, per_inp, rtol=0, atol=1e-12)
        assert res.num_valid_queries == sum(a == a for a in per_ap)


def test_clustered_features_match_reference():
    """Realistic distances (most queries find their matches early): exercises the prefix-selection route."""
    rng = np.random.default_rng(5)
    g_pids, q_pids = rng.integers(0, 30, size=400), rng.integers(1, 30, size=60)
    g_cams, q_cams = rng.integers(0, 6, size=400), rng.integers(0, 6, size=60)
    centres = rng.standard_normal((30, 16))
    gf = centres[g_pids] + 0.6 * rng.standard_normal((400, 16))
    qf = centres[q_pids] + 0.6 * rng.standard_normal((60, 16))
    d = euclidean_distance(qf, gf)
    cmc, m_ap, m_inp, per_ap, _ = reference_eval(d.tolist(), q_pids, g_pids, q_cams, g_cams)
    res = evaluate_rank(d, q_pids, g_pids, q_cams, g_cams)
    assert 0.2 < m_ap < 0.99  # a mixed case, not trivial
    np.testing.assert_allclose(res.cmc, cmc, atol=1e-12)
    np.testing.assert_allclose(res.per_query_ap, per_ap, atol=1e-12)
    assert res.mAP == pytest.approx(m_ap, abs=1e-12) and res.mINP == pytest.approx(m_inp, abs=1e-12)


def test_torch_and_numpy_inputs_agree():
    rng = np.random.default_rng(1)
    d = rng.random((20, 50)).astype(np.float32)
    q_pids, g_pids = rng.integers(0, 5, 20), rng.integers(0, 5, 50)
    q_cams, g_cams = rng.integers(0, 2, 20), rng.integers(0, 2, 50)
    a = evaluate_rank(d, q_pids, g_pids, q_cams, g_cams)
    b = evaluate_rank(torch.from_numpy(d), torch.from_numpy(q_pids), torch.from_numpy(g_pids),
                      torch.from_numpy(q_cams), torch.from_numpy(g_cams))
    c = evaluate_rank(d.tolist(), q_pids.tolist(), g_pids.tolist(), q_cams.tolist(), g_cams.tolist())  # float64
    for r in (b, c):
        np.testing.assert_array_equal(a.cmc, r.cmc)
        np.testing.assert_array_equal(a.per_query_ap, r.per_query_ap)
        assert (a.mAP, a.mINP, a.num_valid_queries) == (r.mAP, r.mINP, r.num_valid_queries)


# ---------------------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------------------
def test_errors():
    with pytest.raises(ValueError, match="No valid query"):
        evaluate_rank(DIST[2:], Q_PIDS[2:], G_PIDS, Q_CAMS[2:], G_CAMS)
    with pytest.raises(ValueError, match="q_pids has 3 entries but distmat has 4"):
        evaluate_rank(DIST, Q_PIDS[:3], G_PIDS, Q_CAMS, G_CAMS)
    with pytest.raises(ValueError, match="g_camids has 5 entries"):
        evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS[:5])
    with pytest.raises(ValueError, match="2-D"):
        evaluate_rank(DIST[0], Q_PIDS[:1], G_PIDS, Q_CAMS[:1], G_CAMS)
    with pytest.raises(ValueError, match="empty"):
        evaluate_rank(np.zeros((0, 6)), [], G_PIDS, [], G_CAMS)
    bad = DIST.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="NaN .*query row 1"):
        evaluate_rank(bad, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS)
    with pytest.raises(ValueError, match="max_rank must be >= 1"):
        evaluate_rank(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, max_rank=0)
    with pytest.raises(ValueError, match="feature dims differ"):
        euclidean_distance(np.zeros((2, 3)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="qf must be 2-D"):
        cosine_distance(np.zeros(3), np.zeros((4, 3)))


# ---------------------------------------------------------------------------------------------------------
# Distances and the R1_mAP_eval path
# ---------------------------------------------------------------------------------------------------------
def test_distances_by_hand():
    q = np.array([[1.0, 2.0]])
    g = np.array([[1.0, 2.0], [0.0, 0.0], [3.0, 4.0]])
    d = euclidean_distance(q, g)
    assert d.dtype == np.float32 and isinstance(d, np.ndarray)
    np.testing.assert_allclose(d, [[0.0, 5.0, 8.0]], atol=1e-6)  # squared, no sqrt: (2²+2²) = 8
    c = cosine_distance(torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]]))
    np.testing.assert_allclose(c, [[0.0, 1.0, 2.0]], atol=1e-6)


def test_euclidean_chunks_and_inputs_agree():
    rng = np.random.default_rng(2)
    q, g = rng.standard_normal((23, 8)).astype(np.float32), rng.standard_normal((31, 8)).astype(np.float32)
    full = euclidean_distance(q, g)
    np.testing.assert_array_equal(full, euclidean_distance(torch.from_numpy(q), torch.from_numpy(g)))
    np.testing.assert_allclose(euclidean_distance(q, g, chunk_size=5), full, atol=1e-5)
    ref = ((q[:, None, :].astype(np.float64) - g[None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(full, ref, atol=1e-4)
    np.testing.assert_allclose(cosine_distance(q, g, chunk_size=4), cosine_distance(q, g), atol=1e-6)
    # the torch route used for GPU features, run here on CPU tensors
    out = np.empty((23, 31), dtype=np.float32)
    ev._sq_euclidean_torch(torch.from_numpy(q), torch.from_numpy(g), 6, out)
    np.testing.assert_allclose(out, ref, atol=1e-4)
    assert euclidean_distance(np.zeros((0, 8)), g).shape == (0, 31)


def test_evaluate_features_normalize_is_honoured():
    # q = (1, 0). g0 = (10, 0): same pid, other camera; g1 = (0, 1): another pid.
    # Raw squared distances: g0 81, g1 2 -> the match is 2nd -> AP 1/2.
    # Normalised: g0 0, g1 2 -> the match is 1st -> AP 1.
    args = (torch.tensor([[1.0, 0.0]]), torch.tensor([[10.0, 0.0], [0.0, 1.0]]), [1], [1, 2], [0], [1, 1])
    assert evaluate_features(*args).mAP == pytest.approx(1.0)
    assert evaluate_features(*args, normalize=False).mAP == pytest.approx(0.5)


def test_evaluate_features_forwards_rerank(monkeypatch):
    calls = {}

    def fake_re_ranking(qf, gf, k1, k2, lambda_value):
        calls.update(qf=qf, gf=gf, k1=k1, k2=k2, lam=lambda_value)
        return np.array([[0.9, 0.1]], dtype=np.float32)  # puts g1 first

    monkeypatch.setitem(sys.modules, "reid_lab.retrieval.reranking",
                        types.SimpleNamespace(re_ranking=fake_re_ranking))
    args = (torch.tensor([[3.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 2.0]]), [1], [1, 2], [0], [1, 1])
    assert evaluate_features(*args).mAP == pytest.approx(1.0)  # no re-ranking: g0 is nearest
    assert not calls
    res = evaluate_features(*args, rerank=True, k1=7, k2=3, lambda_value=0.5)
    assert res.mAP == pytest.approx(0.5)  # the re-ranked distances were used
    assert (calls["k1"], calls["k2"], calls["lam"]) == (7, 3, 0.5)
    np.testing.assert_allclose(np.asarray(calls["qf"]), [[1.0, 0.0]])  # normalised before re-ranking


def test_evaluate_features_with_real_rerank():
    pytest.importorskip("reid_lab.retrieval.reranking")
    # 4 well-separated identities, 5 gallery images each in cameras 0-4, queries from camera 9
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((4, 8))
    g_pids, g_cams = np.repeat(np.arange(4), 5), np.tile(np.arange(5), 4)
    gf = (centres[g_pids] + 0.05 * rng.standard_normal((20, 8))).astype(np.float32)
    qf = (centres + 0.05 * rng.standard_normal((4, 8))).astype(np.float32)
    res = evaluate_features(qf, gf, np.arange(4), g_pids, np.full(4, 9), g_cams, rerank=True, k1=4, k2=2)
    assert res.mAP == pytest.approx(1.0) and res.rank(1) == 1.0


# ---------------------------------------------------------------------------------------------------------
# Feature extraction
# ---------------------------------------------------------------------------------------------------------
class _Images(torch.utils.data.Dataset):
    def __init__(self, n: int = 11):
        g = torch.Generator().manual_seed(0)
        self.images = torch.randn(n, 3, 4, 2, generator=g)
        self.pids = torch.arange(n) * 10
        self.camids = torch.arange(n) % 3

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return self.images[i], int(self.pids[i]), int(self.camids[i]), i


def _tiny_model() -> nn.Module:
    torch.manual_seed(0)
    # Dropout makes the output random in train mode: exact equality below proves eval mode was used
    return nn.Sequential(nn.Flatten(), nn.Linear(24, 5), nn.Dropout(0.5))


@pytest.mark.parametrize("was_training", [True, False])
def test_extract_features_restores_order_and_mode(was_training):
    data, model = _Images(), _tiny_model()
    model.train(was_training)
    loader = torch.utils.data.DataLoader(data, batch_size=4, shuffle=True,
                                         generator=torch.Generator().manual_seed(3))
    feats, pids, camids = extract_features(model, loader, "cpu", progress=False)
    assert model.training is was_training
    assert feats.dtype == torch.float32 and feats.device.type == "cpu" and feats.shape == (11, 5)
    np.testing.assert_array_equal(pids, data.pids.numpy())
    np.testing.assert_array_equal(camids, data.camids.numpy())
    lin = model[1]
    expected = data.images.flatten(1) @ lin.weight.detach().T + lin.bias.detach()
    torch.testing.assert_close(feats, expected, rtol=1e-6, atol=1e-6)


def test_extract_features_flip_and_normalize():
    data, model = _Images(), _tiny_model()
    loader = torch.utils.data.DataLoader(data, batch_size=5, shuffle=True,
                                         generator=torch.Generator().manual_seed(4))
    feats, _, _ = extract_features(model, loader, torch.device("cpu"), flip=True, normalize=True, progress=False)
    lin = model[1]
    plain = data.images.flatten(1) @ lin.weight.detach().T + lin.bias.detach()
    mirrored = data.images.flip(-1).flatten(1) @ lin.weight.detach().T + lin.bias.detach()  # mirror width
    expected = torch.nn.functional.normalize((plain + mirrored) / 2, dim=1)
    torch.testing.assert_close(feats, expected, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(plain, mirrored)  # the flip is not a no-op on this input


def test_extract_features_errors():
    model = _tiny_model()
    with pytest.raises(ValueError, match="no batches"):
        extract_features(model, [], "cpu", progress=False)
    with pytest.raises(ValueError, match=r"\(images, pids, camids, index\)"):
        extract_features(model, [(torch.zeros(1, 3, 4, 2), torch.zeros(1))], "cpu", progress=False)
    batch = (torch.zeros(2, 3, 4, 2), torch.zeros(2), torch.zeros(2), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="index 0 appears more than once"):
        extract_features(model, [batch], "cpu", progress=False)
    assert model.training  # restored even after an error


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_extract_features_cuda_bf16():
    data, model = _Images(), _tiny_model().cuda()
    loader = torch.utils.data.DataLoader(data, batch_size=4)
    feats, _, _ = extract_features(model, loader, "cuda", progress=False)  # amp auto -> bf16 autocast
    ref, _, _ = extract_features(model.cpu(), loader, "cpu", progress=False)
    assert feats.dtype == torch.float32 and feats.device.type == "cpu"
    torch.testing.assert_close(feats, ref, rtol=0.05, atol=0.05)


def test_evaluate_rank_accepts_non_contiguous_float32_distances():
    """A column subset or a Fortran-ordered float32 matrix gives the same result as its C-ordered copy."""
    rng = np.random.default_rng(0)
    d = rng.random((4, 10)).astype(np.float32)
    q_pids, g_pids = np.array([1, 2, 3, 1]), np.array([1, 2, 3, 4, 1, 2, 3, 4, 1, 2])
    q_cams, g_cams = np.zeros(4, int), np.ones(10, int)
    expected = evaluate_rank(np.ascontiguousarray(d[:, ::2]), q_pids, g_pids[::2], q_cams, g_cams[::2])
    got = evaluate_rank(d[:, ::2], q_pids, g_pids[::2], q_cams, g_cams[::2])
    assert got.mAP == expected.mAP and np.array_equal(got.cmc, expected.cmc)
    fortran = evaluate_rank(np.asfortranarray(d), q_pids, g_pids, q_cams, g_cams)
    assert fortran.mAP == evaluate_rank(d, q_pids, g_pids, q_cams, g_cams).mAP
