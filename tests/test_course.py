"""The course report (reid_lab.course.course_report): every number it prints comes from the study it is given."""
from __future__ import annotations

import pytest

from reid_lab.course import INITS, course_report, main
from reid_lab.tutorial.notebook import readme_markers, update_readme


def _study() -> dict:
    # two seeds, budgets 3 and 6 epochs; mAP / Rank-1 / mINP as fractions
    curves = {"random+ICS": [[0.10, 0.30], [0.12, 0.28]],
              "DINO+ICS permuted": [[0.10, 0.31], [0.12, 0.28]],
              "DINO+ICS": [[0.14, 0.36], [0.15, 0.35]]}
    return {"budgets": [3, 6], "seeds": [0, 1], "curves": curves,
            "rank1": {k: [[2 * x for x in s] for s in v] for k, v in curves.items()},
            "mINP": {k: [[x / 2 for x in s] for s in v] for k, v in curves.items()}}


def test_course_report_prints_the_paired_differences_and_the_permuted_share():
    log = [{"loss": 6.1, "ln_out_dim": 6.931, "teacher_entropy": 4.2}, {"loss": 5.6, "ln_out_dim": 6.931,
                                                                       "teacher_entropy": 3.9}]
    knn = {"DINO+ICS": {"mAP": 0.071, "mAP_seeds": [0.071], "size": [128, 64]},
           "random+ICS": {"mAP": 0.05, "mAP_seeds": [0.05, 0.06, 0.07], "size": [128, 64]}}
    text = course_report(_study(), knn, dino_log=log, dino_minutes=12.0, pool_images=6000,
                         command="make course", device="cpu")
    assert "2 epochs over the 6,000-image SynthLUP pool, 12 min; last epoch loss 5.600 (ln K 6.931)" in text
    # mean ± sd (ddof 1) per budget: random+ICS 11.0 ± 1.4 and 29.0 ± 1.4
    assert "| random+ICS | 11.0 ± 1.4 | 29.0 ± 1.4 |" in text
    # paired DINO+ICS − random+ICS: seeds (+4, +6) and (+3, +7) → +3.5 ± 0.7, +6.5 ± 0.7
    assert "| DINO+ICS − random+ICS (paired) | +3.5 ± 0.7 | +6.5 ± 0.7 |" in text
    # final budget: mAP 35.5 ± 0.7, Rank-1 71.0 ± 1.4, mINP 17.8 ± 0.4, frozen k-NN 7.1 (one seed), random 6.0 ± 1.0
    assert "| DINO+ICS | 35.5 ± 0.7 | 71.0 ± 1.4 | 17.8 ± 0.4 | 7.1 |  |" in text
    assert "| random+ICS | 29.0 ± 1.4 | 58.0 ± 2.8 | 14.5 ± 0.7 | 6.0 ± 1.0 |  |" in text
    assert "ahead in 2 of 2 seeds; beyond the seed spread" in text
    # permuted control: (+1, 0) → +0.5 ± 0.7, 0.5 / 6.5 = 8 % of the gain; DINO − permuted: (+5, +7) → +6.0 ± 1.4
    assert "+0.5 ± 0.7 mAP, 8 % of the DINO gain; DINO+ICS − permuted: +6.0 ± 1.4 (ahead in 2 of 2 seeds)" in text
    # k-NN: 7.1 against 6.0 ± 1.0 → not above mean + 2 sd = 8.0
    assert "Frozen k-NN at 128x64: DINO+ICS 7.1 mAP against random ICS weights 6.0 ± 1.0 (3 seeds): NOT above" in text


def test_course_report_says_when_the_gain_is_within_the_spread():
    study = _study()
    study["curves"]["DINO+ICS"] = [[0.10, 0.36], [0.12, 0.26]]  # +6 and −2 at the final budget
    text = course_report(study, {}, dino_log=None, dino_minutes=None, pool_images=10, command="x", device="cpu")
    assert "ahead in 1 of 2 seeds; NOT beyond the seed spread" in text


def test_course_report_goes_into_its_own_readme_block(tmp_path):
    start, end = readme_markers("tiny", "course")
    assert start == "<!-- course:tiny:start -->"
    readme = tmp_path / "README.md"
    results = "\n".join(readme_markers("tiny"))
    readme.write_text(f"intro\n{results}\n{start}\nold\n{end}\ntail\n")
    assert update_readme(readme, "tiny", "new table", block="course")
    assert readme.read_text() == f"intro\n{results}\n{start}\nnew table\n{end}\ntail\n"


def test_course_cli_rejects_an_unknown_initialisation(tmp_path):
    assert "DINO+ICS" in INITS and "DINO+ICS permuted" in INITS
    with pytest.raises(ValueError, match="unknown initialisation"):
        main(["--profile", "smoke", "--output", str(tmp_path), "--stage", "study", "--inits", "DINO+BN"])


def test_record_only_writes_the_study_and_the_runs_curve_without_touching_weights(tmp_path, monkeypatch):
    import json

    import torch

    from reid_lab import course, engine
    from reid_lab.tutorial import zoo

    monkeypatch.setattr(zoo, "ASSETS", tmp_path / "assets")
    (tmp_path / "assets").mkdir()
    monkeypatch.setattr(course, "probe_random_weights", lambda *a, **k: [10.0, 11.0])
    run = tmp_path / "out" / f"dino_{course._arch('tiny', True)}"
    run.mkdir(parents=True)
    torch.save({"config": {"batch_size": 64, "seed": 0}, "iters_per_epoch": 93}, run / "checkpoint.pth")
    (run / "teacher_backbone.pth").write_bytes(b"weights")
    log = engine.JsonlLog(run / "log.jsonl")
    for epoch, (step, value) in enumerate([(92, 0.08), (186, 0.09)]):
        log.append({"epoch": epoch, "seconds": 60.0, "knn_step": step, "knn_mAP": value, "knn_rank1": 0.2})
    steps = engine.JsonlLog(run / "steps.jsonl")
    steps.append({"epoch": 0, "step": 0, "loss": 6.0, "knn_mAP": 0.115, "knn_rank1": 0.2})
    steps.append({"epoch": 1, "step": 150, "loss": 5.0, "knn_mAP": 0.085, "knn_rank1": 0.2})
    path = course.write_record("tiny", tmp_path / "out", _study(), {}, command="make course", device="cpu",
                               minutes={course._arch("tiny", True): 2.0}, report="the report")
    record = json.loads(path.read_text())
    assert path == tmp_path / "assets" / "course_record_tiny.json" and sorted(p.name for p in path.parent.iterdir()) \
        == ["course_record_tiny.json"]  # no weights shipped
    assert record["study"]["report"] == "the report" and record["dino"]["images_seen"] == 2 * 64 * 93
    # the probe before steps 0 and 150, then the finished teacher after step 186 (percent)
    assert record["dino"]["knn_curve"] == [[0, 11.5], [150, 8.5], [186, 9.0]]
    assert record["dino"]["knn_probe_random"] == [10.0, 11.0] and record["dino"]["minutes"] == 2.0
