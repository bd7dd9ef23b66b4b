"""Notebook harness: the conventions every notebook follows, and the headless tutorial run.

Conventions (STYLE.md §3):

* the first code cell is tagged ``parameters`` and holds ``PROFILE``, ``DATA_ROOT``, ``RUN_ROOT``, ``SEED``,
  ``DEVICE`` (papermill overrides them);
* the next cell calls :func:`start`, which seeds everything, resolves paths and returns a :class:`Session`;
* the notebook writes ``metrics.json`` into its run directory with :func:`save_metrics`;
* executed copies go to ``runs/<profile>/<notebook>/`` (git-ignored), never next to the sources.

:func:`run_notebooks` executes notebooks in order with papermill; ``reid-lab tutorial`` and ``make tutorial``
call it and print :func:`results_table`.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from . import paths
from .config import PROFILES

logger = logging.getLogger(__name__)

NOTEBOOK_DIR = paths.repo_root() / "notebooks"
METRICS_FILE = "metrics.json"


@dataclass(frozen=True)
class Session:
    """What a notebook needs after its parameters cell: profile, resolved folders, device and seed."""

    name: str
    profile: str
    data_root: Path
    run_dir: Path
    device: str
    seed: int

    def path(self, *parts: str) -> Path:
        """A path inside this notebook's run directory."""
        return self.run_dir.joinpath(*parts)

    def runs(self, notebook: str) -> Path:
        """The run directory of another notebook of the same profile (to pick up its checkpoints)."""
        return self.run_dir.parent / notebook


def start(name: str, profile: str, *, data_root: str = "", run_root: str = "", seed: int = 0,
          device: str = "auto", log_level: int = logging.INFO) -> Session:
    """Begin a notebook: validate the profile, seed, resolve folders, configure logging."""
    if profile not in PROFILES:
        raise ValueError(f"PROFILE must be one of {PROFILES}, got {profile!r}")
    from .engine import resolve_device, seed_everything

    logging.basicConfig(level=log_level, format="%(levelname)s %(name)s: %(message)s", force=True)
    seed_everything(seed)
    session = Session(
        name=name,
        profile=profile,
        data_root=paths.data_root(data_root or None),
        run_dir=paths.run_dir(profile, name, run_root or None),
        device=str(resolve_device(device)),
        seed=seed,
    )
    logger.info("notebook %s | profile %s | device %s | run dir %s", name, profile, session.device, session.run_dir)
    return session


def _jsonable(value: Any) -> Any:
    """Turn numpy/torch scalars and arrays into plain JSON values (NaN → None)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def save_metrics(session_or_dir: Session | str | os.PathLike, metrics: dict[str, Any]) -> Path:
    """Write ``metrics.json`` (atomically) into the run directory and return its path."""
    run_dir = session_or_dir.run_dir if isinstance(session_or_dir, Session) else Path(session_or_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    target = run_dir / METRICS_FILE
    tmp = target.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(_jsonable(metrics), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, target)
    return target


def load_metrics(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Read a notebook's ``metrics.json``."""
    return json.loads((Path(run_dir) / METRICS_FILE).read_text())


def list_notebooks(notebook_dir: str | os.PathLike | None = None) -> list[Path]:
    """The numbered notebooks (``NN_*.ipynb``) in order."""
    folder = Path(notebook_dir) if notebook_dir else NOTEBOOK_DIR
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def _fingerprint(notebook: Path, profile: str) -> str:
    """Hash of the notebook source, the package sources and the profile: a run is current when it matches."""
    digest = hashlib.sha256(notebook.read_bytes())
    for source in sorted(paths.PACKAGE_DIR.rglob("*.py")):
        digest.update(source.read_bytes())
    digest.update(profile.encode())
    return digest.hexdigest()


class NotebookFailed(RuntimeError):
    """A notebook raised; the message carries the failing cell's error."""


def run_notebooks(profile: str, *, notebooks: Iterable[str | Path] | None = None, force: bool = False,
                  data_root: str = "", runs_root: str = "", seed: int = 0, device: str = "auto",
                  timeout: int | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Execute notebooks in order with papermill into ``runs/<profile>/<name>/``.

    Skips a notebook whose previous run is current (same sources and profile) unless ``force``.
    Stops at the first failure with :class:`NotebookFailed`, leaving earlier results in place.
    Returns one record per notebook: name, status (``ran``/``current``), seconds, metrics.
    """
    import papermill as pm

    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    selected = [Path(n) for n in notebooks] if notebooks is not None else list_notebooks()
    records = []
    for index, notebook in enumerate(selected, 1):
        notebook = notebook if notebook.is_absolute() else (NOTEBOOK_DIR / notebook.name)
        name = notebook.stem
        out_dir = paths.run_dir(profile, name, runs_root or None)
        stamp = out_dir / ".fingerprint"
        fingerprint = _fingerprint(notebook, profile)
        if not force and stamp.is_file() and stamp.read_text() == fingerprint and (out_dir / METRICS_FILE).is_file():
            if progress:
                print(f"[{index}/{len(selected)}] {name}: current, skipped (use --force to re-run)", flush=True)
            records.append(dict(name=name, status="current", seconds=None, metrics=load_metrics(out_dir)))
            continue
        if progress:
            print(f"[{index}/{len(selected)}] {name} ({profile}) ...", flush=True)
        stamp.unlink(missing_ok=True)
        began = time.perf_counter()
        try:
            pm.execute_notebook(
                str(notebook),
                str(out_dir / notebook.name),
                parameters=dict(PROFILE=profile, DATA_ROOT=data_root, RUN_ROOT=runs_root, SEED=seed, DEVICE=device),
                cwd=str(out_dir),
                kernel_name="python3",
                progress_bar=False,
                execution_timeout=timeout,
                log_output=False,
            )
        except pm.PapermillExecutionError as error:
            raise NotebookFailed(
                f"{name} failed in cell {error.exec_count}: {error.ename}: {error.evalue}\n"
                f"executed copy: {out_dir / notebook.name}"
            ) from None
        seconds = time.perf_counter() - began
        if not (out_dir / METRICS_FILE).is_file():
            raise NotebookFailed(f"{name} ran but wrote no {METRICS_FILE} in {out_dir}")
        stamp.write_text(fingerprint)
        (out_dir / "runtime.json").write_text(json.dumps({"seconds": seconds, "profile": profile}) + "\n")
        if progress:
            print(f"[{index}/{len(selected)}] {name}: done in {seconds:.0f} s", flush=True)
        records.append(dict(name=name, status="ran", seconds=seconds, metrics=load_metrics(out_dir)))
    return records


def _format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _flatten(metrics: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in metrics.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        elif not isinstance(value, list):
            yield f"{prefix}{key}", value


def results_table(records: list[dict[str, Any]]) -> str:
    """A markdown table with one row per notebook metric (nested dicts flattened with dots)."""
    lines = ["| notebook | metric | value |", "|---|---|---|"]
    for record in records:
        for key, value in _flatten(record["metrics"]):
            lines.append(f"| {record['name']} | {key} | {_format_value(value)} |")
        if record.get("seconds") is not None:
            lines.append(f"| {record['name']} | runtime_s | {record['seconds']:.0f} |")
    return "\n".join(lines)
