"""Supervised ReID fine-tuning (docs/reference.md §4) and a small inference API.

* :func:`train`, :func:`evaluate` — the TransReID recipe (:mod:`.supervised`);
* :class:`ReIDModel`, :func:`build_reid_model`, :func:`load_reid_model`, :func:`reid_checkpoint` (:mod:`.model`);
* :class:`ReIDLoss`, :func:`batch_hard_triplet_loss`, :func:`id_loss` (:mod:`.losses`);
* :class:`WarmupCosineLR` (:mod:`.schedule`);
* :func:`extract`, :func:`search` — embeddings and nearest neighbours for users (:mod:`.inference`).
"""
from __future__ import annotations

from .inference import extract, search
from .losses import ReIDLoss, batch_hard_triplet_loss, id_loss
from .model import ReIDModel, build_reid_model, load_reid_model, reid_checkpoint
from .schedule import WarmupCosineLR
from .supervised import build_optimizer, build_schedule, evaluate, train

__all__ = ["ReIDLoss", "ReIDModel", "WarmupCosineLR", "batch_hard_triplet_loss", "build_optimizer", "build_reid_model",
           "build_schedule", "evaluate", "extract", "id_loss", "load_reid_model", "reid_checkpoint", "search", "train"]
