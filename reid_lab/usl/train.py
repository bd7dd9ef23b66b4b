"""Unsupervised (USL) and domain-adaptive (UDA) ReID with Cluster Contrast (docs/reference.md §5).

Entry points: :func:`train_usl`, :func:`train_uda` (= USL on the target from a source-supervised checkpoint,
docs/reference.md §5.7), and the two steps of every epoch for notebooks — :func:`extract_features_for_clustering` and
:func:`pseudo_label_epoch`.

Each epoch (``examples/cluster_contrast_train_usl.py``, docs/reference.md §5.2):

1. features of ``sorted(dataset.train)`` — the model's output (post-BN, L2-normalised), test transform (bicubic
   resize, mean = std = 0.5), eval mode, no flip; ground-truth ids are never used;
2. k-reciprocal Jaccard distance (k1 30, k2 6) and ``DBSCAN(eps, min_samples=4)``
   (:func:`reid_lab.retrieval.clustering.dbscan_pseudo_labels`); outliers are dropped for this epoch;
3. a :class:`~reid_lab.usl.memory.ClusterMemory` initialised with the normalised cluster means (τ 0.05, hard-sample
   update with momentum 0.2, docs/reference.md §5.3) — of the training-forward features by default (below);
4. ``iters`` iterations over the pseudo-labelled images: :class:`~reid_lab.data.RandomMultipleGallerySampler`
   (K = 8 per pseudo-id, preferring other cameras), batches of 256 cut from successive passes of the sampler
   (``drop_last``; the official ``IterLoader`` restarts the loader when it runs out), cluster-contrast's train
   transform (docs/reference.md §5.4) and the BN chunking of 4-GPU ``DataParallel`` (:mod:`reid_lab.usl.ghost_bn`);
5. evaluation every ``eval_step`` epochs and after the last one (query/gallery, post-BN normalised features,
   squared Euclidean distance, Market protocol — :func:`reid_lab.retrieval.evaluation.evaluate_features`);
6. ``StepLR(step_size, gamma=0.1).step()``.

Optimiser (docs/reference.md §5.4): SGD momentum 0.9 (``cfg.optimizer`` "Adam"/"AdamW" as the official options), lr 3.5e-4,
weight decay 5e-4. The official code builds one parameter group per tensor with identical settings; one group is
numerically the same and is what we build. Model (docs/reference.md §5.1): backbone (drop path 0.3) → BatchNorm1d (bias frozen)
→ L2 normalisation, both in training and at test time (:class:`USLModel`).

Machinery shared with the other trainers (:mod:`reid_lab.engine`): an atomic ``checkpoint.pth`` every epoch with the
optimizer, scheduler and RNG states — ``resume=True`` reproduces the uninterrupted run exactly (the memory and the
pseudo labels are rebuilt from the model at the start of each epoch, as in the official code, so they need no
saving) —, a NaN/inf guard that stops before the bad update, ``log.jsonl`` (one record per epoch), tqdm bars,
bf16 autocast on CUDA by default, and torchrun DDP.

DDP: every process extracts a contiguous shard of the training features, the shards are all-gathered, rank 0 runs
the Jaccard distance + DBSCAN and broadcasts the labels, so all ranks build the same memory. Every rank walks the
same global batch sequence and takes its own slice of each batch; the memory update all-gathers the whole global
batch. BN buffers are broadcast from rank 0 after every epoch (``DataParallel`` keeps the first device's running
statistics too), so ranks stay identical, weights and buffers.

Differences from the official code, on purpose:

* **Model selection.** The official script keeps ``model_best.pth.tar`` chosen by *test-set* mAP (docs/reference.md §9.21), which
  leaks the test labels into the reported number. We keep the **last epoch**; the test set is only evaluated for
  display. Likewise ARI/NMI of the pseudo labels against the true ids (when the dataset has them) are logged for
  display and never used for training or selection.
* An epoch where DBSCAN finds no cluster (or too few images for one batch) logs a warning and skips training
  instead of crashing; the schedule still advances.
* Random erasing fills with the correctly normalised mean colour (docs/reference.md §9.11; see
  :func:`reid_lab.data.build_usl_transforms`).
* The k-NN of the Jaccard distance uses a faiss GPU index only when one is available (docs/reference.md §9.4, §12.2).
* **The memory in the coordinates of the training forward** (``USLConfig.memory_features = "train"``, the default;
  ``"eval"`` is the official behaviour). The official memory is initialised with the eval-mode clustering features.
  Through the fresh BN neck (running statistics 0 and 1) those all share one direction (mean pairwise cosine 0.999
  on SynthMarket from the supervised course model), while the features the loss is computed on come from the
  training forward — batch-statistics BN in the neck and the ICS stem, drop path, augmentation — and point almost
  orthogonally to them (cosine 0.025 for the same image). The first steps then train against centroids that
  attract nothing (first-epoch loss 11.6 with *true* labels, ln C = 5.0) and break a good start (41 → 28 % mAP
  with true labels, issue 22). We build the centroids, at every clustering, from :func:`training_forward_features`
  of the clustered images (same labels; one extra forward pass without gradient, BN buffers untouched).
  Clustering itself still uses the eval-mode features, as the official code does.
* **Oracle labels** (``USLConfig.pseudo_labels = "oracle"``): the true training ids instead of DBSCAN — a positive
  control that proves the loop (``tests/test_usl_sanity.py``, notebook 04), never a way to train.
* **AdaBN start (UDA, opt-in).** ``UDAConfig.adabn=True`` re-estimates every BatchNorm's running statistics (ICS
  stem, fresh BN neck) on the target's training images before the first epoch (:func:`adapt_bn`); the official code
  does not. Without it, the first epoch's centroids come from eval-mode features normalised with the *source*
  statistics (stem) and the identity (fresh neck), while the training forward normalises with target batch
  statistics — the memory and the features it is trained against live in different coordinates.
  :func:`bn_only_transfer` is the same step alone, as a baseline (no gradient step at all). Each epoch also logs the
  pseudo labels' ``purity`` against true ids — display only, like ARI/NMI.
"""
from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Sampler

