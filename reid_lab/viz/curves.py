"""Training curves from the trainers' JSON-lines logs (``log.jsonl``, one record per epoch; ``steps.jsonl`` per
step), several runs overlaid, one panel per metric. CMC curves: :func:`reid_lab.viz.cmc_curves`.

Logs are read with :class:`reid_lab.engine.JsonlLog`. Metrics that are only logged on some records (evaluation every
``eval_period`` epochs) are drawn at those records only, with markers.
"""
from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Union

from .figures import _figure, _save

__all__ = ["DEFAULT_METRICS", "read_log", "training_curves"]

LogLike = Union[str, os.PathLike, Sequence[Mapping[str, Any]]]

# Panels drawn by default when present (in this order); otherwise every numeric non-timing key.
DEFAULT_METRICS = ("loss", "accuracy", "mAP", "rank1", "teacher_entropy", "lr")
_TIMING = {"seconds", "images_per_s", "eval_seconds", "step", "epoch", "iteration"}


def read_log(run: LogLike, name: str = "log.jsonl") -> list[dict[str, Any]]:
    """Records of a run: a run directory (its ``name`` file), a ``.jsonl`` file, or records already in memory."""
    from ..engine import JsonlLog

    if isinstance(run, (str, os.PathLike)):
        path = Path(run)
        path = path / name if path.is_dir() else path
        if not path.is_file():
            raise FileNotFoundError(f"no training log at {path} (expected a run directory holding {name} or a "
                                    ".jsonl file)")
        return JsonlLog(path).read()
    records = [dict(r) for r in run]
    bad = [i for i, r in enumerate(records) if not isinstance(r, dict)]
    if bad:
        raise TypeError(f"records {bad[:5]} are not dicts")
    return records


def _numeric(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def training_curves(runs: Mapping[str, LogLike], metrics: Sequence[str] | None = None, *, x: str = "epoch",
                    ncols: int = 3, log_name: str = "log.jsonl", title: str | None = None,
                    save: str | os.PathLike | None = None):
    """One panel per metric, one line per run.

    Args:
        runs: run name → run directory, ``.jsonl`` path or list of records.
        metrics: keys to draw; default :data:`DEFAULT_METRICS` that occur in the logs, or else every numeric key
            except timings and ``x``.
        x: the record key on the horizontal axis (``epoch``; ``step`` for ``steps.jsonl``); records without it are
            numbered 1, 2, ….
        ncols: panels per row.
        log_name: file read from a run directory.

    Returns:
        The Figure (``fig.metrics`` lists the panels drawn).
    """
    if not runs:
        raise ValueError("runs is empty: pass {run name: run directory or log}")
    logs = {name: read_log(run, log_name) for name, run in runs.items()}
    keys = {k for recs in logs.values() for r in recs for k, v in r.items() if _numeric(v)}
    if metrics is None:
        metrics = [m for m in DEFAULT_METRICS if m in keys] or sorted(keys - _TIMING - {x})
    missing = [m for m in metrics if m not in keys]
    if missing:
        raise KeyError(f"metrics {missing} occur in no log; available: {sorted(keys)}")
    if not metrics:
        raise ValueError("the logs hold no numeric metric to draw")
    ncols = max(1, min(ncols, len(metrics)))
    nrows = math.ceil(len(metrics) / ncols)
    fig, axes = _figure(nrows, ncols, figsize=(4.0 * ncols, 3.0 * nrows), squeeze=False)
    flat = axes.ravel()
    for ax, metric in zip(flat, metrics):
        for name, recs in logs.items():
            pts = [(r.get(x, i + 1), r[metric]) for i, r in enumerate(recs) if _numeric(r.get(metric))]
            if not pts:
                continue
            sparse = len(pts) < len(recs)
            ax.plot(*zip(*pts), marker="o" if sparse or len(pts) == 1 else None, markersize=3, label=name)
        ax.set_title(metric, fontsize=9)
        ax.set_xlabel(x, fontsize=8)
        ax.grid(alpha=0.3)
    for ax in flat[len(metrics):]:
        ax.axis("off")
    flat[0].legend(fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.metrics = list(metrics)
    return _save(fig, save)
