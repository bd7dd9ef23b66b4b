"""Image transforms of the supervised (docs/reference.md §4.3) and unsupervised / domain-adaptive (§5.4) pipelines.

Both start from a PIL RGB image (``ImageDataset``) and end in a normalised ``(3, H, W)`` float tensor.

Two documented differences between the official pipelines that are easy to miss:

* **Test resize interpolation (docs/reference.md §9.10).** TransReID resizes test images *bilinearly* (PIL default) although
  training used bicubic; cluster-contrast uses bicubic for both. ``build_reid_transforms`` keeps TransReID's
  choice by default (``test_interpolation="bilinear"``), ``build_usl_transforms`` cluster-contrast's; both can be
  changed.
* **Random-erasing fill (docs/reference.md §9.11).** cluster-contrast fills erased boxes with the constants
  (0.485, 0.456, 0.406) — the ImageNet mean in *raw* [0, 1] pixel units — but erases after Normalize(0.5, 0.5),
  where those numbers mean a light grey (raw ≈ 0.74). The intent (erase with the mean colour) is met by filling
  with the ImageNet mean *in normalised units*, ``(m - 0.5) / 0.5 ≈ (-0.03, -0.09, -0.19)``, which is our default
  (``erase_fill="mean"``); ``erase_fill="official"`` reproduces the official constants, ``"zero"`` fills with the
  normalisation mean (0 after Normalize), and a 3-tuple gives explicit normalised values.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torchvision.transforms as T
from timm.data.random_erasing import RandomErasing as TimmRandomErasing
from torchvision.transforms import InterpolationMode

IMAGENET_MEAN = (0.485, 0.456, 0.406)

_INTERPOLATION = {
    "bicubic": InterpolationMode.BICUBIC,
    "bilinear": InterpolationMode.BILINEAR,
    "nearest": InterpolationMode.NEAREST,
}


def _interp(name: str) -> InterpolationMode:
    try:
        return _INTERPOLATION[name]
    except KeyError:
        raise ValueError(f"interpolation must be one of {sorted(_INTERPOLATION)}, got {name!r}") from None


def build_reid_transforms(
    height: int,
    width: int,
    *,
    train: bool,
    flip_p: float = 0.5,
    padding: int = 10,
    erase_p: float = 0.5,
    mean: Sequence[float] = (0.5, 0.5, 0.5),
    std: Sequence[float] = (0.5, 0.5, 0.5),
    train_interpolation: str = "bicubic",
    test_interpolation: str = "bilinear",
) -> T.Compose:
    """TransReID's supervised transforms (docs/reference.md §4.3, ``datasets/make_dataloader.py``).

    Train: Resize((H, W), bicubic) → RandomHorizontalFlip(flip_p) → Pad(padding, zeros) → RandomCrop((H, W)) →
    ToTensor → Normalize(mean, std) → timm ``RandomErasing(erase_p, mode='pixel', max_count=1)`` (area
    U(0.02, 1/3), log-uniform aspect in [0.3, 1/0.3], per-pixel N(0, 1) fill).
    Test: Resize((H, W), bilinear as the official, docs/reference.md §9.10) → ToTensor → Normalize(mean, std).

    ``mean``/``std`` are 0.5 for every LUPerson-pretrained model (docs/reference.md §9.9).
    """
    normalize = T.Normalize(mean=list(mean), std=list(std))
    if not train:
        return T.Compose([T.Resize((height, width), interpolation=_interp(test_interpolation)), T.ToTensor(),
                          normalize])
    steps: list = [T.Resize((height, width), interpolation=_interp(train_interpolation))]
    if flip_p > 0:
        steps.append(T.RandomHorizontalFlip(p=flip_p))
    if padding > 0:
        steps += [T.Pad(padding, fill=0), T.RandomCrop((height, width))]
    steps += [T.ToTensor(), normalize]
    if erase_p > 0:
        steps.append(TimmRandomErasing(probability=erase_p, mode="pixel", max_count=1, device="cpu"))
    return T.Compose(steps)


class MeanRandomErasing(torch.nn.Module):
    """Random erasing as in cluster-contrast (Zhong et al. 2020): one box filled with a constant colour.

    With probability ``p``: up to ``attempts`` times draw area ∈ U(sl, sh)·H·W and aspect ratio ∈ U(r1, 1/r1)
    (uniform, not log-uniform as torchvision/timm — tall boxes are 3× as likely as wide ones), box size
    h = round(√(area·ratio)), w = round(√(area/ratio)); the first box that fits strictly inside the image is filled
    with ``fill`` (one value per channel, in the units of the input tensor). Randomness from torch's generator.
    """

    def __init__(self, p: float = 0.5, sl: float = 0.02, sh: float = 0.4, r1: float = 0.3,
                 fill: Sequence[float] = (0.0, 0.0, 0.0), attempts: int = 100) -> None:
        super().__init__()
        self.p, self.sl, self.sh, self.r1, self.attempts = p, sl, sh, r1, attempts
        self.fill = tuple(float(v) for v in fill)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        if torch.rand(()).item() >= self.p:
            return img
        c, h_img, w_img = img.shape
        for _ in range(self.attempts):
            u = torch.rand(2).tolist()
            area = (self.sl + (self.sh - self.sl) * u[0]) * h_img * w_img
            ratio = self.r1 + (1 / self.r1 - self.r1) * u[1]
            h = int(round(math.sqrt(area * ratio)))
            w = int(round(math.sqrt(area / ratio)))
            if w < w_img and h < h_img:
                top = int(torch.randint(0, h_img - h + 1, ()).item())
                left = int(torch.randint(0, w_img - w + 1, ()).item())
                fill = torch.tensor(self.fill if c == len(self.fill) else self.fill[:1] * c, dtype=img.dtype)
                img[:, top : top + h, left : left + w] = fill.view(c, 1, 1)
                return img
        return img

    def extra_repr(self) -> str:
        return f"p={self.p}, area=({self.sl}, {self.sh}), ratio=({self.r1}, {1 / self.r1:.3f}), fill={self.fill}"


def usl_erase_fill(erase_fill: Literal["mean", "official", "zero"] | Sequence[float],
                   mean: Sequence[float] = (0.5, 0.5, 0.5), std: Sequence[float] = (0.5, 0.5, 0.5)
                   ) -> tuple[float, float, float]:
    """The normalised fill values for :class:`MeanRandomErasing` (see the module docstring, docs/reference.md §9.11)."""
    if erase_fill == "mean":
        return tuple((m_img - m) / s for m_img, m, s in zip(IMAGENET_MEAN, mean, std))
    if erase_fill == "official":
        return IMAGENET_MEAN
    if erase_fill == "zero":
        return (0.0, 0.0, 0.0)
    if isinstance(erase_fill, str) or len(erase_fill) != 3:
        raise ValueError(f"erase_fill must be 'mean', 'official', 'zero' or 3 numbers, got {erase_fill!r}")
    return tuple(float(v) for v in erase_fill)


def build_usl_transforms(
    height: int,
    width: int,
    train: bool,
    *,
    flip_p: float = 0.5,
    padding: int = 10,
    erase_p: float = 0.5,
    erase_fill: Literal["mean", "official", "zero"] | Sequence[float] = "mean",
    mean: Sequence[float] = (0.5, 0.5, 0.5),
    std: Sequence[float] = (0.5, 0.5, 0.5),
    interpolation: str = "bicubic",
) -> T.Compose:
    """cluster-contrast's transforms with ``--self-norm`` (docs/reference.md §5.4).

    Train: Resize((H, W), bicubic) → RandomHorizontalFlip(0.5) → Pad(10) → RandomCrop((H, W)) → ToTensor →
    Normalize(0.5, 0.5) → :class:`MeanRandomErasing` (p 0.5, area U(0.02, 0.4), ratio U(0.3, 1/0.3)).
    Test: Resize((H, W), bicubic) → ToTensor → Normalize.

    ``erase_fill``: ``"mean"`` (default; ImageNet mean colour correctly normalised), ``"official"`` (the raw
    constants the official code writes into the normalised tensor, docs/reference.md §9.11), ``"zero"``, or 3 numbers.
    """
    normalize = T.Normalize(mean=list(mean), std=list(std))
    resize = T.Resize((height, width), interpolation=_interp(interpolation))
    if not train:
        return T.Compose([resize, T.ToTensor(), normalize])
    steps: list = [resize]
    if flip_p > 0:
        steps.append(T.RandomHorizontalFlip(p=flip_p))
    if padding > 0:
        steps += [T.Pad(padding, fill=0), T.RandomCrop((height, width))]
    steps += [T.ToTensor(), normalize]
    if erase_p > 0:
        steps.append(MeanRandomErasing(p=erase_p, fill=usl_erase_fill(erase_fill, mean, std)))
    return T.Compose(steps)
