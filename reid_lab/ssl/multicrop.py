"""Person multi-crop augmentation and the wrapper that runs a backbone once per crop resolution (docs/reference.md §2.4, §2.5).

:class:`PersonMultiCrop` turns one PIL image into ``2 + local_crops_number`` tensors, exactly the recipe of the
official ``DataAugmentationDINO`` with the person sizes of TransReID-SSL (2 global 256×128 crops, 8 local 128×64):

====================  ==========================================================================================
every view            RandomResizedCrop(bicubic) → horizontal flip 0.5 → ColorJitter(0.4, 0.4, 0.2, 0.1) with
                      p 0.8 → grayscale 0.2
global 1              + Gaussian blur p 1.0
global 2              + Gaussian blur p 0.1, solarisation p 0.2
local                 + Gaussian blur p 0.5
then                  ToTensor, Normalize with the ImageNet mean/std (docs/reference.md §9.9: fine-tuning later uses 0.5/0.5)
====================  ==========================================================================================

The blur is PIL's ``GaussianBlur`` with radius ~ U(0.1, 2.0), as in the official code; its random numbers come
from torch's generator (the official code used python's ``random``) so one seed drives every augmentation.
``jitter_strength`` scales the four jitter amounts (1.0 = official); ``ratio`` is the crop aspect-ratio range
(torchvision's ImageNet default (3/4, 4/3) in the official code, docs/reference.md §9.25).

:class:`MultiCropWrapper` concatenates crops of equal size, runs the backbone once per size (2 passes for the
official recipe), and the head once on all CLS features.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from PIL import Image, ImageFilter
from torch import nn
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class RandomPILGaussianBlur:
    """PIL Gaussian blur with probability ``p`` and radius ~ U(``radius_min``, ``radius_max``) (official DINO)."""

    def __init__(self, p: float = 0.5, radius_min: float = 0.1, radius_max: float = 2.0):
        if not 0 <= p <= 1:
            raise ValueError(f"blur probability must lie in [0, 1], got {p}")
        self.p, self.radius_min, self.radius_max = p, radius_min, radius_max

    def __call__(self, img: Image.Image) -> Image.Image:
        if torch.rand(()).item() >= self.p:
            return img
        radius = self.radius_min + (self.radius_max - self.radius_min) * torch.rand(()).item()
        return img.filter(ImageFilter.GaussianBlur(radius=radius))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(p={self.p}, radius=({self.radius_min}, {self.radius_max}))"


def _pair(size: Sequence[int] | int, name: str) -> tuple[int, int]:
    pair = (size, size) if isinstance(size, int) else tuple(size)
    if len(pair) != 2 or any(int(s) <= 0 for s in pair):
        raise ValueError(f"{name} must be a positive (height, width), got {size!r}")
    return int(pair[0]), int(pair[1])


class PersonMultiCrop:
    """DINO multi-crop for person images: ``__call__(PIL image) -> [global1, global2, local1, …]`` (docs/reference.md §2.5).

    Args:
        global_size, local_size: (height, width) of the crops — (256, 128) / (128, 64) in the paper.
        local_crops_number: number of local crops (8 in the paper; 0 is allowed).
        global_crops_scale, local_crops_scale: RandomResizedCrop area ranges ((0.4, 1) / (0.05, 0.4)).
        jitter_strength: multiplies brightness/contrast/saturation/hue jitter (1.0 = official 0.4/0.4/0.2/0.1).
        grayscale_p: probability of RandomGrayscale (0.2 official).
        ratio: RandomResizedCrop aspect-ratio range (official: torchvision default (3/4, 4/3)).
        mean, std: normalisation (ImageNet by default, as the official pre-training).
        blur_radius: (min, max) Gaussian blur radius in pixels (official (0.1, 2.0) at 224–256 px crops; a
            smaller crop needs a proportionally smaller radius for the same blur, see ``PretrainConfig``).
    """

    def __init__(self, global_size: Sequence[int] = (256, 128), local_size: Sequence[int] = (128, 64),
                 local_crops_number: int = 8, global_crops_scale: Sequence[float] = (0.4, 1.0),
                 local_crops_scale: Sequence[float] = (0.05, 0.4), jitter_strength: float = 1.0,
                 grayscale_p: float = 0.2, ratio: Sequence[float] = (3 / 4, 4 / 3),
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 blur_radius: Sequence[float] = (0.1, 2.0)):
        self.global_size = _pair(global_size, "global_size")
        self.local_size = _pair(local_size, "local_size")
        if local_crops_number < 0:
            raise ValueError(f"local_crops_number must be ≥ 0, got {local_crops_number}")
        for name, scale in (("global_crops_scale", global_crops_scale), ("local_crops_scale", local_crops_scale)):
            if len(scale) != 2 or not 0 < scale[0] <= scale[1] <= 1:
                raise ValueError(f"{name} must be (min, max) with 0 < min ≤ max ≤ 1, got {scale!r}")
        if jitter_strength < 0:
            raise ValueError(f"jitter_strength must be ≥ 0, got {jitter_strength}")
        if len(blur_radius) != 2 or not 0 <= blur_radius[0] <= blur_radius[1]:
            raise ValueError(f"blur_radius must be (min, max) with 0 ≤ min ≤ max, got {blur_radius!r}")
        if not 0 <= grayscale_p <= 1:
            raise ValueError(f"grayscale_p must lie in [0, 1], got {grayscale_p}")
        self.local_crops_number = local_crops_number
        s = jitter_strength
        flip_and_color = T.Compose([
            T.RandomHorizontalFlip(p=0.5),
            T.RandomApply([T.ColorJitter(brightness=0.4 * s, contrast=0.4 * s, saturation=0.2 * s, hue=0.1 * s)],
                          p=0.8),
            T.RandomGrayscale(p=grayscale_p),
        ])
        normalize = T.Compose([T.ToTensor(), T.Normalize(mean, std)])
        bicubic = InterpolationMode.BICUBIC
        ratio = tuple(ratio)

        def crop(size, scale):
            return T.RandomResizedCrop(size, scale=tuple(scale), ratio=ratio, interpolation=bicubic)

        def blur(p):
            return RandomPILGaussianBlur(p, *blur_radius)

        self.global_transform1 = T.Compose([
            crop(self.global_size, global_crops_scale), flip_and_color, blur(1.0), normalize])
        self.global_transform2 = T.Compose([
            crop(self.global_size, global_crops_scale), flip_and_color, blur(0.1),
            T.RandomSolarize(threshold=128, p=0.2), normalize])
        self.local_transform = T.Compose([
            crop(self.local_size, local_crops_scale), flip_and_color, blur(0.5), normalize])

    @property
    def ncrops(self) -> int:
        return 2 + self.local_crops_number

    def __call__(self, image: Image.Image) -> list[torch.Tensor]:
        crops = [self.global_transform1(image), self.global_transform2(image)]
        crops.extend(self.local_transform(image) for _ in range(self.local_crops_number))
        return crops

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(global={self.global_size}, local={self.local_size}x{self.local_crops_number},"
                f" global={self.global_transform1}, local={self.local_transform})")


class MultiCropWrapper(nn.Module):
    """Backbone + head over a list of crops: one backbone pass per run of equal-size crops, one head pass.

    ``forward(crops)`` takes a list of ``(B, 3, H_i, W_i)`` tensors (or one tensor) and returns the head output
    ``(len(crops)·B, out_dim)`` ordered crop by crop; with ``return_features=True`` also the backbone CLS features
    ``(len(crops)·B, D)``. The official wrapper groups consecutive crops by width only; grouping by (H, W) is the
    same for the person recipe and never concatenates crops of different heights.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone = backbone
        self.head = head

    def forward(self, crops: Sequence[torch.Tensor] | torch.Tensor, return_features: bool = False):
        if isinstance(crops, torch.Tensor):
            crops = [crops]
        if len(crops) == 0:
            raise ValueError("MultiCropWrapper needs at least one crop")
        features = []
        start = 0
        while start < len(crops):
            end = start + 1
            while end < len(crops) and crops[end].shape[-2:] == crops[start].shape[-2:]:
                end += 1
            features.append(self.backbone(torch.cat(list(crops[start:end]), dim=0)))
            start = end
        feats = torch.cat(features, dim=0)
        out = self.head(feats)
        return (out, feats) if return_features else out


def __getattr__(name: str):
    """``plot_crops`` moved to :mod:`reid_lab.viz.dino`; this alias will be removed in the next release."""
    if name == "plot_crops":
        from ..viz.dino import plot_crops

        return plot_crops
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "MultiCropWrapper", "PersonMultiCrop", "RandomPILGaussianBlur",
           "plot_crops"]
