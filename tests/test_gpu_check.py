"""``make gpu-check`` (issue 18): its CPU rehearsal end to end, and the parts a GPU run depends on.

The rehearsal is the proof that the script has not rotted between the rare occasions a GPU is at hand: the same
stages as on CUDA (dry run of a doc command and a notebook's full branch, benchmarks, course pre-training, report)
with faiss, kornia and Jupyter blocked from importing as on the bare GPU machine.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import gpu_check  # noqa: E402


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory) -> tuple[Path, dict, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("gpu_check")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "gpu_check.py"), "--device", "cpu", "--out",
                           str(out)], capture_output=True, text=True, env=env, timeout=600)
    report = json.loads((out / "report.json").read_text()) if (out / "report.json").is_file() else {}
    return out, report, proc


@pytest.mark.slow
def test_rehearsal_passes_every_stage(rehearsal):
    out, report, proc = rehearsal
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "gpu-check: passed" in proc.stdout
    assert report["env"]["device"] == "cpu" and report["bare"] is True
    assert report["env"]["packages"]["faiss"] is False and report["env"]["packages"]["papermill"] is False
    dry = report["dry_run"]
    assert dry["passed"] and dry["problems"] == []
    assert [c["command"].split()[:3] for c in dry["commands"]] == [["torchrun", "x1", "pretrain"]]
    notebook = dry["notebook"]
    assert notebook["passed"] and notebook["how"].startswith("as a plain script") and notebook["metrics"]["dry_run"] == 1
    rows = {r["arch"]: r for r in report["bench"]["train_step"]}
    assert set(rows) == {"vit_tiny", "vit_tiny_ics"} and "skipped" not in rows["vit_tiny"]  # the first always runs
    for r in rows.values():  # on a loaded machine a later row may meet the stage's deadline: then it says so
        assert r.get("skipped") == "time budget" or (r["fp32_images_per_s"] > 0 and r["bf16_images_per_s"] > 0)
    assert all(r["images_per_s"] > 0 for r in report["bench"]["dino_step"])
    assert [r["what"].split(",")[0] for r in report["bench"]["neighbours"]] in (["k-NN", "Jaccard distance"], [])
    course = report["course"]
    assert course["steps_done"] > 0 and course["finished"] and len(course["log"]) == course["epochs_done"]
    assert report["seconds"] < 240  # the "≤ 3 min" on an idle 2-core machine, with slack for a loaded one


@pytest.mark.slow
def test_rehearsal_report_fits_what_comes_back(rehearsal):
    out, report, _ = rehearsal
    files = sorted(p.name for p in out.iterdir())
    assert len(files) <= 8 and all(p.stat().st_size <= 16 * 2**20 for p in out.iterdir())
    assert {"report.json", "report.md", "commands.log", "course_checkpoint.pth.part0"} <= set(files)
    md = (out / "report.md").read_text()
    assert "CPU rehearsal, not a GPU measurement" in md and "| train step vit_tiny_ics 128×64" in md


@pytest.mark.slow
def test_rehearsal_course_run_unpacks_and_resumes(rehearsal, tmp_path):
    """The report's course checkpoint reassembles into a run folder that ``pretrain(resume=True)`` accepts as the
    finished run (it loads it, trains nothing and writes the same teacher)."""
    from reid_lab import engine

    out, report, _ = rehearsal
    run = tmp_path / "dino_vit_tiny_ics"
    written = gpu_check.unpack(out, run)
    assert {p.name for p in written} == {"checkpoint.pth", "log.jsonl", "steps.jsonl", "teacher_backbone.pth"}
    ckpt = engine.load_checkpoint(run / "checkpoint.pth")
    assert ckpt["epoch"] == report["course"]["epochs_done"]
    assert len(engine.JsonlLog(run / "steps.jsonl").read()) == report["course"]["steps_done"]


def test_split_and_join_round_trip(tmp_path):
    blob = os.urandom(2500)
    (tmp_path / "a.bin").write_bytes(blob)
    names = gpu_check.split_file(tmp_path / "a.bin", tmp_path, "a.bin", part_bytes=1000)
    assert names == ["a.bin.part0", "a.bin.part1", "a.bin.part2"]
    assert [(tmp_path / n).stat().st_size for n in names] == [1000, 1000, 500]
    assert gpu_check.join_parts(tmp_path, "a.bin", tmp_path / "b" / "a.bin").read_bytes() == blob
    with pytest.raises(FileNotFoundError, match="no c.bin.part0"):
        gpu_check.join_parts(tmp_path, "c.bin", tmp_path / "c.bin")


def test_more_than_ten_parts_join_in_numeric_order(tmp_path):
    blob = bytes(range(256)) * 5
    (tmp_path / "x").write_bytes(blob)
    assert len(gpu_check.split_file(tmp_path / "x", tmp_path, "x", part_bytes=100)) == 13
    assert gpu_check.join_parts(tmp_path, "x", tmp_path / "y").read_bytes() == blob


def _notebook(tmp_path: Path, tagged: bool = True) -> Path:
    cells = [{"cell_type": "markdown", "metadata": {}, "source": ["# title"]},
             {"cell_type": "code", "metadata": {"tags": ["parameters"] if tagged else []},
              "source": ["PROFILE = 'tiny'\n", "SEED = 0"]},
             {"cell_type": "code", "metadata": {}, "source": ["import json\n",
                                                             "open('out.json', 'w').write(json.dumps([PROFILE, SEED]))"]}]
    path = tmp_path / "99_test.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_notebook_as_script_injects_parameters_after_the_tagged_cell(tmp_path):
    script = gpu_check.notebook_as_script(_notebook(tmp_path), {"PROFILE": "full", "SEED": 3})
    (tmp_path / "nb.py").write_text(script)
    subprocess.run([sys.executable, "nb.py"], cwd=tmp_path, check=True)
    assert json.loads((tmp_path / "out.json").read_text()) == ["full", 3]
    assert "# title" not in script  # markdown is not code
    with pytest.raises(ValueError, match="no code cell is tagged 'parameters'"):
        gpu_check.notebook_as_script(_notebook(tmp_path, tagged=False), {})


def test_every_notebook_has_a_parameters_cell_the_fallback_can_use(tmp_path):
    for notebook in sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        script = gpu_check.notebook_as_script(notebook, {"PROFILE": "full", "DRY_RUN": 1})
        compile(script, str(notebook), "exec")  # no IPython magics or shell escapes the fallback cannot run


def test_the_blocker_hides_packages_in_child_processes(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(gpu_check.BLOCKER)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "REID_LAB_BLOCK_IMPORTS": "csv,xml"}
    code = ("import json\ntry:\n    import csv\nexcept ImportError as e:\n    print('blocked:', e)\n"
            "import importlib.util\nprint(importlib.util.find_spec('json') is not None)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert "blocked: No module named 'csv' (blocked by gpu_check --bare)" in proc.stdout
    assert proc.stdout.strip().endswith("True")


def test_only_missing_wheels_are_installed(tmp_path):
    wheels = [tmp_path / "numpy-2.0.0-cp312-cp312-manylinux_2_17_x86_64.whl",
              tmp_path / "surely_not_installed_pkg-1.0-py3-none-any.whl"]
    assert gpu_check.missing_wheels(wheels) == wheels[1:]


def test_budget_leaves_the_reserve_for_later_stages():
    budget = gpu_check.Budget(100.0)
    import time

    now = time.monotonic()
    assert budget.deadline(cap=30) - now == pytest.approx(30, abs=0.5)
    assert budget.deadline(cap=300, reserve=60) - now == pytest.approx(40, abs=0.5)
    assert budget.deadline(cap=300, reserve=200) - now == pytest.approx(0, abs=0.5)


def _report(**overrides) -> dict:
    report = {
        "seconds": 512.0, "stage_seconds": {"environment": 1.0}, "env_text": "",
        "env": {"device": "cuda", "card": "NVIDIA H100 80GB HBM3", "date": "2026-12-07 12:00 UTC",
                "torch": "2.11.0+cu130", "cuda": "13.0"},
        "dry_run": {"passed": True, "problems": [], "dry_run": 2, "blocks": [{"block": "s1", "seconds": 50.0}],
                    "commands": [{"seconds": 40.0, "command": "torchrun x1 pretrain $REID_LAB_RUNS/x"}],
                    "notebook": {"notebook": "03_supervised_reid", "how": "through papermill", "passed": True, "why": None,
                                 "seconds": 60.0, "metrics": {}}},
        "bench": {"train_step": [{"arch": "vit_small", "size": [256, 128], "batch": 64, "bf16_images_per_s": 1800.0,
                                  "fp32_images_per_s": 600.0, "bf16_speedup": 3.0, "min_cosine_bf16_fp32": 0.999},
                                 {"arch": "vit_base_ics", "skipped": "time budget"}],
                  "dino_step": [], "neighbours": []},
        "course": {"profile": "tiny", "arch": "vit_tiny_ics", "steps_done": 1860, "epochs_done": 20, "epochs": 20,
                   "finished": True, "images_per_s": 900.0, "knn_mAP": 0.081},
    }
    report.update(overrides)
    return report


def test_summary_table_states_card_verdicts_and_ratios():
    table = gpu_check.summary_table(_report())
    assert "NVIDIA H100 80GB HBM3, 2026-12-07 12:00 UTC" in table and "rehearsal" not in table
    assert "| full-profile dry run (`--dry-run 2`, cuda) | passed: 1 command in 50 s |" in table
    assert "bf16 1,800 img/s, fp32 600 img/s: 3.00×" in table
    assert "| train step vit_base_ics | skipped (time budget) |" in table
    assert "1,860 steps, 20/20 epochs (finished), 900 img/s, probe k-NN mAP 8.1 %" in table
    failed = _report(dry_run={**_report()["dry_run"], "passed": False, "problems": ["Stage 2: exit status 1"]})
    assert "FAILED: Stage 2: exit status 1" in gpu_check.summary_table(failed)


def test_passed_needs_the_dry_run_its_notebook_and_a_course_step():
    assert gpu_check.passed(_report())
    nb_failed = _report()
    nb_failed["dry_run"]["notebook"] = {**nb_failed["dry_run"]["notebook"], "passed": False}
    assert not gpu_check.passed(nb_failed)
    assert not gpu_check.passed(_report(errors={"bench": "RuntimeError: CUDA error"}))
    assert not gpu_check.passed(_report(course={**_report()["course"], "steps_done": 0}))


def test_update_readme_replaces_only_the_marked_block(tmp_path, monkeypatch):
    report_dir = tmp_path / "report"
    report_dir.mkdir()
    (report_dir / "report.json").write_text(json.dumps(_report()))
    readme = tmp_path / "README.md"
    readme.write_text("before\n<!-- gpu-check:last:start -->\nold\n<!-- gpu-check:last:end -->\nafter\n")
    assert gpu_check.update_readme(report_dir, readme)
    text = readme.read_text()
    assert text.startswith("before\n") and text.endswith("after\n") and "old" not in text
    assert "NVIDIA H100" in text
    assert not gpu_check.update_readme(report_dir, readme)  # idempotent


def test_the_readme_carries_a_generated_gpu_check_block():
    text = (REPO / "README.md").read_text()
    start, end = text.index("<!-- gpu-check:last:start -->"), text.index("<!-- gpu-check:last:end -->")
    assert "Measured by `make gpu-check` on" in text[start:end]
    assert "make gpu-check" in text[:start]


def test_cuda_is_refused_without_a_gpu(capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    with pytest.raises(SystemExit):
        gpu_check.main(["--device", "cuda", "--out", "/nonexistent"])
    assert "no CUDA device here" in capsys.readouterr().err
