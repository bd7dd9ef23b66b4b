"""Loading backbone weights from every published checkpoint format (docs/reference.md §3), safely.

:func:`load_pretrained` reads a file (or takes an in-memory dict), recognises its format, maps its keys onto the
backbone's (docs/reference.md §3.3 names), checks that it describes the same architecture, resizes the position embedding when
the checkpoint was trained at another token grid, loads, and returns a :class:`LoadReport`.

Recognised formats (checked in this order):

=====================  =====================================================================================
``reid_lab``           this project's own checkpoints: ``{"format": "reid_lab", "version": 1, "arch": name,
                       "img_size": [H, W], "stride_size": [sh, sw], "grid": [gh, gw], "model": state_dict,
                       ...any other keys (optimizer, epoch, config, metrics)}``. ``model`` holds the backbone
                       (flat docs/reference.md §3.3 keys; ``module.``/``backbone.`` prefixes and head keys are tolerated).
                       Build one with :func:`make_checkpoint` and ``torch.save`` it.
``dino_checkpoint``    ``main_dino.py``'s ``checkpoint.pth`` (docs/reference.md §3.1): ``teacher``/``student``/``optimizer``/
                       ``epoch``/``args``/``dino_loss``/``fp16_scaler``. The **teacher** is used (as the official
                       converter, §3.2); ``module.`` and ``backbone.`` are stripped, ``head.*`` is dropped.
``transreid``          a TransReID / cluster-contrast fine-tuned model (docs/reference.md §3.4): backbone under ``base.``;
                       ``bottleneck.*``, ``classifier.*`` and the unused ``base.fc.*`` are dropped.
``flat_backbone``      the released converted backbones (docs/reference.md §3.2) and timm-style state dicts: flat keys;
                       ``head.*``/``fc.*``/``pre_logits.*``/``dist_token`` are dropped.
=====================  =====================================================================================

Any of them may be wrapped in ``{"model": ...}`` or ``{"state_dict": ...}`` and carry DDP's ``module.`` prefix.
Old timm checkpoints with a 2-D ``patch_embed.proj.weight`` are reshaped (as the official ``load_param``).

Safety: files are read with ``torch.load(map_location="cpu", weights_only=True)``; the only non-tensor class
allowed is ``argparse.Namespace`` (the ``args`` entry of DINO checkpoints; it carries plain values and runs no
code). A file that needs any other class is refused with :class:`UnsafeCheckpointError` — there is deliberately no
fallback to ``weights_only=False``.

Differences from the official ``load_param`` (docs/reference.md §3.4, §9.16): a checkpoint of another architecture fails with
an :class:`ArchitectureMismatchError` naming both (the official code prints an error per key, or crashes with a
``KeyError`` inside its own ``except`` block); key filtering is by prefix, not substring (``'head' in k``);
missing and unexpected keys are reported instead of a bare "Load n / m layers".
"""
from __future__ import annotations

import argparse
import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..engine import CheckpointError, UnsafeCheckpointError, read_torch_file

logger = logging.getLogger(__name__)

__all__ = [
    "ArchInfo",
    "ArchitectureMismatchError",
    "LoadReport",
    "ParsedCheckpoint",
    "UnsafeCheckpointError",
    "infer_arch",
    "load_pretrained",
    "make_checkpoint",
    "read_checkpoint",
    "resize_pos_embed",
]

FORMAT_TAG = "reid_lab"
FORMAT_VERSION = 1

# Top-level key prefixes that are never part of a backbone (heads, TransReID neck/classifier, timm classifier).
_NON_BACKBONE = ("head", "fc", "pre_logits", "dist_token", "head_dist", "bottleneck", "classifier")


class ArchitectureMismatchError(CheckpointError):
    """The checkpoint describes another architecture than the model it is loaded into."""


