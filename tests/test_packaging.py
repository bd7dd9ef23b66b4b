"""Packaging: pyproject and environment.yml agree; the CLI entry point exists; notebooks are committed clean."""
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# pip name -> conda name, where they differ
CONDA_NAMES = {"torch": "pytorch", "faiss-cpu": "faiss-gpu"}


def _names(requirements):
    return {re.split(r"[<>=!~\[ ;]", r.strip(), maxsplit=1)[0].lower() for r in requirements}


def _environment_names():
    names = set()
    for line in (ROOT / "environment.yml").read_text().splitlines():
        match = re.match(r"\s*-\s+([A-Za-z0-9_.\-]+)", line)
        if match:
            names.add(match.group(1).lower())
    return names


def test_every_runtime_dependency_is_in_environment_yml():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    missing = {CONDA_NAMES.get(n, n) for n in _names(project["dependencies"])} - _environment_names()
    assert not missing, f"environment.yml lacks {sorted(missing)}"


def test_environment_yml_targets_gpu_servers():
    names = _environment_names()
    assert {"pytorch", "faiss-gpu", "pip"} <= names
    assert "python=3.11" in (ROOT / "environment.yml").read_text()


def test_cli_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "reid_lab", "--help"], capture_output=True, text=True, check=True)
    assert "synth" in out.stdout and "tutorial" in out.stdout


@pytest.mark.parametrize("notebook", sorted((ROOT / "notebooks").glob("*.ipynb")), ids=lambda p: p.name)
def test_notebooks_are_committed_clean_with_a_parameters_cell(notebook):
    nb = json.loads(notebook.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in code), "strip outputs"
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert "PROFILE" in "".join(tagged[0]["source"])
    too_long = [i for i, c in enumerate(code) if len("".join(c["source"]).strip().splitlines()) > 15]
    assert not too_long, f"code cells longer than 15 lines: {too_long}"


def test_every_notebook_code_cell_compiles_on_its_own():
    """Each code cell is a complete statement list: splitting a cell inside a block (``try:`` | indented body)
    breaks papermill and Jupyter alike (found by the full dry run, issue 12)."""
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] == "code":
                source = "".join(line for line in cell["source"] if not line.lstrip().startswith(("%", "!")))
                compile(source, f"{path.name} cell {i}", "exec")
