"""CFS scoring and selection (docs/reference.md §1): cosine of two proxies' features, descending rank, files, keep ratios."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from reid_lab import cfs
from reid_lab.data import LUPersonPool, read_cfs_pickle, read_ranked_list
from reid_lab.reid import build_reid_model


class MeanColour(nn.Module):
    """A hand-checkable 'proxy': the per-channel mean of the (normalised) image, times fixed weights."""

    def __init__(self, weights):
        super().__init__()
        self.w = nn.Parameter(torch.tensor(weights, dtype=torch.float32))

    def forward(self, x):
        return x.mean(dim=(2, 3)) * self.w


COLOURS = {"a.png": (255, 0, 0), "b.png": (0, 255, 0), "c.png": (0, 0, 255), "d.png": (255, 255, 255),
           "e.png": (255, 0, 255)}


@pytest.fixture
def pool_root(tmp_path):
    for name, colour in COLOURS.items():
        (tmp_path / "LUP" / "images").mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (32, 64), colour).save(tmp_path / "LUP" / "images" / name)
    return tmp_path / "LUP"


def _expected(colour, ws, wt):
    x = np.array(colour) / 255.0 * 2 - 1  # ToTensor + Normalize(0.5, 0.5)
    fs, ft = x * ws, x * wt
    return fs @ ft / np.linalg.norm(fs) / np.linalg.norm(ft)


def test_scores_are_the_cosine_of_the_two_features(pool_root):
    ws, wt = [1.0, 2.0, 3.0], [3.0, 1.0, 1.0]
    paths = [pool_root / "images" / n for n in COLOURS]
    scores = cfs.cfs_scores(MeanColour(ws), MeanColour(wt), paths, "cpu", image_size=(64, 32), batch_size=2,
                            progress=False)
    expected = [_expected(c, np.array(ws), np.array(wt)) for c in COLOURS.values()]
    np.testing.assert_allclose(scores, expected, rtol=1e-5)


def test_identical_proxies_score_one(pool_root):
    torch.manual_seed(0)
    model = build_reid_model("vit_tiny", 0, (64, 32))
    paths = sorted((pool_root / "images").iterdir())
    np.testing.assert_allclose(cfs.cfs_scores(model, model, paths, "cpu", image_size=(64, 32), progress=False), 1.0,
                               atol=1e-5)


def test_rank_is_descending_and_stable():
    assert cfs.rank_by_score(["a", "b", "c", "d"], [0.1, 0.9, 0.5, 0.9]) == ["b", "d", "c", "a"]
    with pytest.raises(ValueError, match="one score per name"):
        cfs.rank_by_score(["a"], [0.1, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        cfs.rank_by_score(["a", "b"], [0.1, float("nan")])


def test_select_rounds_half_up():
    ranked = list("abcde")
    assert cfs.select(ranked, 0.5) == ["a", "b", "c"]  # 2.5 -> 3, as round(4,180,243 x 0.5) in docs/reference.md §1.4
    assert cfs.select(ranked, 0.6) == ["a", "b", "c"]
    assert cfs.select(ranked, 1.0) == ranked
    with pytest.raises(ValueError, match="keep_ratio"):
        cfs.select(ranked, 0.0)


def test_score_pool_writes_lists_that_pretraining_reads(pool_root, tmp_path):
    ws, wt = [1.0, 2.0, 3.0], [3.0, 1.0, 1.0]
    pool = LUPersonPool(pool_root)
    result = cfs.score_pool(MeanColour(ws), MeanColour(wt), pool, "cpu", output_dir=tmp_path / "out",
                            write_pickle=True, image_size=(64, 32), progress=False)
    by_hand = {n: _expected(c, np.array(ws), np.array(wt)) for n, c in COLOURS.items()}
    assert result.ranked == sorted(by_hand, key=lambda n: -by_hand[n])
    assert read_ranked_list(result.ranked_path) == result.ranked
    assert read_cfs_pickle(result.pickle_path) == result.ranked
    kept = LUPersonPool(pool_root, ranked_list=result.pickle_path, keep_ratio=0.6)
    assert kept.names == cfs.select(result.ranked, 0.6)
    assert result.score_of()["a.png"] == pytest.approx(by_hand["a.png"], rel=1e-5)
    assert result.source_features.shape == result.target_features.shape == (len(COLOURS), 3)
    np.testing.assert_allclose(cfs.cosine(result.source_features, result.target_features), result.scores)


def test_domain_report_counts_rejected_off_domain_images(tmp_path):
    ranked = ["p1", "p2", "v1", "p3", "b1", "p4", "c1", "b2"]  # 4 persons, 4 off-domain
    kinds = {n: {"p": "person", "v": "vehicle", "b": "background", "c": "clutter"}[n[0]] for n in ranked}
    report = cfs.domain_report(ranked, kinds, ratios=(0.5, 0.75))
    assert report["keep_50"] == {"kept": 4, "off_domain_total": 4, "off_domain_kept": 1, "off_domain_rejected": 3,
                                 "rejected_fraction": 0.75, "random_rejected_fraction": 0.5,
                                 # hypergeometric: sqrt(4 · ½ · ½ · 4/7) / 4 = sqrt(4/7) / 4
                                 "random_rejected_sd": pytest.approx(np.sqrt(4 / 7) / 4)}
    assert report["keep_75"]["kept"] == 6 and report["keep_75"]["off_domain_rejected"] == 2
    (tmp_path / "m.csv").write_text("filename,kind,identity\np1,person,3\nv1,vehicle,-1\n")
    assert cfs.read_membership(tmp_path / "m.csv") == {"p1": "person", "v1": "vehicle"}
    with pytest.raises(KeyError, match="membership"):
        cfs.domain_report(["zz"], kinds)


def test_random_rejection_sd_matches_simulated_random_keeps():
    ranked = [f"p{i}" for i in range(30)] + [f"o{i}" for i in range(10)]
    kinds = {n: "person" if n[0] == "p" else "vehicle" for n in ranked}
    sd = cfs.domain_report(ranked, kinds, ratios=(0.5,))["keep_50"]["random_rejected_sd"]
    rng = np.random.default_rng(0)
    draws = [sum(n[0] == "o" for n in rng.permutation(ranked)[20:]) / 10 for _ in range(20000)]
    assert abs(np.std(draws) - sd) < 0.005 and 0.1 < sd < 0.2


def test_auc_counts_pairs_and_ties_half():
    # positives 3, 1; negatives 2, 1: pairs (3>2) (3>1) (1<2) (1=1 → ½) → 2.5 / 4
    assert cfs.auc([3, 1, 2, 1], [True, True, False, False]) == pytest.approx(0.625)
    assert cfs.auc([1, 2, 3], [False, True, True]) == 1.0 and cfs.auc([1, 2, 3], [True, False, False]) == 0.0
    assert np.isnan(cfs.auc([1, 2], [True, True]))
    with pytest.raises(ValueError, match="one label per score"):
        cfs.auc([1, 2], [True])


def test_separation_reports_overall_and_per_kind_auc():
    scores = [0.9, 0.8, 0.85, 0.1, 0.95]
    groups = ["person", "person", "vehicle", "background", "clutter"]
    out = cfs.separation(scores, groups)
    assert out["auc_by_kind"] == {"background": 1.0, "clutter": 0.0, "vehicle": 0.5}
    assert out["auc"] == pytest.approx(3 / 6)  # pairs won: (0.9 > 0.85, 0.1), (0.8 > 0.1)
    assert out["mean_in_domain"] == pytest.approx(0.85) and out["mean_off_domain"] == pytest.approx(0.6333333)


def test_centred_cosine_and_shared_direction():
    fs = np.array([[10.0, 1.0], [10.0, -1.0]])
    ft = np.array([[10.0, -1.0], [10.0, 1.0]])
    np.testing.assert_allclose(cfs.cosine(fs, ft), [99 / 101, 99 / 101], rtol=1e-6)  # the shared direction wins
    np.testing.assert_allclose(cfs.cosine(fs, ft, centre=True), [-1.0, -1.0], atol=1e-6)  # what is left disagrees
    assert cfs.shared_direction(fs) == pytest.approx(10 / np.sqrt(101))
    assert cfs.shared_direction(np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="same shape"):
        cfs.cosine(fs, ft[:1])


class _Colour(torch.nn.Module):
    """Features [1, 0] (source) or [mean red, 0] (target, red of the normalised input): their cosine is +1 for red
    images and -1 for the others — a proxy pair whose answer is known."""

    def __init__(self, target: bool):
        super().__init__()
        self.target = target

    def forward(self, x):
        red = x[:, 0].mean((1, 2))
        first = red if self.target else torch.ones_like(red)
        return torch.stack([first, torch.zeros_like(red)], 1)


def test_known_answer_control_separates_a_pool_the_proxies_can_tell_apart(tmp_path):
    paths = {}
    for name, colour in (("red", (250, 10, 10)), ("blue", (10, 10, 250))):
        paths[name] = []
        for i in range(4):
            path = tmp_path / f"{name}{i}.png"
            Image.new("RGB", (32, 64), colour).save(path)
            paths[name].append(str(path))
    control = cfs.known_answer_control(_Colour(False), _Colour(True), paths["red"], paths["blue"], "cpu",
                                       image_size=(64, 32))
    assert control["auc"] == 1.0 and control["n_in"] == control["n_off"] == 4
    same = cfs.known_answer_control(_Colour(True), _Colour(True), paths["red"], paths["blue"], "cpu",
                                    image_size=(64, 32))
    assert same["auc"] == 0.5  # identical proxies: every score is 1, nothing separates
    with pytest.raises(ValueError, match="both in-domain and off-domain"):
        cfs.known_answer_control(_Colour(False), _Colour(True), paths["red"], [], "cpu")
