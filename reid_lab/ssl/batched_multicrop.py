"""DINO multi-crop on whole batches of tensors (kornia): the augmentation of :class:`PersonMultiCrop`, per sample,
without a PIL round trip per crop (issue 17).

The official pipeline augments each crop of each image with PIL in the data-loader processes. On a CPU with few
cores that is a sizeable share of a small model's step (``benchmarks/dino_pretrain_speed.py``), and on a GPU it
needs many loader workers. :class:`BatchedMultiCrop` takes a batch of uint8 images that share one size and draws
the same families of transforms with kornia, every parameter drawn per sample:

====================  ==========================================================================================
every view            RandomResizedCrop (bicubic) → horizontal flip 0.5 → ColorJitter(0.4, 0.4, 0.2, 0.1)·s with
                      p 0.8 → grayscale p
global 1              + Gaussian blur p 1.0
global 2              + Gaussian blur p 0.1, solarisation (threshold 0.5) p 0.2
local                 + Gaussian blur p 0.5
then                  Normalize (ImageNet mean/std)
====================  ==========================================================================================

Differences from the PIL pipeline, all inside the same random families: the crop is resampled from the batch's
source size (the loader resizes every image to it, :class:`ResizeToTensor`); the blur is a 2-D Gaussian of a fixed
kernel (covering ±3 σ of the largest radius) rather than PIL's box approximation; kornia's hue and saturation
arithmetic differs from PIL's in rounding. Random numbers come from torch's generator, so ``seed_everything`` and
the checkpoint's RNG state make runs reproducible and resumable as with the PIL pipeline.
Enable it with ``PretrainConfig.augment = "batched"``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from PIL import Image
from torch import nn

from .multicrop import IMAGENET_MEAN, IMAGENET_STD, _pair

__all__ = ["BatchedMultiCrop", "ResizeToTensor"]


class ResizeToTensor:
    """PIL image → uint8 ``(3, H, W)`` tensor at a fixed ``size`` (bicubic, antialiased), for batching."""

    def __init__(self, size: Sequence[int]):
        self.size = _pair(size, "size")

    def __call__(self, image: Image.Image) -> torch.Tensor:
        height, width = self.size
        if image.size != (width, height):
            image = image.resize((width, height), Image.Resampling.BICUBIC)
        return torch.frombuffer(bytearray(image.convert("RGB").tobytes()), dtype=torch.uint8).view(height, width,
                                                                                                  3).permute(2, 0, 1)


class BatchedMultiCrop(nn.Module):
    """``forward(uint8 (B, 3, H, W)) -> [global1, global2, local1, …]`` float crops, normalised.

    Same arguments as :class:`~reid_lab.ssl.multicrop.PersonMultiCrop` (sizes, scales, ``jitter_strength``,
    ``grayscale_p``, ``ratio``, ``blur_radius``, ``mean``/``std``).
    """

    def __init__(self, global_size: Sequence[int] = (256, 128), local_size: Sequence[int] = (128, 64),
                 local_crops_number: int = 8, global_crops_scale: Sequence[float] = (0.4, 1.0),
                 local_crops_scale: Sequence[float] = (0.05, 0.4), jitter_strength: float = 1.0,
                 grayscale_p: float = 0.2, ratio: Sequence[float] = (3 / 4, 4 / 3),
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 blur_radius: Sequence[float] = (0.1, 2.0)):
        super().__init__()
        import kornia.augmentation as K

        from .multicrop import PersonMultiCrop

        # the same argument checks as the PIL pipeline (it raises on any bad value)
        PersonMultiCrop(global_size, local_size, local_crops_number, global_crops_scale, local_crops_scale,
                        jitter_strength, grayscale_p, ratio, mean, std, blur_radius)
        self.global_size, self.local_size = _pair(global_size, "global_size"), _pair(local_size, "local_size")
        self.local_crops_number = local_crops_number
        s = jitter_strength
        kernel = 2 * max(1, math.ceil(3 * blur_radius[1])) + 1
        sigma = (max(blur_radius[0], 1e-3), max(blur_radius[1], 1e-3))

        def view(size, scale, blur_p, solarize_p=0.0):
            steps = [K.RandomResizedCrop(size, scale=tuple(scale), ratio=tuple(ratio), resample="bicubic"),
                     K.RandomHorizontalFlip(p=0.5),
                     K.ColorJitter(0.4 * s, 0.4 * s, 0.2 * s, 0.1 * s, p=0.8),
                     K.RandomGrayscale(p=grayscale_p)]
            if blur_p > 0:
                steps.append(K.RandomGaussianBlur((kernel, kernel), sigma, p=blur_p))
            if solarize_p > 0:
                steps.append(K.RandomSolarize(thresholds=0.0, additions=0.0, p=solarize_p))  # threshold 0.5 = 128
            steps.append(K.Normalize(torch.tensor(mean), torch.tensor(std)))
            return K.AugmentationSequential(*steps)

        self.global1 = view(self.global_size, global_crops_scale, 1.0)
        self.global2 = view(self.global_size, global_crops_scale, 0.1, solarize_p=0.2)
        self.local = view(self.local_size, local_crops_scale, 0.5)

    @property
    def ncrops(self) -> int:
        return 2 + self.local_crops_number

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> list[torch.Tensor]:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"BatchedMultiCrop needs a uint8 (B, 3, H, W) batch, got {images.dtype} "
                             f"{tuple(images.shape)}")
        x = images.float().div_(255)
        crops = [self.global1(x), self.global2(x)]
        crops.extend(self.local(x) for _ in range(self.local_crops_number))
        return crops
