"""reid_lab.reid.study: labelled subsets and the mean ± sd / paired-difference summary, on hand-made inputs."""
from __future__ import annotations

from pathlib import Path

import pytest

from reid_lab.data import ReIDDataset
from reid_lab.data.base import Sample
from reid_lab.reid.study import format_summary, subsample_identities, summarize


def _dataset() -> ReIDDataset:
    train = [Sample(path=Path(f"{pid}_{i}.jpg"), pid=pid, camid=i % 2) for pid in range(6) for i in range(4)]
    query = [Sample(path=Path("q.jpg"), pid=0, camid=0)]
    return ReIDDataset(name="toy", root=Path("."), train=train, query=query, gallery=list(train))


def test_subsample_identities_keeps_whole_identities_and_is_seeded():
    ds = _dataset()
    a, b, c = (subsample_identities(ds, 3, seed) for seed in (0, 0, 1))
    assert a.num_train_pids == 3 and len(a.train) == 12
    assert [s.path for s in a.train] == [s.path for s in b.train]           # same seed → same identities
    assert a.query == ds.query and a.gallery == ds.gallery
    few = subsample_identities(ds, 3, 0, images_per_id=2)
    assert len(few.train) == 6 and all(sum(s.pid == p for s in few.train) == 2 for p in {s.pid for s in few.train})


def test_subsample_identities_rejects_bad_sizes():
    with pytest.raises(ValueError, match="num_ids"):
        subsample_identities(_dataset(), 7, 0)
    with pytest.raises(ValueError, match="images_per_id"):
        subsample_identities(_dataset(), 3, 0, images_per_id=1)


def test_summarize_paired_difference_by_hand():
    result = {"budgets": [3, 6], "curves": {"random": [[0.10, 0.20], [0.20, 0.30]], "DINO": [[0.15, 0.20], [0.30, 0.35]]}}
    s = summarize(result, reference="random")
    assert s["random"]["mean"] == [15.0, 25.0]
    assert s["random"]["sd"] == pytest.approx([7.07, 7.07], abs=0.01)      # sd of (10, 20) with ddof=1
    assert s["DINO"]["diff_mean"] == [7.5, 2.5]                           # (5 + 10) / 2, (0 + 5) / 2
    assert s["DINO"]["diff_sd"] == pytest.approx([3.54, 3.54], abs=0.01)
    assert s["DINO"]["wins"] == 1                                          # final budget: 0.20 vs 0.20 is no win
    table = format_summary(result, reference="random")
    assert "| DINO − random | +7.5 ± 3.5 | +2.5 ± 3.5 |" in table