# --- architecture inference -------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArchInfo:
    """What a backbone state dict says about its architecture."""

    embed_dim: int | None
    depth: int
    ics: bool
    num_tokens: int | None  # rows of pos_embed (1 + patches)
    patch_kernel: tuple[int, int] | None  # kernel of patch_embed.proj

    @property
    def name(self) -> str:
        """Registered name (``vit_small_ics`` …) or a description when none matches."""
        from .vit import ARCHS  # local import: weights.py must not need the model module at import time

        for name, spec in ARCHS.items():
            if (spec.embed_dim, spec.depth, spec.ics) == (self.embed_dim, self.depth, self.ics):
                return name
        stem = "ICS stem" if self.ics else "patchify stem"
        return f"ViT(embed_dim={self.embed_dim}, depth={self.depth}, {stem})"

    def describe(self) -> str:
        stem = "ICS stem" if self.ics else "patchify stem"
        return f"{self.name} (embed_dim {self.embed_dim}, {self.depth} blocks, {stem})"


def infer_arch(state_dict: Mapping[str, torch.Tensor]) -> ArchInfo:
    """Infer embed dim, depth, stem type and token count from backbone keys and shapes (docs/reference.md §3.3)."""
    embed_dim = None
    for key, dim in (("cls_token", -1), ("norm.weight", 0), ("pos_embed", -1), ("patch_embed.proj.weight", 0)):
        if key in state_dict:
            embed_dim = int(state_dict[key].shape[dim])
            break
    blocks = {int(k.split(".")[1]) for k in state_dict if k.startswith("blocks.") and k.split(".")[1].isdigit()}
    depth = max(blocks) + 1 if blocks else 0
    ics = any(k.startswith("patch_embed.conv.") for k in state_dict)
    pos = state_dict.get("pos_embed")
    proj = state_dict.get("patch_embed.proj.weight")
    kernel = tuple(int(s) for s in proj.shape[-2:]) if proj is not None and proj.ndim == 4 else None
    return ArchInfo(embed_dim, depth, ics, int(pos.shape[1]) if pos is not None else None, kernel)


# --- reading ------------------------------------------------------------------------------------------------
def _torch_load(path: Path) -> Any:
    """``torch.load(weights_only=True)`` allowing ``argparse.Namespace`` (official DINO checkpoints store ``args``)."""
    return read_torch_file(path, "cpu", safe_globals=[argparse.Namespace])


@dataclass
class ParsedCheckpoint:
    """A checkpoint reduced to its backbone: docs/reference.md §3.3 keys, the recognised format and what was dropped."""

    state_dict: dict[str, torch.Tensor]
    source_format: str
    notes: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)


def _strip(prefix: str, key: str) -> str:
    return key[len(prefix):] if key.startswith(prefix) else key


def read_checkpoint(obj: Any, checkpoint_key: str | None = None) -> ParsedCheckpoint:
    """Recognise a checkpoint's format and return its backbone state dict with docs/reference.md §3.3 key names.

    Args:
        obj: the loaded object (a dict). Use :func:`load_pretrained` to read files.
        checkpoint_key: which entry to use in DINO checkpoints (default ``"teacher"``) or reid_lab checkpoints
            (default ``"model"``).
    """
    if not isinstance(obj, Mapping):
        raise ValueError(f"a checkpoint must be a dict, got {type(obj).__name__}")
    notes: list[str] = []
    meta: dict[str, Any] = {}
    if obj.get("format") == FORMAT_TAG:
        fmt = FORMAT_TAG
        key = checkpoint_key or "model"
        meta = {k: obj[k] for k in ("arch", "img_size", "stride_size", "grid", "version") if k in obj}
        if key not in obj:
            raise KeyError(f"reid_lab checkpoint has no entry {key!r}; entries: {sorted(obj)}")
        sd = obj[key]
        notes.append(f"entry '{key}'")
    else:
        sd = obj
        while not _is_dino(sd) and isinstance(sd, Mapping) and any(
            k in sd and isinstance(sd[k], Mapping) for k in ("model", "state_dict")
        ):
            k = "model" if isinstance(sd.get("model"), Mapping) else "state_dict"
            notes.append(f"unwrapped '{k}'")
            sd = sd[k]
        if _is_dino(sd):
            fmt = "dino_checkpoint"
            key = checkpoint_key or "teacher"
            if key not in sd:
                raise KeyError(f"DINO checkpoint has no entry {key!r}; entries: {sorted(sd)}")
            notes.append(f"entry '{key}'")
            sd = sd[key]
        else:
            fmt = "flat_backbone"
    if not isinstance(sd, Mapping):
        raise ValueError(f"expected a state dict of tensors, got {type(sd).__name__}")
    non_tensor = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if non_tensor:
        raise ValueError(f"the state dict holds non-tensor entries {non_tensor[:5]}; is this a checkpoint of a model?")

    # DDP/DataParallel prefix: strip every leading "module."
    sd = dict(sd)
    if any(k.startswith("module.") for k in sd):
        notes.append("stripped 'module.'")
        stripped = {}
        for k, v in sd.items():
            while k.startswith("module."):
                k = k[len("module."):]
            stripped[k] = v
        sd = stripped
    ignored: list[str] = []
    # DINO MultiCropWrapper layout: backbone.* + head.*
    if any(k.startswith("backbone.") for k in sd):
        notes.append("stripped 'backbone.'")
        ignored += [k for k in sd if not k.startswith("backbone.")]
        sd = {_strip("backbone.", k): v for k, v in sd.items() if k.startswith("backbone.")}
    # TransReID build_transformer layout: base.* + bottleneck.* + classifier.*
    elif any(k.startswith("base.") for k in sd):
        if fmt == "flat_backbone":
            fmt = "transreid"
        notes.append("stripped 'base.'")
        ignored += [k for k in sd if not k.startswith("base.")]
        sd = {_strip("base.", k): v for k, v in sd.items() if k.startswith("base.")}
    drop = [k for k in sd if k.split(".")[0] in _NON_BACKBONE]
    ignored += drop
    sd = {k: v for k, v in sd.items() if k not in drop}
    return ParsedCheckpoint(sd, fmt, notes, sorted(ignored), meta)


