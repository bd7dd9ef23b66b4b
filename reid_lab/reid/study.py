"""What pre-training buys: fine-tuning curves from several initialisations over several seeds (issue #4 goal).

The paper's claim is about the fine-tuning a pre-trained backbone enables (docs/reference.md §8.1), so the study fine-tunes each
initialisation with the same recipe, on the same labelled subset, evaluates every ``eval_period`` epochs (mAP at
fixed fine-tuning budgets) and repeats over seeds; each seed draws its own labelled identities and its own
training randomness, shared by all initialisations (a paired design). :func:`summarize` reports mean ± sd per
budget and the paired difference to a reference initialisation.

>>> curves = finetune_curves({"random": None, "DINO": "dino.pth"}, market, seeds=(0, 1, 2),  # doctest: +SKIP
...                          num_ids=50, cfg=resolve("supervised", "tiny"), output_dir="runs/study")
>>> summarize(curves, reference="random")                                                   # doctest: +SKIP
"""
from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Union

import numpy as np

from ..config import SupervisedConfig
from ..data import ReIDDataset
from .supervised import train

logger = logging.getLogger(__name__)

__all__ = ["subsample_identities", "finetune_curves", "summarize", "format_summary"]


def subsample_identities(dataset: ReIDDataset, num_ids: int | None, seed: int,
                         images_per_id: int | None = None) -> ReIDDataset:
    """``dataset`` with its train split reduced to ``num_ids`` identities drawn with ``seed`` (query/gallery kept).

    ``images_per_id`` additionally keeps only the first N images of each kept identity (the few-label regime).
    """
    ids = sorted({s.pid for s in dataset.train})
    if num_ids is not None and not 2 <= num_ids <= len(ids):
        raise ValueError(f"num_ids must lie in [2, {len(ids)}] for {dataset.title}, got {num_ids}")
    if images_per_id is not None and images_per_id < 2:
        raise ValueError(f"images_per_id must be ≥ 2 (a triplet needs a positive), got {images_per_id}")
    keep = set(np.random.default_rng(seed).permutation(ids)[:num_ids].tolist()) if num_ids else set(ids)
    seen: dict[int, int] = {}
    train_split = []
    for sample in dataset.train:
        if sample.pid in keep and (images_per_id is None or seen.get(sample.pid, 0) < images_per_id):
            seen[sample.pid] = seen.get(sample.pid, 0) + 1
            train_split.append(sample)
    return ReIDDataset(name=dataset.name, root=dataset.root, train=train_split, query=dataset.query,
                       gallery=dataset.gallery, version=dataset.version)


# a checkpoint for every seed, a random init (None), or one checkpoint per seed
InitSource = Union[str, os.PathLike, None, Mapping[int, Union[str, os.PathLike]]]


