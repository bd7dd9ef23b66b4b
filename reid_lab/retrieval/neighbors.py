"""Exact k-nearest-neighbour search for the k-reciprocal machinery (docs/reference.md §5.2 step 2, §9.4, §12.2).

The official cluster-contrast code *forces* a faiss GPU index (``search_option = 2``), a frequently reported
installation problem of USL ReID (docs/reference.md §12.2). Here faiss is used as follows:

* GPU ``IndexFlatL2``/``IndexFlatIP`` (``faiss.index_cpu_to_all_gpus``) when faiss was built with GPU support and a
  GPU is visible, CPU ``IndexFlatL2``/``IndexFlatIP`` otherwise (an info log says so when a GPU was asked for; a
  warning when the GPU search itself fails, e.g. a faiss-gpu build that does not match the driver) — both exact;
* if faiss itself cannot be imported, an exact chunked ``torch.mm`` + ``torch.topk`` search (same results up to
  float rounding), so the package never depends on faiss-gpu.

Neighbour lists follow the official convention: **the query point itself is at position 0**. faiss does not
guarantee that when several points share the same feature (exact duplicates all have distance 0, and the BLAS
formula ``|x|^2 + |y|^2 - 2 x.y`` adds rounding noise), and neither does the official code, which then silently
uses whichever duplicate faiss returned first. We canonicalise every row: self first, then the remaining
neighbours by ascending distance (descending similarity for ``"ip"``), ties broken by ascending index. Only which
tied neighbour survives at the k-th boundary is left to faiss.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

_METRICS = ("l2", "ip")


def as_float32_matrix(features: Any, name: str = "features") -> np.ndarray:
    """Return ``features`` (numpy array or torch tensor, any device) as a C-contiguous float32 (N, D) array."""
    if hasattr(features, "detach") and hasattr(features, "cpu"):  # torch.Tensor without importing torch
        features = features.detach().cpu().float().numpy()
    array = np.ascontiguousarray(np.asarray(features), dtype=np.float32)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N, D) matrix, got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must be non-empty, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def canonical_order(
    distances: np.ndarray,
    indices: np.ndarray,
    *,
    descending: bool = False,
    self_dist: float | np.ndarray = 0.0,
    self_index: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sort each neighbour row by (distance, index) and put the row's own index first.

    Args:
        distances: (N, k) distances (or similarities when ``descending``) of row i to ``indices[i]``.
        indices: (N, k) neighbour indices; row i is the neighbour list of point i.
        descending: True for similarities (larger = nearer).
        self_dist: value used for the self entry when self is missing from a row (scalar or per-row (N,)).
        self_index: the point each row belongs to (default ``arange(N)``; differs for row chunks).

    Returns:
        (distances, indices), same shapes, self at column 0. If a row did not contain its own index (possible with
        more than k exact duplicates) self is inserted and the farthest neighbour dropped.
    """
    n, k = indices.shape
    key = -distances if descending else distances
    order = np.lexsort((indices, key), axis=1)  # primary: distance, secondary: index (stable, deterministic)
    distances = np.take_along_axis(distances, order, axis=1)
    indices = np.take_along_axis(indices, order, axis=1)

    rows = np.arange(n) if self_index is None else np.asarray(self_index)
    is_self = indices == rows[:, None]
    if bool(is_self[:, 0].all()):
        return distances, indices
    # Prepend self to every row, hide the original self entry (if any), keep the first k visible entries.
    self_col = np.broadcast_to(np.asarray(self_dist, dtype=distances.dtype), (n,))
    has_self = is_self.any(axis=1)
    found = distances[np.arange(n), np.argmax(is_self, axis=1)]
    self_col = np.where(has_self, found, self_col)
    ext_i = np.concatenate([rows[:, None].astype(indices.dtype), indices], axis=1)
    ext_d = np.concatenate([self_col[:, None], distances], axis=1)
    hidden = np.concatenate([np.zeros((n, 1), dtype=bool), is_self], axis=1)
    keep = np.argsort(hidden, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(ext_d, keep, axis=1), np.take_along_axis(ext_i, keep, axis=1)


def _faiss_gpu_available(faiss: Any) -> bool:
    return hasattr(faiss, "StandardGpuResources") and hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0


def _knn_faiss(faiss: Any, x: np.ndarray, k: int, metric: str, use_gpu: bool | None) -> tuple[np.ndarray, np.ndarray]:
    dim = x.shape[1]
    index = faiss.IndexFlatL2(dim) if metric == "l2" else faiss.IndexFlatIP(dim)
    gpu_ok = _faiss_gpu_available(faiss)
    if use_gpu is None:
        use_gpu = gpu_ok
    elif use_gpu and not gpu_ok:
        logger.info("faiss has no GPU support here (faiss-cpu build or no visible GPU); using the exact CPU index")
        use_gpu = False
    if use_gpu:
        try:  # exact flat index on every visible GPU
            gpu_index = faiss.index_cpu_to_all_gpus(index)
            gpu_index.add(x)
            distances, indices = gpu_index.search(x, k)
            return distances, indices.astype(np.int64, copy=False)
        except RuntimeError as err:  # e.g. a faiss-gpu build that does not match the CUDA driver
            logger.warning("faiss GPU search failed (%s); falling back to the exact CPU index", err)
    index.add(x)
    distances, indices = index.search(x, k)
    return distances, indices.astype(np.int64, copy=False)


def _knn_torch(
    x: np.ndarray, k: int, metric: str, use_gpu: bool | None, chunk: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    import torch

    device = torch.device("cuda" if (use_gpu is not False and torch.cuda.is_available()) else "cpu")
    xt = torch.from_numpy(x).to(device)
    sq = (xt * xt).sum(dim=1)
    out_d, out_i = [], []
    for start in range(0, xt.shape[0], chunk):
        q = xt[start : start + chunk]
        sim = q @ xt.T  # (chunk, N)
        if metric == "l2":
            score = (sq[start : start + chunk, None] + sq[None, :] - 2.0 * sim).clamp_min_(0.0)
            d, i = torch.topk(score, k, dim=1, largest=False)
        else:
            d, i = torch.topk(sim, k, dim=1, largest=True)
        out_d.append(d.cpu())
        out_i.append(i.cpu())
    return torch.cat(out_d).numpy(), torch.cat(out_i).numpy().astype(np.int64)


def knn(
    features: Any,
    k: int,
    *,
    metric: str = "l2",
    use_gpu: bool | None = None,
    self_first: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact k-NN of every row of ``features`` among all rows (the query set is the database).

    Args:
        features: (N, D) numpy array or torch tensor; converted to float32, C-contiguous.
        k: neighbours per row, including the point itself; ``1 <= k <= N``.
        metric: ``"l2"`` (squared Euclidean, ascending, faiss ``IndexFlatL2``) or ``"ip"`` (inner product,
            descending, ``IndexFlatIP``).
        use_gpu: None = faiss GPU index when available; True = ask for it (info log and CPU fallback when faiss
            has no GPU support); False = CPU.
        self_first: canonicalise rows so that point i is ``indices[i, 0]`` (module docstring). For ``"ip"`` on
            features that are not L2-normalised this moves self first even when it is not the most similar.

    Returns:
        ``(distances, indices)``: float32 (N, k) and int64 (N, k).
    """
    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {_METRICS}, got {metric!r}")
    x = as_float32_matrix(features)
    n = x.shape[0]
    if not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise ValueError(f"k must be an integer in [1, N={n}], got {k!r}")
    try:
        import faiss
    except ImportError:  # faiss is optional: users without it must still run
        logger.info("faiss is not importable; using the exact torch k-NN fallback")
        distances, indices = _knn_torch(x, int(k), metric, use_gpu)
    else:
        distances, indices = _knn_faiss(faiss, x, int(k), metric, use_gpu)
    distances = np.ascontiguousarray(distances, dtype=np.float32)
    if self_first:
        self_d = np.zeros(n, np.float32) if metric == "l2" else np.einsum("ij,ij->i", x, x)
        distances, indices = canonical_order(distances, indices, descending=metric == "ip", self_dist=self_d)
    return np.ascontiguousarray(distances), np.ascontiguousarray(indices)


def topk_rows(dist: np.ndarray, k: int, *, chunk_rows: int = 1024) -> np.ndarray:
    """Indices of the k smallest entries of every row of a dense square matrix, canonical order.

    Equivalent to ``np.argsort(dist, axis=1, kind="stable")[:, :k]`` followed by :func:`canonical_order`
    (self first, then ascending distance, ties by index), but selects with ``torch.topk`` on row chunks so the
    only (N, N) array is ``dist`` itself. Rows with a tie at the k-th value are re-sorted in full so the lowest
    tied indices win, exactly as a stable sort would choose.
    """
    n = dist.shape[0]
    out = np.empty((n, k), dtype=np.int64)
    for start in range(0, n, chunk_rows):
        block = dist[start : start + chunk_rows]
        _, idx = topk_block(block, k, start)
        out[start : start + len(block)] = idx
    return out


def topk_block(block: np.ndarray, k: int, start: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k ``(values, column indices)`` of a block of rows of a square distance matrix, in canonical order.

    The block's rows are rows ``start, start+1, …`` of the matrix (so row ``r``'s own column is ``start + r``):
    self first, then ascending distance, exact ties by index as a stable sort would order them.
    """
    import torch

    n_rows, n = block.shape
    extra = 1 if k < n else 0  # one more candidate tells whether a tie straddles the k-th position
    vals_t, part_t = torch.topk(torch.from_numpy(block), k + extra, dim=1, largest=False, sorted=True)
    vals, part = vals_t.numpy(), part_t.numpy().astype(np.int64)
    if extra:
        tied = np.flatnonzero(vals[:, k - 1] == vals[:, k])
        vals, part = vals[:, :k].copy(), part[:, :k].copy()
        for r in tied:  # rare: exact ties straddling the k-th position -> lowest indices, as a stable sort
            part[r] = np.argsort(block[r], kind="stable")[:k]
            vals[r] = block[r, part[r]]
    own = np.arange(start, start + n_rows)
    return canonical_order(vals, part, self_dist=block[np.arange(n_rows), own], self_index=own)
