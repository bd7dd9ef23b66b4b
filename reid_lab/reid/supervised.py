"""Supervised ReID fine-tuning with the TransReID recipe (docs/reference.md §4): train loop, evaluation, checkpoints.

Entry points: :func:`train` (one CPU process, one GPU, or N processes under ``torchrun``) and :func:`evaluate`.

The recipe (``transreid_pytorch``; every value comes from :class:`~reid_lab.config.SupervisedConfig`):

* model: backbone + BNNeck + bias-free classifier (:class:`~reid_lab.reid.model.ReIDModel`), drop-path 0.1;
* data: P×K identity sampler (16 × 4), TransReID train transform (docs/reference.md §4.3), mean = std = 0.5;
* loss: CE + soft-margin batch-hard triplet on the pre-BN feature (:class:`~reid_lab.reid.losses.ReIDLoss`);
* optimiser: SGD, momentum 0.9, **one parameter group per tensor**, lr × ``bias_lr_factor`` (2) and
  ``weight_decay_bias`` for tensors whose name contains "bias", no decay exclusions (docs/reference.md §4.4);
* schedule: per-epoch cosine with warm-up, :class:`~reid_lab.reid.schedule.WarmupCosineLR` (``official_schedule``
  picks the official off-by-one, docs/reference.md §9.8);
* evaluation every ``eval_period`` epochs and at the end: pre-BN CLS, L2-normalised, squared Euclidean, Market
  protocol, mAP / Rank-1/5/10 / mINP; with ``rerank`` also k-reciprocal re-ranking (k1 20, k2 6, λ 0.3), which the
  official flag never reached (docs/reference.md §9.7).

Machinery shared with pre-training (:mod:`reid_lab.engine`): bf16 autocast on CUDA by default (fp16 + GradScaler
or fp32 on request), torchrun DDP (:class:`~reid_lab.data.DistributedRandomIdentitySampler` splits each global P×K
batch into per-rank blocks of whole identities), an atomic ``checkpoint.pth`` every epoch with optimizer and RNG
states (``resume=True`` reproduces the uninterrupted run exactly), a NaN/inf guard that stops before the bad update,
``log.jsonl`` (one record per epoch) and tqdm bars on rank 0.

Differences from the official code, on purpose: the lr schedule default (see the schedule module); re-ranking works;
checkpoints never carry DDP's ``module.`` prefix; BN statistics stay per process under DDP, as in the official code
(no SyncBN, docs/reference.md §9.26).
"""
from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import DataLoader

from .. import dryrun, engine
from ..config import SupervisedConfig, to_dict, with_given
from ..data import DistributedRandomIdentitySampler, ImageDataset, RandomIdentitySampler, ReIDDataset
from ..data.base import relabel
from ..runlock import locked_run
from .losses import ReIDLoss
from .model import build_reid_model, reid_checkpoint
from .schedule import WarmupCosineLR

logger = logging.getLogger(__name__)

__all__ = ["CHECKPOINT_NAME", "MODEL_NAME", "LOG_NAME", "FORMAT", "build_optimizer", "build_schedule", "evaluate",
           "train"]

CHECKPOINT_NAME = "checkpoint.pth"  # training state, every epoch (also loadable by load_pretrained / load_reid_model)
MODEL_NAME = "model.pth"  # the final model without optimizer state
LOG_NAME = "log.jsonl"
FORMAT = "reid_lab-supervised"  # the "trainer" entry of our training checkpoints
AmpMode = Literal["auto", "bf16", "fp16", "none"]
_STRUCTURAL = ("arch", "height", "width", "batch_size", "num_instances")


