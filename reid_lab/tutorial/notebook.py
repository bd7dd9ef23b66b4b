"""Notebook harness: the conventions every notebook follows, and the headless tutorial run.

Conventions:

* the first code cell is tagged ``parameters`` and holds ``PROFILE``, ``DATA_ROOT``, ``RUN_ROOT``, ``SEED``,
  ``DEVICE`` (papermill overrides them);
* the next cell calls :func:`start`, which seeds everything, resolves paths and returns a :class:`Session`;
* the notebook writes ``metrics.json`` into its run directory with :func:`save_metrics`;
* executed copies go to ``runs/<profile>/<notebook>/`` (git-ignored), never next to the sources.

The tutorial run (``reid-lab tutorial``, ``make tutorial``) is :func:`run_tutorial`:

* :func:`run_notebooks` executes the notebooks in order with papermill, one progress line per notebook, and skips
  a notebook whose results are current (a stamp over its source, the package, the parameters and the notebooks
  before it); the first failure stops the run with :class:`NotebookFailed`, which quotes the failing cell;
* :func:`results_table` turns each notebook's ``metrics.json`` into a markdown table (its ``"headline"`` dict, or
  the retrieval scores it contains), written to ``runs/<profile>/results.md``;
* :func:`update_readme` puts that table between ``<!-- results:<profile>:start -->`` and ``…:end -->`` in the
  README, with a line saying which run produced it.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import platform
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from .. import paths
from ..paths import QUIET_ENV  # set by start(): no progress bars (engine.progress reads it)
from ..config import PROFILES

logger = logging.getLogger(__name__)

NOTEBOOK_DIR = paths.repo_root() / "notebooks"
METRICS_FILE = "metrics.json"
FINGERPRINT_FILE = ".fingerprint"  # written after a successful run; its content says what the results depend on
RUNTIME_FILE = "runtime.json"      # seconds, finish time and machine of the run that wrote the results
RESULTS_FILE = "results.md"        # <runs>/<profile>/results.md, written by run_tutorial


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


LOG_FILE = "notebook.log"  # everything logged at INFO and above while a notebook runs, in its run directory


def start(name: str, profile: str, *, data_root: str = "", run_root: str = "", seed: int = 0,
          device: str = "auto", log_level: int = logging.INFO, quiet: bool = True, dry_run: int = 0) -> Session:
    """Begin a notebook: validate the profile, seed, resolve folders, configure logging.

    ``dry_run`` > 0 (the ``DRY_RUN`` parameter) starts a fast dev run (:mod:`reid_lab.dryrun`): the profile's code
    path with every loop capped at that many iterations; its results are marked ``"dry_run"``.

    With ``quiet`` (the default) the cell outputs stay readable: log records go to ``<run dir>/notebook.log``
    (only warnings and errors also reach the notebook) and progress bars are off — the notebooks print what
    they want a reader to see. ``quiet=False`` restores logs and bars in the notebook.
    """
    if profile not in PROFILES:
        raise ValueError(f"PROFILE must be one of {PROFILES}, got {profile!r}")
    from ..engine import resolve_device, seed_everything

    seed_everything(seed)
    session = Session(
        name=name,
        profile=profile,
        data_root=paths.data_root(data_root or None),
        run_dir=paths.run_dir(profile, name, run_root or None),
        device=str(resolve_device(device)),
        seed=seed,
    )
    fmt = "%(levelname)s %(name)s: %(message)s"
    if quiet:
        session.run_dir.mkdir(parents=True, exist_ok=True)
        to_file = logging.FileHandler(session.run_dir / LOG_FILE, mode="a")
        to_file.setFormatter(logging.Formatter("%(asctime)s " + fmt))
        to_notebook = logging.StreamHandler()
        to_notebook.setLevel(logging.WARNING)
        to_notebook.setFormatter(logging.Formatter(fmt))
        logging.basicConfig(level=log_level, handlers=[to_file, to_notebook], force=True)
        os.environ[QUIET_ENV] = "1"
    else:
        logging.basicConfig(level=log_level, format=fmt, force=True)
        os.environ.pop(QUIET_ENV, None)
    logger.info("notebook %s | profile %s | device %s | run dir %s", name, profile, session.device, session.run_dir)
    from ..dryrun import activate

    if activate(int(dry_run or 0), profile=profile):
        print(f"DRY RUN {dry_run}: every loop stops after {dry_run} iteration(s); results are not results")
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
    from ..dryrun import mark

    tmp.write_text(json.dumps(_jsonable(mark(metrics)), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, target)
    return target


def load_metrics(run_dir: str | os.PathLike) -> dict[str, Any]:
    """Read a notebook's ``metrics.json``."""
    return json.loads((Path(run_dir) / METRICS_FILE).read_text())


