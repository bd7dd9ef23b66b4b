"""A small inference API: embeddings for any images, and nearest-neighbour search without camera ids.

* :func:`extract` — images (paths, PIL images, HxWx3 uint8 arrays, or an already-normalised (N, 3, H, W) tensor) →
  (N, D) float32 embeddings: the pre-BN CLS feature, L2-normalised by default, exactly the test feature of docs/reference.md §4.6;
* :func:`search` — for each query its ``k`` nearest gallery embeddings by squared Euclidean distance with faiss
  (``IndexFlatL2``; a GPU index when ``faiss.get_num_gpus() > 0``, the CPU index otherwise). On L2-normalised
  embeddings this is the official ranking; no identities or camera ids are needed (the Market protocol's
  same-camera removal is an *evaluation* rule, not part of retrieval).

Example::

    from reid_lab.reid import extract, load_reid_model, search
    model = load_reid_model("runs/tiny/03_supervised_reid/dino/model.pth")
    q = extract(model, ["query.jpg"], device="cpu"); g = extract(model, gallery_paths, device="cpu")
    distances, indices = search(q, g, k=10)
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from .. import engine

logger = logging.getLogger(__name__)

__all__ = ["extract", "search", "model_input_size"]


def model_input_size(model: nn.Module) -> tuple[int, int]:
    """(height, width) the model's position embedding was built for (a ReIDModel or a bare backbone)."""
    model = engine.unwrap(model)
    base = getattr(model, "base", model)
    pe = getattr(base, "patch_embed", None)
    size = getattr(pe, "img_size", None)
    if size is None:
        raise ValueError(f"cannot tell the input size of {type(model).__name__}; pass transform=")
    return int(size[0]), int(size[1])


def _to_pil(item: Any, i: int) -> Image.Image:
    if isinstance(item, Image.Image):
        return item.convert("RGB")
    if isinstance(item, (str, os.PathLike)):
        try:
            with Image.open(item) as img:
                return img.convert("RGB")
        except FileNotFoundError:
            raise FileNotFoundError(f"image {i}: {str(item)!r} does not exist") from None
        except OSError as err:
            raise ValueError(f"image {i}: cannot read {str(item)!r} as an image ({err})") from err
    if isinstance(item, np.ndarray) and item.ndim == 3 and item.shape[2] == 3 and item.dtype == np.uint8:
        return Image.fromarray(item)
    raise TypeError(f"image {i}: expected a path, a PIL image or an HxWx3 uint8 array, got "
                    f"{type(item).__name__}{getattr(item, 'shape', '')}")


@torch.inference_mode()
def extract(model: nn.Module, images_or_paths: Sequence[Any] | torch.Tensor, device: str | torch.device = "cpu",
            batch_size: int = 64, transform: Callable[[Image.Image], torch.Tensor] | None = None, *,
            normalize: bool = True, amp: bool | None = None) -> np.ndarray:
    """Embeddings of images, in input order.

    Args:
        model: a :class:`~reid_lab.reid.model.ReIDModel` or a backbone; it is moved to ``device`` and run in eval
            mode (its previous mode is restored).
        images_or_paths: paths, PIL images or HxWx3 uint8 arrays, or a float tensor (N, 3, H, W) already
            transformed (then ``transform`` is not applied).
        device: where to run.
        batch_size: images per forward pass.
        transform: PIL → tensor; default the TransReID test transform at the model's input size (bilinear resize,
            mean = std = 0.5, docs/reference.md §4.3).
        normalize: L2-normalise the embeddings (the official test feature, docs/reference.md §4.6).
        amp: bf16 autocast; ``None`` = on for CUDA.

    Returns:
        float32 array (N, D).
    """
    device = engine.resolve_device(device)
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    amp = device.type == "cuda" if amp is None else amp
    if isinstance(images_or_paths, torch.Tensor):
        if images_or_paths.ndim != 4 or images_or_paths.shape[1] != 3:
            raise ValueError(f"a tensor input must be (N, 3, H, W), got {tuple(images_or_paths.shape)}")
        batches = images_or_paths.split(batch_size)
    else:
        items = list(images_or_paths)
        if transform is None:
            from ..data import build_reid_transforms

            transform = build_reid_transforms(*model_input_size(model), train=False)
        batches = (torch.stack([transform(_to_pil(x, s + j)) for j, x in enumerate(items[s:s + batch_size])])
                   for s in range(0, len(items), batch_size))
    was_training = model.training
    model.to(device).eval()
    out = []
    try:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            for batch in batches:
                feat = model(batch.to(device))
                if not isinstance(feat, torch.Tensor) or feat.ndim != 2:
                    raise TypeError("the model must return (batch, dim) features in eval mode")
                out.append(feat.float().cpu())
    finally:
        model.train(was_training)
    if not out:
        return np.zeros((0, getattr(model, "embed_dim", 0)), dtype=np.float32)
    feats = torch.cat(out)
    if normalize:
        feats = F.normalize(feats, dim=1)
    return feats.numpy().astype(np.float32, copy=False)


def _matrix(x: Any, name: str) -> np.ndarray:
    arr = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"{name} must be a non-empty (N, D) matrix, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds NaN or infinite values")
    return np.ascontiguousarray(arr, dtype=np.float32)


def search(query_embeddings: Any, gallery_embeddings: Any, k: int, *, use_gpu: bool | None = None
           ) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest gallery rows of every query row (squared Euclidean, ascending; ties by gallery index).

    Returns ``(distances, indices)``: float32 and int64 arrays of shape (num_query, k). ``use_gpu``: None = a faiss
    GPU index when one is available, False = CPU; missing faiss-gpu never fails.
    """
    q, g = _matrix(query_embeddings, "query_embeddings"), _matrix(gallery_embeddings, "gallery_embeddings")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"query dim {q.shape[1]} != gallery dim {g.shape[1]}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= g.shape[0]:
        raise ValueError(f"k must be an integer in [1, gallery size {g.shape[0]}], got {k!r}")
    import faiss

    index = faiss.IndexFlatL2(g.shape[1])
    gpus = faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
    if use_gpu is not False and gpus > 0 and hasattr(faiss, "StandardGpuResources"):
        index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
    elif use_gpu:
        logger.info("faiss has no GPU support here; searching on the CPU")
    index.add(g)
    distances, indices = index.search(q, int(k))
    return distances.astype(np.float32, copy=False), indices.astype(np.int64, copy=False)