def _is_dino(obj: Any) -> bool:
    return isinstance(obj, Mapping) and ("teacher" in obj or "student" in obj)


# --- position embeddings ---------------------------------------------------------------------------------------
def _old_grid(num_patches: int, hw_ratio: float) -> tuple[int, int]:
    """The token grid a flat table of ``num_patches`` rows came from (official rule, then a square fallback)."""
    gh = int(math.sqrt(num_patches * hw_ratio))
    gw = int(gh // hw_ratio) if hw_ratio else 0
    if gh * gw == num_patches:
        return gh, gw
    side = math.isqrt(num_patches)
    if side * side == num_patches:
        return side, side
    raise ValueError(
        f"cannot tell the token grid of a position embedding with {num_patches} patch rows from hw_ratio={hw_ratio}; "
        "pass pretrain_grid=(rows, cols)"
    )


def resize_pos_embed(
    pos_embed: torch.Tensor,
    new_grid: tuple[int, int],
    old_grid: tuple[int, int] | None = None,
    hw_ratio: float = 2,
) -> torch.Tensor:
    """Resize a (1, 1 + N, D) position embedding to ``new_grid`` with bilinear interpolation, CLS row kept (docs/reference.md §3.4).

    Numerically the official ``resize_pos_embed`` (``F.interpolate(size=…, mode='bilinear')``, align_corners False):
    e.g. 16×8 → 24×8 for ViT-B+ICS fine-tuned at 384×128.

    Args:
        pos_embed: table with the CLS row first.
        new_grid: (rows, cols) of the target model.
        old_grid: (rows, cols) of the table; ``None`` = infer as the official code: rows = ⌊√(N·hw_ratio)⌋,
            cols = rows // hw_ratio (person images: 2), falling back to a square grid (ImageNet, 14×14).
        hw_ratio: height/width ratio of the old grid when inferring it.
    """
    if pos_embed.ndim != 3 or pos_embed.shape[0] != 1:
        raise ValueError(f"pos_embed must have shape (1, 1 + N, D), got {tuple(pos_embed.shape)}")
    n_old = pos_embed.shape[1] - 1
    gh, gw = old_grid if old_grid is not None else _old_grid(n_old, hw_ratio)
    if gh * gw != n_old:
        raise ValueError(f"old grid {gh}x{gw} does not match the {n_old} patch rows of pos_embed")
    cls_pos, grid = pos_embed[:, :1], pos_embed[:, 1:]
    dim = pos_embed.shape[-1]
    grid = grid.reshape(1, gh, gw, dim).permute(0, 3, 1, 2).float()
    grid = F.interpolate(grid, size=tuple(new_grid), mode="bilinear", align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, new_grid[0] * new_grid[1], dim).to(pos_embed.dtype)
    return torch.cat((cls_pos, grid), dim=1)


# --- the report -----------------------------------------------------------------------------------------------
@dataclass
class LoadReport:
    """What :func:`load_pretrained` did. ``str(report)`` is a readable summary (also logged at INFO)."""

    source: str
    source_format: str
    checkpoint_arch: str
    model_arch: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # model keys absent from the checkpoint (left as they were)
    unexpected: list[str] = field(default_factory=list)  # checkpoint backbone keys the model does not have
    ignored: list[str] = field(default_factory=list)  # non-backbone keys dropped on purpose (heads, neck, fc)
    resized: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    skipped: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)  # shape mismatch
    notes: list[str] = field(default_factory=list)

    @property
    def num_model_tensors(self) -> int:
        return len(self.loaded) + len(self.missing) + len(self.skipped)

    def __str__(self) -> str:
        def short(keys: list[str] | dict, n: int = 6) -> str:
            keys = list(keys)
            return ", ".join(keys[:n]) + (f", … (+{len(keys) - n})" if len(keys) > n else "")

        lines = [
            f"Loaded {self.checkpoint_arch} weights from {self.source} into {self.model_arch}",
            f"  format: {self.source_format}" + (f" ({'; '.join(self.notes)})" if self.notes else ""),
            f"  loaded {len(self.loaded)} / {self.num_model_tensors} model tensors",
        ]
        for label, keys in (("missing", self.missing), ("unexpected", self.unexpected), ("ignored", self.ignored)):
            if keys:
                lines.append(f"  {label} ({len(keys)}): {short(keys)}")
        for k, (old, new) in self.resized.items():
            lines.append(f"  resized {k}: {old} -> {new}")
        for k, (old, new) in self.skipped.items():
            lines.append(f"  skipped {k}: checkpoint {old} vs model {new}")
        return "\n".join(lines)


