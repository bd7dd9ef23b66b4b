"""Attention figures for ViT / ViT+ICS ReID backbones at any input size and stride (docs/reference.md §6, §9.19, §12.3).

What the official ``dino/visualize_attention.py`` does (docs/reference.md §6), and what we keep:

* the **last block's** self-attention, row of the CLS query, columns of the patch tokens → one map per head on the
  token grid (computed by :func:`reid_lab.models.cls_attention_map`, which recomputes the probabilities from the
  block's own ``qkv``);
* the **mass mask** of a threshold ``t`` (:func:`mass_mask`): per head, sort the attention ascending, normalise to
  sum 1, cumulative sum, keep the patches whose cumulative sum is ``> 1 − t`` — the smallest set of patches that
  holds a fraction ``t`` of the mass — un-sort. Same operations in the same order as the official code (in float32
  for model outputs), so the same patches are kept (strict ``>``: a patch that brings the kept mass to exactly
  ``t`` is kept, the one before it is not);
* maps are brought to pixels by repeating each token over its patch (official: nearest upsampling × patch size).

Differences from the official script, on purpose:

* any model of :func:`reid_lab.models.build_backbone` (ICS or not, 256×128 / 384×128 / 128×64, any stride) and
  fine-tuned :class:`reid_lab.reid.ReIDModel` checkpoints; the official script hard-codes a 224×224 plain ViT and
  cannot load the released 256×128 or ICS models (docs/reference.md §9.19);
* overlapping patches (stride < 16): each pixel gets the **mean** of the tokens whose 16×16 patch covers it
  (:func:`to_pixels`); for non-overlapping patches this is exactly nearest upsampling. Pixels no patch covers
  (the right/bottom remainder when ``(W − 16) mod stride ≠ 0``) are 0 and outside the mask (transparent in the
  figures);
* ties in the sort are broken by token index (stable sort): the kept *mass* is the official one, and which of
  two equal patches is kept no longer depends on the sort implementation;
* images are normalised with the statistics the model was trained with: mean = std = 0.5 for fine-tuned models,
  ImageNet statistics for DINO pre-training (docs/reference.md §9.9); pass ``mean``/``std``;
* :func:`attention_maps` also gives attention rollout (Abnar & Zuidema 2020; :func:`reid_lab.models.attention_rollout`)
  and three summary numbers per head: the normalised entropy of the CLS attention, its peak (largest / mean patch
  weight) and the area of the mass mask. Uniform attention gives 1, 1 and about ``t`` of the patches.

How much attention falls on the person (:func:`attention_mass_inside`): given the person's pixel mask (the
synthetic worlds re-draw it, :func:`reid_lab.data.synthetic.person_masks`), each token is covered by the fraction
of its patch's pixels inside the mask (:func:`token_coverage`); the mass inside is the share of a head's CLS→patch
attention (renormalised over the patches) weighted by that coverage. Uniform attention gets the mean coverage,
the person's **area** on the token grid — so ``mass / area`` > 1 means attention concentrates on the person.

Plots: :func:`plot_attention_heads` (one image: every head, their mean, the mask, rollout) and
:func:`plot_attention_grid` (rows = models, columns = the same images). Both return a ``Figure``.
"""
from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .figures import _figure, _save
from .style import ATTENTION_VMAX

logger = logging.getLogger(__name__)

__all__ = ["REID_MEAN", "REID_STD", "AttentionMaps", "MassInside", "attention_mass_inside", "attention_maps",
           "mass_inside_table", "mass_mask", "plot_attention_grid", "plot_attention_heads", "to_pixels",
           "token_coverage"]

REID_MEAN = (0.5, 0.5, 0.5)  # fine-tuning normalisation of every LUPerson-pretrained model (docs/reference.md §9.9)
REID_STD = (0.5, 0.5, 0.5)


