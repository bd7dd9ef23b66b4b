"""The TransReID fine-tuning model: a ViT backbone + BNNeck + ID classifier (docs/reference.md §4.1).

:class:`ReIDModel` keeps the official ``build_transformer`` state-dict layout — backbone under ``base.*``,
``bottleneck.*`` (BatchNorm1d, bias frozen) and ``classifier.weight`` (no bias) — so our checkpoints load in the
official code and :func:`reid_lab.models.load_pretrained` reads them back (format ``transreid``/``reid_lab``).

* training: ``model(x)`` returns ``(logits, feat)`` — ID logits from the post-BN feature, the pre-BN CLS feature
  for the triplet loss;
* eval: ``model(x)`` returns the pre-BN CLS feature (``TEST.NECK_FEAT='before'`` in every official config).

Checkpoints (:func:`reid_checkpoint` / :func:`load_reid_model`) are :func:`reid_lab.models.make_checkpoint` dicts
whose ``model`` entry is the *whole* model state dict (``base.*`` + neck + classifier) plus ``num_classes``.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import nn

from ..models import BNNeckHead, build_backbone, load_pretrained, make_checkpoint
from ..models.weights import infer_arch

logger = logging.getLogger(__name__)

__all__ = ["ReIDModel", "build_reid_model", "reid_checkpoint", "load_reid_model"]


class ReIDModel(BNNeckHead):
    """``base`` (a backbone returning the (B, D) CLS feature) followed by the BNNeck head (docs/reference.md §4.1).

    It *is* a :class:`~reid_lab.models.BNNeckHead` with the backbone attached, so the neck and classifier keep
    their top-level official names (``bottleneck.*``, ``classifier.weight``) next to ``base.*``.

    Args:
        base: the backbone (e.g. :func:`reid_lab.models.build_backbone`); needs an ``embed_dim`` attribute.
        num_classes: training identities (0 = feature extractor only, no classifier).
        neck_feat: the eval feature, ``"before"`` (official) or ``"after"`` the BN.
    """

    def __init__(self, base: nn.Module, num_classes: int, neck_feat: Literal["before", "after"] = "before") -> None:
        dim = getattr(base, "embed_dim", None)
        if not isinstance(dim, int):
            raise ValueError(f"the backbone {type(base).__name__} has no integer embed_dim attribute")
        super().__init__(dim, num_classes, neck_feat)
        self.base = base

    @property
    def embed_dim(self) -> int:
        return self.base.embed_dim

    @property
    def arch(self) -> str | None:
        return getattr(self.base, "arch", None)

    def forward(self, x: torch.Tensor):  # type: ignore[override]
        return super().forward(self.base(x))


def build_reid_model(arch: str, num_classes: int, img_size: tuple[int, int] | None = None, *, stride_size: int = 16,
                     drop_path_rate: float = 0.1, pretrained: str | os.PathLike | Mapping[str, Any] | None = None,
                     neck_feat: Literal["before", "after"] = "before", checkpoint_key: str | None = None) -> ReIDModel:
    """Build :class:`ReIDModel` and, with ``pretrained``, load backbone weights of any format docs/reference.md §3 names
    (DINO ``checkpoint.pth`` → teacher, released backbones, TransReID ``base.*`` files, reid_lab checkpoints).

    The neck and classifier are always freshly initialised (the official ``load_param`` also skips them).
    """
    base = build_backbone(arch, img_size=img_size, stride_size=stride_size, drop_path_rate=drop_path_rate)
    model = ReIDModel(base, num_classes, neck_feat)
    if pretrained is not None:
        report = load_pretrained(base, pretrained, checkpoint_key=checkpoint_key)
        logger.info("initialised %s from %s (%d tensors)", arch, report.source, len(report.loaded))
    return model


def reid_checkpoint(model: nn.Module, **extra: Any) -> dict[str, Any]:
    """A reid_lab checkpoint of a :class:`ReIDModel` (DDP wrapper allowed): ``make_checkpoint(model.base)`` with
    ``model`` = the full state dict (``base.*``, ``bottleneck.*``, ``classifier.weight``) and ``num_classes``."""
    model = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    if not isinstance(model, ReIDModel):
        raise TypeError(f"expected a ReIDModel, got {type(model).__name__}")
    ckpt = make_checkpoint(model.base, **extra)
    ckpt["model"] = model.state_dict()
    ckpt["num_classes"] = model.num_classes
    ckpt["neck_feat"] = model.neck_feat
    return ckpt


def load_reid_model(path_or_ckpt: str | os.PathLike | Mapping[str, Any], *, arch: str | None = None,
                    img_size: tuple[int, int] | None = None, map_location: str | torch.device = "cpu") -> ReIDModel:
    """Rebuild a fine-tuned :class:`ReIDModel` from our checkpoint or an official ``transformer_120.pth``.

    reid_lab checkpoints carry arch, image size and stride. For a flat TransReID state dict (``base.*`` keys, maybe
    ``module.``-prefixed) ``arch`` is inferred from the tensors when not given and ``img_size`` defaults to the
    architecture's. The model is returned in eval mode on the CPU.
    """
    from ..engine import CheckpointError, load_checkpoint
    from ..models.weights import ArchitectureMismatchError

    source = str(path_or_ckpt) if not isinstance(path_or_ckpt, Mapping) else "<in-memory dict>"
    ckpt = load_checkpoint(path_or_ckpt, map_location) if not isinstance(path_or_ckpt, Mapping) else path_or_ckpt
    state = ckpt.get("model", ckpt.get("state_dict", ckpt))
    if not isinstance(state, Mapping):
        raise CheckpointError(f"{source}: no state dict found (keys {sorted(ckpt)[:8]})")
    state = {k[len("module."):] if k.startswith("module.") else k: v for k, v in state.items()}
    if not any(k.startswith("base.") for k in state):
        raise CheckpointError(f"{source}: not a fine-tuned ReID model (no 'base.*' keys); for a backbone checkpoint "
                              "use build_reid_model(arch, num_classes, pretrained=path)")
    arch = arch or ckpt.get("arch") or infer_arch({k[5:]: v for k, v in state.items() if k.startswith("base.")}).name
    if img_size is None and ckpt.get("img_size") is not None:
        img_size = tuple(int(v) for v in ckpt["img_size"])
    stride = ckpt.get("stride_size")
    stride_size = int(stride[0]) if isinstance(stride, (list, tuple)) else int(stride or 16)
    num_classes = int(ckpt.get("num_classes", state["classifier.weight"].shape[0] if "classifier.weight" in state else 0))
    model = ReIDModel(build_backbone(arch, img_size=img_size, stride_size=stride_size, drop_path_rate=0.0),
                      num_classes, ckpt.get("neck_feat", "before"))
    state = {k: v for k, v in state.items() if not k.startswith("base.fc.")}  # official unused fc (docs/reference.md §9.15)
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as err:  # tensor shapes differ
        shapes = "; ".join(line.strip() for line in str(err).splitlines()[1:4])
        raise ArchitectureMismatchError(f"{source} does not fit a {arch} ReIDModel with {num_classes} classes "
                                        f"(wrong architecture): {shapes}") from err
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ArchitectureMismatchError(f"{source} does not match a {arch} ReIDModel with {num_classes} classes "
                                        f"(wrong architecture): missing {missing[:5]}, unexpected {unexpected[:5]}")
    logger.info("loaded %s ReID model (%d classes) from %s", arch, num_classes, source)
    return model.eval()
