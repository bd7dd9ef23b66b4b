"""Patch embeddings: the plain (optionally overlapping) patchify layer and the ICS stem (docs/reference.md §2.2, §4.1).

Both modules map an image (B, 3, H, W) to a token grid (B, D, gh, gw) (the convolution's own layout; the grid
size travels with the tensor, so any input size works); the transformer in :mod:`reid_lab.models.vit` flattens it
and adds the CLS token and position embeddings.

* :class:`PatchEmbed` — one Conv2d(3 → D, kernel 16, stride ``stride_size``). With ``stride_size`` < 16
  the patches overlap as in TransReID: ``num_y = (H − 16) // stride + 1`` (docs/reference.md §4.1).
* :class:`ICSPatchEmbed` — the IBN-based convolution stem of the paper ("ICS"): three convolutions
  (7×7/2, 3×3, 3×3; width 64; IBN, IBN, BN) followed by ``proj`` = Conv2d(64 → D, kernel 8, stride 8).
  Each token still covers a 16×16 input patch, so the grid equals plain ViT/16's.

Parameter names equal the official state dicts (docs/reference.md §3.3): ``proj.*``, ``conv.{0,1.IN,1.BN,3,4.IN,4.BN,6,7}.*``.

Differences from the official code (docs/reference.md §9):

* §9.17 — with the ICS stem the official ``PatchEmbed`` silently replaces the configured ``STRIDE_SIZE`` by 8
  while its token count still uses the configured stride, so overlapping patches and ICS cannot be combined.
  Here the stride is honoured: ``proj`` uses kernel 8 and stride ``stride_size / 2`` on the stride-2 stem
  output, which gives exactly TransReID's overlapping grid (e.g. 21×10 at 256×128, stride 12).
* §9.18 — the cluster-contrast copy of the stem hard-codes ``embed_dim=384``; here D is an argument.
* §9.26 — the stem's BatchNorm layers make ICS features depend on the batch in train mode. The official DDP
  fine-tuning never converts them to SyncBatchNorm, so each GPU normalises with its own chunk's statistics; DINO
  pre-training does convert. The module uses plain ``nn.BatchNorm2d`` (IBN's ``BN`` and ``conv.7``, the same state
  dict keys as SyncBatchNorm); call ``nn.SyncBatchNorm.convert_sync_batchnorm(model)`` for multi-GPU runs that
  should match single-GPU statistics.

Initialisation (the official code leaves every convolution at PyTorch's default):

* stem convolutions: Kaiming-normal (fan_out, ReLU), as in ResNet / IBN-Net where the IBN block comes from;
  IN/BN affine weight 1, bias 0;
* ``proj``: PyTorch's default init, then **zero-mean filters and zero bias** (docs/reference.md §11.4, "Why an
  ICS-like stem collapsed under DINO"). The stem ends in BN → ReLU, so every channel carries a positive mean
  (≈0.4 under batch statistics) that is the same for all images; a default-initialised projection turns it into
  a large component shared by all tokens of all images, and DINO collapses from step 0 (CLS cosine 0.9 between
  different images). Removing each filter's mean over (in-channels, kh, kw) cancels that shared component
  while keeping the filters' response to anything that varies across channels or positions.
  Measured at init on 16 distinct images (train-mode BN): mean pairwise CLS cosine 0.2–0.45 with this init,
  0.65–0.95 with PyTorch's default (tests/test_models.py guards it).
  Caveat: in *eval* mode before any training the BN running statistics are still (0, 1), channel means differ
  and the CLS features of an untrained ICS model are alike again (0.8–0.9); run a few train-mode forward passes
  under ``torch.no_grad()`` to estimate BN statistics before judging random-init ICS features in eval mode.
  This only concerns training from scratch; loaded weights overwrite it.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["IBN", "PatchEmbed", "ICSPatchEmbed", "ics_stem"]


def _pair(v: int | tuple[int, int] | list[int], what: str) -> tuple[int, int]:
    if isinstance(v, int):
        return (v, v)
    if isinstance(v, (tuple, list)) and len(v) == 2 and all(isinstance(x, int) for x in v):
        return (int(v[0]), int(v[1]))
    raise ValueError(f"{what} must be an int or a pair of ints (height, width), got {v!r}")


class IBN(nn.Module):
    """Instance-Batch Normalisation (Pan et al., IBN-Net): IN on the first half of the channels, BN on the rest.

    ``IN`` = InstanceNorm2d(C/2, affine=True, no running statistics), ``BN`` = BatchNorm2d(C − C/2); the outputs
    are concatenated, IN first (docs/reference.md §2.2).
    """

    def __init__(self, planes: int) -> None:
        super().__init__()
        self.half = planes // 2
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = nn.BatchNorm2d(planes - self.half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = torch.split(x, [self.half, x.shape[1] - self.half], dim=1)
        return torch.cat((self.IN(a.contiguous()), self.BN(b.contiguous())), dim=1)


def ics_stem(in_chans: int = 3, hidden_dim: int = 64) -> nn.Sequential:
    """The convolutional part of ICS (docs/reference.md §2.2 table): indices 0–8, overall stride 2."""
    return nn.Sequential(
        nn.Conv2d(in_chans, hidden_dim, kernel_size=7, stride=2, padding=3, bias=False),  # 0
        IBN(hidden_dim),  # 1
        nn.ReLU(inplace=True),  # 2
        nn.Conv2d(hidden_dim, hidden_dim, kernel_size=3, stride=1, padding=1, bias=False),  # 3
        IBN(hidden_dim),  # 4
        nn.ReLU(inplace=True),  # 5
        nn.Conv2d(hidden_dim, hidden_dim, kernel_size=3, stride=1, padding=1, bias=False),  # 6
        nn.BatchNorm2d(hidden_dim),  # 7 (plain BN, no IN)
        nn.ReLU(inplace=True),  # 8
    )


class PatchEmbed(nn.Module):
    """Patchify layer: Conv2d(in_chans → D, kernel ``patch_size``, stride ``stride_size``), output (B, D, gh, gw).

    ``stride_size < patch_size`` gives TransReID's overlapping patches (docs/reference.md §4.1). Inputs of any size at least
    one patch large are accepted; the grid is ``(H − patch) // stride + 1`` per side (see :meth:`grid_for`).

    The constructor accepts the keyword arguments timm's ``VisionTransformer`` passes to its ``embed_layer``.
    """

    def __init__(
        self,
        img_size: int | tuple[int, int] = (256, 128),
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        stride_size: int | tuple[int, int] | None = None,
        bias: bool = True,
        **_timm_kwargs,  # dynamic_img_pad, device, dtype: not used
    ) -> None:
        super().__init__()
        self.img_size = _pair(img_size, "img_size")
        self.patch_size = _pair(patch_size, "patch_size")
        self.stride_size = _pair(stride_size if stride_size is not None else patch_size, "stride_size")
        for s, p in zip(self.stride_size, self.patch_size):
            if not 0 < s <= p:
                raise ValueError(f"stride_size must be in 1..patch_size={p} (overlapping or touching patches), "
                                 f"got {self.stride_size}")
        self.grid_size = self.grid_for(*self.img_size)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = self._make_proj(in_chans, embed_dim, bias)

    def _make_proj(self, in_chans: int, embed_dim: int, bias: bool) -> nn.Conv2d:
        return nn.Conv2d(in_chans, embed_dim, kernel_size=self.patch_size, stride=self.stride_size, bias=bias)

    def grid_for(self, height: int, width: int) -> tuple[int, int]:
        """Token grid (gh, gw) for an input of ``height`` × ``width`` pixels (TransReID's num_y, num_x)."""
        (ph, pw), (sh, sw) = self.patch_size, self.stride_size
        if height < ph or width < pw:
            raise ValueError(f"input {height}x{width} is smaller than one patch ({ph}x{pw})")
        return ((height - ph) // sh + 1, (width - pw) // sw + 1)

    def feat_ratio(self, as_scalar: bool = True) -> int | tuple[int, int]:
        """Pixels per token step (used by timm for ``feature_info``)."""
        return max(self.stride_size) if as_scalar else self.stride_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(x.shape)}")
        self.grid_for(x.shape[-2], x.shape[-1])  # clear error for inputs smaller than one patch
        return self.proj(x)  # (B, D, gh, gw)


class ICSPatchEmbed(PatchEmbed):
    """ICS: IBN convolution stem (overall stride 2) + ``proj`` Conv2d(64 → D, kernel = patch/2, stride = stride/2).

    With the default patch 16 / stride 16 this is exactly docs/reference.md §2.2 (``proj`` kernel = stride = 8). Strides
    below 16 are honoured (see the module docstring, docs/reference.md §9.17); they must be even because the stem halves the
    resolution.
    """

    stem_stride = 2
    hidden_dim = 64

    def __init__(
        self,
        img_size: int | tuple[int, int] = (256, 128),
        patch_size: int = 16,
        in_chans: int = 3,
        embed_dim: int = 768,
        stride_size: int | tuple[int, int] | None = None,
        bias: bool = True,
        **_timm_kwargs,
    ) -> None:
        patch, stride = _pair(patch_size, "patch_size"), _pair(stride_size or patch_size, "stride_size")
        bad = [v for v in (*patch, *stride) if v % self.stem_stride]
        if bad:
            raise ValueError(
                f"the ICS stem has stride {self.stem_stride}, so patch_size and stride_size must be even; "
                f"got patch_size={patch}, stride_size={stride}"
            )
        super().__init__(img_size, patch_size, in_chans, embed_dim, stride_size, bias)
        self.conv = ics_stem(in_chans, self.hidden_dim)

    def _make_proj(self, in_chans: int, embed_dim: int, bias: bool) -> nn.Conv2d:
        k = tuple(p // self.stem_stride for p in self.patch_size)
        s = tuple(s // self.stem_stride for s in self.stride_size)
        return nn.Conv2d(self.hidden_dim, embed_dim, kernel_size=k, stride=s, bias=bias)

    def grid_for(self, height: int, width: int) -> tuple[int, int]:
        # stem: 7x7 conv, stride 2, padding 3 -> ceil(H / 2); then proj with kernel p/2, stride s/2
        sh, sw = (height - 1) // 2 + 1, (width - 1) // 2 + 1
        (kh, kw) = (p // 2 for p in self.patch_size)
        (th, tw) = (s // 2 for s in self.stride_size)
        if sh < kh or sw < kw:
            raise ValueError(f"input {height}x{width} is smaller than one patch ({2 * kh}x{2 * kw})")
        return ((sh - kh) // th + 1, (sw - kw) // tw + 1)

    @torch.no_grad()
    def init_weights(self) -> None:
        """Kaiming-normal stem, unit/zero norms, zero-mean ``proj`` filters with zero bias (module docstring).

        Called by timm's ``VisionTransformer.init_weights`` (it calls ``init_weights()`` on sub-modules that have one).
        """
        for m in self.conv.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d)) and m.affine:
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        self.proj.reset_parameters()
        w = self.proj.weight  # (D, 64, kh, kw)
        w.sub_(w.mean(dim=(1, 2, 3), keepdim=True))
        if self.proj.bias is not None:
            nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"expected images of shape (B, C, H, W), got {tuple(x.shape)}")
        self.grid_for(x.shape[-2], x.shape[-1])
        return self.proj(self.conv(x))  # (B, D, gh, gw)