# ---------------------------------------------------------------------------------------------------------
# Numerics
# ---------------------------------------------------------------------------------------------------------
def mass_mask(attention: torch.Tensor | np.ndarray, threshold: float = 0.6) -> torch.Tensor:
    """The patches that hold a fraction ``threshold`` of the attention mass, per row (docs/reference.md §6, official numerics).

    Args:
        attention: non-negative weights (..., N), e.g. (heads, N) CLS→patch attention; each row is normalised to
            sum 1 first, so unnormalised rows work too.
        threshold: fraction of the mass to keep, in (0, 1] (the official ``--threshold``; the paper's figures 0.6).

    Returns:
        bool tensor of the input's shape: ``True`` for the smallest set of largest entries whose sum reaches
        ``threshold`` of the row's mass (sort ascending, normalise, cumulative sum ``> 1 − threshold``, un-sort).
    """
    if not 0.0 < float(threshold) <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold!r}")
    a = torch.as_tensor(attention)
    if not a.is_floating_point():
        a = a.float()
    if a.ndim == 0 or a.shape[-1] == 0:
        raise ValueError(f"attention must be (..., N) with N >= 1, got shape {tuple(a.shape)}")
    if bool((a < 0).any()) or not bool(torch.isfinite(a).all()):
        raise ValueError("attention must hold finite, non-negative weights")
    val, idx = torch.sort(a, dim=-1, stable=True)  # ascending
    val = val / val.sum(dim=-1, keepdim=True)
    keep_sorted = torch.cumsum(val, dim=-1) > (1 - threshold)
    return torch.gather(keep_sorted, -1, torch.argsort(idx, dim=-1))  # back to token order


def to_pixels(grid: torch.Tensor, size: tuple[int, int], patch_size: int | tuple[int, int] = 16,
              stride: int | tuple[int, int] = 16, fill: float = 0.0) -> torch.Tensor:
    """Token-grid maps (B, C, gh, gw) → pixel maps (B, C, H, W): every pixel takes the mean of the tokens whose
    ``patch_size`` patch (placed every ``stride`` pixels) covers it; pixels no patch covers get ``fill``.

    With ``stride == patch_size`` this is nearest upsampling by the patch size (the official display).
    """
    if grid.ndim != 4:
        raise ValueError(f"grid must be (B, C, gh, gw), got shape {tuple(grid.shape)}")
    ph, pw = (patch_size, patch_size) if isinstance(patch_size, int) else tuple(patch_size)
    sh, sw = (stride, stride) if isinstance(stride, int) else tuple(stride)
    b, c, gh, gw = grid.shape
    x = grid.float().reshape(b * c, 1, gh, gw)
    ones = torch.ones(1, 1, ph, pw, dtype=x.dtype, device=x.device)
    total = F.conv_transpose2d(x, ones, stride=(sh, sw))  # sum of covering tokens
    count = F.conv_transpose2d(torch.ones_like(x[:1]), ones, stride=(sh, sw))  # how many tokens cover a pixel
    out = torch.where(count > 0, total / count.clamp_min(1), fill)
    height, width = size
    out = F.pad(out, (0, max(0, width - out.shape[-1]), 0, max(0, height - out.shape[-2])), value=fill)
    return out[..., :height, :width].reshape(b, c, height, width)


