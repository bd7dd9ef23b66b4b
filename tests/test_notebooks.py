"""Every notebook, in order, in the smoke profile (papermill); assertions on each notebook's metrics.json."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from reid_lab.tutorial.notebook import list_notebooks, load_metrics, run_notebooks

NOTEBOOKS = list_notebooks()


def _fraction(value) -> bool:
    return isinstance(value, (int, float)) and 0.0 <= value <= 1.0


def check_00(m):
    assert m["synth_market"]["train_ids"] > 0 and m["synth_market"]["query_images"] > 0
    for method in ("raw_pixels", "raw_pixels_rerank", "color_histogram", "color_histogram_rerank"):
        assert _fraction(m[method]["mAP"]) and _fraction(m[method]["rank1"]), method
    # the worked example in the notebook is computed by hand in markdown: the package must agree
    assert math.isclose(m["worked_example"]["mAP"], m["worked_example"]["expected_mAP"], abs_tol=1e-9)
    assert _fraction(m["raw_pixels"]["same_camera_top1"])


def check_02(m):
    assert m["loss_by_hand_matches_package"] is True
    for name in ("patchify", "ICS"):
        p = m["pretrain"][name]
        assert p["epochs"] >= 1 and math.isfinite(p["final_loss"])
        assert p["final_teacher_entropy"] <= p["ln_out_dim"] + 1e-6
        steps = [step for step, _ in p["knn_curve"]]  # the health probe: before step 0, ..., after the last step
        assert steps[0] == 0 and steps == sorted(steps) and len(steps) >= 2
        assert all(0.0 <= value <= 100.0 for _, value in p["knn_curve"])
        assert p["verdict"] in {"learning", "U-turn: not learning steadily", "collapsing to uniform targets",
                                "not learning yet"}  # generated from the numbers (reid_lab.tutorial.verdicts)
    for key, r in m["retrieval"].items():
        assert _fraction(r["mAP"]) and _fraction(r["rank1"]), key


def check_01(m):
    pool = m["pool_images"]
    assert pool > 0 and m["keep"]["keep_50"]["kept"] == round(pool * 0.5)
    assert m["keep"]["keep_60"]["kept"] == round(pool * 0.6)
    assert 0.0 <= m["auc_person_vs_off_domain"] <= 1.0 and _fraction(m["target_proxy_mAP"])
    assert _fraction(m["separation"]["auc"]) and _fraction(m["centred_separation"]["auc"])
    assert set(m["separation"]["auc_by_kind"]) <= {"background", "vehicle", "clutter"}
    assert all(-1.0 <= v <= 1.0 for v in m["shared_direction"].values())
    assert 0.0 < m["keep"]["keep_50"]["random_rejected_sd"] < 1.0 and len(m["headline"]) == 3
    assert Path(m["ranked_list"]).is_file()
    control = m["known_answer_control"]  # the positive control: SynthMarket test images vs off-domain pool images
    assert _fraction(control["auc"]) and _fraction(control["centred_auc"]) and control["n_in"] > 0 < control["n_off"]


def check_03(m):
    assert m["triplet_by_hand_matches_package"] is True
    assert set(m["runs"]) == {"random", "DINO", "random+ICS", "DINO+ICS"} and m["best_init"] in m["runs"]
    course = [k for k in m["headline"] if k.startswith("course study")]  # only where a course study is shipped
    assert len(m["headline"]) - len(course) == len(m["runs"])
    assert (m["course_study"] is None) == (not course)
    for name, r in m["runs"].items():
        assert all(_fraction(r[k]) for k in ("mAP", "rank1", "rank5", "rank10", "mINP")), name
        assert r["seconds"] > 0
    assert m["search_shape"] == [5, 5]


# --- check_04 / check_05 (USL, UDA) go here ---
def _check_usl_epochs(per_epoch, epochs):
    assert [r["epoch"] for r in per_epoch] == list(range(1, epochs + 1))
    for r in per_epoch:
        assert r["num_clusters"] >= 0 and r["num_outliers"] >= 0 and _fraction(r["outlier_fraction"])
        assert r["loss"] is None or math.isfinite(r["loss"])


def _check_course(runs, names, uda=False):
    assert set(names) <= set(runs), (names, list(runs))
    for name in names:
        e = runs[name]
        assert e["seeds"] and all(str(s) in e["runs"] for s in e["seeds"]), name
        assert _fraction(e["start_mAP"]["mean"]) and _fraction(e["end_mAP"]["mean"]), name
        assert math.isclose(e["gain_mAP"]["mean"], e["end_mAP"]["mean"] - e["start_mAP"]["mean"], abs_tol=1e-9)
        for seed in e["seeds"]:
            run = e["runs"][str(seed)]
            _check_usl_epochs(run["history"], run["config"]["epochs"])
        if uda:
            assert _fraction(e["bn_only_mAP"]["mean"]), name


def check_04(m):
    assert m["toy"]["by_hand_matches_package"] is True and m["toy"]["reciprocal_pairs"] > 0
    jac = m["toy"]["jaccard"]
    assert all(abs(jac[i][i]) < 1e-6 and all(0 <= jac[i][j] <= 1 and jac[i][j] == jac[j][i] for j in range(len(jac)))
               for i in range(len(jac)))  # float32: the diagonal is 0 up to rounding
    sweep = m["eps_sweep"]
    assert [r["eps"] for r in sweep] == sorted(r["eps"] for r in sweep) and len(sweep) >= 3
    # DBSCAN with a fixed min_samples: a larger eps can only turn outliers into cluster members
    outliers = [r["num_outliers"] for r in sweep]
    assert all(a >= b for a, b in zip(outliers, outliers[1:])), outliers
    assert all(r["purity"] is None or _fraction(r["purity"]) for r in sweep)
    assert m["arch"].endswith("_ics") and m["course_source"] in ("shipped", "trained")
    _check_course(m["course"], ["usl_dino_ics", "usl_oracle_dino_ics"])
    # the oracle control is fed the true ids: every clustered image is in its own identity's cluster
    oracle = m["course"]["usl_oracle_dino_ics"]
    assert all(h["purity"] == 1.0 for r in oracle["runs"].values() for h in r["history"])
    assert len(m["headline"]) == sum(name.startswith("usl") for name in m["course"])
    assert _fraction(m["chance_mAP"]) and "USL from DINO+ICS, end − start, mAP" in m["verdict"]
    assert ("paired seeds" in m["verdict"]) != ("one seed" in m["verdict"])  # the noise it was judged against


def check_05(m):
    runs = m["runs"]
    assert {r["direction"] for r in runs.values()} == set(m["directions"]) and len(m["directions"]) >= 1
    assert {r["arch"] for r in runs.values()} == set(m["archs"]) and len(m["archs"]) == 2  # with and without ICS
    for name, r in runs.items():
        assert all(_fraction(r[k]) for k in ("source_mAP", "direct_mAP", "direct_rank1", "bn_only_mAP", "uda_mAP",
                                             "uda_rank1")), name
        assert all(e["purity"] is None or _fraction(e["purity"]) for e in r["per_epoch"]), name
        _check_usl_epochs(r["per_epoch"], r["uda_epochs"])
    assert len(m["headline"]) == len(runs) + len(m["course"]) and all("%" in k for k in m["headline"])
    assert m["course_source"] in ("shipped", "trained")
    _check_course(m["course"], ["uda_market_to_msmt"], uda=True)
    assert set(m["chance_mAP"]) == {"market1501", "msmt17"} and all(_fraction(v) for v in m["chance_mAP"].values())
    assert len(m["verdicts"]) == 2 * len(m["course"]) and all("mAP" in v for v in m["verdicts"].values())


# --- check_06 (visualization) goes here ---
def check_06(m):
    t, n = m["threshold"], m["num_patches"]
    assert 0 < t <= 1 and n >= 1
    assert "random init · ICS" in m["attention"]
    for name, s in m["attention"].items():
        assert 0 < s["entropy"] <= 1 + 1e-6 and 1 - 1e-6 <= s["peak"] <= n, name
        # no head needs more patches than uniform attention does to hold a fraction t of the mass
        assert 0 < s["mask_area"] <= t + 1 / n + 1e-6, name
    assert set(m["mass_inside"]) == set(m["attention"])  # the smoke world is synthetic: every model is measured
    for name, s in m["mass_inside"].items():
        assert 0 < s["area"] < 1 and 0 <= s["worst_head_mass"] <= s["mass"] <= s["best_head_mass"] <= 1, name
    headline = m["headline"]
    assert "attention mass on the person, random init · ICS (%)" in headline
    assert all("(%)" in k and any(ch.isdigit() for ch in v) for k, v in headline.items())
    best, worst = list(m["best_queries"].values()), list(m["worst_queries"].values())
    assert best and worst and all(_fraction(v) for v in best + worst)
    assert min(best) >= max(worst) and min(worst) <= m["mAP"] <= max(best)
    assert _fraction(m["rank1"]) and _fraction(m["mINP"])
    assert {"attention_stages.png", "attention_heads.png", "ranks_best.png", "ranks_worst.png", "tsne.png"} <= {
        Path(f).name for f in m["figures"]}
    assert all(Path(f).is_file() for f in m["figures"])
    assert "curves.png" not in {Path(f).name for f in m["figures"]}  # notebook 03 shows the fine-tuning curves
    assert m["attention_verdict"] is None or "positional prior" in m["attention_verdict"]


CHECKS = {"00_data_and_evaluation": check_00, "01_cfs_analysis": check_01, "02_dino_ics_pretraining": check_02,
          "03_supervised_reid": check_03,
          "04_usl_reid": lambda m: check_04(m), "05_uda_reid": lambda m: check_05(m),  # noqa: F821
          "06_attention_visualization": lambda m: check_06(m)}  # noqa: F821


@pytest.fixture(scope="module")
def smoke_roots(tmp_path_factory):
    root = tmp_path_factory.mktemp("notebooks")
    return str(root / "data"), str(root / "runs")


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_smoke_profile(notebook, smoke_roots):
    data_root, runs_root = smoke_roots
    (record,) = run_notebooks("smoke", notebooks=[notebook], data_root=data_root, runs_root=runs_root,
                              device="cpu", progress=False)
    metrics = load_metrics(f"{runs_root}/smoke/{notebook.stem}")
    assert metrics == record["metrics"] and metrics
    check = CHECKS.get(notebook.stem)
    assert check is not None, f"add an assertion for {notebook.stem}'s metrics to tests/test_notebooks.py"
    check(metrics)
    # clean outputs (issue #11): no progress-bar walls, no tqdm/ipywidgets warning, no first-run resume notice
    executed = json.loads(Path(f"{runs_root}/smoke/{notebook.stem}/{notebook.name}").read_text())
    noise = [(i, text.strip()[:80]) for i, cell in enumerate(executed["cells"]) for out in cell.get("outputs", [])
             for text in ["".join(out.get("text", ""))]
             if "it/s]" in text or "s/it]" in text or "img/s]" in text or "TqdmWarning" in text or "resume requested" in text]
    assert not noise, f"noise in the cell outputs of {notebook.name}: {noise[:5]}"