def list_notebooks(notebook_dir: str | os.PathLike | None = None) -> list[Path]:
    """The numbered notebooks (``NN_*.ipynb``) in order."""
    folder = Path(notebook_dir) if notebook_dir else NOTEBOOK_DIR
    return sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))


def select_notebooks(only: Iterable[str | os.PathLike] | None = None,
                     notebook_dir: str | os.PathLike | None = None) -> list[Path]:
    """The notebooks to run, in tutorial order: all of ``notebook_dir`` or those named by ``only``.

    An entry of ``only`` is a number (``"3"``, ``"03"``), a stem (``"03_supervised_reid"``), a file name, or the
    path of an existing ``.ipynb`` (which may live elsewhere). Unknown entries raise ``ValueError`` naming the
    available notebooks.
    """
    folder = Path(notebook_dir) if notebook_dir else NOTEBOOK_DIR
    available = list_notebooks(folder)
    if only is None:
        if not available:
            raise ValueError(f"no notebooks named NN_*.ipynb in {folder}")
        return available
    chosen: list[Path] = []
    for entry in only:
        text = str(entry).strip()
        if text.endswith(".ipynb") and Path(text).is_file():
            match = [Path(text).resolve()]
        else:
            key = Path(text).name.removesuffix(".ipynb")
            key = key.zfill(2) if key.isdigit() else key
            match = [p for p in available if p.stem == key or p.stem.split("_", 1)[0] == key]
        if len(match) != 1:
            names = ", ".join(p.stem for p in available) or "none"
            raise ValueError(f"notebook {text!r} matches {len(match)} notebooks in {folder}; "
                             f"expected a number, a name or a path of one of: {names}")
        if match[0] not in chosen:
            chosen.append(match[0])
    return sorted(chosen, key=lambda p: p.name)


# ----------------------------------------------------------------------------------------------- when a run is current
def _package_digest() -> str:
    """Hash of every file of the installed package (sources and shipped assets, not caches)."""
    digest = hashlib.sha256()
    for source in sorted(paths.PACKAGE_DIR.rglob("*")):
        if source.is_file() and "__pycache__" not in source.parts and source.suffix != ".pyc":
            digest.update(str(source.relative_to(paths.PACKAGE_DIR)).encode())
            digest.update(source.read_bytes())
    return digest.hexdigest()


def _upstream_stamps(notebook: Path, profile: str, runs_root: str) -> list[str]:
    """The stamps of the notebooks before ``notebook`` in its folder: their outputs are this notebook's inputs."""
    stamps = []
    for earlier in list_notebooks(notebook.parent):
        if earlier.name >= notebook.name:
            break
        stamp = paths.runs_root(runs_root or None) / profile / earlier.stem / FINGERPRINT_FILE
        stamps.append(f"{earlier.stem}={stamp.read_text() if stamp.is_file() else '-'}")
    return stamps


