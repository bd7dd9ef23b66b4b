"""Where the downstream notebooks find their pre-trained backbone (SPEC §2.7, FINDINGS "ship a checkpoint").

Notebooks 03–06 start from a DINO backbone. In order of preference:

1. a checkpoint shipped with the package under ``reid_lab/assets/`` (``dino_<arch>_<profile>.pth``): pre-trained
   longer than a notebook cell may spend, with its provenance (command, config, seed, metrics) next to it in
   ``dino_<arch>_<profile>.json``;
2. notebook 02's output, ``runs/<profile>/02_dino_ics_pretraining/dino_<arch>/teacher_backbone.pth``.

>>> path = dino_backbone("tiny", "vit_tiny")          # doctest: +SKIP
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from . import paths

__all__ = ["ASSETS", "PRETRAIN_NOTEBOOK", "dino_backbone", "shipped_backbone", "provenance"]

ASSETS = Path(__file__).resolve().parent / "assets"
PRETRAIN_NOTEBOOK = "02_dino_ics_pretraining"


def shipped_backbone(profile: str, arch: str) -> Path | None:
    """The checkpoint shipped for ``(profile, arch)``, or ``None`` when there is none."""
    path = ASSETS / f"dino_{arch}_{profile}.pth"
    return path if path.is_file() else None


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
