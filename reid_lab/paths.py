"""Where data and run outputs live.

Defaults are ``data/`` and ``runs/`` at the repository root (never relative to the working directory),
overridable by the environment variables ``REID_LAB_DATA`` / ``REID_LAB_RUNS`` and by explicit arguments
(notebook parameters pass theirs through :func:`data_root` / :func:`runs_root`).
"""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
QUIET_ENV = "REID_LAB_QUIET"  # set by the notebooks' start(): no progress bars in cell outputs


def quiet() -> bool:
    """Whether progress bars are off: ``$REID_LAB_QUIET`` is set to anything but ``0``."""
    return os.environ.get(QUIET_ENV, "") not in ("", "0")


def repo_root() -> Path:
    """The checkout that holds this package (its parent when it has a ``pyproject.toml``).

    For a non-editable install (no checkout around the package) fall back to ``~/.cache/reid_lab``.
    """
    parent = PACKAGE_DIR.parent
    if (parent / "pyproject.toml").is_file():
        return parent
    return Path.home() / ".cache" / "reid_lab"


def _resolve(explicit: str | os.PathLike | None, env: str, default: str) -> Path:
    if explicit not in (None, ""):
        return Path(explicit).expanduser().resolve()
    if os.environ.get(env):
        return Path(os.environ[env]).expanduser().resolve()
    return repo_root() / default


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    """Root of datasets: ``explicit`` > ``$REID_LAB_DATA`` > ``<repo>/data``."""
    return _resolve(explicit, "REID_LAB_DATA", "data")


def runs_root(explicit: str | os.PathLike | None = None) -> Path:
    """Root of run outputs (executed notebooks, checkpoints, metrics): ``explicit`` > ``$REID_LAB_RUNS`` > ``<repo>/runs``."""
    return _resolve(explicit, "REID_LAB_RUNS", "runs")


def synthetic_root(profile: str, explicit_data_root: str | os.PathLike | None = None) -> Path:
    """Folder holding the synthetic worlds of one profile: ``<data>/synthetic/<profile>``."""
    return data_root(explicit_data_root) / "synthetic" / profile


def run_dir(profile: str, name: str, explicit_runs_root: str | os.PathLike | None = None) -> Path:
    """``<runs>/<profile>/<name>``, created on demand."""
    path = runs_root(explicit_runs_root) / profile / name
    path.mkdir(parents=True, exist_ok=True)
    return path