# --- loading --------------------------------------------------------------------------------------------------
def load_pretrained(
    model: nn.Module,
    path_or_state_dict: str | os.PathLike | Mapping[str, Any],
    *,
    strict_arch: bool = True,
    checkpoint_key: str | None = None,
    pretrain_grid: tuple[int, int] | None = None,
    pretrain_hw_ratio: float = 2,
) -> LoadReport:
    """Load backbone weights of any supported format into ``model`` (module docstring).

    Args:
        model: a backbone from :func:`~reid_lab.models.build_backbone` (any module with docs/reference.md §3.3 key names works).
        path_or_state_dict: a checkpoint file, or an already-loaded dict.
        strict_arch: raise :class:`ArchitectureMismatchError` if the checkpoint is another architecture (embed dim,
            depth, stem, patch size), if a tensor's shape differs (other than a resizable ``pos_embed``) or if
            backbone tensors are missing. ``False`` loads whatever matches and reports the rest.
        checkpoint_key: entry of a DINO checkpoint (``"teacher"`` default, or ``"student"``) or of a reid_lab
            checkpoint (``"model"`` default).
        pretrain_grid: token grid the checkpoint's ``pos_embed`` was trained at, when it cannot be inferred
            (reid_lab checkpoints record it; otherwise the official rule with ``pretrain_hw_ratio`` is used).
        pretrain_hw_ratio: height/width ratio of the pre-training grid (2 for 256×128 person crops, docs/reference.md §3.4).

    Returns:
        A :class:`LoadReport`.

    Raises:
        FileNotFoundError, UnsafeCheckpointError, ArchitectureMismatchError, ValueError.
    """
    if isinstance(path_or_state_dict, (str, os.PathLike)):
        source = str(path_or_state_dict)
        obj = _torch_load(Path(path_or_state_dict).expanduser())
    elif isinstance(path_or_state_dict, Mapping):
        source, obj = "<in-memory dict>", path_or_state_dict
    else:
        raise TypeError(f"expected a path or a dict, got {type(path_or_state_dict).__name__}")
    parsed = read_checkpoint(obj, checkpoint_key)
    ckpt = parsed.state_dict
    if not ckpt:
        raise ValueError(f"{source}: no backbone tensors found (format {parsed.source_format}; "
                         f"ignored keys: {parsed.ignored[:8]})")

    model_sd = model.state_dict()
    ckpt_arch, model_arch = infer_arch(ckpt), infer_arch(model_sd)
    model_name = getattr(model, "arch", None) or model_arch.name
    ckpt_name = str(parsed.meta.get("arch") or ckpt_arch.name)
    report = LoadReport(source, parsed.source_format, ckpt_name, model_name,
                        ignored=parsed.ignored, notes=parsed.notes)

    def mismatch(reason: str) -> ArchitectureMismatchError:
        return ArchitectureMismatchError(
            f"{source} holds {ckpt_arch.describe()} but the model is {model_arch.describe()}: {reason}"
        )

    if strict_arch:
        if ckpt_arch.embed_dim is not None and ckpt_arch.embed_dim != model_arch.embed_dim:
            raise mismatch("embedding sizes differ")
        if ckpt_arch.ics != model_arch.ics:
            raise mismatch("one has the ICS convolution stem, the other the 16x16 patchify layer")
        if ckpt_arch.depth != model_arch.depth:
            raise mismatch("numbers of blocks differ")
        if ckpt_arch.patch_kernel and model_arch.patch_kernel and ckpt_arch.patch_kernel != model_arch.patch_kernel:
            raise mismatch(f"patch projection kernels differ ({ckpt_arch.patch_kernel} vs {model_arch.patch_kernel})")

    to_load: dict[str, torch.Tensor] = {}
    for k, v in ckpt.items():
        if k not in model_sd:
            report.unexpected.append(k)
            continue
        target = model_sd[k]
        if k == "patch_embed.proj.weight" and v.ndim == 2 and target.ndim == 4 and v.numel() == target.numel():
            v = v.reshape(target.shape)  # old timm: Linear patch embedding
            report.notes.append("reshaped 2-D patch_embed.proj.weight")
        if k == "pos_embed" and v.shape != target.shape and v.ndim == 3 and v.shape[-1] == target.shape[-1]:
            grid = pretrain_grid or (tuple(parsed.meta["grid"]) if "grid" in parsed.meta else None)
            new_grid = tuple(model.patch_embed.grid_size)
            v = resize_pos_embed(v, new_grid, grid, pretrain_hw_ratio)
            report.resized[k] = (tuple(ckpt[k].shape), tuple(v.shape))
        if v.shape != target.shape:
            report.skipped[k] = (tuple(v.shape), tuple(target.shape))
            continue
        to_load[k] = v
        report.loaded.append(k)
    report.missing = [k for k in model_sd if k not in ckpt]

    if strict_arch:
        if report.skipped:
            raise mismatch("tensor shapes differ: " + ", ".join(f"{k} {a} vs {b}" for k, (a, b) in
                                                                 list(report.skipped.items())[:4]))
        missing = [k for k in report.missing if not k.endswith("num_batches_tracked")]
        if missing:
            raise mismatch(f"the checkpoint lacks {len(missing)} backbone tensors, e.g. {missing[:4]}")

    model.load_state_dict(to_load, strict=False)
    logger.info("%s", report)
    if report.unexpected:
        logger.warning("%s: %d checkpoint tensors unused by the model: %s", source, len(report.unexpected),
                       report.unexpected[:8])
    return report


def make_checkpoint(model: nn.Module, **extra: Any) -> dict[str, Any]:
    """A reid_lab checkpoint dict for ``model`` (``torch.save`` it); ``extra`` entries (optimizer, epoch…) are kept.

    Layout: ``{"format": "reid_lab", "version": 1, "arch", "img_size", "stride_size", "grid", "model", **extra}``.
    """
    reserved = {"format", "version", "arch", "img_size", "stride_size", "grid", "model"} & set(extra)
    if reserved:
        raise ValueError(f"extra entries may not override {sorted(reserved)}")
    pe = getattr(model, "patch_embed", None)
    ckpt: dict[str, Any] = {
        "format": FORMAT_TAG,
        "version": FORMAT_VERSION,
        "arch": getattr(model, "arch", None) or infer_arch(model.state_dict()).name,
        "model": model.state_dict(),
    }
    if pe is not None:
        ckpt["img_size"] = list(pe.img_size)
        ckpt["grid"] = list(pe.grid_size)
        if hasattr(pe, "stride_size"):
            ckpt["stride_size"] = list(pe.stride_size)
    ckpt.update(extra)
    return ckpt
