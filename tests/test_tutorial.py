"""The tutorial runner (``reid-lab tutorial``) on throwaway notebooks: order, skipping, --force, failures, results.

The notebooks here are three tiny ``NN_*.ipynb`` files written with nbformat into ``tmp_path`` (never the real
tutorial): each appends its name to ``<runs>/order.log`` when it runs and writes a ``metrics.json`` with
``save_metrics`` — so the log shows exactly which notebooks ran, in which order.
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from reid_lab import cli
from reid_lab.tutorial import notebook as notebook_module
from reid_lab.tutorial.notebook import (
    FINGERPRINT_FILE,
    METRICS_FILE,
    NotebookFailed,
    headline,
    load_metrics,
    readme_markers,
    results_table,
    run_notebooks,
    run_tutorial,
    select_notebooks,
    update_readme,
)

PARAMETERS = 'PROFILE = "tiny"\nDATA_ROOT = ""\nRUN_ROOT = ""\nSEED = 0\nDEVICE = "auto"'

BODY = '''\
from pathlib import Path
from reid_lab.tutorial.notebook import save_metrics
with open(Path(RUN_ROOT) / "order.log", "a") as log:
    log.write("{name}\\n")
x = 1
if (Path(RUN_ROOT) / "fail-{name}").exists():
    raise ValueError("planted failure in {name}")
y = 2
metrics = {metrics}
metrics.update(profile=PROFILE, seed=SEED, retrain=globals().get("FORCE_RETRAIN"))
if not (Path(RUN_ROOT) / "nometrics-{name}").exists():
    save_metrics(Path(RUN_ROOT) / PROFILE / "{name}", metrics)
'''

NOTEBOOKS = {  # name -> (extra parameter lines, metrics the notebook writes)
    "01_first": ("FORCE_RETRAIN = False", {"headline": {"mAP": 0.25, "note": "a|b"}, "other": 3.0}),
    "02_second": ("", {"model": {"mAP": 0.5, "rank1": 0.75, "seconds": 12.0}}),
    "03_third": ("", {"auc_in_vs_out": 0.875, "ranked_list": "/x/y.txt"}),
}


def _write_notebooks(folder: Path, *, edit: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, (extra, metrics) in NOTEBOOKS.items():
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        params = nbformat.v4.new_code_cell(PARAMETERS + ("\n" + extra if extra else ""))
        params.metadata["tags"] = ["parameters"]
        body = BODY.format(name=name, metrics=repr(metrics)) + ("# edited\n" if name == edit else "")
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {name}"), params, nbformat.v4.new_code_cell(body)]
        nbformat.write(nb, folder / f"{name}.ipynb")
    return folder


def _order(runs: Path) -> list[str]:
    log = runs / "order.log"
    return log.read_text().split() if log.is_file() else []


@pytest.fixture
def world(tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    # other work may edit the package while these tests run; pin its digest so "current" depends on the test only
    monkeypatch.setattr(notebook_module, "_package_digest", lambda: "package v1")
    return _write_notebooks(tmp_path / "notebooks"), tmp_path / "runs"


def _run(notebooks: Path, runs: Path, **kwargs):
    return run_notebooks("smoke", notebooks=kwargs.pop("only", select_notebooks(None, notebooks)),
                         runs_root=str(runs), device="cpu", **kwargs)


# ----------------------------------------------------------------------------------------------- no execution
def test_select_notebooks_by_number_name_or_path(world):
    notebooks, _ = world
    assert [p.stem for p in select_notebooks(None, notebooks)] == ["01_first", "02_second", "03_third"]
    chosen = select_notebooks(["3", "01_first", str(notebooks / "02_second.ipynb"), "03"], notebooks)
    assert [p.stem for p in chosen] == ["01_first", "02_second", "03_third"]  # tutorial order, no duplicates
    with pytest.raises(ValueError, match=r"'7'.*01_first, 02_second, 03_third"):
        select_notebooks(["7"], notebooks)
    with pytest.raises(ValueError, match="no notebooks"):
        select_notebooks(None, notebooks / "empty")


def test_headline_prefers_the_notebooks_own_dict_and_otherwise_picks_retrieval_scores():
    assert headline({"headline": {"mAP (%)": 24.0}, "runs": {"a": {"mAP": 0.1}}}) == {"mAP (%)": 24.0}
    metrics = {"runs": {"DINO": {"mAP": 0.4, "rank1": 0.5, "rank5": 0.7, "rerank_mAP": 0.45, "seconds": 60.0}},
               "target_proxy_mAP": 0.03, "auc_person_vs_off_domain": 0.53, "worked_example": {"expected_mAP": 0.5},
               "checked": True, "ranked_list": "/a/b.txt", "search_shape": [5, 5], "mAP": None}
    assert headline(metrics) == {"runs.DINO.mAP": 0.4, "runs.DINO.rank1": 0.5, "runs.DINO.rerank_mAP": 0.45,
                                 "target_proxy_mAP": 0.03, "auc_person_vs_off_domain": 0.53}


def test_results_table_rows_runtime_and_total():
    records = [dict(name="00_a", runtime={"seconds": 30.0}, metrics={"headline": {"mAP": 0.2345, "ok": True}}),
               dict(name="01_b", runtime={"seconds": 150.0}, metrics={"nothing": "here"}),
               dict(name="02_c", seconds=4.0, metrics={"runs": {"x": {"mAP": 0.5, "rank1": 0.75}}, "auc": 0.625})]
    assert results_table(records).splitlines() == [
        "| notebook | runtime | result | value |",
        "|---|---|---|---|",
        "| 00_a | 30 s | mAP | 0.234 |",  # the notebook's headline: one row per entry
        "|  |  | ok | yes |",
        "| 01_b | 2.5 min | (no headline numbers) |  |",
        "| 02_c | 4 s | runs.x | mAP 0.500 · rank1 0.750 |",  # fallback: scores grouped by their parent
        "|  |  | auc | 0.625 |",
        "| **total** | **3.1 min** | | |",
    ]


def test_update_readme_replaces_only_the_block_and_is_idempotent(tmp_path):
    start, end = readme_markers("tiny")
    assert (start, end) == ("<!-- results:tiny:start -->", "<!-- results:tiny:end -->")
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nbefore\n{start}\n| typed | table |\n{end}\nafter\n")
    assert update_readme(readme, "tiny", "generated line\n\n| a | b |") is True
    assert readme.read_text() == f"# title\n\nbefore\n{start}\ngenerated line\n\n| a | b |\n{end}\nafter\n"
    snapshot = readme.read_bytes()
    assert update_readme(readme, "tiny", "generated line\n\n| a | b |") is False
    assert readme.read_bytes() == snapshot
    with pytest.raises(ValueError, match=r"README.md must contain <!-- results:smoke:start --> once"):
        update_readme(readme, "smoke", "x")
    readme.write_text(f"{end}\n{start}\n")
    with pytest.raises(ValueError, match="end before start"):
        update_readme(readme, "tiny", "x")
    with pytest.raises(FileNotFoundError, match="nope.md"):
        update_readme(tmp_path / "nope.md", "tiny", "x")


# ----------------------------------------------------------------------------------------------- execution
def test_runs_in_order_skips_current_results_and_reruns_what_changed(world):
    notebooks, runs = world
    first = _run(notebooks, runs)
    assert _order(runs) == ["01_first", "02_second", "03_third"]
    assert [r["status"] for r in first] == ["ran"] * 3 and all(r["seconds"] > 0 for r in first)
    # parameters reach the notebooks; what they saved is what the records carry
    assert all(r["metrics"] == load_metrics(runs / "smoke" / r["name"]) for r in first)
    assert first[1]["metrics"]["profile"] == "smoke" and first[1]["metrics"]["model"]["rank1"] == 0.75
    assert (runs / "smoke" / "02_second" / "02_second.ipynb").is_file()  # the executed copy

    again = _run(notebooks, runs)
    assert _order(runs) == ["01_first", "02_second", "03_third"]  # nothing ran
    assert [r["status"] for r in again] == ["skipped"] * 3 and all(r["seconds"] is None for r in again)
    assert [r["metrics"] for r in again] == [r["metrics"] for r in first]
    assert again[0]["runtime"]["seconds"] == pytest.approx(first[0]["seconds"])

    _write_notebooks(notebooks, edit="02_second")  # 02 changed: it re-runs, and 03 (which may read 02's outputs)
    edited = _run(notebooks, runs)
    assert [r["status"] for r in edited] == ["skipped", "ran", "ran"]
    assert _order(runs)[3:] == ["02_second", "03_third"]

    forced = _run(notebooks, runs, only=[notebooks / "01_first.ipynb"], force=True, retrain=True)
    assert [r["status"] for r in forced] == ["ran"] and _order(runs)[5:] == ["01_first"]
    assert forced[0]["metrics"]["retrain"] is True  # declared FORCE_RETRAIN: passed on
    assert first[0]["metrics"]["retrain"] is False and first[1]["metrics"]["retrain"] is None  # never injected
    # 01 re-ran with identical inputs: its stamp is unchanged, so 02 and 03 stay current
    assert [r["status"] for r in _run(notebooks, runs)] == ["skipped"] * 3
    # another seed, or a changed package, makes results stale
    assert [r["status"] for r in _run(notebooks, runs, only=[notebooks / "01_first.ipynb"], seed=1)] == ["ran"]
    notebook_module._package_digest = lambda: "package v2"  # (monkeypatch restores the original)
    assert [r["status"] for r in _run(notebooks, runs, only=[notebooks / "01_first.ipynb"], seed=1)] == ["ran"]
    assert _order(runs)[6:] == ["01_first", "01_first"]


def test_a_failure_stops_the_run_quotes_the_cell_and_keeps_earlier_results(world):
    notebooks, runs = world
    (runs).mkdir()
    (runs / "fail-02_second").touch()
    with pytest.raises(NotebookFailed) as info:
        _run(notebooks, runs)
    error = info.value
    message = str(error)
    assert _order(runs) == ["01_first", "02_second"]  # 03 never started
    assert error.notebook == "02_second" and error.ename == "ValueError"
    assert "ValueError: planted failure in 02_second" in message
    assert '-->   7 |     raise ValueError("planted failure in 02_second")' in message  # the failing line, marked
    assert "   6 | if (Path(RUN_ROOT)" in message  # with the lines around it
    assert "01_first" in message and [r["name"] for r in error.records] == ["01_first"]
    assert error.executed == runs / "smoke" / "02_second" / "02_second.ipynb" and error.executed.is_file()
    kept = runs / "smoke" / "01_first"
    assert (kept / METRICS_FILE).is_file() and (kept / FINGERPRINT_FILE).is_file()
    assert not (runs / "smoke" / "02_second" / FINGERPRINT_FILE).exists()

    # fixed; but now 03 forgets to save its metrics: also a failure, after 01 (skipped) and 02 (re-run)
    (runs / "fail-02_second").unlink()
    (runs / "nometrics-03_third").touch()
    with pytest.raises(NotebookFailed, match=r"03_third ran but wrote no metrics.json") as info:
        _run(notebooks, runs)
    assert [(r["name"], r["status"]) for r in info.value.records] == [("01_first", "skipped"), ("02_second", "ran")]
    assert _order(runs)[2:] == ["02_second", "03_third"]
    assert not (runs / "smoke" / "03_third" / FINGERPRINT_FILE).exists()


def test_tutorial_writes_results_and_the_readme_block(world, tmp_path, capsys):
    notebooks, runs = world
    start, end = readme_markers("smoke")
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{start}\nold typed numbers\n{end}\noutro\n")
    with pytest.raises(ValueError, match="whole tutorial"):  # refused before anything runs
        run_tutorial("smoke", only=["01"], notebook_dir=notebooks, runs_root=str(runs), device="cpu", readme=readme)
    assert _order(runs) == []

    run = run_tutorial("smoke", notebook_dir=notebooks, runs_root=str(runs), device="cpu", readme=readme)
    assert run.readme_changed is True and run.results_path == runs / "smoke" / "results.md"
    results = run.results_path.read_text()
    assert run.table in results and "| 01_first |" in results and "| note | a\\|b |" in results
    assert "| 02_second |" in results and "| model | mAP 0.500 · rank1 0.750 |" in results
    assert "| 03_third |" in results and "| auc_in_vs_out | 0.875 |" in results
    text = readme.read_text()
    assert text.startswith(f"intro\n{start}\nGenerated by `reid-lab tutorial --profile smoke` from the run finished ")
    assert "old typed numbers" not in text and text.endswith(f"{run.table}\n{end}\noutro\n")
    assert "3 notebooks" in text and "CPU cores" in text and "seed 0." in text

    # all current now: the CLI skips everything, prints the table, and leaves the README byte-identical
    snapshot = readme.read_bytes()
    rc = cli.main(["tutorial", "--profile", "smoke", "--notebook-dir", str(notebooks), "--runs-root", str(runs),
                   "--device", "cpu", "--update-readme", "--readme", str(readme)])
    out = capsys.readouterr().out
    assert rc == 0 and run.table in out and "already up to date" in out
    assert readme.read_bytes() == snapshot and _order(runs) == ["01_first", "02_second", "03_third"]

    (runs / "fail-03_third").touch()
    rc = cli.main(["tutorial", "--profile", "smoke", "--notebook-dir", str(notebooks), "--runs-root", str(runs),
                   "--device", "cpu", "--only", "3", "--force"])
    err = capsys.readouterr().err
    assert rc == 1 and "notebook 03_third failed in cell" in err and "ValueError: planted failure in 03_third" in err
    rc = cli.main(["tutorial", "--profile", "smoke", "--notebook-dir", str(notebooks), "--only", "9"])
    assert rc == 2 and "'9'" in capsys.readouterr().err
    assert json.loads((runs / "smoke" / "02_second" / "runtime.json").read_text())["profile"] == "smoke"


def test_info_reports_bad_input_as_an_error_line(tmp_path, capsys):
    assert cli.main(["info", "--dataset", "market1501", "--root", str(tmp_path / "missing")]) == 2
    assert f"error: Market-1501 root: folder '{tmp_path / 'missing'}' does not exist" in capsys.readouterr().err
    assert cli.main(["info", "--dataset", "dukemtmc", "--root", str(tmp_path)]) == 2
    assert "valid names: custom, market1501, msmt17" in capsys.readouterr().err
