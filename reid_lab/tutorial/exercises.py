"""The notebooks' configs, built once from their parameters cell: the "Try next" knobs and ``SEED`` reach the trainers.

Each training notebook calls one function here, once, with its parameters (``PROFILE``, ``SEED`` and its knobs) and
trains with exactly the configs it returns — no later cell resolves a config again and drops a knob:

* 02 — :func:`dino_configs` (``RECIPE``: pre-training overrides for both stems, e.g. ``teacher_temp``);
* 03 — :func:`finetune_configs` (``LR``, ``EPOCHS``); the 1-epoch DINO fallback of 03–05: :func:`short_dino_config`;
* 04 — :func:`usl_config` (``RECIPE``: USL overrides, also given to the course runs);
* 05 — :func:`uda_plan` (``LR``, ``ADABN``, ``ALL_DIRECTIONS``);
* 06 — :func:`attention_queries` and :func:`control_ids` (``MASS_IMAGES``, ``CONTROL_IDS``).

``SEED`` becomes the ``seed`` of every config (``cfg.seed`` is what the trainers seed with), so a second seed is a
second run. A run's config is recorded in its checkpoints (``config``); :func:`resumable` compares it with the
config asked for, so a run folder holding a finished run of other settings is trained afresh instead of being
"resumed" into the stale result, and :func:`same_config` tells a shipped or upstream model of other settings from
the one asked for (:func:`reid_lab.tutorial.zoo.finetuned_run`, :func:`reid_lab.usl.course.train_or_load`).
With the defaults (``SEED = 0``, no knob set) every notebook loads the shipped course checkpoints and records as
before: they are the seed-0 runs of the profile's recipe. ``tests/test_exercises.py`` checks every knob.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..config import SupervisedConfig, UDAConfig, USLConfig, PretrainConfig, resolve, to_dict

logger = logging.getLogger(__name__)

__all__ = ["DINO_SHORT", "FINETUNE_INITS", "UDA_LIVE", "UDAPlan", "attention_queries", "config_changes",
           "control_ids", "describe_changes", "dino_configs", "finetune_configs", "resumable", "same_config", "short_dino_config",
           "uda_plan", "usl_config"]

# Settings that only change what is evaluated or when, not what trains: ignored when two runs are compared.
EVAL_ONLY = ("rerank", "eval_period", "eval_step")


# ----------------------------------------------------------------------------------------------- comparing runs
def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def config_changes(saved: Mapping[str, Any] | None, cfg: Any, ignore: Sequence[str] = EVAL_ONLY
                   ) -> dict[str, tuple[Any, Any]]:
    """``{field: (saved value, asked value)}`` for every training setting in which ``saved`` (a recorded config
    dict, e.g. a checkpoint's ``config``) differs from ``cfg`` (a config or a dict); evaluation-only fields
    (:data:`EVAL_ONLY`) are not compared. A missing record differs in every field."""
    asked = _plain(to_dict(cfg) if not isinstance(cfg, Mapping) else dict(cfg))
    old = _plain(dict(saved or {}))
    return {k: (old.get(k), v) for k, v in asked.items() if k not in ignore and old.get(k, object()) != v}


def same_config(saved: Mapping[str, Any] | None, cfg: Any) -> bool:
    """Was the run that recorded ``saved`` trained with ``cfg``'s settings (evaluation-only fields aside)?"""
    return not config_changes(saved, cfg)


def describe_changes(changes: Mapping[str, tuple[Any, Any]], limit: int = 6) -> str:
    shown = [f"{k} {a!r} -> {b!r}" for k, (a, b) in list(changes.items())[:limit]]
    return ", ".join(shown) + (f" (+{len(changes) - limit} more)" if len(changes) > limit else "")


def resumable(folder: str | os.PathLike, cfg: Any, force_retrain: bool = False) -> bool:
    """The ``resume`` argument for a trainer writing into ``folder``: ``False`` with ``force_retrain`` or when
    ``folder/checkpoint.pth`` was written with other settings than ``cfg`` (a new seed, a knob): that run is then
    trained afresh in ``folder`` (a warning says which settings differ) instead of resumed; ``True`` otherwise
    (no checkpoint yet, or the same settings: a finished run is read back, an interrupted one continues)."""
    if force_retrain:
        return False
    checkpoint = Path(folder) / "checkpoint.pth"  # the name of every reid_lab trainer's training checkpoint
    if not checkpoint.is_file():
        return True
    from ..engine import load_checkpoint

    changes = config_changes(load_checkpoint(checkpoint, map_location="cpu").get("config"), cfg)
    if changes:
        logger.warning("%s holds a run with other settings (%s): training a new run there", checkpoint.parent,
                       describe_changes(changes))
    return not changes


# ----------------------------------------------------------------------------------------------- 02 · DINO
# Notebook 02's short runs: how many pool images, which pre-training settings of the profile they change, and how
# often the k-NN probe runs (the course run, `make course`, is the long one).
DINO_SHORT: dict[str, dict[str, Any]] = {
    "smoke": dict(images=32, epochs=1, warmup_epochs=0, probe_every=1),
    "tiny": dict(images=768, epochs=3, warmup_epochs=1, probe_every=12),
    "full": dict(images=None, probe_every=1000),
}


def dino_configs(profile: str, *, seed: int = 0, recipe: Mapping[str, Any] | None = None
                 ) -> tuple[dict[str, Any], dict[str, PretrainConfig]]:
    """Notebook 02: ``(short, {"patchify": cfg, "ICS": cfg})`` — the short-run settings (:data:`DINO_SHORT`) and
    one pre-training config per stem: the profile's, the short run's epochs, ``seed``, then ``recipe`` (the
    ``RECIPE`` parameter, e.g. ``dict(teacher_temp=0.04, warmup_teacher_temp=0.04, out_dim=4096)``)."""
    short = dict(DINO_SHORT[profile])
    settings = {k: v for k, v in short.items() if k not in ("images", "probe_every")}
    base = resolve("pretrain", profile).arch.removesuffix("_ics")
    configs = {name: resolve("pretrain", profile, **{**settings, "arch": arch, "seed": seed, **dict(recipe or {})})
               for name, arch in (("patchify", base), ("ICS", base + "_ics"))}
    return short, configs


def short_dino_config(profile: str, arch: str, *, seed: int = 0) -> PretrainConfig:
    """The 1-epoch DINO notebooks 03–05 train when no DINO backbone exists yet (smoke/tiny without notebook 02)."""
    return resolve("pretrain", profile, arch=arch, epochs=1, warmup_epochs=0, seed=seed)


# ----------------------------------------------------------------------------------------------- 03 · supervised
# Notebook 03's four initialisations: label -> (ICS stem?, DINO weights?)
FINETUNE_INITS: dict[str, tuple[bool, bool]] = {"random": (False, False), "DINO": (False, True),
                                                "random+ICS": (True, False), "DINO+ICS": (True, True)}


def finetune_configs(profile: str, *, seed: int = 0, lr: float | None = None, epochs: int | None = None
                     ) -> dict[str, SupervisedConfig]:
    """Notebook 03: one supervised config per initialisation (:data:`FINETUNE_INITS`), the profile's recipe with
    ``seed`` and, where given, ``lr`` (``base_lr``; ``LR``) and ``epochs`` (``EPOCHS``)."""
    knobs: dict[str, Any] = {"seed": seed}
    if lr is not None:
        knobs["base_lr"] = lr
    if epochs is not None:
        knobs["epochs"] = epochs
    plain = resolve("supervised", profile).arch.removesuffix("_ics")
    return {label: resolve("supervised", profile, arch=plain + "_ics" if ics else plain, **knobs)
            for label, (ics, _dino) in FINETUNE_INITS.items()}


# ----------------------------------------------------------------------------------------------- 04 · USL
def usl_config(profile: str, *, seed: int = 0, recipe: Mapping[str, Any] | None = None) -> USLConfig:
    """Notebook 04: the profile's USL config on the ICS backbone (the paper's USL start), ``seed``, then ``recipe``
    (the ``RECIPE`` parameter, e.g. ``dict(k1=30, k2=6)``); the course runs get the same ``recipe`` as overrides."""
    arch = resolve("usl", profile).arch.removesuffix("_ics") + "_ics"
    return resolve("usl", profile, **{"arch": arch, "seed": seed, **dict(recipe or {})})


# ----------------------------------------------------------------------------------------------- 05 · UDA
# What notebook 05's live UDA runs change in the profile's uda config. tiny: 1 of the 3 epochs (the ICS stem costs
# ~4x the patchify layer per image on a CPU; the 3-epoch, 3-seed runs are the course record of its section 5).
UDA_LIVE: dict[str, dict[str, Any]] = {"smoke": {}, "tiny": dict(epochs=1, eval_step=1), "full": {}}
# full: the official eps per target and the official scripts' GPU counts as BN chunks (docs/reference.md §5.6)
_FULL_TARGET = {"market1501": dict(eps=0.6, bn_chunks=4), "msmt17": dict(eps=0.7, bn_chunks=2)}


@dataclass(frozen=True)
class UDAPlan:
    """Notebook 05's runs: ``recipe`` (the overrides of every UDA run), ``directions`` ``[(source, target)]``,
    ``archs`` ``{"ViT": ..., "ViT+ICS": ...}``, ``sources`` ``{(source, label): SupervisedConfig}`` (the source
    fine-tunes) and ``runs`` ``{(source, target, label): UDAConfig}``."""

    recipe: dict[str, Any]
    directions: list[tuple[str, str]]
    archs: dict[str, str]
    sources: dict[tuple[str, str], SupervisedConfig]
    runs: dict[tuple[str, str, str], UDAConfig]


def uda_plan(profile: str, *, seed: int = 0, lr: float | None = None, adabn: bool | None = None,
             all_directions: bool = False) -> UDAPlan:
    """Notebook 05: every config it trains — the source fine-tunes and the UDA runs — with ``seed``, ``lr`` (the
    UDA lr, ``LR``; ``None``: the profile's), ``adabn`` (``ADABN``; ``None``: the profile's) and the directions
    (SynthMarket → SynthMSMT; ``all_directions`` or ``full`` also back)."""
    recipe = dict(UDA_LIVE[profile])
    if lr is not None:
        recipe["lr"] = lr
    if adabn is not None:
        recipe["adabn"] = bool(adabn)
    directions = [("market1501", "msmt17"), ("msmt17", "market1501")]
    if profile != "full" and not all_directions:
        directions = directions[:1]
    plain = resolve("uda", profile).arch.removesuffix("_ics")
    archs = {"ViT": plain, "ViT+ICS": plain + "_ics"}
    target = _FULL_TARGET if profile == "full" else {}
    sources = {(src, label): resolve("supervised", profile, arch=arch, dataset=src, seed=seed)
               for src in dict.fromkeys(s for s, _ in directions) for label, arch in archs.items()}
    runs = {(src, tgt, label): resolve("uda", profile, **{"arch": arch, "dataset": tgt, "source_dataset": src,
                                                          "seed": seed, **target.get(tgt, {}), **recipe})
            for src, tgt in directions for label, arch in archs.items()}
    return UDAPlan(recipe, directions, archs, sources, runs)


# ----------------------------------------------------------------------------------------------- 06 · attention
def attention_queries(query: Sequence[Any], mass_images: int) -> list[Any]:
    """Notebook 06: ``mass_images`` query images spread over the split (``MASS_IMAGES``; 0: all of them)."""
    if not mass_images:
        return list(query)
    return list(query[:: max(1, len(query) // mass_images)][:mass_images])


def control_ids(query: Sequence[Any], count: int) -> list[int]:
    """Notebook 06: the first ``count`` test identities of the person / background control (``CONTROL_IDS``; 0:
    all)."""
    return sorted({s.pid for s in query})[: count or None]
