"""Fast dev run (Lightning's ``fast_dev_run``): every code path of a profile, each loop capped at N iterations.

``--dry-run N`` (CLI: ``pretrain``, ``train``, ``usl``, ``uda``, ``tutorial``) and the notebooks' ``DRY_RUN``
parameter call :func:`activate`. From then on, in this process and its children (torchrun ranks, DataLoader
workers, the notebook kernels of ``reid-lab tutorial``, through the environment variable :data:`ENV`):

* :func:`reid_lab.config.resolve` returns :func:`cap_config`'s config: epochs 1–2, USL iterations N, a batch a CPU
  fits (with the P×K / BN-chunk / world-size divisibility the trainers check, for :func:`world` processes: the
  torchrun jobs and the notebooks that load their checkpoints must agree on it), evaluation every epoch it ends.
  Everything that shapes the code path stays: architectures, image and crop sizes, head sizes, losses,
  samplers, schedule code, DDP, checkpoint formats;
* the trainers stop each epoch after :func:`limit` iterations; :func:`subset_dataset` /
  :func:`subset_names` cut evaluation sets, training sets and the LUPerson pool to a small head;
* every ``log.jsonl`` record, ``metrics.json`` and checkpoint is marked ``"dry_run": N``; :func:`check_checkpoint`
  refuses a dry-run checkpoint in a real run and a real reid_lab checkpoint in a dry run.
"""
from __future__ import annotations

import copy
import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

ENV = "REID_LAB_DRY_RUN"
WORLD_ENV = "REID_LAB_DRY_RUN_WORLD"  # the most processes a dry run's batches must feed (default: max(2, WORLD_SIZE))
KEY = "dry_run"  # the mark in log.jsonl records, metrics.json and checkpoints
MAX_EPOCHS = 2
TRAIN_IDS = 16  # identities kept per training split
TEST_IDS = 8  # identities kept in query / gallery (plus up to EXTRA_GALLERY junk and distractor images)
EXTRA_GALLERY = 16
POOL_PER_ITER = 32  # LUPerson images kept per iteration of the cap
T = TypeVar("T")


def active() -> int:
    """The N of the active dry run, 0 when off."""
    raw = os.environ.get(ENV, "").strip()
    try:
        n = int(raw or 0)
    except ValueError as err:
        raise ValueError(f"{ENV}={raw!r} is not an integer") from err
    if n < 0:
        raise ValueError(f"{ENV}={n}: the dry-run iteration cap must be >= 0")
    return n


def activate(n: int, stage: str | None = None, profile: str = "full", overrides: Mapping[str, Any] | None = None,
             ) -> str:
    """Switch the dry run on (``n`` > 0) or off (0) for this process and its children; return the description.

    Logs one line saying what the dry run changes: in ``stage``'s config under ``profile`` with ``overrides`` (the
    command line's), or in every training stage's profile config when ``stage`` is None.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"dry run: expected a non-negative int number of iterations, got {n!r}")
    if n == 0:
        os.environ.pop(ENV, None)
        return ""
    os.environ[ENV] = str(n)
    from .config import resolve

    stages = (stage,) if stage else ("pretrain", "supervised", "usl", "uda")
    parts = [f"{s}: {describe(s, resolve(s, profile, dry_run=0, **(overrides or {})), n)}" for s in stages]
    text = (f"dry run {n}: each loop stops after {n} iteration(s); evaluation on <= {TEST_IDS} test ids, training "
            f"on <= {TRAIN_IDS} ids, pool <= {POOL_PER_ITER * n} images; " + "; ".join(parts))
    logger.info(text)
    return text


def world() -> int:
    """How many processes a dry run's global batches are sized for: ``$REID_LAB_DRY_RUN_WORLD``, else
    ``max(2, $WORLD_SIZE)``, so a 2-process torchrun and a 1-process notebook resolve the same batch sizes."""
    raw = os.environ.get(WORLD_ENV) or ""
    value = int(raw) if raw.strip() else max(2, int(os.environ.get("WORLD_SIZE") or 1))
    if value < 1:
        raise ValueError(f"{WORLD_ENV}={value}: expected a positive number of processes")
    return value


def _caps(stage: str, cfg: Any, n: int) -> dict[str, Any]:
    """The field values a dry run of ``n`` iterations changes in ``cfg`` (only those that differ)."""
    want: dict[str, Any] = {}
    procs = world()
    if hasattr(cfg, "epochs"):
        epochs = min(cfg.epochs, MAX_EPOCHS)
        want["epochs"] = epochs
        for name in ("warmup_epochs", "warmup_teacher_temp_epochs", "freeze_last_layer"):
            if hasattr(cfg, name):
                want[name] = min(getattr(cfg, name), epochs - 1)
        for name in ("eval_period", "eval_step", "step_size"):
            if hasattr(cfg, name):
                want[name] = min(getattr(cfg, name), epochs)
    if stage == "pretrain":
        want["batch_size"] = min(cfg.batch_size, 2 * procs)  # 2 images per process
    elif stage == "supervised":
        want["batch_size"] = min(cfg.batch_size, 2 * cfg.num_instances * procs)  # 2 ids per process (triplet)
    elif stage in ("usl", "uda"):
        want["iters"] = min(cfg.iters, n)
        # from one cluster of K up: a dry run's barely trained features often give DBSCAN a single cluster, and a
        # batch of two clusters would then skip the training step the dry run is there to run
        batch = cfg.num_instances
        while batch % cfg.bn_chunks or batch % procs:  # the official BN chunks, whole shares per process
            batch += cfg.num_instances
        want["batch_size"] = min(cfg.batch_size, batch)
    elif stage == "data":
        want["num_workers"] = min(cfg.num_workers, 1)  # keeps the worker-process code path
    return {k: v for k, v in want.items() if getattr(cfg, k) != v}


def cap_config(stage: str, cfg: T, n: int) -> tuple[T, str]:
    """``(capped config, description)`` of ``cfg`` (a config of ``stage``) for a dry run of ``n`` iterations.

    ``n`` = 0 returns ``cfg`` unchanged and an empty description. Caps never raise a value.
    """
    if n <= 0:
        return cfg, ""
    changes = _caps(stage, cfg, n)
    capped = dataclasses.replace(cfg, **changes) if changes else cfg
    return capped, ", ".join(f"{k} {getattr(cfg, k)}->{v}" for k, v in changes.items()) or "nothing to cap"


def describe(stage: str, cfg: Any, n: int) -> str:
    """What :func:`cap_config` changes, as one line."""
    return cap_config(stage, cfg, n)[1]


def limit(iterations: int) -> int:
    """``iterations`` capped at the active dry run's N (unchanged when off)."""
    n = active()
    return min(iterations, n) if n else iterations