from .. import engine
from ..retrieval.clustering import PseudoLabelStats, dbscan_pseudo_labels, summarize_labels
from ..config import UDAConfig, USLConfig, to_dict
from ..data import ImageDataset, RandomMultipleGallerySampler, ReIDDataset, Sample
from ..models import batchnorm_layers, build_backbone, load_pretrained, reestimate_bn
from ..reid.model import ReIDModel, reid_checkpoint
from ..runlock import locked_run
from .ghost_bn import GhostBatchNorm, chunks_per_process, frozen_running_stats
from .memory import ClusterMemory, cluster_centroids

logger = logging.getLogger(__name__)

__all__ = ["CHECKPOINT_NAME", "LOG_NAME", "MODEL_NAME", "PseudoLabels", "USLModel", "USLResult", "build_optimizer",
           "adapt_bn", "bn_only_transfer", "build_usl_model", "evaluate_usl", "extract_features_for_clustering", "oracle_labels",
           "pseudo_label_epoch", "train_uda", "train_usl", "training_forward_features"]

CHECKPOINT_NAME = "checkpoint.pth"  # training state, every epoch
MODEL_NAME = "model.pth"  # the final model (no optimizer), loadable by load_pretrained / load_reid_model
LOG_NAME = "log.jsonl"
FORMAT = "reid_lab-usl"  # the "trainer" entry of our USL/UDA training checkpoints
AmpMode = Literal["auto", "bf16", "fp16", "none"]
_STRUCTURAL = ("arch", "height", "width")
_METRIC_KEYS = ("mAP", "rank1", "rank5", "rank10", "mINP")


# ----------------------------------------------------------------------------------------------- model
class USLModel(ReIDModel):
    """Backbone → BatchNorm1d (bias frozen) → L2 normalisation, in train *and* eval mode (docs/reference.md §5.1).

    A :class:`~reid_lab.reid.model.ReIDModel` without classifier (``num_classes=0``, ``neck_feat="after"``), so it
    keeps the ``base.*`` / ``bottleneck.*`` layout: :func:`~reid_lab.reid.model.reid_checkpoint` saves it,
    :func:`reid_lab.models.load_pretrained` reads its backbone back, :func:`~reid_lab.reid.model.load_reid_model`
    rebuilds it (whose eval output is the same feature before the final normalisation), and
    :func:`reid_lab.reid.extract` embeds images with it.
    """

    def __init__(self, base: nn.Module) -> None:
        super().__init__(base, num_classes=0, neck_feat="after")

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return F.normalize(self.bottleneck(self.base(x)), dim=1)


def build_usl_model(cfg: USLConfig, init: str | os.PathLike | dict | None = None) -> USLModel:
    """:class:`USLModel` of ``cfg.arch`` at ``cfg.height × cfg.width``, drop path ``cfg.drop_path_rate``.

    ``init``: ``None`` (random), or any file :func:`reid_lab.models.load_pretrained` reads — a DINO checkpoint
    (teacher), a released backbone, our supervised ``model.pth``/``checkpoint.pth`` or an official
    ``transformer_120.pth``. Only the backbone is taken; a source BN neck and classifier are discarded and the BN
    head starts fresh (docs/reference.md §5.7).
    """
    base = build_backbone(cfg.arch, img_size=(cfg.height, cfg.width), drop_path_rate=cfg.drop_path_rate)
    if init is not None:
        if isinstance(init, (str, os.PathLike)) and not Path(init).expanduser().is_file():
            raise FileNotFoundError(f"init checkpoint {init} does not exist")
        report = load_pretrained(base, init)
        logger.info("initialised %s from %s (%s, %d tensors)", cfg.arch, report.source, report.source_format,
                    len(report.loaded))
    return USLModel(base)


# ----------------------------------------------------------------------------------------------- results
@dataclass
class USLResult:
    """What :func:`train_usl` / :func:`train_uda` return.

    Attributes:
        model: the trained :class:`USLModel` in eval mode (``model(x)`` = post-BN, L2-normalised feature).
        history: one record per epoch (also in ``log.jsonl``): ``epoch``, ``num_clusters``, ``num_outliers``,
            ``outlier_fraction``, ``ari``/``nmi`` (None without true ids), ``loss`` (None for a skipped epoch),
            ``purity`` (display only, None without true ids), ``lr``, ``seconds`` (whole epoch), ``images_per_s`` (training), ``cluster_seconds``, ``skipped``; on
            evaluation epochs also ``mAP``, ``rank1``, ``rank5``, ``rank10``, ``mINP`` (fractions).
        initial: metrics of the starting model before any training (epoch 0; ``{}`` on ranks > 0).
        bn_adapted: metrics after the AdaBN start (``cfg.adabn``), before any gradient step; ``{}`` without it.
        final: metrics of the last evaluation (after the last epoch when ``finished``; ``{}`` on ranks > 0).
        checkpoint: ``output_dir/checkpoint.pth`` (training state of the last finished epoch).
        model_path: ``output_dir/model.pth`` once all epochs are done, else ``None``.
    """

    model: nn.Module
    history: list[dict[str, Any]]
    initial: dict[str, float]
    final: dict[str, float]
    checkpoint: Path
    model_path: Path | None
    epochs_done: int = 0
    finished: bool = False
    output_dir: Path | None = None
    bn_adapted: dict[str, float] = field(default_factory=dict)


