"""Where the downstream notebooks find their pre-trained backbone (docs/reference.md §2.7, §11.7).

Notebooks 01 and 03–06 start from a DINO backbone. In order of preference:

1. a course checkpoint under ``reid_lab/assets/`` (``dino_<arch>_<profile>.pth``, float16), pre-trained longer
   than a notebook cell may spend by ``make course`` (:mod:`reid_lab.course`), with its provenance (command, config,
   seed, per-epoch log, the fine-tuning study, device, sha256) in ``dino_<arch>_<profile>.json``;
2. notebook 02's output, ``runs/<profile>/02_dino_ics_pretraining/dino_<arch>/teacher_backbone.pth``.

>>> path = dino_backbone("tiny", "vit_tiny")          # doctest: +SKIP
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from .. import paths

logger = logging.getLogger(__name__)

__all__ = ["ASSETS", "FINETUNED", "PRETRAIN_NOTEBOOK", "SUPERVISED_NOTEBOOK", "dino_backbone", "finetuned_model",
           "finetuned_provenance", "notebook_backbone", "provenance", "ship_backbone", "ship_finetuned",
           "shipped_backbone", "shipped_finetuned", "finetuned_run"]

ASSETS = Path(__file__).resolve().parents[1] / "assets"
PRETRAIN_NOTEBOOK = "02_dino_ics_pretraining"
SUPERVISED_NOTEBOOK = "03_supervised_reid"
# the four initialisations of notebook 03, as run-directory names: fine-tuned SynthMarket models shipped per profile
FINETUNED = ("random", "dino", "random_ics", "dino_ics")


def shipped_backbone(profile: str, arch: str) -> Path | None:
    """The checkpoint shipped for ``(profile, arch)``, or ``None`` when there is none."""
    from ..dryrun import active

    path = ASSETS / f"dino_{arch}_{profile}.pth"  # read at call time so tests can point ASSETS elsewhere
    return path if path.is_file() and not active() else None  # a dry run uses only dry-run checkpoints


def provenance(profile: str, arch: str) -> dict[str, Any] | None:
    """The provenance record of a shipped checkpoint (command, config, seed, metrics), or ``None``."""
    path = ASSETS / f"dino_{arch}_{profile}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def notebook_backbone(profile: str, arch: str, run_root: str | os.PathLike | None = None) -> Path:
    """Where notebook 02 writes the teacher backbone of ``arch`` for ``profile`` (it may not exist yet)."""
    return paths.runs_root(run_root or None) / profile / PRETRAIN_NOTEBOOK / f"dino_{arch}" / "teacher_backbone.pth"


def dino_backbone(profile: str, arch: str, run_root: str | os.PathLike | None = None, *,
                  prefer_shipped: bool = True) -> Path:
    """The DINO backbone downstream notebooks start from (module docstring for the order).

    Raises:
        FileNotFoundError: neither a shipped checkpoint nor notebook 02's output exists; the message says which
            notebook (or command) produces it.
    """
    shipped = shipped_backbone(profile, arch) if prefer_shipped else None
    if shipped is not None:
        return shipped
    produced = notebook_backbone(profile, arch, run_root)
    if produced.is_file():
        return produced
    raise FileNotFoundError(
        f"no DINO backbone for arch {arch!r} in profile {profile!r}: {produced} does not exist. Run notebook "
        f"{PRETRAIN_NOTEBOOK} with PROFILE={profile!r} (or `reid-lab tutorial --profile {profile}`), or "
        f"`reid-lab pretrain --profile {profile} --arch {arch} --output <dir>` and pass <dir>/teacher_backbone.pth."
    )


def shipped_finetuned(profile: str, name: str) -> Path | None:
    """The fine-tuned SynthMarket ReID model ``name`` shipped for ``profile`` (one of :data:`FINETUNED`), or ``None``.

    These are the seed-0 runs of the course study (``make course``): notebook 03 loads them by default instead of
    fine-tuning live, and notebooks 05–06 pick them up from notebook 03's run directory.
    """
    if name not in FINETUNED:
        raise ValueError(f"unknown fine-tuned model {name!r}; shipped names: {', '.join(FINETUNED)}")
    from ..dryrun import active

    path = ASSETS / f"reid_{name}_{profile}.pth"
    return path if path.is_file() and not active() else None  # a dry run uses only dry-run checkpoints


def finetuned_model(profile: str, name: str, run_root: str | os.PathLike | None = None) -> Path | None:
    """The fine-tuned model ``name``: the shipped file, else notebook 03's ``<run root>/<profile>/03_supervised_reid/
    <name>/model.pth``, else ``None`` (e.g. notebook 01 in a first tutorial run without shipped assets)."""
    shipped = shipped_finetuned(profile, name)
    if shipped is not None:
        return shipped
    produced = paths.runs_root(run_root or None) / profile / SUPERVISED_NOTEBOOK / name / "model.pth"
    return produced if produced.is_file() else None


def finetuned_provenance(profile: str, name: str) -> dict[str, Any] | None:
    """The provenance record of a shipped fine-tuned model, or ``None``."""
    path = ASSETS / f"reid_{name}_{profile}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _ship(source: str | os.PathLike, target: Path, record: dict[str, Any], arch: str) -> Path:
    """Write ``source`` (a reid_lab checkpoint) to ``target`` as float16, and its provenance as ``target.json``."""
    import hashlib

    import torch

    from ..engine import save_checkpoint

    checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
        raise ValueError(f"{source} is not a reid_lab checkpoint (expected a dict with a 'model' state dict)")
    if checkpoint.get("arch") not in (None, arch):
        raise ValueError(f"{source} holds arch {checkpoint.get('arch')!r}, not {arch!r}")
    checkpoint["model"] = {k: v.half() if v.is_floating_point() else v for k, v in checkpoint["model"].items()}
    for key in ("optimizer", "scheduler", "rng"):  # a training checkpoint's state is not a course asset
        checkpoint.pop(key, None)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(checkpoint, target)
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    record = {**record, "file": target.name, "bytes": target.stat().st_size, "sha256": digest}
    target.with_suffix(".json").write_text(json.dumps(record, indent=1) + "\n")
    return target


def ship_backbone(source: str | os.PathLike, profile: str, arch: str, record: dict[str, Any],
                  assets: str | os.PathLike | None = None) -> Path:
    """Copy a backbone checkpoint into the package assets as float16, with its provenance record next to it.

    ``source`` is a :func:`reid_lab.models.make_checkpoint` file (e.g. ``teacher_backbone.pth`` of
    ``reid-lab pretrain``); floating tensors are stored as float16 (half the size; loading casts back to the
    model's dtype). ``record`` (command, config, seed, metrics…) is written as JSON with the file's SHA-256.
    """
    folder = Path(assets) if assets is not None else ASSETS
    return _ship(source, folder / f"dino_{arch}_{profile}.pth", record, arch)


def ship_finetuned(source: str | os.PathLike, profile: str, name: str, arch: str, record: dict[str, Any],
                   assets: str | os.PathLike | None = None) -> Path:
    """Copy a fine-tuned ReID model (``model.pth`` of ``reid.train``) into the assets as float16 with provenance."""
    if name not in FINETUNED:
        raise ValueError(f"unknown fine-tuned model {name!r}; shipped names: {', '.join(FINETUNED)}")
    folder = Path(assets) if assets is not None else ASSETS
    return _ship(source, folder / f"reid_{name}_{profile}.pth", record, arch)


def finetuned_run(profile: str, name: str, folder: str | os.PathLike, dataset: Any, device: str, *,
                  train: Any, force_retrain: bool = False, rerank: bool = True, config: Any = None) -> dict[str, Any]:
    """Train or load a fine-tuned SynthMarket model (notebook 03's four initialisations; UvA pattern).

    Without ``force_retrain`` and with a shipped model for ``(profile, name)`` that was trained with ``config``
    (the config the notebook asks for: its seed, its knobs; ``None``: any), the model is placed in ``folder``
    as ``model.pth`` + ``log.jsonl`` (what :func:`reid_lab.reid.train` leaves there, so notebooks 05–06 find it) and
    evaluated now; otherwise ``train()`` (a zero-argument callable returning :func:`reid_lab.reid.train`'s dict)
    runs — for another ``config`` with a warning naming the settings that differ from the shipped seed-0 run.
    Returns that dict with ``"source"``: ``"shipped"`` or ``"trained"``.
    """
    import shutil

    from ..reid import evaluate, load_reid_model

    shipped = None if force_retrain else shipped_finetuned(profile, name)
    if shipped is not None and config is not None:
        from ..config import to_dict
        from .exercises import config_changes, describe_changes

        record = finetuned_provenance(profile, name) or {}
        saved = record.get("config") or {"seed": record.get("seed")}  # an older record: its seed at least
        changes = config_changes(saved, {k: v for k, v in to_dict(config).items() if "config" in record or k == "seed"})
        if changes:
            logger.warning("the shipped %r model was trained with other settings (%s): fine-tuning live instead",
                           name, describe_changes(changes))
            shipped = None
    if shipped is None:
        return {**train(), "source": "trained"}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shipped, folder / "model.pth")
    record = finetuned_provenance(profile, name) or {}
    history = record.get("log", [])
    (folder / "log.jsonl").write_text("".join(json.dumps(row) + "\n" for row in history))
    model = load_reid_model(folder / "model.pth").to(device)
    height, width = model.base.patch_embed.img_size
    metrics = evaluate(model, dataset, device, height=height, width=width, rerank=rerank, progress=False)
    return {"model": model, "history": history, "metrics": metrics, "model_path": folder / "model.pth",
            "epochs_done": len(history), "finished": True, "output_dir": folder, "source": "shipped",
            "provenance": {k: record.get(k) for k in ("command", "device", "made", "init", "seed", "sha256")}}