def subset_names(names: Sequence[T], n: int | None = None) -> Sequence[T]:
    """The head of an unlabeled pool for a dry run (``POOL_PER_ITER × N`` entries; all when off)."""
    n = active() if n is None else n
    return names[: POOL_PER_ITER * n] if n else names


def _by_ids(samples: list, keep: int, extra: int = 0) -> list:
    ids = sorted({s.pid for s in samples if s.pid > 0} or {s.pid for s in samples})[:keep]
    chosen = [s for s in samples if s.pid in set(ids)]
    others = [s for s in samples if s.pid <= 0 and s.pid not in set(ids)][:extra]  # junk (-1) and distractors (0)
    return chosen + others


def subset_dataset(dataset: T, n: int | None = None) -> T:
    """``dataset`` cut to :data:`TRAIN_IDS` training and :data:`TEST_IDS` test identities (itself when off).

    Train pids are relabelled to 0..k-1 (the classifier's targets); query and gallery keep the same ids, the gallery
    also some junk / distractor images so that the protocol's filters run.
    """
    n = active() if n is None else n
    if not n:
        return dataset
    from .data.base import relabel

    train = relabel(_by_ids(list(dataset.train), TRAIN_IDS))
    query = _by_ids(list(dataset.query), TEST_IDS)
    ids = {s.pid for s in query}
    gallery = [s for s in dataset.gallery if s.pid in ids] + [s for s in dataset.gallery if s.pid <= 0][:EXTRA_GALLERY]
    small = copy.copy(dataset)  # keeps the class (Market1501, MSMT17 …), whose __init__ reads a folder
    small.train, small.query, small.gallery = train, query, gallery
    return small


class DryRunMismatchError(ValueError):
    """A checkpoint of a dry run met a real run, or a real reid_lab checkpoint met a dry run."""


def mark(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with ``"dry_run": N`` added when a dry run is active (a plain copy otherwise)."""
    n = active()
    return {**record, KEY: n} if n else dict(record)


def check_checkpoint(obj: Any, path: Any) -> None:
    """Refuse ``obj`` (a loaded checkpoint) when its dry-run mark disagrees with the running mode.

    A dry-run checkpoint is never used by a real run. A dry run uses only dry-run checkpoints among those reid_lab
    writes (``format``/``trainer`` entries); outside files (released weights, plain state dicts) pass.
    """
    if not isinstance(obj, Mapping):
        return
    marked, n = int(obj.get(KEY) or 0), active()
    if marked and not n:
        raise DryRunMismatchError(
            f"{path} was written by a dry run (--dry-run {marked}, DRY_RUN={marked}): a real run never uses it. "
            "Delete it (or its run folder) or give this run another output folder.")
    if n and not marked and ("format" in obj or "trainer" in obj):
        raise DryRunMismatchError(
            f"{path} was written by a real run and this is a dry run (--dry-run {n}): a dry run never touches real "
            "checkpoints. Point the dry run at its own runs folder (REID_LAB_RUNS / --runs-root / --output).")


__all__ = ["ENV", "KEY", "WORLD_ENV", "world", "DryRunMismatchError", "activate", "active", "cap_config", "check_checkpoint", "describe",
           "limit", "mark", "subset_dataset", "subset_names"]
