"""Self-supervised pre-training: DINO with person multi-crop, ICS backbones and collapse monitoring (docs/reference.md §2).

* :class:`DINOLoss` — the official loss with its running centre (:mod:`.loss`);
* :class:`PersonMultiCrop`, :class:`MultiCropWrapper` — multi-crop augmentation and the per-resolution
  backbone wrapper (:mod:`.multicrop`);
* :func:`pretrain`, :class:`DINOTrainer` — the training loop, torchrun DDP, checkpoints, resume (:mod:`.train`);
* :class:`CollapseMonitor`, :class:`CollapseError`, :class:`KNNProbe` — entropy / similarity monitoring and a frozen
  k-NN health probe (:mod:`.monitor`).

Their figures (:func:`plot_crops`, :func:`plot_training_curves`) are in :mod:`reid_lab.viz.dino`.
"""
from __future__ import annotations

from .loss import DINOLoss, teacher_temperature_schedule
from .monitor import CollapseError, CollapseMonitor, KNNProbe, StepStats, entropy, knn_curve, mean_pairwise_cosine
from .multicrop import IMAGENET_MEAN, IMAGENET_STD, MultiCropWrapper, PersonMultiCrop
from .train import (DINOTrainer, PretrainResult, build_dino_model, build_multicrop, evaluate_retrieval, pool_paths,
                    pretrain)

__all__ = [
    "CollapseError", "CollapseMonitor", "DINOLoss", "DINOTrainer", "IMAGENET_MEAN", "IMAGENET_STD", "KNNProbe",
    "MultiCropWrapper", "PersonMultiCrop", "PretrainResult", "StepStats", "build_dino_model", "build_multicrop",
    "entropy", "evaluate_retrieval", "knn_curve", "mean_pairwise_cosine", "plot_crops", "plot_training_curves",
    "pool_paths", "pretrain", "teacher_temperature_schedule",
]


def __getattr__(name: str):
    """``plot_crops`` and ``plot_training_curves`` moved to :mod:`reid_lab.viz.dino`; these aliases will be removed in
    the next release (imported on first use: :mod:`reid_lab.viz.dino` imports this package)."""
    if name in ("plot_crops", "plot_training_curves"):
        from ..viz import dino

        return getattr(dino, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