# ----------------------------------------------------------------------------------------------- optimiser
def build_optimizer(model: nn.Module, cfg: SupervisedConfig) -> torch.optim.SGD:
    """SGD with one group per trainable tensor (docs/reference.md §4.4); "bias" in the name → lr × factor, bias weight decay."""
    groups = []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        is_bias = "bias" in name
        groups.append({"params": [param], "name": name,
                       "lr": cfg.base_lr * (cfg.bias_lr_factor if is_bias else 1.0),
                       "weight_decay": cfg.weight_decay_bias if is_bias else cfg.weight_decay})
    if not groups:
        raise ValueError("the model has no trainable parameters")
    return torch.optim.SGD(groups, lr=cfg.base_lr, momentum=cfg.momentum)


def build_schedule(optimizer: torch.optim.Optimizer, cfg: SupervisedConfig, official: bool = False) -> WarmupCosineLR:
    """The per-epoch warm-up + cosine schedule of ``cfg`` over the optimizer's groups (docs/reference.md §4.4)."""
    base = [g.get("initial_lr", g["lr"]) for g in optimizer.param_groups]
    for g, lr in zip(optimizer.param_groups, base):
        g["initial_lr"] = lr
    return WarmupCosineLR(base, cfg.epochs, cfg.warmup_epochs, cfg.warmup_lr_factor, cfg.min_lr_factor,
                          base_lr=cfg.base_lr, official=official)


# ----------------------------------------------------------------------------------------------- evaluation
def evaluate(model: nn.Module, dataset: ReIDDataset, device: str | torch.device, *, height: int, width: int,
             rerank: bool = False, batch_size: int = 128, num_workers: int = 0, flip: bool = False,
             progress: bool = True) -> dict[str, float]:
    """Market-protocol metrics of ``model`` on ``dataset.query`` / ``dataset.gallery`` (docs/reference.md §4.6).

    Returns fractions in [0, 1]: ``mAP``, ``rank1``, ``rank5``, ``rank10``, ``mINP`` and, with ``rerank``, the same
    keys prefixed ``rerank_``.
    """
    from ..data import build_reid_transforms
    from ..retrieval.evaluation import evaluate_features, extract_features

    device = torch.device(device)
    model = engine.unwrap(model)
    transform = build_reid_transforms(height, width, train=False)
    feats = []
    for split in (dataset.query, dataset.gallery):
        loader = DataLoader(ImageDataset(split, transform), batch_size=batch_size, num_workers=num_workers)
        feats.append(extract_features(model, loader, device, flip=flip, progress=progress))
    (qf, q_pids, q_cams), (gf, g_pids, g_cams) = feats
    metrics = evaluate_features(qf, gf, q_pids, g_pids, q_cams, g_cams, normalize=True).as_dict()
    if rerank:
        metrics.update(evaluate_features(qf, gf, q_pids, g_pids, q_cams, g_cams, normalize=True,
                                         rerank=True).as_dict("rerank_"))
    return metrics


# ----------------------------------------------------------------------------------------------- helpers
def _train_samples(dataset: ReIDDataset) -> tuple[list, int]:
    for split in ("train", "query", "gallery"):
        if not getattr(dataset, split, None):
            raise ValueError(f"dataset {getattr(dataset, 'name', dataset)!r} has an empty or missing {split!r} split")
    train = list(dataset.train)
    pids = sorted({s.pid for s in train})
    if pids != list(range(len(pids))):
        logger.info("relabelling %d training identities to 0..%d", len(pids), len(pids) - 1)
        train = relabel(train)
    return train, len(pids)


def _check_resumable(ckpt: dict[str, Any], cfg: SupervisedConfig, num_classes: int, path: Path) -> None:
    if ckpt.get("trainer") != FORMAT:
        raise ValueError(f"{path} is not a reid_lab supervised training checkpoint (trainer={ckpt.get('trainer')!r}); "
                         "to start from weights pass pretrained=path instead of resume")
    if ckpt.get("num_classes") != num_classes:
        raise ValueError(f"cannot resume from {path}: num_classes checkpoint {ckpt.get('num_classes')} vs data "
                         f"{num_classes}")
    engine.compare_resume_config(ckpt.get("config", {}), to_dict(cfg), path, structural=_STRUCTURAL)