@dataclass
class PseudoLabels:
    """One epoch's pseudo labels (docs/reference.md §5.2 steps 1–3), in the order of the samples given.

    Attributes:
        labels: (N,) int64 cluster ids, −1 = outlier.
        features: (N, D) float32 features they were computed from (CPU).
        centroids: (C, D) L2-normalised cluster means, the memory's initial value.
        samples: the clustered images as ``Sample(path, cluster, camid)``; outliers dropped.
        stats: counts and, when true ids are known, ARI / NMI (display only).
    """

    labels: np.ndarray
    features: torch.Tensor
    centroids: torch.Tensor
    samples: list[Sample]
    stats: PseudoLabelStats = field(repr=False)

    @property
    def num_clusters(self) -> int:
        return self.stats.num_clusters


# ----------------------------------------------------------------------------------------------- features / labels
def extract_features_for_clustering(model: nn.Module, samples: Sequence[Sample], height: int, width: int,
                                    device: str | torch.device = "cpu", *, batch_size: int = 256,
                                    num_workers: int = 0, progress: bool = True, distributed: bool = True
                                    ) -> torch.Tensor:
    """(N, D) float32 features of ``samples`` in their order: eval mode, cluster-contrast test transform, no flip.

    The model output is already L2-normalised (:class:`USLModel`); rows are re-normalised in float32 so that
    bf16 extraction stays on the unit sphere. Under an active process group (and ``distributed``) each rank
    extracts a contiguous ``ceil(N / W)`` shard and the shards are all-gathered, so every rank returns all N rows.
    The model must already be on ``device``.
    """
    from ..data import build_usl_transforms
    from ..retrieval.evaluation import extract_features

    device = torch.device(device)
    info = engine.dist_info() if distributed else engine.DistInfo()
    n = len(samples)
    if n == 0:
        raise ValueError("no samples to extract features from")
    shard = math.ceil(n / info.world_size)
    local = list(samples[info.rank * shard:(info.rank + 1) * shard])
    transform = build_usl_transforms(height, width, train=False)
    if local:
        loader = DataLoader(ImageDataset(local, transform), batch_size=batch_size, num_workers=num_workers,
                            pin_memory=device.type == "cuda")
        feats, _, _ = extract_features(engine.unwrap(model), loader, device, normalize=True, progress=progress)
    else:  # more ranks than images: an empty shard still joins the gather
        feats = torch.zeros(0, int(engine.unwrap(model).embed_dim))
    if not info.distributed:
        return feats
    padded = torch.zeros(shard, feats.shape[1], dtype=torch.float32, device=_comm_device(device))
    padded[: len(feats)] = feats.to(padded.device)
    parts = [torch.empty_like(padded) for _ in range(info.world_size)]
    dist.all_gather(parts, padded)
    return torch.cat(parts)[:n].cpu()


def _comm_device(device: torch.device) -> torch.device:
    """Where collective tensors live: the CUDA device under nccl, the CPU under gloo."""
    if dist.is_available() and dist.is_initialized() and dist.get_backend() == "nccl":
        return device
    return torch.device("cpu")


def _true_ids(samples: Sequence[Sample]) -> np.ndarray | None:
    """The samples' identities when they carry real ones (some non-negative, at least two distinct), else None."""
    ids = np.asarray([s.pid for s in samples], dtype=np.int64)
    if ids.size == 0 or ids.min() < 0 or len(np.unique(ids)) < 2:
        return None
    return ids


def pseudo_label_epoch(model: nn.Module, samples: Sequence[Sample], cfg: USLConfig,
                       device: str | torch.device = "cpu", *, features: torch.Tensor | None = None,
                       eps: float | None = None, batch_size: int = 256, num_workers: int = 0,
                       progress: bool = True) -> PseudoLabels:
    """Features → Jaccard distance → DBSCAN → cluster centroids for ``samples`` (docs/reference.md §5.2 steps 1–4).

    Args:
        model: the current model (on ``device``); not used when ``features`` is given.
        samples: the training images (``sorted(dataset.train)`` in training; their pids only feed ARI/NMI).
        cfg: supplies ``height``, ``width``, ``eps``, ``min_samples``, ``k1``, ``k2``.
        features: precomputed (N, D) normalised features (e.g. for an eps sweep without re-extracting).
        eps: overrides ``cfg.eps``.

    Under DDP the features are gathered from all ranks, DBSCAN runs on rank 0 and the labels are broadcast, so every
    rank returns the same labels and centroids. With no cluster found, ``centroids`` is empty (0, D) and
    ``samples`` is empty.
    """
    eps = cfg.eps if eps is None else eps
    device = torch.device(device)
    samples = list(samples)
    if features is None:
        features = extract_features_for_clustering(model, samples, cfg.height, cfg.width, device,
                                                   batch_size=batch_size, num_workers=num_workers, progress=progress)
    features = torch.as_tensor(features, dtype=torch.float32).cpu()
    if features.ndim != 2 or features.shape[0] != len(samples):
        raise ValueError(f"features must be ({len(samples)}, D) for {len(samples)} samples, got {tuple(features.shape)}")
    if cfg.k1 >= len(samples):
        raise ValueError(f"k1={cfg.k1} needs more than {cfg.k1} training images, got {len(samples)}: lower k1")
    info = engine.dist_info()
    if getattr(cfg, "pseudo_labels", "dbscan") == "oracle":
        labels = oracle_labels(samples)
    elif info.is_main:
        labels = dbscan_pseudo_labels(features, eps, cfg.min_samples, cfg.k1, cfg.k2)
    else:
        labels = np.zeros(len(samples), dtype=np.int64)
    if info.distributed:
        shared = torch.as_tensor(labels, dtype=torch.int64, device=_comm_device(device))
        dist.broadcast(shared, 0)
        labels = shared.cpu().numpy()
    stats = summarize_labels(labels, _true_ids(samples))
    if stats.num_clusters:
        centroids = cluster_centroids(features, labels)
    else:
        centroids = torch.zeros(0, features.shape[1])
    kept = [Sample(s.path, int(lab), s.camid) for s, lab in zip(samples, labels) if lab >= 0]
    return PseudoLabels(labels=labels, features=features, centroids=centroids, samples=kept, stats=stats)