def _notebook_content(notebook: Path) -> str:
    """What a notebook computes: its cells' types, sources and tags (not cell ids, outputs or editor metadata,
    which change when the file is merely opened and saved)."""
    try:
        nb = json.loads(notebook.read_text())
        cells = [(c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"],
                  c.get("metadata", {}).get("tags", [])) for c in nb["cells"]]
    except (ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{notebook} is not a readable .ipynb notebook ({error})") from None
    return json.dumps(cells)


def _fingerprint(notebook: Path, package: str, parameters: dict[str, Any], upstream: list[str]) -> str:
    """A run is current when this matches its stamp: same notebook, package, parameters and upstream results."""
    digest = hashlib.sha256(_notebook_content(notebook).encode())
    digest.update(package.encode())
    digest.update(json.dumps(parameters, sort_keys=True).encode())
    digest.update("\n".join(upstream).encode())
    return digest.hexdigest()


# ----------------------------------------------------------------------------------------------- failures
class NotebookFailed(RuntimeError):
    """A notebook raised (or wrote no metrics); the message carries the failing cell's source and error.

    Attributes: ``notebook`` (name), ``executed`` (the executed copy, error included), ``cell`` (execution
    count of the failing cell, or ``None``), ``ename`` / ``evalue`` (the exception), ``records`` (what the
    notebooks before it produced: their results stay in place).
    """

    def __init__(self, message: str, *, notebook: str, executed: Path | None = None, cell: int | None = None,
                 ename: str | None = None, evalue: str | None = None, records: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.notebook, self.executed, self.cell = notebook, executed, cell
        self.ename, self.evalue, self.records = ename, evalue, list(records or [])


def _excerpt(source: str, line: int | None, context: int = 3, limit: int = 10) -> str:
    """The cell's source around ``line`` (1-based), the failing line marked with ``-->``."""
    lines = source.splitlines() or [""]
    if line is None or not 1 <= line <= len(lines):
        shown = list(enumerate(lines[:limit], 1))
    else:
        shown = list(enumerate(lines, 1))[max(0, line - 1 - context): line + context]
    text = "\n".join(f"{'-->' if n == line else '   '} {n:3d} | {code}" for n, code in shown)
    return text + ("\n           ..." if shown[-1][0] < len(lines) else "")


def _execution_failure(name: str, error: Any, executed: Path, records: list[dict[str, Any]]) -> NotebookFailed:
    """Turn papermill's ``PapermillExecutionError`` into a :class:`NotebookFailed` a person can act on."""
    from papermill.exceptions import strip_color

    trace = [strip_color(t) for t in (error.traceback or [])]
    in_cell = next((re.search(r"Cell In\[\d+\], line (\d+)", t) for t in trace if "Cell In[" in t), None)
    frames = [t.strip().splitlines()[0] for t in trace if t.strip().startswith("File ")]
    message = (f"notebook {name} failed in cell [{error.exec_count}] (cell {error.cell_index} of the executed copy):\n"
               f"{_excerpt(error.source or '', int(in_cell.group(1)) if in_cell else None)}\n"
               f"{error.ename}: {error.evalue}")
    if frames:
        message += f"\n  raised in {frames[-1]}"
    message += f"\nexecuted copy with the full traceback: {executed}"
    if records:
        message += f"\nresults kept from the notebooks before it: {', '.join(r['name'] for r in records)}"
    return NotebookFailed(message, notebook=name, executed=executed, cell=error.exec_count, ename=error.ename,
                          evalue=error.evalue, records=records)


# ----------------------------------------------------------------------------------------------- the run
def _machine(device: str) -> dict[str, Any]:
    """What ran the notebooks: CPU cores available to this process, architecture, GPU (if one was used)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    gpu = None
    if device != "cpu":
        import torch

        if torch.cuda.is_available():
            gpu = f"{torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}"
    return {"cpu_cores": cores, "machine": f"{platform.system()} {platform.machine()}", "gpu": gpu}


def _read_runtime(run_dir: Path) -> dict[str, Any]:
    path = run_dir / RUNTIME_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def run_notebooks(profile: str, *, notebooks: Iterable[str | Path] | None = None, force: bool = False,
                  data_root: str = "", runs_root: str = "", seed: int = 0, device: str = "auto",
                  timeout: int | None = None, progress: bool = True, retrain: bool = False,
                  dry_run: int = 0) -> list[dict[str, Any]]:
    """Execute notebooks in order with papermill into ``<runs>/<profile>/<name>/``.

    A notebook is skipped when its results are current: its stamp matches the notebook source, the package
    (sources + assets), the parameters (profile, data root, seed, device) and the stamps of the notebooks before it
    in its folder, whose outputs (checkpoints) it may read. ``force`` re-runs; ``retrain`` also passes
    ``FORCE_RETRAIN=True`` to notebooks that declare it (they otherwise load finished checkpoints).
    A failure raises :class:`NotebookFailed` at once; earlier notebooks' results stay in place.

    Args:
        notebooks: paths or names (:func:`select_notebooks`); default all of ``notebooks/``.
        timeout: seconds per cell (``None``: no limit).
        progress: log a line per notebook at INFO (else DEBUG).
        dry_run: > 0 passes ``DRY_RUN`` to the notebooks: a fast dev run (:mod:`reid_lab.dryrun`).

    Returns:
        One record per notebook: ``name``, ``status`` (``"ran"`` / ``"skipped"``), ``seconds`` (this call, ``None``
        when skipped), ``runtime`` (the ``runtime.json`` of the run that produced the results), ``run_dir``,
        ``metrics``.
    """
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    selected = select_notebooks(notebooks)
    force = force or retrain
    log = logger.info if progress else logger.debug
    parameters = dict(PROFILE=profile, DATA_ROOT=data_root, RUN_ROOT=runs_root, SEED=seed, DEVICE=device)
    identity = dict(profile=profile, data_root=str(paths.data_root(data_root or None)), seed=seed, device=device)
    if dry_run:  # a dry run's results are never current for a real run (and vice versa)
        parameters["DRY_RUN"] = identity["dry_run"] = int(dry_run)
    package = _package_digest()
    records: list[dict[str, Any]] = []
    for index, notebook in enumerate(selected, 1):
        name, tag = notebook.stem, f"[{index}/{len(selected)}] {notebook.stem}"
        out_dir = paths.run_dir(profile, name, runs_root or None)
        stamp, metrics_path = out_dir / FINGERPRINT_FILE, out_dir / METRICS_FILE
        fingerprint = _fingerprint(notebook, package, identity, _upstream_stamps(notebook, profile, runs_root))
        if not force and stamp.is_file() and stamp.read_text() == fingerprint and metrics_path.is_file():
            runtime = _read_runtime(out_dir)
            log("%s: skipped, results current (ran in %s; --force re-runs)", tag, _duration(runtime.get("seconds")))
            records.append(dict(name=name, status="skipped", seconds=None, runtime=runtime, run_dir=out_dir,
                                metrics=load_metrics(out_dir)))
            continue
        log("%s: running (%s profile) ...", tag, profile)
        for stale in (stamp, metrics_path):  # what stays behind after a failure must not look current
            stale.unlink(missing_ok=True)
        extra = {"FORCE_RETRAIN": True} if retrain and "FORCE_RETRAIN" in pm.inspect_notebook(str(notebook)) else {}
        executed = out_dir / notebook.name
        began = time.perf_counter()
        try:
            pm.execute_notebook(str(notebook), str(executed), parameters={**parameters, **extra}, cwd=str(out_dir),
                                kernel_name="python3", progress_bar=False, execution_timeout=timeout,
                                log_output=False)
        except pm.PapermillExecutionError as error:
            log("%s: failed after %s", tag, _duration(time.perf_counter() - began))
            raise _execution_failure(name, error, executed, records) from None
        except (CellTimeoutError, DeadKernelError) as error:
            log("%s: failed after %s", tag, _duration(time.perf_counter() - began))
            raise NotebookFailed(f"notebook {name}: {type(error).__name__}: {error}\nexecuted copy: {executed}",
                                 notebook=name, executed=executed, ename=type(error).__name__, evalue=str(error),
                                 records=records) from None
        seconds = time.perf_counter() - began
        if not metrics_path.is_file():
            log("%s: failed after %s", tag, _duration(seconds))
            raise NotebookFailed(f"notebook {name} ran but wrote no {METRICS_FILE} in {out_dir} (its last cell should "
                                 f"call save_metrics(session, metrics))", notebook=name, executed=executed,
                                 records=records)
        runtime = {"seconds": seconds, "profile": profile, "seed": seed, "finished": _now(), **_machine(device)}
        (out_dir / RUNTIME_FILE).write_text(json.dumps(runtime) + "\n")
        stamp.write_text(fingerprint)
        log("%s: ran in %s", tag, _duration(seconds))
        records.append(dict(name=name, status="ran", seconds=seconds, runtime=runtime, run_dir=out_dir,
                            metrics=load_metrics(out_dir)))
    return records


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


# ----------------------------------------------------------------------------------------------- results table
_HEADLINE_KEYS = ("mAP", "rank1", "rerank_mAP")


def _flatten(metrics: dict[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in metrics.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The numbers a notebook's row of the results table shows.

    ``metrics["headline"]`` (a flat ``{label: value}`` dict written by the notebook) when present; otherwise the
    retrieval scores found anywhere in the metrics — leaves named ``mAP``, ``rank1``, ``rerank_mAP``, ``…_mAP`` or
    ``auc…`` (reference values whose path mentions ``expected`` are left out).
    """
    if isinstance(metrics.get("headline"), dict):
        return dict(metrics["headline"])
    chosen = {}
    for key, value in _flatten(metrics):
        leaf = key.rsplit(".", 1)[-1]
        numeric = isinstance(value, (int, float)) and not isinstance(value, bool)
        if numeric and "expected" not in key and (leaf in _HEADLINE_KEYS or leaf.endswith("_mAP")
                                                  or leaf.lower().startswith("auc")):
            chosen[key] = value
    return chosen


def _format_value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return {True: "yes", False: "no", None: "–"}[value]
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1 else f"{value:.4g}"
    return str(value).replace("|", "\\|")


def _rows(metrics: dict[str, Any]) -> list[tuple[str, str]]:
    """``(result, value)`` rows: one per headline entry, or one per group of fallback scores sharing a parent."""
    numbers = headline(metrics)
    if isinstance(metrics.get("headline"), dict):
        return [(str(key), _format_value(value)) for key, value in numbers.items()]
    groups: dict[str, list[str]] = {}
    for key, value in numbers.items():
        parent, _, leaf = key.rpartition(".")
        if parent:
            groups.setdefault(parent, []).append(f"{leaf} {_format_value(value)}")
        else:
            groups[key] = [_format_value(value)]
    return [(group, " · ".join(values)) for group, values in groups.items()]


def results_table(records: list[dict[str, Any]]) -> str:
    """A markdown table: per notebook its runtime and its :func:`headline` numbers, and the total runtime."""
    lines = ["| notebook | runtime | result | value |", "|---|---|---|---|"]
    total = 0.0
    for record in records:
        seconds = (record.get("runtime") or {}).get("seconds", record.get("seconds"))
        total += seconds or 0.0
        for i, (result, value) in enumerate(_rows(record["metrics"]) or [("(no headline numbers)", "")]):
            name, runtime = (record["name"], _duration(seconds)) if i == 0 else ("", "")
            lines.append(f"| {name} | {runtime} | {result} | {value} |")
    lines.append(f"| **total** | **{_duration(total)}** | | |")
    return "\n".join(lines)


def provenance_line(records: list[dict[str, Any]], profile: str) -> str:
    """One sentence saying which run produced a results table: date, profile, total time, seed, machine."""
    runtimes = [r.get("runtime") or {} for r in records]
    total = sum(rt.get("seconds") or 0.0 for rt in runtimes)
    finished = max((rt["finished"] for rt in runtimes if rt.get("finished")), default="at an unrecorded date")
    seeds = ", ".join(sorted({str(rt["seed"]) for rt in runtimes if "seed" in rt}))
    machines = {(rt.get("cpu_cores"), rt.get("machine"), rt.get("gpu")) for rt in runtimes if rt.get("cpu_cores")}
    where = "; ".join(f"{cores} CPU cores ({machine}), {f'GPU {gpu}' if gpu else 'no GPU'}"
                      for cores, machine, gpu in sorted(machines, key=str)) or "an unrecorded machine"
    return (f"Generated by `reid-lab tutorial --profile {profile}` from the run finished {finished}: "
            f"{len(records)} notebooks, {_duration(total)} of notebook time on {where}"
            f"{', seed ' + seeds if seeds else ''}.")


# ----------------------------------------------------------------------------------------------- README block
def readme_markers(profile: str, block: str = "results") -> tuple[str, str]:
    """The HTML comments that delimit the generated ``block`` (``results``, ``course``) of ``profile`` in the README."""
    return f"<!-- {block}:{profile}:start -->", f"<!-- {block}:{profile}:end -->"


def _check_markers(text: str, readme: Path, profile: str, block: str = "results") -> tuple[int, int]:
    start_marker, end_marker = readme_markers(profile, block)
    starts, ends = text.count(start_marker), text.count(end_marker)
    begin, end = text.find(start_marker), text.find(end_marker)
    if starts != 1 or ends != 1 or end < begin:
        raise ValueError(f"{readme} must contain {start_marker} once, followed by {end_marker} once "
                         f"(found {starts} start and {ends} end markers{', end before start' if end < begin else ''})")
    return begin + len(start_marker), end


def update_readme(readme: str | os.PathLike, profile: str, content: str, block: str = "results") -> bool:
    """Replace the text between the ``block``/``profile`` markers of ``readme`` with ``content``; ``True`` if it
    changed.

    Idempotent: the same content leaves the file byte-identical. Raises ``ValueError`` when the markers are
    missing, repeated or out of order, ``FileNotFoundError`` when there is no such file.
    """
    readme = Path(readme)
    if not readme.is_file():
        raise FileNotFoundError(f"README not found: {readme}")
    text = readme.read_text()
    begin, end = _check_markers(text, readme, profile, block)
    new = f"{text[:begin]}\n{content.strip()}\n{text[end:]}"
    if new == text:
        return False
    tmp = readme.with_name(readme.name + ".tmp")
    tmp.write_text(new)
    os.replace(tmp, readme)
    return True


# ----------------------------------------------------------------------------------------------- the tutorial
@dataclass
class TutorialRun:
    """What :func:`run_tutorial` did: the per-notebook records, the table, where it was written."""

    records: list[dict[str, Any]]
    table: str
    results_path: Path
    readme_changed: bool | None  # None: README not asked for


def run_tutorial(profile: str, *, only: Iterable[str] | None = None, notebook_dir: str | os.PathLike | None = None,
                 force: bool = False, retrain: bool = False, data_root: str = "", runs_root: str = "", seed: int = 0,
                 device: str = "auto", timeout: int | None = None,
                 readme: str | os.PathLike | None = None, dry_run: int = 0) -> TutorialRun:
    """``reid-lab tutorial``: run the notebooks (:func:`run_notebooks`), write ``<runs>/<profile>/results.md``.

    With ``readme``, also replace the README's ``<!-- results:<profile>:start/end -->`` block with the table and
    a :func:`provenance_line`; that needs the whole tutorial (no ``only``), and the markers are checked before
    anything runs. The full profile expects its training steps launched with ``torchrun`` first
    (``docs/full_profile.md``); the notebooks then load the finished checkpoints.
    """
    selected = select_notebooks(only, notebook_dir)
    if dry_run:
        from ..dryrun import activate

        if readme is not None:
            raise ValueError("a dry run's numbers are not results: drop --update-readme or --dry-run")
        activate(int(dry_run), profile=profile)  # the one line, and the environment the notebook kernels inherit
    if readme is not None:
        if only is not None:
            raise ValueError("updating the README needs the whole tutorial: drop the notebook selection")
        readme = Path(readme)
        if not readme.is_file():
            raise FileNotFoundError(f"README not found: {readme}")
        _check_markers(readme.read_text(), readme, profile)
    if profile == "full":
        logger.info("full profile: launch the long training steps with torchrun first (docs/full_profile.md); "
                    "the notebooks load their finished checkpoints from %s",
                    paths.runs_root(runs_root or None) / "full")
    records = run_notebooks(profile, notebooks=selected, force=force, retrain=retrain, data_root=data_root,
                            runs_root=runs_root, seed=seed, device=device, timeout=timeout, dry_run=dry_run)
    table = results_table(records)
    title = "tutorial results" if only is None else f"results of {', '.join(r['name'] for r in records)}"
    title += f", DRY RUN {dry_run}: not results" if dry_run else ""
    results_path = paths.runs_root(runs_root or None) / profile / RESULTS_FILE
    results_path.write_text(f"# reid_lab {title} ({profile} profile)\n\n{provenance_line(records, profile)}\n\n"
                            f"{table}\n")
    changed = None
    if readme is not None:
        changed = update_readme(readme, profile, f"{provenance_line(records, profile)}\n\n{table}")
    return TutorialRun(records=records, table=table, results_path=results_path, readme_changed=changed)
