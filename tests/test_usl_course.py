"""The USL/UDA course record (reid_lab.usl.course): paired statistics and the table, on hand-made summaries."""
from __future__ import annotations

import json

import pytest

from reid_lab.usl import course


def _summary(start, end, purities, bn_only=None):
    return {"start": {"mAP": start}, "end": {"mAP": end}, "bn_only": {"mAP": bn_only} if bn_only is not None else {},
            "history": [{"epoch": i + 1, "purity": p} for i, p in enumerate(purities)], "config": {}}


def test_course_record_pairs_the_seeds_and_reads_the_bn_only_control():
    results = {"usl_dino_ics": {0: _summary(0.04, 0.10, [0.2, 0.5]), 1: _summary(0.06, 0.16, [0.3, 0.6])},
               "uda_market_to_msmt": {0: _summary(0.10, 0.20, [0.4, 0.7], bn_only=0.12),
                                      2: _summary(0.12, 0.18, [0.4, 0.8], bn_only=0.14)}}
    record = course.course_record(results)
    usl = record["usl_dino_ics"]
    assert usl["seeds"] == [0, 1] and usl["what"] == course.RUNS["usl_dino_ics"].what
    assert usl["gain_mAP"]["mean"] == pytest.approx(0.08) and usl["gain_mAP"]["sd"] == pytest.approx(0.0282843, abs=1e-6)
    assert usl["first_purity"]["mean"] == pytest.approx(0.25) and usl["last_purity"]["mean"] == pytest.approx(0.55)
    assert "bn_only_mAP" not in usl
    uda = record["uda_market_to_msmt"]
    assert uda["gain_over_bn_only"]["mean"] == pytest.approx(0.06) and uda["bn_only_mAP"]["mean"] == pytest.approx(0.13)
    table = course.course_table({"runs": record})
    assert "| 2 | 5.0 ± 1.4 | – | 13.0 ± 4.2 | +8.0 ± 2.8 | – | 25 → 55 % |" in table
    assert "| 13.0 ± 1.4 | 19.0 ± 1.4 | +8.0 ± 2.8 | +6.0 ± 2.8 | 40 → 75 % |" in table and table.count("\n") == 3


def test_shipped_record_loads_and_train_or_load_prefers_it(tmp_path, monkeypatch):
    record = {"runs": course.course_record({"usl_good_start": {0: _summary(0.4, 0.42, [0.8, 0.85])}}),
              "recipe": {}, "command": "x"}
    (tmp_path / "usl_course_tiny.json").write_text(json.dumps(record))
    assert course.load_course("tiny", tmp_path)["runs"]["usl_good_start"]["end_mAP"]["mean"] == pytest.approx(0.42)
    assert course.load_course("smoke", tmp_path) is None
    monkeypatch.setattr(course, "load_course", lambda profile: record)
    assert course.train_or_load("tiny", tmp_path / "live", "cpu")["source"] == "shipped"


def test_unknown_course_runs_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown course run"):
        course.run_course_runs("smoke", tmp_path, "cpu", names=["usl_everything"])