def oracle_labels(samples: Sequence[Sample]) -> np.ndarray:
    """The samples' true ids renumbered 0..C-1 in order of first appearance: the *oracle* pseudo labels.

    A positive control (``USLConfig.pseudo_labels = "oracle"``): the loop fed perfect clusters must hold a good start
    and improve a weak one as supervised training does, else the fault is in the loop, not in the clustering.
    """
    ids = _true_ids(samples)
    if ids is None:
        raise ValueError("pseudo_labels='oracle' needs training samples with true ids (pid >= 0, two or more ids)")
    _, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    rank = np.empty(len(first), dtype=np.int64)
    rank[np.argsort(first, kind="stable")] = np.arange(len(first))
    return rank[inverse]


def training_forward_features(net: nn.Module, samples: Sequence[Sample], transform: Callable, batch_size: int,
                              device: str | torch.device, *, seed: int = 0, num_workers: int = 0,
                              progress: bool = False) -> torch.Tensor:
    """(N, D) features of ``samples`` (in their order) as the training step computes them — no gradient.

    ``net`` is the training network (the :class:`~reid_lab.usl.ghost_bn.GhostBatchNorm` wrapper, or any module whose
    train-mode forward is the training forward): train mode, so BatchNorm normalises with batch statistics (the ICS
    stem and the BN neck) and drop path is active, and ``transform`` is the training augmentation. The images are cut
    into global batches of ``batch_size`` in a seeded random order, so a batch mixes identities as a P×K batch does;
    a tail shorter than a batch joins the previous batch. Under a process group each rank embeds its slice of every
    global batch (as in training, so the BN groups are the same as in one process) and the rows are all-gathered, so
    every rank returns all N rows. BatchNorm running statistics are left untouched
    (:func:`~reid_lab.usl.ghost_bn.frozen_running_stats`): this pass changes nothing in the model.

    Why: the cluster memory must live in the coordinates of the features trained against it (issue 22,
    ``USLConfig.memory_features``).
    """
    from ..data import ImageDataset

    device = torch.device(device)
    info = engine.dist_info()
    # past DDP / DataParallel only: engine.unwrap would also strip a GhostBatchNorm wrapper and its BN groups
    parallel = (nn.parallel.DistributedDataParallel, nn.DataParallel)
    module = net.module if isinstance(net, parallel) else net
    n = len(samples)
    if n == 0:
        raise ValueError("no samples to extract features from")
    order = np.random.default_rng(seed).permutation(n)
    bounds = list(range(0, n, batch_size)) + [n]
    if len(bounds) > 2 and bounds[-1] - bounds[-2] < batch_size:
        del bounds[-2]  # a short tail joins the previous batch: every BN group keeps at least batch / chunks images
    slices = [np.array_split(order[a:b], info.world_size) for a, b in zip(bounds[:-1], bounds[1:])]
    mine = [part[info.rank] for part in slices]
    local = np.concatenate(mine)
    starts = np.cumsum([0] + [len(m) for m in mine])
    loader = DataLoader(ImageDataset([samples[i] for i in local], transform),
                        batch_sampler=[list(range(a, b)) for a, b in zip(starts[:-1], starts[1:]) if b > a],
                        num_workers=num_workers, pin_memory=device.type == "cuda")
    was_training = module.training
    dim = int(engine.unwrap(getattr(module, "module", module)).embed_dim)
    feats = torch.zeros(len(local), dim)
    module.train()
    try:
        with torch.no_grad(), frozen_running_stats(module):
            row = 0
            for images, *_ in engine.progress(loader, desc="training-forward features", enabled=progress):
                images = images.to(device, non_blocking=True)
                if len(images) < 2 * getattr(module, "chunks", 1):  # a slice smaller than the BN groups: one group
                    out = getattr(module, "module", module)(images) if len(images) > 1 else _eval_forward(module, images)
                else:
                    out = module(images)
                out = F.normalize(out.float(), dim=1).cpu()
                feats[row:row + len(out)] = out
                row += len(out)
    finally:
        module.train(was_training)
    result = torch.empty(n, dim)
    if not info.distributed:
        result[torch.as_tensor(local)] = feats
        return result
    counts = [sum(len(part[r]) for part in slices) for r in range(info.world_size)]
    padded = torch.zeros(max(counts), dim, dtype=torch.float32, device=_comm_device(device))
    padded[: len(feats)] = feats.to(padded.device)
    parts = [torch.empty_like(padded) for _ in range(info.world_size)]
    dist.all_gather(parts, padded)
    for r, part in enumerate(parts):
        rows = np.concatenate([p[r] for p in slices])
        result[torch.as_tensor(rows)] = part[: counts[r]].cpu()
    return result


