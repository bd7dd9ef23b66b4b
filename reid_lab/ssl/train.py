"""DINO pre-training on a LUPerson-style pool: student, EMA teacher, schedules, DDP, checkpoints (docs/reference.md §2.6, §3.1).

Entry point: :func:`pretrain`. One code path serves one CPU process, one GPU, or N processes launched by
``torchrun --nproc_per_node N -m reid_lab pretrain …`` (call :func:`reid_lab.engine.init_distributed` first;
the CLI does).

What each step does (the official ``train_one_epoch`` of ``dino/main_dino.py``):

1. set lr (linear warm-up then cosine, peak ``base_lr · batch/256``) and weight decay (cosine 0.04 → 0.4) for
   this iteration; weight decay only on the regularised group (parameters with ndim > 1);
2. teacher forward on the 2 global crops — in **train mode**, so its BatchNorm (ICS stem) normalises with the
   batch statistics and updates its *own* running buffers (docs/reference.md §9.12, §11.4 fix part 2); student
   forward on all crops; :class:`~reid_lab.ssl.loss.DINOLoss` (centre updated inside);
3. NaN/inf guard (the loss is averaged over processes first, so all ranks stop together);
4. backward (fp16: scaled), per-tensor gradient clipping at ``clip_grad``, last-layer gradients dropped while
   ``epoch < freeze_last_layer``, optimizer step;
5. teacher EMA over **parameters only** with momentum cosine 0.996 → 1 per iteration.

Checkpoints (``checkpoint.pth``, atomic, every epoch) follow DINO's schema (docs/reference.md §3.1) — ``student``, ``teacher``,
``optimizer``, ``epoch`` (finished epochs), ``args`` (a plain dict), ``dino_loss`` (``center``), ``fp16_scaler`` —
plus ``format: "reid_lab-dino"``, ``config``, ``rng`` (per-rank generator states) and ``iters_per_epoch``.
Difference from the official files: ``student``/``teacher`` keys never carry DDP's ``module.`` prefix (the same
file resumes under any number of processes); ``load_pretrained`` accepts both forms.

Differences from the official code, on purpose: the teacher is not wrapped in DDP (modern PyTorch refuses DDP on a
module without trainable parameters; SyncBatchNorm synchronises without it); on CPU under gloo SyncBatchNorm is
unavailable, so BN statistics stay per process there (logged).
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .. import dryrun, engine
from ..config import PretrainConfig, to_dict, with_given
from ..runlock import locked_run
from .loss import DINOLoss
from .monitor import CollapseMonitor, KNNProbe, StepStats, mean_pairwise_cosine
from .multicrop import MultiCropWrapper, PersonMultiCrop

logger = logging.getLogger(__name__)

AmpMode = Literal["auto", "bf16", "fp16", "none"]
CHECKPOINT_NAME = "checkpoint.pth"
BACKBONE_NAME = "teacher_backbone.pth"
LOG_NAME = "log.jsonl"
STEPS_LOG_NAME = "steps.jsonl"
FORMAT = "reid_lab-dino"
# fields that change the network's shapes: a checkpoint with other values cannot be resumed
_STRUCTURAL = ("arch", "out_dim", "head_hidden_dim", "head_bottleneck_dim", "norm_last_layer", "global_size")


# ----------------------------------------------------------------------------------------------- data
class MultiCropImages(Dataset):
    """Unlabelled images → list of multi-crop tensors (one item per image).

    An unreadable image (damaged after the pool was verified) is skipped with a warning naming it and counting the
    skips of this process; the next image takes its place. After ``max_consecutive_bad`` unreadable images in a row
    the pool is declared damaged with a :class:`~reid_lab.data.DatasetError`.
    """

    def __init__(self, paths: Sequence[str | os.PathLike], transform: PersonMultiCrop, max_consecutive_bad: int = 10):
        self.paths = paths  # kept as given: LUPersonPool.samples is a lazy sequence (millions of files)
        self.transform = transform
        self.max_consecutive_bad = max_consecutive_bad
        self.skipped = 0  # per process (each DataLoader worker holds a copy)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> list[torch.Tensor]:
        from ..data import DatasetError, read_image

        for offset in range(self.max_consecutive_bad):
            try:
                image = read_image(self.paths[(index + offset) % len(self.paths)])
            except DatasetError as err:
                self.skipped += 1
                logger.warning("skipped an unreadable pre-training image (%d so far in this process): %s",
                               self.skipped, err)
                continue
            return self.transform(image)
        raise DatasetError(f"{self.max_consecutive_bad} unreadable pre-training images in a row from index {index} "
                           f"({self.paths[index]}): the pool looks damaged; check it with LUPersonPool(root, "
                           "verify='full')")


def pool_paths(data: Any, cfg: PretrainConfig, ranked_list: str | os.PathLike | None = None,
               keep_num: int | None = None) -> Sequence[Path]:
    """The image paths to pre-train on.

    ``data`` may be a pool object with ``.samples`` (e.g. :class:`reid_lab.data.LUPersonPool`), a list of image
    paths, or a LUPerson-style folder (``<root>/images/*.jpg``). For a folder the CFS subset rule applies
    (docs/reference.md §1.3): with ``keep_num`` or ``cfg.keep_ratio`` the head of ``ranked_list`` is kept — by default
    ``<root>/CFS_list.pkl`` (docs/reference.md §2.8 layout); with neither, every image under the folder.
    """
    if hasattr(data, "samples"):
        paths: Sequence[Path] = data.samples
    elif isinstance(data, Sequence) and not isinstance(data, str):
        paths = data  # a list of paths or a lazy sequence such as LUPersonPool.samples
    elif isinstance(data, (str, os.PathLike)):
        from ..data import LUPersonPool

        keep_num = cfg.keep_num if keep_num is None else keep_num
        subset = keep_num is not None or cfg.keep_ratio is not None
        if subset and ranked_list is None:
            default = Path(data) / "CFS_list.pkl"
            if not default.is_file():
                raise FileNotFoundError(
                    f"keep_ratio={cfg.keep_ratio} / keep_num={keep_num} select the head of a CFS-ranked list, but "
                    f"no ranked_list was given and {default} does not exist; pass ranked_list=... (the CLI's "
                    "--cfs-list) or keep_ratio=None to use the whole pool")
            ranked_list = default
        if keep_num is not None:
            pool = LUPersonPool(data, ranked_list=ranked_list, keep_num=keep_num)
        elif cfg.keep_ratio is not None:
            pool = LUPersonPool(data, ranked_list=ranked_list, keep_ratio=cfg.keep_ratio)
        else:
            pool = LUPersonPool(data, ranked_list=ranked_list, keep_ratio=1.0 if ranked_list else None)
        paths = pool.samples
    else:
        raise TypeError(f"data must be a pool with .samples, a sequence of image paths or a folder, got "
                        f"{type(data).__name__}")
    if len(paths) == 0:
        raise ValueError(f"the pre-training pool {data!r} holds no images")
    return paths


AUGMENTS = ("pil", "batched")


def build_multicrop(cfg: PretrainConfig, jitter_strength: float | None = None, batched: bool = False):
    """The multi-crop transform of ``cfg`` (docs/reference.md §2.5); ``jitter_strength`` defaults to ``cfg.jitter_strength``.

    ``batched=True`` gives the tensor-side :class:`~reid_lab.ssl.batched_multicrop.BatchedMultiCrop` (same
    arguments) instead of the per-image PIL :class:`~reid_lab.ssl.multicrop.PersonMultiCrop`.
    """
    jitter_strength = cfg.jitter_strength if jitter_strength is None else jitter_strength
    if batched:
        from .batched_multicrop import BatchedMultiCrop

        cls = BatchedMultiCrop
    else:
        cls = PersonMultiCrop
    return cls(global_size=cfg.global_size, local_size=cfg.local_size,
                           local_crops_number=cfg.local_crops_number, global_crops_scale=cfg.global_crops_scale,
                           local_crops_scale=cfg.local_crops_scale, jitter_strength=jitter_strength,
                           grayscale_p=cfg.grayscale_p, blur_radius=cfg.blur_radius, ratio=cfg.crop_ratio)


# ----------------------------------------------------------------------------------------------- the trainer
def param_groups(model: nn.Module) -> list[dict[str, Any]]:
    """DINO's two AdamW groups: regularised (ndim > 1) and not (biases, 1-D norms); frozen parameters left out."""
    regularised, not_regularised = [], []
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        (not_regularised if name.endswith(".bias") or param.ndim <= 1 else regularised).append(param)
    return [{"params": regularised}, {"params": not_regularised, "weight_decay": 0.0}]


def clip_gradients_per_tensor(model: nn.Module, clip: float) -> None:
    """Scale each gradient tensor so its own L2 norm is ≤ ``clip`` (DINO ``utils.clip_gradients``, docs/reference.md §9.13)."""
    for param in model.parameters():
        if param.grad is not None:
            coef = clip / (param.grad.norm(2) + 1e-6)
            param.grad.mul_(coef.clamp(max=1.0))


def build_dino_model(cfg: PretrainConfig, drop_path_rate: float) -> MultiCropWrapper:
    """Backbone ``cfg.arch`` at ``cfg.global_size`` + DINOHead, wrapped for multi-crop (docs/reference.md §2.1, §2.4)."""
    from ..models import DINOHead, build_backbone

    backbone = build_backbone(cfg.arch, img_size=tuple(cfg.global_size), drop_path_rate=drop_path_rate)
    head = DINOHead(backbone.embed_dim, out_dim=cfg.out_dim, hidden_dim=cfg.head_hidden_dim,
                    bottleneck_dim=cfg.head_bottleneck_dim, norm_last_layer=cfg.norm_last_layer)
    return MultiCropWrapper(backbone, head)


def _has_batchnorm(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules())


class DINOTrainer:
    """Student, teacher, loss, optimizer, schedules and one training step (docs/reference.md §2.6).

    Args:
        cfg: the pre-training config.
        device: where the models live.
        iters_per_epoch: optimizer steps per epoch (the schedules are per iteration).
        amp: ``"auto"`` (bf16 on CUDA, off on CPU), ``"bf16"``, ``"fp16"`` (with GradScaler) or ``"none"``.
        compile: ``torch.compile`` the backbones (state-dict keys unchanged).
    """

    def __init__(self, cfg: PretrainConfig, device: torch.device, iters_per_epoch: int, amp: AmpMode = "auto",
                 compile: bool = False):
        if cfg.warmup_epochs > cfg.epochs:
            raise ValueError(f"warmup_epochs={cfg.warmup_epochs} exceeds epochs={cfg.epochs}: the lr would never "
                             "leave its warm-up; lower warmup_epochs")
        if cfg.batch_size <= 0 or cfg.epochs <= 0:
            raise ValueError(f"batch_size ({cfg.batch_size}) and epochs ({cfg.epochs}) must be positive")
        self.cfg = cfg
        self.device = device
        self.dist = engine.dist_info()
        self.iters_per_epoch = iters_per_epoch
        self.amp = engine.resolve_amp(amp, device)

        student = build_dino_model(cfg, drop_path_rate=cfg.drop_path_rate)
        teacher = build_dino_model(cfg, drop_path_rate=0.0)  # docs/reference.md §2.1: no stochastic depth in the teacher
        if self.dist.distributed and _has_batchnorm(student):
            if device.type == "cuda":
                student = nn.SyncBatchNorm.convert_sync_batchnorm(student)
                teacher = nn.SyncBatchNorm.convert_sync_batchnorm(teacher)
            else:
                logger.warning("SyncBatchNorm needs CUDA; on CPU each process normalises with its own batch statistics")
        student, teacher = student.to(device), teacher.to(device)
        teacher.load_state_dict(student.state_dict())  # same start; the teacher then keeps its own BN buffers
        for p in teacher.parameters():
            p.requires_grad_(False)
        teacher.train()  # official: the teacher runs in train mode (batch statistics in its BN)
        if compile:
            student.backbone.compile()
            teacher.backbone.compile()
        self.student_module = student
        self.teacher = teacher
        if self.dist.distributed:
            ids = [device.index] if device.type == "cuda" else None
            self.student = nn.parallel.DistributedDataParallel(student, device_ids=ids)
        else:
            self.student = student

        self.dino_loss = DINOLoss(cfg.out_dim, cfg.local_crops_number + 2, cfg.warmup_teacher_temp, cfg.teacher_temp,
                                  cfg.warmup_teacher_temp_epochs, cfg.epochs, cfg.student_temp,
                                  cfg.center_momentum).to(device)
        self.optimizer = torch.optim.AdamW(param_groups(student))
        self.scaler = torch.amp.GradScaler(device.type) if self.amp == "fp16" else None

        n = iters_per_epoch
        self.peak_lr = cfg.base_lr * cfg.batch_size / 256.0  # linear scaling rule on the global batch
        self.lr_schedule = engine.cosine_schedule(self.peak_lr, cfg.min_lr, cfg.epochs, n,
                                                  warmup_epochs=cfg.warmup_epochs)
        self.wd_schedule = engine.cosine_schedule(cfg.weight_decay, cfg.weight_decay_end, cfg.epochs, n)
        self.momentum_schedule = engine.cosine_schedule(cfg.momentum_teacher, 1.0, cfg.epochs, n)
        self._student_params = list(student.parameters())
        self._teacher_params = list(teacher.parameters())

    # -------------------------------------------------------------------------------------------------- the step
    def autocast(self):
        dtype = torch.float16 if self.amp == "fp16" else torch.bfloat16
        return torch.autocast(device_type=self.device.type, dtype=dtype, enabled=self.amp != "none")

    def train_step(self, crops: Sequence[torch.Tensor], epoch: int, it: int,
                   last_checkpoint: Path | None = None) -> StepStats:
        """One optimisation step on a batch of multi-crops; ``it`` is the global iteration (for the schedules)."""
        if not 0 <= it < len(self.lr_schedule):
            raise ValueError(f"iteration {it} outside the schedules (length {len(self.lr_schedule)})")
        for i, group in enumerate(self.optimizer.param_groups):
            group["lr"] = float(self.lr_schedule[it])
            if i == 0:
                group["weight_decay"] = float(self.wd_schedule[it])
        crops = [c.to(self.device, non_blocking=True) for c in crops]

        with self.autocast():
            with torch.no_grad():
                teacher_out, teacher_feats = self.teacher(crops[:2], return_features=True)
            student_out = self.student(crops)
            loss = self.dino_loss(student_out, teacher_out, epoch)

        stats = self.dino_loss.last_stats
        batch = crops[0].shape[0]
        cos = mean_pairwise_cosine(teacher_feats[:batch]) if batch >= 2 else float("nan")
        # one all-reduce for everything logged; it also makes every rank see a non-finite loss
        packed = engine.all_reduce_mean(torch.stack([
            loss.detach().float(), stats["teacher_entropy"].float(), stats["batch_mean_entropy"].float(),
            torch.tensor(cos, device=loss.device)]))
        loss_value, ent, bent, cos = packed.tolist()
        engine.check_finite(loss_value, epoch=epoch, step=it, last_checkpoint=last_checkpoint,
                            hint="Try a lower base_lr, amp='bf16' instead of 'fp16', or check the input images.")

        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.cfg.clip_grad:
            clip_gradients_per_tensor(self.student_module, self.cfg.clip_grad)
        if epoch < self.cfg.freeze_last_layer:
            for p in self.student_module.head.last_layer.parameters():
                p.grad = None
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.update_teacher(float(self.momentum_schedule[it]))
        return StepStats(loss=loss_value, teacher_entropy=ent, batch_mean_entropy=bent,
                         cls_cosine=cos if math.isfinite(cos) else None)

    @torch.no_grad()
    def update_teacher(self, momentum: float) -> None:
        """EMA over parameters only: θ_t ← m θ_t + (1 − m) θ_s (BN buffers are the teacher's own)."""
        for p_s, p_t in zip(self._student_params, self._teacher_params):
            p_t.mul_(momentum).add_(p_s.detach(), alpha=1.0 - momentum)

    # -------------------------------------------------------------------------------------------------- state
    def state_dict(self, epoch: int, rng: list[dict[str, Any]] | None = None, extra_args: dict | None = None) -> dict:
        """The checkpoint (DINO schema + reid_lab extras, docs/reference.md §3.1); ``epoch`` = finished epochs."""
        args = {**to_dict(self.cfg), "world_size": self.dist.world_size, "amp": self.amp, **(extra_args or {})}
        return {
            "format": FORMAT,
            "student": self.student_module.state_dict(),
            "teacher": self.teacher.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": epoch,
            "args": args,
            "config": to_dict(self.cfg),
            "dino_loss": self.dino_loss.state_dict(),
            "fp16_scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "iters_per_epoch": self.iters_per_epoch,
            "rng": rng,
        }

    def load_state_dict(self, ckpt: dict[str, Any]) -> None:
        self.student_module.load_state_dict(_strip_module(ckpt["student"]))
        self.teacher.load_state_dict(_strip_module(ckpt["teacher"]))
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.dino_loss.load_state_dict(ckpt["dino_loss"])
        if self.scaler is not None and ckpt.get("fp16_scaler"):
            self.scaler.load_state_dict(ckpt["fp16_scaler"])


def _strip_module(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}


# ----------------------------------------------------------------------------------------------- the run
@dataclass
class PretrainResult:
    """What :func:`pretrain` leaves behind."""

    output_dir: Path
    checkpoint: Path  # DINO-schema training checkpoint (resumable; loads with models.load_pretrained)
    backbone_path: Path | None  # teacher backbone as a reid_lab checkpoint (cf. docs/reference.md §3.2), once all epochs are done
    epochs_done: int
    finished: bool  # epochs_done == cfg.epochs
    history: list[dict[str, Any]] = field(default_factory=list)  # one record per epoch (also in log.jsonl)
    steps: list[dict[str, Any]] = field(default_factory=list)  # one record per iteration (also in steps.jsonl)
    teacher: nn.Module | None = None  # teacher backbone, eval mode (feature extraction)
    student: nn.Module | None = None  # student backbone


def _check_resumable(ckpt: dict[str, Any], cfg: PretrainConfig, iters_per_epoch: int, path: Path) -> None:
    if ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not a reid_lab DINO training checkpoint (format={ckpt.get('format')!r}); "
                         "resume needs one written by pretrain() — to start from released weights use "
                         "reid_lab.models.load_pretrained")
    engine.compare_resume_config(ckpt.get("config", {}), to_dict(cfg), path, structural=_STRUCTURAL)
    if ckpt.get("iters_per_epoch") not in (None, iters_per_epoch):
        logger.warning("checkpoint %s was trained with %s iterations/epoch, now %d (pool or world size changed): "
                       "the schedules shift", path, ckpt.get("iters_per_epoch"), iters_per_epoch)


@locked_run
def pretrain(cfg: PretrainConfig, data: Any, output_dir: str | os.PathLike, device: str | torch.device = "auto",
             resume: bool | str | os.PathLike = False, *, num_workers: int = 0, amp: AmpMode = "auto",
             compile: bool = False, stop_after: int | None = None, collapse_check: bool = True,
             collapse_window: int = 50, progress: bool = True, ranked_list: str | os.PathLike | None = None,
             keep_num: int | None = None, jitter_strength: float | None = None, probe: KNNProbe | None = None,
             probe_every: int = 50) -> PretrainResult:
    """DINO pre-training of ``cfg.arch`` on an unlabelled person pool (docs/reference.md §2.4–2.6).

    Args:
        cfg: :class:`~reid_lab.config.PretrainConfig` (``resolve("pretrain", profile, ...)``); ``batch_size`` is
            the global batch, split evenly over the processes.
        data: a LUPerson-style folder (``images/*.jpg``), a pool object with ``.samples`` or a list of paths
            (see :func:`pool_paths`; ``ranked_list`` / ``keep_num`` apply the CFS subset to a folder).
        output_dir: receives ``checkpoint.pth`` (every epoch, atomic), ``log.jsonl`` (one line per epoch),
            ``steps.jsonl`` (one line per iteration: loss, entropies, CLS cosine, lr, momentum) and,
            once all epochs are done, ``teacher_backbone.pth`` (the teacher backbone — what the official
            ``convert_model_dino.py`` extracts, docs/reference.md §3.2 — as a :func:`reid_lab.models.make_checkpoint` dict that
            also records arch and token grid).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``…; under torchrun each process takes ``cuda:LOCAL_RANK``.
        resume: ``True`` continues from ``output_dir/checkpoint.pth`` if it exists; a path resumes from that file.
            Resuming reproduces the uninterrupted run (model, optimizer, scaler, centre, RNG states, sampler epoch).
        num_workers: DataLoader workers per process.
        amp: ``"auto"`` = bf16 autocast on CUDA, fp32 on CPU; ``"fp16"`` adds a GradScaler; ``"none"`` = fp32.
        compile: ``torch.compile`` the backbones (no gain on CPU, docs/reference.md §11.1).
        stop_after: stop once this many epochs are finished (as if interrupted; the schedules still span
            ``cfg.epochs``).
        collapse_check: raise :class:`~reid_lab.ssl.monitor.CollapseError` if the run collapses after warm-up.
        collapse_window: steps averaged by the collapse guard.
        progress: show tqdm bars (loss, lr, teacher momentum) on rank 0.
        jitter_strength, keep_num: shortcuts for ``cfg.jitter_strength`` / ``cfg.keep_num``; a value given here
            replaces the config's, so the checkpoint and its provenance record what was used.
        probe: a :class:`~reid_lab.ssl.monitor.KNNProbe` (frozen k-NN of the teacher backbone on a fixed ReID
            subset); run on the main process before every ``probe_every``-th step (step 0 = the initialisation)
            and after the last step. Its mAP / Rank-1 go into ``steps.jsonl`` (``knn_mAP``, ``knn_rank1``) and the
            epoch log (the last value). Drift towards a collapse (:meth:`CollapseMonitor.drifting`) is logged as a
            warning and recorded in the epoch log (``warning``) whether or not a probe is given.

    Raises:
        NonFiniteLossError: the loss became NaN/inf (the last epoch's checkpoint stays intact).
        CollapseError: the teacher collapsed after warm-up.
    """
    info = engine.dist_info()
    dev = engine.resolve_device(device, info.local_rank)
    output_dir = Path(output_dir)
    if info.is_main:
        output_dir.mkdir(parents=True, exist_ok=True)
    engine.barrier()
    ckpt_path = output_dir / CHECKPOINT_NAME
    if cfg.batch_size % info.world_size:
        raise ValueError(f"batch_size={cfg.batch_size} (global) is not divisible by the {info.world_size} processes")
    per_process = cfg.batch_size // info.world_size
    resume_from = engine.resume_source(resume, ckpt_path)
    cfg = with_given(cfg, jitter_strength=jitter_strength, keep_num=keep_num)  # the config records what is used
    engine.seed_everything(cfg.seed)  # identical model initialisation on every rank
    paths = dryrun.subset_names(pool_paths(data, cfg, ranked_list))  # a dry run: the pool's head only
    if cfg.augment not in AUGMENTS:
        raise ValueError(f"augment must be one of {AUGMENTS}, got {cfg.augment!r}")
    batched = None
    if cfg.augment == "batched":  # the loader only decodes and resizes; the crops are drawn on `dev` per batch
        from .batched_multicrop import ResizeToTensor

        batched = build_multicrop(cfg, batched=True).to(dev)
        dataset = MultiCropImages(paths, ResizeToTensor([2 * s for s in cfg.global_size]))
    else:
        dataset = MultiCropImages(paths, build_multicrop(cfg))
    sampler = DistributedSampler(dataset, num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=cfg.seed)
    loader = DataLoader(dataset, batch_size=per_process, sampler=sampler, num_workers=num_workers,
                        pin_memory=dev.type == "cuda", drop_last=True)
    iters = dryrun.limit(len(loader))  # a dry run stops each epoch after N iterations
    if iters == 0:
        raise ValueError(f"the pool holds {len(paths)} images: not one full batch of {per_process} per process "
                         f"({info.world_size} process(es)); lower batch_size or add images")
    ckpt = None
    if resume_from is not None:
        ckpt = engine.load_checkpoint(resume_from, map_location="cpu")
        _check_resumable(ckpt, cfg, iters, resume_from)
    trainer = DINOTrainer(cfg, dev, iters, amp=amp, compile=compile)
    log = engine.JsonlLog(output_dir / LOG_NAME, enabled=info.is_main)
    steps_log = engine.JsonlLog(output_dir / STEPS_LOG_NAME, enabled=info.is_main)
    extra_args = {"pool_size": len(paths), "num_workers": num_workers}

    start_epoch, history, steps = 0, [], []
    if ckpt is not None:
        trainer.load_state_dict(ckpt)
        start_epoch = int(ckpt["epoch"])
        engine.restore_rank_rng(ckpt.get("rng"), info, seed=cfg.seed, epoch=start_epoch)
        history = log.truncate("epoch", start_epoch - 1)
        steps = steps_log.truncate("epoch", start_epoch - 1)
        logger.info("resumed from %s after epoch %d/%d", resume_from, start_epoch, cfg.epochs)
        last_good: Path | None = resume_from
    else:
        if info.is_main and ckpt_path.is_file():
            logger.warning("%s exists and resume=False: starting over and overwriting it", ckpt_path)
        for old_log in (log, steps_log):
            if info.is_main and old_log.path.is_file():
                old_log.path.unlink()
        engine.seed_everything(cfg.seed + info.rank)  # ranks draw different augmentations
        last_good = None
    logger.info("DINO %s on %d images: %d process(es) x batch %d, %d it/epoch, %d epochs, peak lr %.2e, amp %s, "
                "device %s", cfg.arch, len(paths), info.world_size, per_process, iters, cfg.epochs, trainer.peak_lr,
                trainer.amp, dev)

    monitor = CollapseMonitor(cfg.out_dim, window=collapse_window)
    monitor.steps = start_epoch * iters  # after a resume the step-0 initialisation check does not apply
    if probe is not None and probe_every < 1:
        raise ValueError(f"probe_every must be ≥ 1, got {probe_every}")

    probe_seconds = 0.0

    def run_probe() -> dict[str, float]:
        nonlocal probe_seconds
        if probe is None or not info.is_main:
            return {}
        began_probe = time.perf_counter()
        result = probe(trainer.teacher.backbone, dev)
        probe_seconds += time.perf_counter() - began_probe
        return {"knn_mAP": result["mAP"], "knn_rank1": result["rank1"]}

    check_from = max(cfg.warmup_epochs, cfg.warmup_teacher_temp_epochs) * iters
    end_epoch = cfg.epochs if stop_after is None else max(start_epoch, min(cfg.epochs, stop_after))
    for epoch in range(start_epoch, end_epoch):
        sampler.set_epoch(epoch)
        began, probe_seconds = time.perf_counter(), 0.0
        sums = {"loss": 0.0, "teacher_entropy": 0.0, "batch_mean_entropy": 0.0}
        cos_sum, cos_n = 0.0, 0
        epoch_steps: list[dict[str, Any]] = []
        bar = engine.progress(loader, desc=f"DINO epoch {epoch + 1}/{cfg.epochs}", total=iters,
                              enabled=progress and info.is_main)
        for i, crops in enumerate(bar):
            if i >= iters:
                break
            it = epoch * iters + i
            if batched is not None:
                crops = batched(crops.to(dev, non_blocking=True))
            probed = run_probe() if probe is not None and it % probe_every == 0 else {}  # before the step: 0 = init
            stats = trainer.train_step(crops, epoch, it, last_checkpoint=last_good)
            monitor.update(stats)
            epoch_steps.append({"epoch": epoch, "step": it, **dataclasses.asdict(stats),
                                "lr": float(trainer.lr_schedule[it]),
                                "teacher_momentum": float(trainer.momentum_schedule[it]), **probed})
            for key in sums:
                sums[key] += getattr(stats, key)
            if stats.cls_cosine is not None:
                cos_sum, cos_n = cos_sum + stats.cls_cosine, cos_n + 1
            if progress and info.is_main and (i % 5 == 0 or i == iters - 1):
                bar.set_postfix(loss=f"{stats.loss:.3f}", lr=f"{trainer.lr_schedule[it]:.2e}",
                                m=f"{trainer.momentum_schedule[it]:.4f}", H_t=f"{stats.teacher_entropy:.2f}")
            if collapse_check and it >= check_from:
                monitor.check(epoch=epoch, step=it)
        seconds = time.perf_counter() - began
        last_it = (epoch + 1) * iters - 1
        knn = [{"knn_step": r["step"], "knn_mAP": r["knn_mAP"], "knn_rank1": r["knn_rank1"]}
               for r in epoch_steps if "knn_mAP" in r]
        if probe is not None and epoch == cfg.epochs - 1 and info.is_main:
            knn.append({"knn_step": last_it + 1, **run_probe()})  # the finished teacher
        drift = monitor.drifting()
        record = {
            "epoch": epoch,
            **{k: v / iters for k, v in sums.items()},
            "cls_cosine": cos_sum / cos_n if cos_n else None,
            "ln_out_dim": math.log(cfg.out_dim),
            "lr": float(trainer.lr_schedule[last_it]),
            "wd": float(trainer.wd_schedule[last_it]),
            "teacher_momentum": float(trainer.momentum_schedule[last_it]),
            "teacher_temp": trainer.dino_loss.teacher_temp(epoch),
            "seconds": seconds,
            "images_per_s": iters * cfg.batch_size / max(seconds - probe_seconds, 1e-9),  # training only
            "probe_seconds": probe_seconds,
            **(knn[-1] if knn else {}),
            **({"warning": drift} if drift else {}),
        }
        if drift and info.is_main:
            logger.warning("DINO epoch %d/%d: %s; the run goes on (the collapse guard stops it only at %.0f %% of "
                           "ln K)", epoch + 1, cfg.epochs, drift, 100 * monitor.uniform_fraction)
        history.append(record)
        steps.extend(epoch_steps)
        log.append(record)
        for step_record in epoch_steps:
            steps_log.append(step_record)
        rng_states = engine.gather_rng_states(info)
        if info.is_main:
            engine.save_checkpoint(trainer.state_dict(epoch + 1, rng_states, extra_args), ckpt_path)
        engine.barrier()
        last_good = ckpt_path
        logger.info("epoch %d/%d: loss %.4f (ln K %.3f), teacher entropy %.3f, batch-mean entropy %.3f, CLS cos %s, "
                    "%.0f img/s%s", epoch + 1, cfg.epochs, record["loss"], record["ln_out_dim"],
                    record["teacher_entropy"], record["batch_mean_entropy"],
                    "n/a" if record["cls_cosine"] is None else f"{record['cls_cosine']:.3f}", record["images_per_s"],
                    f", frozen k-NN mAP {100 * record['knn_mAP']:.1f}" if "knn_mAP" in record else "")

    epochs_done = max(start_epoch, end_epoch)
    finished = epochs_done >= cfg.epochs
    backbone_path = output_dir / BACKBONE_NAME
    if finished and info.is_main:
        from ..models import make_checkpoint

        engine.save_checkpoint(make_checkpoint(trainer.teacher.backbone, source="dino_teacher", epochs=epochs_done,
                                               config=to_dict(cfg)), backbone_path)
    engine.barrier()
    teacher, student = trainer.teacher.backbone, trainer.student_module.backbone
    teacher.eval()  # eval mode only now, for feature extraction (running BN statistics of the teacher's own)
    return PretrainResult(output_dir=output_dir, checkpoint=ckpt_path,
                          backbone_path=backbone_path if finished else None, epochs_done=epochs_done, finished=finished, history=history, steps=steps,
                          teacher=teacher, student=student)


# ----------------------------------------------------------------------------------------------- frozen evaluation
def evaluate_retrieval(backbone: nn.Module, dataset: Any, image_size: Sequence[int], device: str | torch.device,
                       *, batch_size: int = 128, num_workers: int = 0, progress: bool = False):
    """Frozen-feature retrieval on a ReID dataset's query/gallery split (Market protocol, docs/reference.md §4.6).

    CLS features of ``backbone`` in eval mode (ImageNet normalisation, as in DINO pre-training; test resize as
    TransReID), L2-normalised, squared Euclidean distance. Returns a
    :class:`reid_lab.retrieval.evaluation.RankResult`.
    """
    from ..data import ImageDataset, build_reid_transforms
    from ..retrieval.evaluation import evaluate_features, extract_features
    from .multicrop import IMAGENET_MEAN, IMAGENET_STD

    device = torch.device(device)
    height, width = (int(v) for v in image_size)
    transform = build_reid_transforms(height, width, train=False, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    feats = []
    for split in (dataset.query, dataset.gallery):
        loader = DataLoader(ImageDataset(split, transform), batch_size=batch_size, num_workers=num_workers)
        feats.append(extract_features(backbone.to(device), loader, device, progress=progress))
    (qf, q_pids, q_cams), (gf, g_pids, g_cams) = feats
    return evaluate_features(qf, gf, q_pids, g_pids, q_cams, g_cams)


__all__ = [
    "AUGMENTS", "BACKBONE_NAME", "CHECKPOINT_NAME", "DINOTrainer", "FORMAT", "LOG_NAME", "STEPS_LOG_NAME", "MultiCropImages",
    "PretrainResult", "build_dino_model", "build_multicrop", "clip_gradients_per_tensor", "evaluate_retrieval",
    "param_groups", "pool_paths", "pretrain",
]
