"""CFS scoring and selection (SPEC §1): cosine of two proxies' features, descending rank, files, keep ratios."""
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
    assert cfs.select(ranked, 0.5) == ["a", "b", "c"]  # 2.5 -> 3, as round(4,180,243 x 0.5) in SPEC §1.4
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


def test_domain_report_counts_rejected_off_domain_images(tmp_path):
    ranked = ["p1", "p2", "v1", "p3", "b1", "p4", "c1", "b2"]  # 4 persons, 4 off-domain
    kinds = {n: {"p": "person", "v": "vehicle", "b": "background", "c": "clutter"}[n[0]] for n in ranked}
    report = cfs.domain_report(ranked, kinds, ratios=(0.5, 0.75))
    assert report["keep_50"] == {"kept": 4, "off_domain_total": 4, "off_domain_kept": 1, "off_domain_rejected": 3,
                                 "rejected_fraction": 0.75, "random_rejected_fraction": 0.5}
    assert report["keep_75"]["kept"] == 6 and report["keep_75"]["off_domain_rejected"] == 2
    (tmp_path / "m.csv").write_text("filename,kind,identity\np1,person,3\nv1,vehicle,-1\n")
    assert cfs.read_membership(tmp_path / "m.csv") == {"p1": "person", "v1": "vehicle"}
    with pytest.raises(KeyError, match="membership"):
        cfs.domain_report(["zz"], kinds)