def _eval_forward(module: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """One image cannot be batch-normalised: its feature with the running statistics (eval mode)."""
    module.eval()
    try:
        return module(images)
    finally:
        module.train()


# ----------------------------------------------------------------------------------------------- data / optimiser
class _GlobalBatches(Sampler[list[int]]):
    """``iters`` batches per epoch cut from successive passes of a pseudo-label sampler (the official ``IterLoader``).

    Each pass of ``sampler`` (one visit of every pseudo-id) is cut into whole batches of ``batch_size``; the
    remainder of a pass is dropped (``drop_last``), then the next pass starts. Under DDP every rank builds the same
    sequence and yields its own slice ``[rank·B/W, (rank+1)·B/W)`` of each global batch.
    """

    def __init__(self, sampler: RandomMultipleGallerySampler, batch_size: int, iters: int, rank: int = 0,
                 world_size: int = 1) -> None:
        self.sampler, self.batch_size, self.iters = sampler, batch_size, iters
        self.per_rank = batch_size // world_size
        self.rank = rank

    @property
    def empty(self) -> bool:
        """True when one pass of the sampler does not fill a single batch."""
        return len(self.sampler.epoch_indices(0)) < self.batch_size

    def __iter__(self) -> Iterator[list[int]]:
        if self.empty:
            return
        done, pass_index = 0, 0
        while done < self.iters:
            indices = self.sampler.epoch_indices(pass_index)
            pass_index += 1
            for start in range(0, len(indices) - self.batch_size + 1, self.batch_size):
                lo = start + self.rank * self.per_rank
                yield indices[lo:lo + self.per_rank].tolist()
                done += 1
                if done == self.iters:
                    return

    def __len__(self) -> int:
        return 0 if self.empty else self.iters


def build_optimizer(model: nn.Module, cfg: USLConfig) -> torch.optim.Optimizer:
    """SGD (momentum ``cfg.momentum``), Adam or AdamW with ``cfg.lr`` and ``cfg.weight_decay`` (docs/reference.md §5.4)."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    name = cfg.optimizer.lower()
    if name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ValueError(f"optimizer must be 'SGD', 'Adam' or 'AdamW', got {cfg.optimizer!r}")


# ----------------------------------------------------------------------------------------------- AdaBN
def adapt_bn(model: USLModel, samples: Sequence[Sample], cfg: USLConfig, device: str | torch.device, *,
             num_workers: int = 0) -> int:
    """Re-estimate ``model``'s BatchNorm running statistics on ``samples`` (AdaBN; our addition, module doc).

    The images go through the clustering (test) transform in batches of ``cfg.batch_size // cfg.bn_chunks`` — the
    chunk one BatchNorm sees in training (:mod:`~reid_lab.usl.ghost_bn`); no gradient, no parameter changes
    (:func:`reid_lab.models.reestimate_bn`). Everything but the BatchNorm layers stays in eval mode (no drop path),
    so the statistics are those of the features clustering and testing see. Returns the number of batches used
    (0: the model has no BatchNorm).
    """
    from ..data import build_usl_transforms

    device = torch.device(device)
    batch = max(1, cfg.batch_size // cfg.bn_chunks)
    loader = DataLoader(ImageDataset(list(samples), build_usl_transforms(cfg.height, cfg.width, train=False)),
                        batch_size=batch, num_workers=num_workers, pin_memory=device.type == "cuda",
                        drop_last=batch > 1 and len(samples) % batch == 1)  # BatchNorm cannot train on 1 image
    was_training = model.training
    try:
        with torch.no_grad():
            return reestimate_bn(_OnlyBatchNormTrains(model), loader, device)
    finally:
        model.train(was_training)


class _OnlyBatchNormTrains(nn.Module):
    """``module`` whose ``train()`` switches only its BatchNorm layers (the rest stays in eval mode)."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def train(self, mode: bool = True) -> _OnlyBatchNormTrains:
        self.training = mode
        self.module.eval()
        for layer in batchnorm_layers(self.module):
            layer.train(mode)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


def bn_only_transfer(cfg: USLConfig, target: ReIDDataset, source_checkpoint: str | os.PathLike | dict, *,
                     device: str | torch.device = "auto", num_workers: int = 0, batch_size: int = 256
                     ) -> dict[str, float]:
    """The BN-only baseline: the source backbone (fresh BN neck, as :func:`train_uda`) with :func:`adapt_bn` on
    ``target.train`` — no gradient step — evaluated on the target's query/gallery (metrics as :func:`evaluate_usl`).
    """
    dev = engine.resolve_device(device, 0)
    model = build_usl_model(cfg, source_checkpoint).to(dev)
    adapt_bn(model, sorted(target.train), cfg, dev, num_workers=num_workers)
    model.eval()
    return evaluate_usl(model, target, dev, height=cfg.height, width=cfg.width, batch_size=batch_size,
                        num_workers=num_workers, progress=False)


# ----------------------------------------------------------------------------------------------- evaluation
def evaluate_usl(model: nn.Module, dataset: ReIDDataset, device: str | torch.device, *, height: int, width: int,
                 batch_size: int = 256, num_workers: int = 0, progress: bool = True) -> dict[str, float]:
    """mAP / Rank-1/5/10 / mINP (fractions) on ``dataset.query`` vs ``dataset.gallery`` (docs/reference.md §5.5).

    Post-BN normalised features with the USL test transform, squared Euclidean distance, Market protocol (same id
    and camera removed), no re-ranking. The mAP is the TransReID loop (:mod:`reid_lab.retrieval.evaluation`), which may
    differ slightly from cluster-contrast's ``sklearn.average_precision_score`` on ties.
    """
    from ..retrieval.evaluation import evaluate_features

    feats = [extract_features_for_clustering(model, split, height, width, device, batch_size=batch_size,
                                             num_workers=num_workers, progress=progress, distributed=False)
             for split in (dataset.query, dataset.gallery)]
    ids = [np.asarray([(s.pid, s.camid) for s in split], dtype=np.int64) for split in (dataset.query, dataset.gallery)]
    result = evaluate_features(feats[0], feats[1], ids[0][:, 0], ids[1][:, 0], ids[0][:, 1], ids[1][:, 1],
                               normalize=True)
    return result.as_dict()


# ----------------------------------------------------------------------------------------------- resume
def _check_resumable(ckpt: dict[str, Any], cfg: USLConfig, path: Path) -> None:
    if ckpt.get("trainer") != FORMAT:
        raise ValueError(f"{path} is not a reid_lab USL/UDA training checkpoint (trainer={ckpt.get('trainer')!r}); "
                         "to start from its weights pass init=path instead of resume")
    engine.compare_resume_config(ckpt.get("config", {}), to_dict(cfg), path, structural=_STRUCTURAL, quiet=("epochs",))


def _sync_buffers(model: nn.Module, device: torch.device) -> None:
    """Broadcast rank 0's buffers (BN running statistics) so every rank holds the same model."""
    if not engine.dist_info().distributed:
        return
    comm = _comm_device(device)
    for buf in model.buffers():
        shared = buf.detach().to(comm)
        dist.broadcast(shared, 0)
        buf.copy_(shared.to(buf.device))


# ----------------------------------------------------------------------------------------------- the run
def _validate(cfg: USLConfig, dataset: ReIDDataset, world_size: int) -> int:
    """Check the config against the data and the process count; return the ghost-BN chunks per process."""
    if not getattr(dataset, "train", None):
        raise ValueError(f"dataset {getattr(dataset, 'name', dataset)!r} has an empty or missing 'train' split")
    if cfg.batch_size % world_size:
        raise ValueError(f"batch_size={cfg.batch_size} is not divisible by the {world_size} processes")
    if cfg.batch_size % cfg.bn_chunks:
        raise ValueError(f"batch_size={cfg.batch_size} is not divisible by bn_chunks={cfg.bn_chunks}")
    for name in ("epochs", "iters", "batch_size", "num_instances", "step_size", "eval_step", "min_samples"):
        if getattr(cfg, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(cfg, name)}")
    if not 0.0 < cfg.eps < 1.0:
        raise ValueError(f"eps must be in (0, 1) (a Jaccard distance), got {cfg.eps}")
    if cfg.memory_features not in ("train", "eval"):
        raise ValueError(f"memory_features must be 'train' (the training forward, ours) or 'eval' (the official "
                         f"clustering features), got {cfg.memory_features!r}")
    if cfg.pseudo_labels not in ("dbscan", "oracle"):
        raise ValueError(f"pseudo_labels must be 'dbscan' or 'oracle' (true ids, a control), got {cfg.pseudo_labels!r}")
    return chunks_per_process(cfg.bn_chunks, world_size)


@locked_run
def train_usl(cfg: USLConfig, dataset: ReIDDataset, output_dir: str | os.PathLike, *,
              init: str | os.PathLike | dict | None = None, device: str | torch.device = "auto",
              amp: AmpMode = "auto", resume: bool | str | os.PathLike = True, show_progress: bool = True,
              evaluate_every: int | None = None, num_workers: int = 0, stop_after: int | None = None,
              train_transform: Callable | None = None, eval_batch_size: int = 256) -> USLResult:
    """Cluster-contrast training on ``dataset.train`` without its labels; evaluation on query/gallery (module doc).

    Args:
        cfg: :class:`~reid_lab.config.USLConfig` (``resolve("usl", profile, ...)``); ``batch_size`` is global.
        dataset: a :class:`~reid_lab.data.ReIDDataset`; train ids are ignored except for the ARI/NMI display.
        output_dir: receives ``checkpoint.pth`` (every epoch, atomic), ``log.jsonl`` and at the end ``model.pth``.
        init: starting weights (:func:`build_usl_model`); ``None`` = random init. Ignored when resuming.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``…; under torchrun each process takes ``cuda:LOCAL_RANK``.
        amp: ``"auto"`` (bf16 on CUDA, fp32 on CPU), ``"bf16"``, ``"fp16"`` (GradScaler) or ``"none"``.
        resume: ``True`` continues from ``output_dir/checkpoint.pth`` when it exists (else starts fresh); a path
            resumes from that file; ``False`` starts fresh.
        show_progress: tqdm bars on rank 0.
        evaluate_every: evaluate every N epochs (default ``cfg.eval_step``) and always after the last epoch.
        num_workers: DataLoader workers per process.
        stop_after: stop after this many finished epochs, as if interrupted.
        train_transform: replaces cluster-contrast's train transform (PIL image → tensor).
        eval_batch_size: batch size of feature extraction.

    Returns:
        :class:`USLResult` — the **last** epoch's model (no test-set model selection, unlike the official
        ``model_best``; docs/reference.md §9.21).

    Raises:
        NonFiniteLossError: the loss became NaN/inf (the last epoch's checkpoint stays intact).
    """
    from ..data import build_usl_transforms

    info = engine.dist_info()
    dev = engine.resolve_device(device, info.local_rank)
    amp_mode = engine.resolve_amp(amp, dev)
    chunks = _validate(cfg, dataset, info.world_size)
    eval_every = cfg.eval_step if evaluate_every is None else int(evaluate_every)
    if eval_every < 1:
        raise ValueError(f"evaluate_every must be >= 1, got {evaluate_every}")
    output_dir = Path(output_dir)
    if info.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
    engine.barrier()
    ckpt_path, model_path = output_dir / CHECKPOINT_NAME, output_dir / MODEL_NAME
    resume_path = engine.resume_source(resume, ckpt_path)
    ckpt = engine.load_checkpoint(resume_path) if resume_path else None
    if ckpt is not None:
        _check_resumable(ckpt, cfg, resume_path)

    engine.seed_everything(cfg.seed)  # identical initialisation on every rank
    model = build_usl_model(cfg, None if ckpt is not None else init).to(dev)
    optimizer = build_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=0.1)
    scaler = torch.amp.GradScaler(dev.type) if amp_mode == "fp16" else None
    net: nn.Module = GhostBatchNorm(model, chunks)
    if info.distributed:
        net = nn.parallel.DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)
    log = engine.JsonlLog(output_dir / LOG_NAME, enabled=info.is_main)
    train_samples = sorted(dataset.train)  # the official order (features are keyed by sorted file names)
    transform = train_transform or build_usl_transforms(cfg.height, cfg.width, train=True)

    def evaluate_now() -> dict[str, float]:
        metrics: dict[str, float] = {}
        if info.is_main:
            metrics = evaluate_usl(model, dataset, dev, height=cfg.height, width=cfg.width,
                                   batch_size=eval_batch_size, num_workers=num_workers, progress=show_progress)
        engine.barrier()
        return metrics

    start_epoch, history, last_good = 0, [], None
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        scheduler.load_state_dict(ckpt["scheduler"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        start_epoch = int(ckpt["epoch"])
        engine.restore_rank_rng(ckpt.get("rng"), info, seed=cfg.seed, epoch=start_epoch)
        history = [dict(r) for r in ckpt.get("history", [])]
        initial, final = dict(ckpt.get("initial") or {}), dict(ckpt.get("metrics") or {})
        bn_adapted = dict(ckpt.get("bn_adapted") or {})
        if info.is_main:
            log.truncate("epoch", start_epoch)
        last_good = resume_path
        logger.info("USL resumes after epoch %d of %d (%s)", start_epoch, cfg.epochs, resume_path)
    else:
        if info.is_main and log.path.is_file():
            log.path.unlink()
        engine.seed_everything(cfg.seed + info.rank)  # ranks draw different augmentations
        initial = evaluate_now()
        final, bn_adapted = dict(initial), {}
        if initial:
            logger.info("before training: mAP %.1f%%, Rank-1 %.1f%%", 100 * initial["mAP"], 100 * initial["rank1"])
        if getattr(cfg, "adabn", False):
            adapt_bn(model, train_samples, cfg, dev, num_workers=num_workers)
            _sync_buffers(model, dev)
            final = bn_adapted = evaluate_now()
            if bn_adapted:
                logger.info("after AdaBN on the target: mAP %.1f%%, Rank-1 %.1f%%", 100 * bn_adapted["mAP"],
                            100 * bn_adapted["rank1"])
    logger.info("USL %s on %s: %d images, eps %.3g, %d process(es) x batch %d (%d BN chunk(s) each), %d it/epoch, "
                "%d epochs, amp %s, device %s", cfg.arch, getattr(dataset, "name", "data"), len(train_samples),
                cfg.eps, info.world_size, cfg.batch_size // info.world_size, chunks, cfg.iters, cfg.epochs,
                amp_mode, dev)

    end_epoch = cfg.epochs if stop_after is None else max(start_epoch, min(cfg.epochs, stop_after))
    autocast_dtype = torch.float16 if amp_mode == "fp16" else torch.bfloat16
    for epoch in range(start_epoch, end_epoch):
        began = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        labels = pseudo_label_epoch(model, train_samples, cfg, dev, batch_size=eval_batch_size,
                                    num_workers=num_workers, progress=show_progress)
        cluster_seconds = time.perf_counter() - began
        stats = labels.stats
        record: dict[str, Any] = {"epoch": epoch + 1, "num_clusters": stats.num_clusters,
                                  "num_outliers": stats.num_outliers, "outlier_fraction": stats.outlier_fraction,
                                  "ari": stats.ari, "nmi": stats.nmi, "purity": _purity(labels.labels, train_samples),
                                  "loss": None, "lr": lr,
                                  "cluster_seconds": cluster_seconds, "images_per_s": 0.0, "skipped": True}
        batches = None
        if stats.num_clusters == 0:
            logger.warning("epoch %d: DBSCAN (eps %.3g, min_samples %d) found no cluster among %d images — every "
                           "image is an outlier; skipping training this epoch (try a larger eps or a better init)",
                           epoch + 1, cfg.eps, cfg.min_samples, len(train_samples))
        else:
            seed = int(np.random.SeedSequence([cfg.seed, epoch]).generate_state(1)[0])
            sampler = RandomMultipleGallerySampler(labels.samples, cfg.num_instances, seed=seed)
            batches = _GlobalBatches(sampler, cfg.batch_size, cfg.iters, info.rank, info.world_size)
            if batches.empty:
                logger.warning("epoch %d: the %d clustered images of %d clusters do not fill one batch of %d; "
                               "skipping training this epoch (lower batch_size or raise eps)", epoch + 1,
                               len(labels.samples), stats.num_clusters, cfg.batch_size)
                batches = None
        if batches is not None:
            centroids = labels.centroids
            if cfg.memory_features == "train":  # the memory in the coordinates of the training forward (issue 22)
                seed_tf = int(np.random.SeedSequence([cfg.seed, epoch, 1]).generate_state(1)[0])
                feats_tf = training_forward_features(net, labels.samples, transform, cfg.batch_size, dev, seed=seed_tf,
                                                     num_workers=num_workers)
                centroids = cluster_centroids(feats_tf, np.array([s.pid for s in labels.samples]))
            memory = ClusterMemory(centroids, cfg.temperature, cfg.memory_momentum).to(dev)
            loader = DataLoader(ImageDataset(labels.samples, transform), batch_sampler=batches,
                                num_workers=num_workers, pin_memory=dev.type == "cuda")
            net.train()
            train_began = time.perf_counter()
            loss_sum = torch.zeros((), dtype=torch.float64)
            bar = engine.progress(loader, desc=f"USL epoch {epoch + 1}/{cfg.epochs}", total=cfg.iters,
                                  enabled=show_progress and info.is_main)
            for i, (images, targets, _camids, _index) in enumerate(bar):
                images = images.to(dev, non_blocking=True)
                with torch.autocast(dev.type, dtype=autocast_dtype, enabled=amp_mode != "none"):
                    feats = net(images)
                loss = memory(feats.float(), targets.to(dev))
                mean_loss = engine.all_reduce_mean(loss.detach().float())
                engine.check_finite(mean_loss, epoch=epoch + 1, step=epoch * cfg.iters + i, last_checkpoint=last_good,
                                    hint="Try a lower lr, amp='bf16' instead of 'fp16', or check the input images.")
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    optimizer.step()
                loss_sum += mean_loss.cpu().double()
                if show_progress and info.is_main and (i % 5 == 0 or i == cfg.iters - 1):
                    bar.set_postfix(loss=f"{float(mean_loss):.3f}", clusters=stats.num_clusters)
            train_seconds = time.perf_counter() - train_began
            record.update(loss=float(loss_sum) / cfg.iters, skipped=False,
                          images_per_s=cfg.iters * cfg.batch_size / max(train_seconds, 1e-9))
        with warnings.catch_warnings():  # a skipped epoch never called optimizer.step(); the schedule still advances
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step", category=UserWarning)
            scheduler.step()
        _sync_buffers(model, dev)
        if (epoch + 1) % eval_every == 0 or epoch + 1 == cfg.epochs:
            metrics = evaluate_now()
            if metrics:
                final = metrics
                record.update(metrics)
        record["seconds"] = time.perf_counter() - began
        history.append(record)
        log.append(record)
        rng_states = engine.gather_rng_states(info)
        if info.is_main:
            state = reid_checkpoint(model, trainer=FORMAT, optimizer=optimizer.state_dict(),
                                    scheduler=scheduler.state_dict(), epoch=epoch + 1, config=to_dict(cfg),
                                    rng=rng_states, initial=initial, metrics=final, history=history,
                                    bn_adapted=bn_adapted,
                                    scaler=scaler.state_dict() if scaler is not None else None,
                                    world_size=info.world_size, init=_describe(init))
            engine.save_checkpoint(state, ckpt_path)
        engine.barrier()
        last_good = ckpt_path
        logger.info("epoch %d/%d: %d clusters, %d outliers (%.1f%%)%s, loss %s, lr %.2e, %.1f s%s", epoch + 1,
                    cfg.epochs, stats.num_clusters, stats.num_outliers, 100 * stats.outlier_fraction,
                    f", ARI {stats.ari:.3f} NMI {stats.nmi:.3f}" if stats.ari is not None else "",
                    "skipped" if record["loss"] is None else f"{record['loss']:.4f}", lr, record["seconds"],
                    f", mAP {100 * record['mAP']:.1f}% Rank-1 {100 * record['rank1']:.1f}%" if "mAP" in record else "")

    epochs_done = max(start_epoch, end_epoch)
    finished = epochs_done >= cfg.epochs
    if finished and info.is_main:
        engine.save_checkpoint(reid_checkpoint(model, source=_stage(cfg), epochs=epochs_done, config=to_dict(cfg),
                                               initial=initial, bn_adapted=bn_adapted, metrics=final,
                                               init=_describe(init),
                                               dataset=getattr(dataset, "name", None)), model_path)
    engine.barrier()
    model.eval()
    return USLResult(model=model, history=history, initial=initial, final=final, checkpoint=ckpt_path,
                     model_path=model_path if finished else None, epochs_done=epochs_done, finished=finished,
                     output_dir=output_dir, bn_adapted=bn_adapted)


def train_uda(cfg: UDAConfig, target: ReIDDataset, source_checkpoint: str | os.PathLike | dict,
              output_dir: str | os.PathLike, **kwargs: Any) -> USLResult:
    """Domain adaptation: :func:`train_usl` on the unlabeled ``target`` starting from ``source_checkpoint`` (docs/reference.md §5.7).

    ``source_checkpoint`` is the supervised model fine-tuned on the source dataset (our ``reid_lab.reid`` ``model.pth``
    / ``checkpoint.pth``, or an official ``transformer_120.pth``); its backbone is loaded and its BN neck and
    classifier are discarded. No source data, no extra loss: exactly the USL recipe. ``kwargs`` as :func:`train_usl`
    (``init`` is not accepted: the source checkpoint is the initialisation).
    """
    if "init" in kwargs:
        raise TypeError("train_uda takes the initialisation as source_checkpoint, not init=")
    if source_checkpoint is None:
        raise ValueError("train_uda needs a source_checkpoint (the supervised model of the source domain)")
    if isinstance(source_checkpoint, (str, os.PathLike)) and not Path(source_checkpoint).expanduser().is_file():
        raise FileNotFoundError(f"source checkpoint {source_checkpoint} does not exist; train the source model first "
                                f"(reid_lab.reid.train or `reid-lab train --dataset {getattr(cfg, 'source_dataset', '?')}`)")
    logger.info("UDA %s -> %s from %s", getattr(cfg, "source_dataset", "source"), getattr(target, "name", "target"),
                _describe(source_checkpoint))
    return train_usl(cfg, target, output_dir, init=source_checkpoint, **kwargs)


def _purity(labels: np.ndarray, samples: Sequence[Sample]) -> float | None:
    """Display-only purity of the pseudo labels against the samples' true ids (None without ids or clusters)."""
    from ..retrieval.clustering import cluster_purity

    ids = _true_ids(samples)
    return None if ids is None else cluster_purity(labels, ids)


def _describe(init: Any) -> str | None:
    if init is None:
        return None
    return str(init) if isinstance(init, (str, os.PathLike)) else "<in-memory state dict>"


def _stage(cfg: USLConfig) -> str:
    return "uda" if isinstance(cfg, UDAConfig) else "usl"