# ----------------------------------------------------------------------------------------------- the run
@locked_run
def train(cfg: SupervisedConfig, dataset: ReIDDataset, output_dir: str | os.PathLike,
          device: str | torch.device = "auto", pretrained: str | os.PathLike | dict | None = None,
          resume: bool | str | os.PathLike = False, *, num_workers: int = 0, amp: AmpMode = "auto",
          official_schedule: bool | None = None, eval_period: int | None = None, rerank: bool | None = None,
          stop_after: int | None = None, progress: bool = True, checkpoint_key: str | None = None,
          train_transform: Callable | None = None, eval_batch_size: int = 128) -> dict[str, Any]:
    """Fine-tune ``cfg.arch`` on ``dataset.train`` and evaluate on its query/gallery (module docstring).

    Args:
        cfg: :class:`~reid_lab.config.SupervisedConfig` (``resolve("supervised", profile, ...)``); ``batch_size`` is
            the global P×K batch, split over the processes.
        dataset: a :class:`~reid_lab.data.ReIDDataset` (train pids are relabelled to 0..N-1 if needed).
        output_dir: receives ``checkpoint.pth`` (every epoch, atomic), ``log.jsonl`` and, when all epochs are done,
            ``model.pth`` (final weights + metrics, no optimizer). Both load with
            :func:`~reid_lab.reid.model.load_reid_model` and :func:`reid_lab.models.load_pretrained`.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``…; under torchrun each process takes ``cuda:LOCAL_RANK``.
        pretrained: backbone initialisation (any format of docs/reference.md §3; ``None`` = random init).
        resume: ``True`` continues from ``output_dir/checkpoint.pth`` if present; a path resumes from that file.
        num_workers: DataLoader workers per process.
        amp: ``"auto"`` (bf16 on CUDA, fp32 on CPU), ``"bf16"``, ``"fp16"`` (GradScaler) or ``"none"``.
        official_schedule: reproduce the official per-epoch lr off-by-one (docs/reference.md §9.8); default
            ``cfg.official_schedule``.
        eval_period: evaluate every N epochs (default ``cfg.eval_period``) and always after the last epoch.
        rerank: also report k-reciprocal re-ranked metrics (default ``cfg.rerank``).
            The last three replace the config's values (the config saved in the checkpoint is the one record).
        stop_after: stop after this many finished epochs, as if interrupted (schedule still spans ``cfg.epochs``).
        progress: tqdm bars on rank 0.
        checkpoint_key: entry of a DINO (``teacher``/``student``) or reid_lab ``pretrained`` checkpoint.
        train_transform: replaces the TransReID train transform (PIL image → tensor).
        eval_batch_size: batch size of feature extraction.

    Returns:
        ``{"model", "history", "metrics", "checkpoint", "model_path", "epochs_done", "finished", "output_dir",
        "num_classes"}`` — ``model`` is the unwrapped :class:`~reid_lab.reid.model.ReIDModel` in eval mode, ``history`` one dict per
        finished epoch (also in ``log.jsonl``), ``metrics`` the last evaluation (fractions; under DDP only rank 0
        evaluates, the other ranks get ``{}``).

    Raises:
        NonFiniteLossError: the loss became NaN/inf (the last epoch's checkpoint stays intact).
    """
    from ..data import build_reid_transforms

    info = engine.dist_info()
    dev = engine.resolve_device(device, info.local_rank)
    amp_mode = engine.resolve_amp(amp, dev)
    cfg = with_given(cfg, official_schedule=official_schedule, eval_period=eval_period, rerank=rerank)
    eval_period, rerank = cfg.eval_period, cfg.rerank
    if cfg.batch_size % (info.world_size * cfg.num_instances):
        raise ValueError(f"batch_size={cfg.batch_size} must split into whole identities over {info.world_size} "
                         f"process(es) (a multiple of world_size x num_instances = {info.world_size * cfg.num_instances})")
    output_dir = Path(output_dir)
    if info.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
    engine.barrier()
    ckpt_path, model_path = output_dir / CHECKPOINT_NAME, output_dir / MODEL_NAME

    train_samples, num_classes = _train_samples(dataset)
    transform = train_transform or build_reid_transforms(cfg.height, cfg.width, train=True)
    if info.distributed:
        sampler = DistributedRandomIdentitySampler(train_samples, cfg.batch_size, cfg.num_instances,
                                                   num_replicas=info.world_size, rank=info.rank, seed=cfg.seed)
    else:
        sampler = RandomIdentitySampler(train_samples, cfg.batch_size, cfg.num_instances, seed=cfg.seed)
    per_process = cfg.batch_size // info.world_size
    loader = DataLoader(ImageDataset(train_samples, transform), batch_size=per_process, sampler=sampler,
                        num_workers=num_workers, pin_memory=dev.type == "cuda")
    iters = dryrun.limit(len(loader))  # a dry run stops each epoch after N iterations
    if iters == 0:
        raise ValueError(f"{num_classes} identities give no full P×K batch of {cfg.batch_size}: lower batch_size")

    resume_path = engine.resume_source(resume, ckpt_path)
    ckpt = engine.load_checkpoint(resume_path) if resume_path else None
    if ckpt is not None:
        _check_resumable(ckpt, cfg, num_classes, resume_path)

    engine.seed_everything(cfg.seed)  # identical initialisation on every rank
    model = build_reid_model(cfg.arch, num_classes, (cfg.height, cfg.width), drop_path_rate=cfg.drop_path_rate,
                             pretrained=None if ckpt is not None else pretrained, checkpoint_key=checkpoint_key)
    model = model.to(dev)
    optimizer = build_optimizer(model, cfg)
    schedule = build_schedule(optimizer, cfg, cfg.official_schedule)
    criterion = ReIDLoss(cfg.label_smoothing, cfg.triplet_margin)
    scaler = torch.amp.GradScaler(dev.type) if amp_mode == "fp16" else None
    net: nn.Module = model
    if info.distributed:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[dev.index] if dev.type == "cuda" else None)
    log = engine.JsonlLog(output_dir / LOG_NAME, enabled=info.is_main)

    start_epoch, history, last_good, metrics = 0, [], None, {}
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if scaler is not None and ckpt.get("scaler"):
            scaler.load_state_dict(ckpt["scaler"])
        start_epoch = int(ckpt["epoch"])
        engine.restore_rank_rng(ckpt.get("rng"), info, seed=cfg.seed, epoch=start_epoch)
        history = log.truncate("epoch", start_epoch)
        metrics = dict(ckpt.get("metrics") or {})
        last_good = resume_path
        logger.info("resumed from %s after epoch %d/%d", resume_path, start_epoch, cfg.epochs)
    else:
        if info.is_main and log.path.is_file():
            log.path.unlink()
        engine.seed_everything(cfg.seed + info.rank)  # ranks draw different augmentations
    logger.info("fine-tuning %s on %s: %d ids, %d images, %d process(es) x batch %d, %d it/epoch, %d epochs, "
                "amp %s, device %s, %s", cfg.arch, getattr(dataset, "name", "data"), num_classes, len(train_samples),
                info.world_size, per_process, iters, cfg.epochs, amp_mode, dev, schedule)

    end_epoch = cfg.epochs if stop_after is None else max(start_epoch, min(cfg.epochs, stop_after))
    autocast_dtype = torch.float16 if amp_mode == "fp16" else torch.bfloat16
    for epoch in range(start_epoch, end_epoch):
        lrs = schedule.apply(optimizer, epoch)
        sampler.set_epoch(epoch)
        net.train()
        began = time.perf_counter()
        sums = torch.zeros(4, dtype=torch.float64)
        bar = engine.progress(loader, desc=f"fine-tune epoch {epoch + 1}/{cfg.epochs}", total=iters,
                              enabled=progress and info.is_main)
        for i, (images, pids, _camids, _index) in enumerate(bar):
            if i >= iters:
                break
            images, pids = images.to(dev, non_blocking=True), pids.to(dev, non_blocking=True)
            with torch.autocast(dev.type, dtype=autocast_dtype, enabled=amp_mode != "none"):
                logits, feat = net(images)
                parts = criterion(logits, feat, pids)
            packed = engine.all_reduce_mean(torch.stack([parts.total.detach().float(), parts.id.float(),
                                                         parts.triplet.float(), parts.accuracy.float()]))
            engine.check_finite(packed[0], epoch=epoch + 1, step=epoch * iters + i, last_checkpoint=last_good,
                                hint="Try a lower base_lr or amp='bf16' instead of 'fp16', or check the input images.")
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(parts.total).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                parts.total.backward()
                optimizer.step()
            sums += packed.detach().cpu().double()
            if progress and info.is_main and (i % 5 == 0 or i == iters - 1):
                bar.set_postfix(loss=f"{packed[0]:.3f}", acc=f"{packed[3]:.2f}", lr=f"{lrs[0]:.2e}")
        seconds = time.perf_counter() - began
        mean = (sums / iters).tolist()
        record: dict[str, Any] = {"epoch": epoch + 1, "loss": mean[0], "id_loss": mean[1], "triplet_loss": mean[2],
                                  "accuracy": mean[3], "lr": lrs[0], "seconds": seconds,
                                  "images_per_s": iters * cfg.batch_size / seconds}
        if (epoch + 1) % eval_period == 0 or epoch + 1 == cfg.epochs:
            if info.is_main:
                began_eval = time.perf_counter()
                metrics = evaluate(model, dataset, dev, height=cfg.height, width=cfg.width, rerank=rerank,
                                   batch_size=eval_batch_size, num_workers=num_workers, progress=progress)
                record.update(metrics, eval_seconds=time.perf_counter() - began_eval)
                logger.info("epoch %d/%d: mAP %.1f%%, Rank-1 %.1f%%, mINP %.1f%%%s", epoch + 1, cfg.epochs,
                            100 * metrics["mAP"], 100 * metrics["rank1"], 100 * metrics["mINP"],
                            f" | re-ranked mAP {100 * metrics['rerank_mAP']:.1f}%" if rerank else "")
            engine.barrier()
        history.append(record)
        log.append(record)
        rng_states = engine.gather_rng_states(info)
        if info.is_main:
            state = reid_checkpoint(model, trainer=FORMAT, optimizer=optimizer.state_dict(), epoch=epoch + 1,
                                    config=to_dict(cfg), rng=rng_states, metrics=metrics,
                                    scaler=scaler.state_dict() if scaler is not None else None,
                                    world_size=info.world_size, official_schedule=cfg.official_schedule)
            engine.save_checkpoint(state, ckpt_path)
        engine.barrier()
        last_good = ckpt_path
        logger.info("epoch %d/%d: loss %.4f (id %.4f, triplet %.4f), acc %.3f, lr %.2e, %.0f img/s", epoch + 1,
                    cfg.epochs, record["loss"], record["id_loss"], record["triplet_loss"], record["accuracy"],
                    lrs[0], record["images_per_s"])

    epochs_done = max(start_epoch, end_epoch)
    finished = epochs_done >= cfg.epochs
    if finished and info.is_main:
        engine.save_checkpoint(reid_checkpoint(model, source="supervised", epochs=epochs_done, config=to_dict(cfg),
                                               metrics=metrics, dataset=getattr(dataset, "name", None)), model_path)
    engine.barrier()
    model.eval()
    return {"model": model, "history": history, "metrics": metrics, "checkpoint": ckpt_path,
            "model_path": model_path if finished else None, "epochs_done": epochs_done, "finished": finished,
            "output_dir": output_dir, "num_classes": num_classes}
