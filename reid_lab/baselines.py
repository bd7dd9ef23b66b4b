"""Non-deep ReID baselines: raw pixels and striped colour histograms.

They answer "how hard is this world without any learning?". On a well-posed synthetic world raw pixels must be
clearly above chance and far from saturation; if they were near 100 % there would be nothing to learn, and if
pre-trained features do not beat them the pre-training did not learn identity (docs/reference.md §11.2: the first
synthetic world gave raw pixels 23.9 % mAP and a 5-minute DINO 0.9 %).

Both return L2-normalised float32 rows, so ``1 - f @ g.T`` (or the squared Euclidean distance of
:func:`reid_lab.retrieval.evaluation.euclidean_distance`) ranks a gallery.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image

__all__ = ["raw_pixel_features", "color_histogram_features", "load_images"]

ImagesLike = Union[np.ndarray, Sequence[Union[str, os.PathLike]]]


def load_images(paths: Sequence[str | os.PathLike], size: tuple[int, int] | None = None) -> np.ndarray:
    """Read images as an (N, H, W, 3) uint8 RGB array, resized (bilinear) to ``size=(height, width)`` if given.

    Without ``size`` all images must already share one size.
    """
    arrays = []
    for p in paths:
        path = Path(p)
        if not path.is_file():
            raise FileNotFoundError(f"image not found: {str(path)!r}")
        with Image.open(path) as im:
            im = im.convert("RGB")
            if size is not None and im.size != (size[1], size[0]):
                im = im.resize((size[1], size[0]), Image.BILINEAR)
            arrays.append(np.asarray(im, dtype=np.uint8))
    if not arrays:
        return np.zeros((0, *(size or (0, 0)), 3), np.uint8)
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ValueError(f"images have different sizes {sorted(shapes)}; pass size=(height, width) to resize them")
    return np.stack(arrays)


def _as_images(images: ImagesLike, size: tuple[int, int] | None) -> np.ndarray:
    if isinstance(images, np.ndarray):
        if images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"images array must be (N, H, W, 3) RGB, got shape {images.shape}")
        if size is None or images.shape[1:3] == tuple(size):
            return images
        return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(a).astype(np.uint8))
                                    .resize((size[1], size[0]), Image.BILINEAR)) for a in images])
    if isinstance(images, (str, os.PathLike)):
        raise TypeError(f"expected a list of image paths or an (N, H, W, 3) array, got a single path {images!r}")
    return load_images(list(images), size)


def _l2_normalise(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, 1e-12)).astype(np.float32)


def raw_pixel_features(images: ImagesLike, size: tuple[int, int] = (32, 16), *, center: str = "image") -> np.ndarray:
    """Pixels of each image resized to ``size=(height, width)``, mean-centred, flattened, L2-normalised.

    Args:
        images: an (N, H, W, 3) uint8 array or a list of image paths.
        size: (height, width) the images are resized to (bilinear) before flattening.
        center: ``"image"`` (default) subtracts each image's own mean colour (per channel), which removes a
            global colour cast / exposure; ``"dataset"`` subtracts the mean image of the given set (the common
            silhouette then carries no weight in cosine similarity; pass query and gallery *together*, or their
            features are centred differently); ``"none"`` keeps raw values.

    Returns:
        (N, height * width * 3) float32 rows of unit norm.
    """
    if center not in ("dataset", "image", "none"):
        raise ValueError(f"center={center!r}: expected 'dataset', 'image' or 'none'")
    x = _as_images(images, tuple(size)).astype(np.float32) / 255.0
    x = x.reshape(len(x), -1, 3)
    if center == "dataset" and len(x):
        x = x - x.mean(axis=0, keepdims=True)
    elif center == "image":
        x = x - x.mean(axis=1, keepdims=True)
    return _l2_normalise(x.reshape(len(x), -1))


def color_histogram_features(images: ImagesLike, bins: int = 8, stripes: int = 6, *,
                             space: str = "hsv", central: float = 1.0) -> np.ndarray:
    """Joint colour histograms of ``stripes`` horizontal bands, concatenated and L2-normalised.

    ``central`` < 1 keeps only that central fraction of the columns (the person; the margins are background,
    which a camera shares across identities).

    Each band (top to bottom: head, shoulders, … feet) gets a ``bins``³ joint histogram in HSV (default) or RGB,
    normalised to sum 1 and square-rooted (Hellinger), so large uniform regions do not swamp small ones.

    Returns:
        (N, stripes * bins**3) float32 rows of unit norm.
    """
    if bins < 1 or stripes < 1:
        raise ValueError(f"bins={bins} and stripes={stripes} must both be >= 1")
    if space not in ("hsv", "rgb"):
        raise ValueError(f"space={space!r}: expected 'hsv' or 'rgb'")
    if not 0.0 < central <= 1.0:
        raise ValueError(f"central={central}: expected a fraction in (0, 1]")
    x = _as_images(images, None)
    if len(x) and central < 1.0:
        w = x.shape[2]
        keep = max(1, round(w * central))
        x = x[:, :, (w - keep) // 2:(w - keep) // 2 + keep]
    n, h = len(x), x.shape[1] if len(x) else 0
    if n and h < stripes:
        raise ValueError(f"images are {h} pixels high, fewer than stripes={stripes}")
    if space == "hsv" and n:
        x = np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(a)).convert("HSV")) for a in x])
    q = (x.astype(np.int64) * bins) // 256  # (N, H, W, 3) in 0..bins-1
    code = (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]  # (N, H, W) joint bin
    band = (np.arange(h) * stripes // max(h, 1))  # row -> stripe
    flat = code + (band[None, :, None] * bins ** 3) + (np.arange(n)[:, None, None] * stripes * bins ** 3)
    hist = np.bincount(flat.ravel(), minlength=n * stripes * bins ** 3).reshape(n, stripes, bins ** 3)
    hist = hist / np.maximum(hist.sum(axis=2, keepdims=True), 1)
    return _l2_normalise(np.sqrt(hist).reshape(n, -1))
