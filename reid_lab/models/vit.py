"""Vision Transformers for person ReID on timm: ViT-S/16, ViT-B/16, ± the ICS stem (docs/reference.md §2.1–2.3, §4.1).

:class:`ReIDViT` *is* timm's ``VisionTransformer`` (its ``Block``, fused scaled-dot-product attention, ``DropPath``
and weight init) configured as the official backbones: LayerNorm eps 1e-6, qkv bias, MLP ratio 4, a CLS token,
an absolute position embedding that includes the CLS row, no classifier (``num_classes=0``) and CLS pooling.
Only two pieces are replaced:

* the patch embedding (``patch_embed``) — :class:`~reid_lab.models.ics.PatchEmbed` (overlapping patches when
  ``stride_size`` < 16, TransReID) or :class:`~reid_lab.models.ics.ICSPatchEmbed` (the ICS stem);
* ``_pos_embed`` — adds position embeddings for *any* input size: at the construction grid the stored table
  is used as is; at another grid (DINO's 128×64 local crops) the patch part is resized with the official
  bicubic ``F.interpolate(scale_factor=((gh + 0.1) / OH, (gw + 0.1) / OW))`` and the CLS row is kept (docs/reference.md §2.3).

Parameter names equal the official state dicts (docs/reference.md §3.3), so released weights load without key surgery:
``cls_token``, ``pos_embed`` (1, 1 + N, D), ``patch_embed.proj.*``, ``patch_embed.conv.*`` (ICS),
``blocks.{i}.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}.*``, ``norm.*``.

Contract: ``model(x)`` returns the CLS token after the final LayerNorm, shape (B, D) (``model.embed_dim`` = D);
``model.forward_tokens(x)`` returns all tokens after the final LayerNorm, shape (B, 1 + gh·gw, D).

Differences from the official code, on purpose (docs/reference.md §9):

* §9.14/§9.15 — no unused ``fc`` Linear(D, 1000) (the official ``Ours_ViT``/``TransReID`` keep one, hence
  "Load 172 / 174 layers"), no unreachable code; weight loading lives in :mod:`reid_lab.models.weights`.
* §9.17/§9.18 — the ICS stem honours ``stride_size`` and any ``embed_dim`` (see :mod:`reid_lab.models.ics`).
* §9.19 — the same model serves attention visualisation at any size, ICS or not
  (:mod:`reid_lab.models.attention`).
* §2.3 — the official code re-interpolates when the *image* size differs from the construction size even if the
  token grid is the same (e.g. 260×128 → 16×8), which slightly blurs the table; here the table is used as is
  whenever the grid matches. For stride-16 inputs whose sides are multiples of 16 both agree exactly.
* The CLS token is initialised ``trunc_normal(std=0.02)`` as in the official code (timm uses ``normal(1e-6)``);
  everything else in the transformer uses timm's default init (which equals the official one).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from timm.layers import LayerNorm, trunc_normal_
from timm.models.vision_transformer import VisionTransformer

from .ics import ICSPatchEmbed, PatchEmbed

logger = logging.getLogger(__name__)

__all__ = ["ArchSpec", "ARCHS", "ReIDViT", "build_backbone", "list_backbones"]


@dataclass(frozen=True)
class ArchSpec:
    """One backbone variant (docs/reference.md §2.1)."""

    embed_dim: int
    depth: int
    num_heads: int
    ics: bool  # ICS convolution stem instead of the 16x16 patchify conv
    img_size: tuple[int, int]  # default (height, width)
    note: str


ARCHS: dict[str, ArchSpec] = {
    "vit_tiny": ArchSpec(192, 4, 3, False, (128, 64), "CPU tiny profile: 192-d, 4 blocks, 3 heads"),
    "vit_tiny_ics": ArchSpec(192, 4, 3, True, (128, 64), "vit_tiny with the ICS stem"),
    "vit_small": ArchSpec(384, 12, 6, False, (256, 128), "ViT-S/16 (DINO vit_small, TransReID vit_small_…)"),
    "vit_small_ics": ArchSpec(384, 12, 6, True, (256, 128), "ViT-S/16+ICS (official ours_vit_small)"),
    "vit_base": ArchSpec(768, 12, 12, False, (256, 128), "ViT-B/16"),
    "vit_base_ics": ArchSpec(768, 12, 12, True, (256, 128), "ViT-B/16+ICS (official ours_vit_base)"),
}

# Extra keyword arguments build_backbone forwards to timm's VisionTransformer.
_PASSTHROUGH = {"patch_size", "in_chans", "attn_drop_rate", "proj_drop_rate", "pos_drop_rate"}


class ReIDViT(VisionTransformer):
    """timm ``VisionTransformer`` with the official ReID configuration (module docstring).

    Args:
        arch: name recorded on the model (used in load reports and error messages).
        img_size: construction size (height, width); fixes the stored position-embedding grid.
        embed_dim, depth, num_heads: transformer size.
        ics: use the ICS stem as patch embedding.
        stride_size: patch stride (< ``patch_size`` gives overlapping patches).
        drop_path_rate: stochastic depth, linear from 0 to this value over the blocks.
        **kwargs: ``patch_size`` (16), ``in_chans`` (3), ``attn_drop_rate``, ``proj_drop_rate``, ``pos_drop_rate``.
    """

    def __init__(
        self,
        arch: str,
        img_size: tuple[int, int],
        embed_dim: int,
        depth: int,
        num_heads: int,
        ics: bool = False,
        stride_size: int | tuple[int, int] = 16,
        drop_path_rate: float = 0.1,
        **kwargs: Any,
    ) -> None:
        embed_cls = ICSPatchEmbed if ics else PatchEmbed
        super().__init__(
            img_size=img_size,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=4.0,
            qkv_bias=True,
            class_token=True,
            no_embed_class=False,  # pos_embed has a CLS row (1, 1 + N, D)
            num_classes=0,
            global_pool="token",
            norm_layer=partial(LayerNorm, eps=1e-6),
            drop_path_rate=drop_path_rate,
            embed_layer=partial(embed_cls, stride_size=stride_size),
            **kwargs,
        )
        self.arch = arch
        self.is_ics = ics
        self.stride_size = self.patch_embed.stride_size
        trunc_normal_(self.cls_token, std=0.02)  # official init (timm: normal(1e-6))

    # --- tokens -----------------------------------------------------------------------------------
    def grid_for(self, height: int, width: int) -> tuple[int, int]:
        """Token grid (gh, gw) that an input of ``height`` × ``width`` produces."""
        return self.patch_embed.grid_for(height, width)

    def interpolate_pos_encoding(self, gh: int, gw: int) -> torch.Tensor:
        """Position embeddings (1, 1 + gh·gw, D) for a ``gh`` × ``gw`` token grid (docs/reference.md §2.3).

        Same grid as construction: the stored table. Otherwise DINO's bicubic resize of the patch part with
        ``scale_factor = ((gh + 0.1) / OH, (gw + 0.1) / OW)`` (the +0.1 avoids flooring to gh − 1), CLS row kept.
        """
        oh, ow = self.patch_embed.grid_size
        if (gh, gw) == (oh, ow):
            return self.pos_embed
        dim = self.pos_embed.shape[-1]
        cls_pos, patch_pos = self.pos_embed[:, :1], self.pos_embed[:, 1:]
        patch_pos = patch_pos.reshape(1, oh, ow, dim).permute(0, 3, 1, 2)
        patch_pos = F.interpolate(
            patch_pos, scale_factor=((gh + 0.1) / oh, (gw + 0.1) / ow), mode="bicubic", align_corners=False
        )
        if patch_pos.shape[-2:] != (gh, gw):  # cannot happen for gh, gw >= 1; kept as the official assertion
            raise RuntimeError(
                f"position-embedding interpolation gave {tuple(patch_pos.shape[-2:])}, wanted {(gh, gw)}"
            )
        patch_pos = patch_pos.permute(0, 2, 3, 1).reshape(1, gh * gw, dim)
        return torch.cat((cls_pos, patch_pos), dim=1)

    def _pos_embed(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, D, gh, gw) from the patch embedding -> (B, 1 + gh*gw, D) with CLS and position embeddings
        gh, gw = x.shape[-2:]
        x = x.flatten(2).transpose(1, 2)  # the same ops as timm's PatchEmbed + _pos_embed
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), dim=1)
        return self.pos_drop(x + self.interpolate_pos_encoding(gh, gw))

    def set_input_size(self, *args: Any, **kwargs: Any) -> None:
        """Not supported (timm's version expects its own PatchEmbed); any input size already works at run time.

        To move the stored table to another size, build the model at that size and ``load_pretrained`` the weights
        (bilinear resize, docs/reference.md §3.4).
        """
        raise NotImplementedError(
            "ReIDViT accepts any input size as is (bicubic position-embedding interpolation); to change the stored "
            "grid, build_backbone(..., img_size=new) and load_pretrained(model, old_weights)"
        )

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """All tokens after the final LayerNorm: (B, 1 + gh·gw, D); index 0 is CLS."""
        return self.forward_features(x)

    def extra_repr(self) -> str:
        return f"arch={self.arch}, img_size={self.patch_embed.img_size}, stride={self.stride_size}"


def list_backbones() -> list[str]:
    """Names accepted by :func:`build_backbone`."""
    return list(ARCHS)


def build_backbone(
    name: str,
    img_size: tuple[int, int] | None = None,
    stride_size: int = 16,
    drop_path_rate: float = 0.1,
    **kwargs: Any,
) -> ReIDViT:
    """Build a backbone by name (see :func:`list_backbones`).

    Args:
        name: ``vit_tiny``, ``vit_tiny_ics``, ``vit_small``, ``vit_small_ics``, ``vit_base``, ``vit_base_ics``.
        img_size: (height, width) the position-embedding table is built for; ``None`` = the architecture's
            default ((256, 128) for small/base, (128, 64) for tiny). Other input sizes still work (docs/reference.md §2.3).
        stride_size: patch stride; < 16 gives TransReID's overlapping patches (also with ICS, docs/reference.md §9.17).
        drop_path_rate: stochastic depth (0.1 DINO student / TransReID, 0.3 cluster-contrast, 0 DINO teacher).
        **kwargs: ``patch_size``, ``in_chans``, ``attn_drop_rate``, ``proj_drop_rate``, ``pos_drop_rate``.

    Returns:
        A :class:`ReIDViT`; in eval mode ``model(x)`` is the (B, D) CLS feature.

    Examples:
        >>> model = build_backbone("vit_tiny_ics")
        >>> model.eval()(torch.randn(2, 3, 128, 64)).shape
        torch.Size([2, 192])
    """
    if name not in ARCHS:
        raise ValueError(f"unknown backbone {name!r}; valid names: {', '.join(ARCHS)}")
    unknown = set(kwargs) - _PASSTHROUGH
    if unknown:
        raise TypeError(
            f"build_backbone got unexpected arguments {sorted(unknown)}; allowed extras: {sorted(_PASSTHROUGH)}"
        )
    spec = ARCHS[name]
    size = tuple(img_size) if img_size is not None else spec.img_size
    if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
        raise ValueError(f"img_size must be (height, width) positive ints, got {img_size!r}")
    if not 0.0 <= drop_path_rate < 1.0:
        raise ValueError(f"drop_path_rate must be in [0, 1), got {drop_path_rate}")
    model = ReIDViT(
        arch=name,
        img_size=size,
        embed_dim=spec.embed_dim,
        depth=spec.depth,
        num_heads=spec.num_heads,
        ics=spec.ics,
        stride_size=stride_size,
        drop_path_rate=drop_path_rate,
        **kwargs,
    )
    logger.debug("built %s: img_size=%s grid=%s stride=%s", name, size, model.patch_embed.grid_size, stride_size)
    return model
