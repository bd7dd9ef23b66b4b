"""Unsupervised (USL) and domain-adaptive (UDA) person ReID with Cluster Contrast (docs/reference.md §5).

* :func:`train_usl`, :func:`train_uda`, :class:`USLResult` — the training runs (:mod:`.train`);
* :func:`extract_features_for_clustering`, :func:`pseudo_label_epoch`, :class:`PseudoLabels` — one epoch's
  features → Jaccard + DBSCAN pseudo labels → centroids, usable on their own (eps sweeps, docs/reference.md §12.7); :func:`training_forward_features` — the features the memory
  is built from (issue 22); :func:`oracle_labels` — the true-id control;
* :class:`ClusterMemory`, :func:`cluster_centroids` — the memory and its hard-sample update (:mod:`.memory`);
* :class:`GhostBatchNorm` — multi-GPU ``DataParallel`` BN statistics on one device (:mod:`.ghost_bn`, docs/reference.md §12.1);
* :class:`USLModel`, :func:`build_usl_model`, :func:`evaluate_usl`;
* :func:`adapt_bn`, :func:`bn_only_transfer` — AdaBN on target images, our UDA addition and baseline (:mod:`.train`).
"""
from __future__ import annotations

from .ghost_bn import GhostBatchNorm, chunks_per_process, frozen_running_stats
from .memory import ClusterMemory, cluster_centroids, hardest_per_cluster
from .train import (
    PseudoLabels, USLModel, USLResult, adapt_bn, bn_only_transfer, build_optimizer, build_usl_model, evaluate_usl, extract_features_for_clustering,
    oracle_labels, pseudo_label_epoch, train_uda, train_usl, training_forward_features,
)

__all__ = [
    "ClusterMemory", "GhostBatchNorm", "PseudoLabels", "USLModel", "USLResult", "adapt_bn", "bn_only_transfer",
    "build_optimizer", "build_usl_model",
    "chunks_per_process", "cluster_centroids", "evaluate_usl", "extract_features_for_clustering",
    "frozen_running_stats", "hardest_per_cluster", "oracle_labels", "pseudo_label_epoch", "train_uda", "train_usl",
    "training_forward_features",
]
