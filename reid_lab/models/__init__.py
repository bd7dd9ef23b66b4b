"""Backbones and heads (docs/reference.md §2.1–2.4, §3, §4.1, §6).

* :func:`build_backbone` / :func:`list_backbones` — timm ViT-S/B (+ICS) and tiny CPU variants (:mod:`.vit`);
* :class:`DINOHead`, :class:`BNNeckHead` — the DINO projection head and the TransReID BNNeck (:mod:`.heads`);
* :func:`load_pretrained` — every published checkpoint format (:mod:`.weights`);
* :func:`last_selfattention`, :func:`attention_rollout` — attention maps (:mod:`.attention`);
* :func:`reestimate_bn` — BatchNorm statistics re-estimated on unlabelled images (:mod:`.batchnorm`);
* :func:`permute_entries_` — pre-trained weights with their structure destroyed, statistics kept (:mod:`.controls`);
* :func:`export_onnx` — ONNX export with a parity check (:mod:`.export`).
"""
from __future__ import annotations

from .attention import attention_entropy_by_block, attention_rollout, cls_attention_map, last_selfattention
from .batchnorm import batchnorm_layers, reestimate_bn
from .controls import permute_entries_
from .export import export_onnx
from .heads import BNNeckHead, DINOHead, WeightNormLinear
from .vit import ARCHS, ReIDViT, build_backbone, list_backbones
from .weights import (
    ArchitectureMismatchError,
    LoadReport,
    UnsafeCheckpointError,
    infer_arch,
    load_pretrained,
    make_checkpoint,
    read_checkpoint,
    resize_pos_embed,
)

__all__ = [
    "ARCHS",
    "ArchitectureMismatchError",
    "BNNeckHead",
    "DINOHead",
    "LoadReport",
    "ReIDViT",
    "UnsafeCheckpointError",
    "WeightNormLinear",
    "attention_entropy_by_block",
    "attention_rollout",
    "batchnorm_layers",
    "build_backbone",
    "cls_attention_map",
    "export_onnx",
    "infer_arch",
    "last_selfattention",
    "list_backbones",
    "load_pretrained",
    "make_checkpoint",
    "permute_entries_",
    "read_checkpoint",
    "reestimate_bn",
    "resize_pos_embed",
]