# ---------------------------------------------------------------------------------------------------------
# Maps of a model on images
# ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class AttentionMaps:
    """CLS attention of one model on a batch of images (numpy arrays; B images, h heads, token grid gh × gw).

    Attributes:
        images: (B, H, W, 3) uint8, the images as the model saw them (resized, before normalisation).
        heads: (B, h, gh, gw) last-block CLS→patch attention per head (rows of the softmax, so CLS→CLS is missing
            and a head's patch weights sum to ≤ 1).
        head_masks: (B, h, gh, gw) bool, :func:`mass_mask` of each head.
        mean: (B, gh, gw) the mean over heads; ``mean_mask`` its mass mask.
        rollout: (B, gh, gw) attention rollout of the CLS token over the patches (normalised to sum 1), or None.
        entropy: (B, h) entropy of each head's patch attention (renormalised to sum 1) divided by ln(gh·gw):
            1 = uniform over the patches, 0 = a single patch.
        peak: (B, h) the largest patch weight over the mean patch weight: 1 = uniform, gh·gw = a single patch.
        mask_area: (B, h) fraction of the patches in each head's mass mask.
        threshold: the mass fraction of the masks.
        patch_size, stride: (height, width) of a token's patch and of the token step, in pixels.
        block_entropy: (blocks, 2) normalised entropy of every block's CLS row and patch rows over the patches
            (:func:`reid_lab.models.attention_entropy_by_block`, means over images), or None.
    """

    images: np.ndarray
    heads: np.ndarray
    head_masks: np.ndarray
    mean: np.ndarray
    mean_mask: np.ndarray
    rollout: np.ndarray | None
    entropy: np.ndarray
    peak: np.ndarray
    mask_area: np.ndarray
    threshold: float
    patch_size: tuple[int, int]
    stride: tuple[int, int]
    block_entropy: np.ndarray | None = None

    def pixels(self, maps: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Token-grid maps (B, [C,] gh, gw) → pixel maps of the image size (:func:`to_pixels`); pixels no patch
        covers get ``fill`` (NaN draws them transparent)."""
        arr = np.asarray(maps)
        squeeze = arr.ndim == 3
        t = torch.from_numpy(np.ascontiguousarray(arr[:, None] if squeeze else arr).astype(np.float32))
        out = to_pixels(t, self.images.shape[1:3], self.patch_size, self.stride, fill).numpy()
        return out[:, 0] if squeeze else out

    def subset(self, index: Sequence[int] | np.ndarray) -> AttentionMaps:
        """The maps of the images ``index`` (e.g. a few of many for a figure)."""
        idx = np.asarray(index, dtype=int)
        per_image = ("images", "heads", "head_masks", "mean", "mean_mask", "rollout", "entropy", "peak", "mask_area")
        return dataclasses.replace(self, **{f: None if getattr(self, f) is None else getattr(self, f)[idx]
                                            for f in per_image})

    def summary(self) -> dict[str, float]:
        """Means over images and heads: ``entropy``, ``peak`` and ``mask_area``."""
        return {"entropy": float(self.entropy.mean()), "peak": float(self.peak.mean()),
                "mask_area": float(self.mask_area.mean())}


def _backbone(model: nn.Module) -> nn.Module:
    """The ViT inside ``model`` (DDP/compile wrappers and a ReIDModel's ``base`` removed)."""
    from ..engine import unwrap

    model = unwrap(model)
    model = getattr(model, "base", model)
    if not (hasattr(model, "blocks") and hasattr(model, "patch_embed") and hasattr(model, "grid_for")):
        raise TypeError(f"expected a backbone from reid_lab.models.build_backbone or a ReIDModel, got "
                        f"{type(model).__name__}")
    return model


def _load(images: Any, size: tuple[int, int]) -> np.ndarray:
    """Paths / PIL images / (N, H, W, 3) uint8 array → (N, H, W, 3) uint8 at ``size`` (bilinear, as the test
    transform)."""
    from PIL import Image

    from ..reid.inference import _to_pil  # the inference API's input checks: paths, PIL images, uint8 arrays

    if isinstance(images, (str, os.PathLike, Image.Image)):
        raise TypeError("pass a list of images, not a single one")
    if isinstance(images, np.ndarray) and (images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8):
        raise ValueError(f"an image array must be (N, H, W, 3) uint8, got {images.shape} {images.dtype}")
    items = list(images)
    if not items:
        raise ValueError("no images given")
    height, width = size
    return np.stack([np.asarray(_to_pil(item, i).resize((width, height), Image.BILINEAR), dtype=np.uint8)
                     for i, item in enumerate(items)])


def _normalised_entropy(p: torch.Tensor) -> torch.Tensor:
    """Entropy of each row of ``p`` (..., N), renormalised to sum 1, divided by ln N."""
    n = p.shape[-1]
    p = p / p.sum(-1, keepdim=True)
    h = -(p * torch.log(p.clamp_min(1e-30))).sum(-1)
    return h / math.log(n) if n > 1 else torch.zeros_like(h)


@torch.no_grad()
def attention_maps(model: nn.Module, images: Any, *, device: str | torch.device = "cpu",
                   size: tuple[int, int] | None = None, mean: Sequence[float] = REID_MEAN,
                   std: Sequence[float] = REID_STD, threshold: float = 0.6, rollout: bool = True,
                   blocks: bool = False) -> AttentionMaps:
    """Last-block CLS attention (per head), mass masks and attention rollout of ``model`` on ``images``.

    Args:
        model: a backbone (:func:`reid_lab.models.build_backbone`) or a fine-tuned ``ReIDModel``; it runs in eval
            mode on ``device`` (its previous mode is restored).
        images: paths, PIL images or an (N, H, W, 3) uint8 array.
        device: where to run.
        size: (height, width) the images are resized to; default the model's construction size.
        mean, std: input normalisation the model was trained with (0.5 fine-tuned, ImageNet for DINO, docs/reference.md §9.9).
        threshold: mass fraction of the masks (docs/reference.md §6).
        rollout: also compute attention rollout.
        blocks: also compute ``block_entropy`` (how uniform every block's attention is).
    """
    from ..models import attention_entropy_by_block, cls_attention_map
    from ..reid.inference import model_input_size

    base = _backbone(model)
    size = tuple(size) if size is not None else model_input_size(base)
    pixels = _load(images, size)
    x = torch.from_numpy(pixels).permute(0, 3, 1, 2).float().div(255)
    m, s = torch.tensor(mean, dtype=torch.float32), torch.tensor(std, dtype=torch.float32)
    x = ((x - m.view(1, 3, 1, 1)) / s.view(1, 3, 1, 1)).to(device)
    was_training = base.training
    base.to(device).eval()
    try:
        heads = cls_attention_map(base, x, method="last").float().cpu()  # (B, h, gh, gw)
        roll = cls_attention_map(base, x, method="rollout").float().cpu()[:, 0] if rollout else None
        by_block = attention_entropy_by_block(base, x).float().cpu().numpy() if blocks else None
    finally:
        base.train(was_training)
    b, h, gh, gw = heads.shape
    logger.debug("%s: %d images at %s -> %d heads on a %dx%d grid", getattr(base, "arch", "model"), b, size, h, gh, gw)
    flat = heads.reshape(b, h, gh * gw)
    head_masks = mass_mask(flat, threshold)
    mean_map = flat.mean(1)
    if roll is not None:
        roll = roll / roll.sum(dim=(-2, -1), keepdim=True)
    patch = tuple(int(v) for v in base.patch_embed.patch_size)
    stride = tuple(int(v) for v in base.patch_embed.stride_size)
    return AttentionMaps(
        images=pixels,
        heads=heads.numpy(),
        head_masks=head_masks.reshape(b, h, gh, gw).numpy(),
        mean=mean_map.reshape(b, gh, gw).numpy(),
        mean_mask=mass_mask(mean_map, threshold).reshape(b, gh, gw).numpy(),
        rollout=None if roll is None else roll.numpy(),
        entropy=_normalised_entropy(flat).numpy(),
        peak=(flat.amax(-1) / flat.mean(-1)).numpy(),
        mask_area=head_masks.float().mean(-1).numpy(),
        threshold=float(threshold),
        patch_size=patch,  # type: ignore[arg-type]
        stride=stride,  # type: ignore[arg-type]
        block_entropy=by_block,
    )


# ---------------------------------------------------------------------------------------------------------
# Attention on the person
# ---------------------------------------------------------------------------------------------------------
def _resize_masks(masks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pixel masks (B, H', W') resized (bilinear) to ``size`` (height, width); unchanged if already that size."""
    m = np.asarray(masks, dtype=np.float32)
    if m.ndim != 3:
        raise ValueError(f"masks must be (B, H, W), got shape {m.shape}")
    if m.shape[1:] == tuple(size):
        return m
    return F.interpolate(torch.from_numpy(m)[:, None], size=tuple(size), mode="bilinear",
                         align_corners=False)[:, 0].numpy()


def token_coverage(masks: np.ndarray, size: tuple[int, int], patch_size: int | tuple[int, int] = 16,
                   stride: int | tuple[int, int] = 16) -> np.ndarray:
    """Pixel masks (B, H', W') in [0, 1] → (B, gh, gw): the fraction of each token's patch inside the mask.

    Masks are first resized (bilinear) to the model's input ``size`` (height, width) if they differ; a token's
    patch is ``patch_size`` pixels placed every ``stride`` pixels (the grid of :func:`to_pixels`).
    """
    m = torch.from_numpy(_resize_masks(masks, size))[:, None]
    ph, pw = (patch_size, patch_size) if isinstance(patch_size, int) else tuple(patch_size)
    sh, sw = (stride, stride) if isinstance(stride, int) else tuple(stride)
    return F.avg_pool2d(m, (ph, pw), (sh, sw))[:, 0].numpy()


@dataclass(frozen=True, eq=False)
class MassInside:
    """Share of the last-block CLS attention on the person, per image (:func:`attention_mass_inside`).

    Attributes:
        mass: (B,) mean over heads of each head's patch attention (renormalised to sum 1) on the person tokens.
        head_mass: (B, h) the same per head.
        area: (B,) the person's share of the token grid (mean token coverage): what uniform attention gets.
        rollout_mass: (B,) the same share for attention rollout, or None.
    """

    mass: np.ndarray
    head_mass: np.ndarray
    area: np.ndarray
    rollout_mass: np.ndarray | None

    @property
    def concentration(self) -> np.ndarray:
        """(B,) mass / area: 1 = uniform attention, > 1 = attention concentrates on the person."""
        return self.mass / self.area

    def summary(self) -> dict[str, float]:
        """Mean and sd over images of ``mass``, ``area``, ``concentration`` (and ``rollout_mass``), plus the mass
        of the most and least person-focused head (means over images)."""
        values = {"mass": self.mass, "area": self.area, "concentration": self.concentration}
        if self.rollout_mass is not None:
            values["rollout_mass"] = self.rollout_mass
        out = {}
        for key, v in values.items():
            out[key], out[f"{key}_sd"] = float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0
        per_head = self.head_mass.mean(0)
        out["best_head_mass"], out["worst_head_mass"] = float(per_head.max()), float(per_head.min())
        return out


def attention_mass_inside(maps: AttentionMaps, masks: np.ndarray) -> MassInside:
    """How much of ``maps``' CLS attention falls on the person given by pixel ``masks`` (B, H, W) (module doc).

    The masks are brought to the token grid with :func:`token_coverage` (at the size the model saw); each head's
    patch weights are renormalised to sum 1 (the CLS→CLS weight is not a place in the image).
    """
    if len(masks) != len(maps.heads):
        raise ValueError(f"{len(masks)} masks for {len(maps.heads)} images")
    cover = token_coverage(masks, maps.images.shape[1:3], maps.patch_size, maps.stride)
    if cover.shape[1:] != maps.heads.shape[2:]:
        raise ValueError(f"token grid of the masks {cover.shape[1:]} != attention grid {maps.heads.shape[2:]}")
    area = cover.mean(axis=(1, 2))
    if (area <= 0).any():
        raise ValueError("a mask covers no token: the mass inside is undefined for an image without a person")
    heads = maps.heads / maps.heads.sum(axis=(2, 3), keepdims=True)
    head_mass = (heads * cover[:, None]).sum(axis=(2, 3))
    roll = None
    if maps.rollout is not None:
        roll = (maps.rollout / maps.rollout.sum(axis=(1, 2), keepdims=True) * cover).sum(axis=(1, 2))
    return MassInside(mass=head_mass.mean(1), head_mass=head_mass, area=area, rollout_mass=roll)


def positional_prior_mass(maps: AttentionMaps, masks: np.ndarray) -> np.ndarray:
    """(B,) attention mass on the person of the model's **positional prior**: for image i, the mean over heads and
    over all *other* images of the model's patch attention (leave-one-out), which keeps where the model looks on
    average and forgets what is in image i. Attention that follows the person beats this prior on the same images;
    attention that only prefers the centre of the frame, where synthetic people stand, does not."""
    if len(maps.heads) < 2:
        raise ValueError("the positional prior needs attention maps of at least 2 images")
    cover = token_coverage(masks, maps.images.shape[1:3], maps.patch_size, maps.stride)
    heads = maps.heads / maps.heads.sum(axis=(2, 3), keepdims=True)
    per_image = heads.mean(1)                                   # (B, gh, gw), each sums to 1
    prior = (per_image.sum(0, keepdims=True) - per_image) / (len(per_image) - 1)
    return (prior * cover).sum(axis=(1, 2))


def mass_inside_table(results: Mapping[str, MassInside]) -> str:
    """Text table of :class:`MassInside` results: per model the attention mass on the person (mean ± sd over
    images, %), the person's area (the uniform baseline, %), mass / area, the least and most person-focused head
    and, if computed, rollout's mass on the person."""
    rollout = any(r.rollout_mass is not None for r in results.values())  # the column only when computed
    lines = [f"{'model':26s} {'on person (%)':>14s} {'area (%)':>9s} {'mass/area':>10s} {'heads (%)':>10s}"
             + (f" {'rollout (%)':>11s}" if rollout else "")]
    for name, r in results.items():
        s = r.summary()
        heads = f"{100 * s['worst_head_mass']:.0f}–{100 * s['best_head_mass']:.0f}"
        roll = f"{100 * s['rollout_mass']:.1f}" if "rollout_mass" in s else "-"
        lines.append(f"{name:26s} {100 * s['mass']:7.1f} ± {100 * s['mass_sd']:4.1f} {100 * s['area']:9.1f} "
                     f"{s['concentration']:10.2f} {heads:>10s}" + (f" {roll:>11s}" if rollout else ""))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------------------
def _overlay(ax, image: np.ndarray, heat: np.ndarray | None, mask: np.ndarray | None, *, alpha: float = 0.55,
             person: np.ndarray | None = None) -> None:
    """The image, the heat map as weight ÷ its mean (1 = uniform attention) on the one scale 0 … ``ATTENTION_VMAX``
    of every attention figure, the mask's outline in cyan (the person's, if given, dashed in lime)."""
    ax.imshow(image)
    if heat is not None:  # one scale for all panels: a near-uniform map stays dark, whatever its small variations
        mean = float(np.nanmean(heat))
        ax.imshow(heat / mean if mean > 0 else np.zeros_like(heat), cmap="inferno", alpha=alpha, vmin=0,
                  vmax=ATTENTION_VMAX)
    if mask is not None and mask.any() and not mask.all():
        ax.contour(mask.astype(float), levels=[0.5], colors="cyan", linewidths=1.0)
    if person is not None and person.max() > 0.5 > person.min():
        ax.contour(person.astype(float), levels=[0.5], colors="lime", linewidths=0.9, linestyles="dashed")
    ax.set_xticks([]), ax.set_yticks([])


def _scale_bar(fig, axes) -> None:
    """The shared colour scale of :func:`_overlay`, once per figure."""
    import matplotlib

    mappable = matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(0, ATTENTION_VMAX), "inferno")
    fig.colorbar(mappable, ax=list(np.ravel(axes)), fraction=0.025, pad=0.01,
                 label="attention ÷ uniform (1 = uniform)")


def _index(maps: AttentionMaps, index: int) -> int:
    if not -len(maps.images) <= index < len(maps.images):
        raise IndexError(f"image index {index} out of range for {len(maps.images)} images")
    return index % len(maps.images)


def plot_attention_heads(maps: AttentionMaps, index: int = 0, *, title: str | None = None,
                         save: str | os.PathLike | None = None):
    """One image: the input, every head's CLS attention (with its mass-mask outline), the mean over heads, the
    image blended with colour inside the mean's mass mask (the official ``mask_th`` picture) and, if computed,
    attention rollout. Returns the Figure."""
    i = _index(maps, index)
    image = maps.images[i]
    heads_px = maps.pixels(maps.heads[i:i + 1], np.nan)[0]
    masks_px = maps.pixels(maps.head_masks[i:i + 1].astype(np.float32))[0] >= 0.5
    mean_px = maps.pixels(maps.mean[i:i + 1], np.nan)[0]
    mean_mask_px = maps.pixels(maps.mean_mask[i:i + 1].astype(np.float32))[0] >= 0.5
    panels: list[tuple[str, np.ndarray | None, np.ndarray | None]] = [("input", None, None)]
    panels += [(f"head {h + 1}\npeak {maps.peak[i, h]:.2f}", heads_px[h], masks_px[h]) for h in range(len(heads_px))]
    panels.append(("mean of heads", mean_px, mean_mask_px))
    ncols = len(panels) + 1 + (maps.rollout is not None)
    height, width = image.shape[:2]
    col = 1.15  # inches per panel
    fig, axes = _figure(1, ncols, figsize=(ncols * col + 0.3, col * height / width + 0.9), squeeze=False)
    axes = axes[0]
    for ax, (label, heat, mask) in zip(axes, panels):
        _overlay(ax, image, heat, mask, alpha=0.85 if heat is not None else 0.0)
        ax.set_title(label, fontsize=7)
    blended = image.astype(np.float32) / 255
    blended[mean_mask_px] = 0.5 * blended[mean_mask_px] + 0.5 * np.array([0.1, 0.9, 0.3])
    _overlay(axes[len(panels)], blended, None, mean_mask_px)
    axes[len(panels)].set_title(f"{100 * maps.threshold:.0f}% mass\n({mean_mask_px.mean() * 100:.0f}% of pixels)",
                                fontsize=7)
    if maps.rollout is not None:
        _overlay(axes[-1], image, maps.pixels(maps.rollout[i:i + 1], np.nan)[0], None, alpha=0.85)
        axes[-1].set_title("rollout", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    _scale_bar(fig, axes)
    return _save(fig, save)


def plot_attention_grid(rows: Mapping[str, AttentionMaps], *, labels: Sequence[str] | None = None,
                        method: str = "mean", title: str | None = None, person_masks: np.ndarray | None = None,
                        save: str | os.PathLike | None = None):
    """The same images seen by several models: one row per model, one column per image.

    Each panel overlays the model's head-averaged last-block CLS attention (``method="mean"``) or its attention
    rollout (``"rollout"``) on the image, on one colour scale (weight ÷ uniform), with the outline of the mask holding
    ``threshold`` of the mass (mean-over-heads map; for rollout the rollout's own mask). Below each panel: the
    mask's share of the patches (``threshold`` itself for uniform attention) and the peak (largest / mean patch
    weight, 1 for uniform attention). ``labels`` names the columns. With ``person_masks`` (B, H, W) the person's
    outline is drawn dashed and the label gives the attention mass on the person / its area
    (:func:`attention_mass_inside`). Returns the Figure.
    """
    if not rows:
        raise ValueError("rows is empty: pass {model name: attention_maps(...)}")
    if method not in ("mean", "rollout"):
        raise ValueError(f"method must be 'mean' or 'rollout', got {method!r}")
    counts = {name: len(m.images) for name, m in rows.items()}
    if len(set(counts.values())) != 1:
        raise ValueError(f"every row must hold the same number of images, got {counts}")
    n = next(iter(counts.values()))
    if labels is not None and len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} images")
    first = next(iter(rows.values())).images
    aspect = first.shape[2] / first.shape[1]
    fig, axes = _figure(len(rows), n, figsize=(n * 2.6 * aspect + 0.8, len(rows) * 2.7), squeeze=False)
    for r, (name, maps) in enumerate(rows.items()):
        if method == "rollout":
            if maps.rollout is None:
                raise ValueError(f"row {name!r} has no rollout: call attention_maps(..., rollout=True)")
            grid = maps.rollout
            mask = mass_mask(torch.from_numpy(grid.reshape(len(grid), -1)), maps.threshold).reshape(grid.shape).numpy()
        else:
            grid, mask = maps.mean, maps.mean_mask
        heat_px = maps.pixels(grid, np.nan)
        mask_px = maps.pixels(mask.astype(np.float32)) >= 0.5
        inside = None if person_masks is None else attention_mass_inside(maps, person_masks)
        person_px = None if person_masks is None else _resize_masks(person_masks, maps.images.shape[1:3])
        for c in range(n):
            ax = axes[r, c]
            _overlay(ax, maps.images[c], heat_px[c], mask_px[c], person=None if person_px is None else person_px[c])
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
            if r == 0 and labels is not None:
                ax.set_title(labels[c], fontsize=8)
            label = f"mask {100 * mask[c].mean():.0f}% · peak {grid[c].max() / grid[c].mean():.2f}"
            if inside is not None:
                on = inside.mass[c] if method == "mean" else inside.rollout_mass[c]
                label += f"\nperson {100 * on:.0f}% / area {100 * inside.area[c]:.0f}%"
            ax.set_xlabel(label, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    _scale_bar(fig, axes)
    return _save(fig, save)