def finetune_curves(inits: Mapping[str, InitSource], dataset: ReIDDataset, *, seeds: Iterable[int],
                    cfg: SupervisedConfig, output_dir: str | os.PathLike, num_ids: int | None = None,
                    images_per_id: int | None = None, archs: Mapping[str, str] | None = None,
                    device: str = "cpu", resume: bool = True, progress: bool = False) -> dict[str, Any]:
    """Fine-tune every initialisation of ``inits`` (name → backbone checkpoint, ``None`` = random) per seed.

    An initialisation may also map each seed to its own checkpoint (``{seed: path}``), e.g. a control built from
    that seed's random weights.

    Every run uses ``cfg`` with ``seed`` replaced; ``archs`` may give an initialisation its own architecture
    (e.g. an ICS backbone). Runs are resumable (``output_dir/<name>/seed<k>``).

    Returns:
        ``{"budgets": [epochs...], "curves": {name: [[mAP per budget] per seed]}, "rank1": {...}, "mINP": {...},
        "seeds": [...], "num_ids", "images_per_id", "config", "runs": {name: [run folder per seed]}}`` — mAP,
        Rank-1 and mINP as fractions.
    """
    import dataclasses

    seeds = list(seeds)
    if not seeds or not inits:
        raise ValueError("finetune_curves needs at least one seed and one initialisation")
    curves: dict[str, list[list[float]]] = {name: [] for name in inits}
    rank1: dict[str, list[list[float]]] = {name: [] for name in inits}
    minp: dict[str, list[list[float]]] = {name: [] for name in inits}
    folders: dict[str, list[str]] = {name: [] for name in inits}
    budgets: list[int] = []
    for seed in seeds:
        subset = subsample_identities(dataset, num_ids, seed, images_per_id)
        for name, source in inits.items():
            weights = source.get(seed) if isinstance(source, Mapping) else source
            if isinstance(source, Mapping) and weights is None:
                raise KeyError(f"initialisation {name!r} has no checkpoint for seed {seed}")
            run_cfg = dataclasses.replace(cfg, seed=seed, arch=(archs or {}).get(name, cfg.arch))
            out = Path(output_dir) / name.replace(" ", "_").replace("+", "_") / f"seed{seed}"
            run = train(run_cfg, subset, out, device=device, pretrained=weights, resume=resume, progress=progress,
                        rerank=False)
            evaluated = [h for h in run["history"] if h.get("mAP") is not None]
            budgets = [h["epoch"] for h in evaluated]
            curves[name].append([h["mAP"] for h in evaluated])
            rank1[name].append([h["rank1"] for h in evaluated])
            minp[name].append([h.get("mINP") for h in evaluated])
            folders[name].append(str(out))
            logger.info("%s seed %d: mAP %s", name, seed, [round(100 * h["mAP"], 1) for h in evaluated])
    return {"budgets": budgets, "curves": curves, "rank1": rank1, "mINP": minp, "seeds": seeds, "num_ids": num_ids,
            "images_per_id": images_per_id, "config": dataclasses.asdict(cfg), "runs": folders}


def summarize(result: Mapping[str, Any], reference: str | None = None) -> dict[str, Any]:
    """Mean ± sd (over seeds, ``ddof=1``) of mAP per budget and, against ``reference``, the paired difference.

    Returns ``{name: {"mean": [...], "sd": [...], "diff_mean": [...], "diff_sd": [...], "wins": k}}`` in mAP
    percentage points; ``wins`` counts the seeds where the final-budget mAP beats the reference's.
    """
    out: dict[str, Any] = {}
    ref = np.asarray(result["curves"][reference]) * 100 if reference is not None else None
    for name, per_seed in result["curves"].items():
        values = np.asarray(per_seed) * 100
        ddof = 1 if len(values) > 1 else 0
        entry: dict[str, Any] = {"mean": values.mean(0).round(2).tolist(), "sd": values.std(0, ddof=ddof).round(2).tolist()}
        if ref is not None and name != reference:
            diff = values - ref
            entry.update(diff_mean=diff.mean(0).round(2).tolist(), diff_sd=diff.std(0, ddof=ddof).round(2).tolist(),
                         wins=int((diff[:, -1] > 0).sum()))
        out[name] = entry
    return out


def format_summary(result: Mapping[str, Any], reference: str | None = None) -> str:
    """A markdown table: one row per initialisation, one column per budget, ``mean ± sd`` mAP (%)."""
    summary = summarize(result, reference)
    budgets = result["budgets"]
    lines = ["| init | " + " | ".join(f"epoch {b}" for b in budgets) + " |", "|---" * (len(budgets) + 1) + "|"]
    for name, s in summary.items():
        cells = [f"{m:.1f} ± {d:.1f}" for m, d in zip(s["mean"], s["sd"])]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
        if "diff_mean" in s:
            diffs = [f"{m:+.1f} ± {d:.1f}" for m, d in zip(s["diff_mean"], s["diff_sd"])]
            lines.append(f"| {name} − {reference} | " + " | ".join(diffs) + " |")
    return "\n".join(lines)
