"""Self-attention maps of ViT / ViT+ICS backbones for any input size and stride (docs/reference.md §6, §9.19).

Training uses timm's fused ``F.scaled_dot_product_attention``, which never materialises the attention matrix; the
functions here recompute it explicitly from a block's ``qkv`` projection, ``softmax(q·kᵀ·d^-½)``, with the same
weights, so the maps are exactly what the fused kernel computes.

* :func:`last_selfattention` — the last block's attention, (B, heads, N, N) with N = 1 + gh·gw (DINO's
  ``get_last_selfattention``; the official ICS model has none, and the official script cannot load 256×128
  checkpoints, docs/reference.md §6).
* :func:`attention_rollout` — Abnar & Zuidema (2020), "Quantifying Attention Flow in Transformers": per block,
  fuse heads, add the identity for the residual path, ``Ã = (A + I) / 2`` renormalised, and multiply over blocks,
  ``R = Ã_L ⋯ Ã_1``.
* :func:`cls_attention_map` — the CLS row over the patch tokens, reshaped to the token grid.
* :func:`attention_entropy_by_block` — how selective every block's attention is: the normalised entropy of the
  CLS token's and of the patch tokens' attention rows (1 = uniform, every token averages all tokens).

Call them under ``torch.no_grad()`` with the model in eval mode (drop-path would otherwise make maps random).
"""
from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

__all__ = ["block_attention", "last_selfattention", "attention_rollout", "cls_attention_map",
           "attention_entropy_by_block"]


def _embed(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Tokens entering the first block: patch embedding, CLS + position embeddings (as ``forward_features``)."""
    t = model.patch_embed(x)
    t = model._pos_embed(t)
    t = model.patch_drop(t)
    return model.norm_pre(t)


def block_attention(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Attention probabilities (B, heads, N, N) that ``block`` computes for its input tokens ``x`` (B, N, D)."""
    attn = block.attn
    y = block.norm1(x)
    b, n, _ = y.shape
    qkv = attn.qkv(y).reshape(b, n, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
    q, k, _ = qkv.unbind(0)
    q, k = attn.q_norm(q), attn.k_norm(k)
    return ((q * attn.scale) @ k.transpose(-2, -1)).softmax(dim=-1)


def last_selfattention(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The last block's self-attention for images ``x`` (B, 3, H, W): (B, heads, N, N), rows sum to 1."""
    t = _embed(model, x)
    for blk in model.blocks[:-1]:
        t = blk(t)
    return block_attention(model.blocks[-1], t)


def attention_rollout(
    model: nn.Module,
    x: torch.Tensor,
    discard_ratio: float = 0.0,
    head_fusion: Literal["mean", "max", "min"] = "mean",
) -> torch.Tensor:
    """Attention rollout across all blocks: (B, N, N), rows sum to 1; row 0 is the CLS token's attribution.

    Args:
        model: a backbone from :func:`~reid_lab.models.build_backbone`.
        x: images (B, 3, H, W).
        discard_ratio: per block and image, zero this fraction of the smallest fused attention weights before
            adding the identity (the CLS→CLS entry is always kept), as in common rollout implementations.
        head_fusion: how heads are combined per block.
    """
    if not 0.0 <= discard_ratio < 1.0:
        raise ValueError(f"discard_ratio must be in [0, 1), got {discard_ratio}")
    fuse = {"mean": lambda a: a.mean(1), "max": lambda a: a.amax(1), "min": lambda a: a.amin(1)}
    if head_fusion not in fuse:
        raise ValueError(f"head_fusion must be one of {sorted(fuse)}, got {head_fusion!r}")
    t = _embed(model, x)
    b, n, _ = t.shape
    eye = torch.eye(n, device=t.device, dtype=t.dtype).expand(b, n, n)
    result = eye
    for blk in model.blocks:
        a = fuse[head_fusion](block_attention(blk, t))  # (B, N, N)
        if discard_ratio > 0:
            flat = a.reshape(b, n * n).clone()
            k = int(n * n * discard_ratio)
            idx = flat.topk(k, dim=-1, largest=False).indices
            keep_cls = flat[:, 0].clone()
            flat.scatter_(1, idx, 0.0)
            flat[:, 0] = keep_cls
            a = flat.reshape(b, n, n)
        a = (a + eye) / 2
        a = a / a.sum(dim=-1, keepdim=True)
        result = a @ result
        t = blk(t)
    return result


def cls_attention_map(
    model: nn.Module,
    x: torch.Tensor,
    method: Literal["last", "rollout"] = "last",
    **rollout_kwargs,
) -> torch.Tensor:
    """CLS attention over the patches on the token grid: (B, heads, gh, gw) for ``"last"``, (B, 1, gh, gw) for
    ``"rollout"``. Upsample by the patch stride for display (docs/reference.md §6)."""
    gh, gw = model.grid_for(x.shape[-2], x.shape[-1])
    if method == "last":
        a = last_selfattention(model, x)[:, :, 0, 1:]
    elif method == "rollout":
        a = attention_rollout(model, x, **rollout_kwargs)[:, None, 0, 1:]
    else:
        raise ValueError(f"method must be 'last' or 'rollout', got {method!r}")
    return a.reshape(a.shape[0], a.shape[1], gh, gw)


def attention_entropy_by_block(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """(blocks, 2): per block, the mean normalised entropy of the CLS token's attention over the patch tokens
    (column 0) and of the patch tokens' attention over the patch tokens (column 1), each row renormalised over the
    patches and divided by ln(gh·gw); 1 = uniform. Averaged over images, heads and rows (docs/reference.md §6)."""
    t = _embed(model, x)
    n = t.shape[1] - 1
    out = []
    for blk in model.blocks:
        p = block_attention(blk, t)[..., 1:]  # (B, heads, N, patches)
        p = p / p.sum(-1, keepdim=True)
        h = -(p * torch.log(p.clamp_min(1e-30))).sum(-1) / math.log(n) if n > 1 else torch.zeros(p.shape[:-1])
        out.append(torch.stack([h[:, :, 0].mean(), h[:, :, 1:].mean()]))
        t = blk(t)
    return torch.stack(out)
