"""Identity-aware samplers for ReID training (docs/reference.md §4.3, §5.4).

* :class:`RandomIdentitySampler` — P identities × K images per batch (TransReID ``datasets/sampler.py``).
* :class:`DistributedRandomIdentitySampler` — the same global list on every rank, one block per rank
  (TransReID ``datasets/sampler_ddp.py``).
* :class:`RandomMultipleGallerySampler` — one anchor per (pseudo-)identity plus K−1 images preferring other
  cameras (cluster-contrast ``clustercontrast/utils/data/sampler.py``).

Randomness: every epoch's index list comes from ``numpy.random.default_rng([seed, epoch])`` — never from global
state — so an epoch is reproducible from ``(seed, epoch)``, and identical on all DDP ranks. Call
``set_epoch(e)`` at the start of each epoch; if it is never called, the epoch advances by itself after each
``iter()``, so successive epochs still differ. ``seed=None`` draws the seed once from torch's global generator
(so ``torch.manual_seed`` controls it).

``len(sampler)`` is the exact number of indices the current epoch yields (the list is built, cached, and reused by
``iter()``). The official samplers return an estimate instead: ``sum_i (max(n_i, K) - max(n_i, K) % K)`` for the
P×K sampler (ignoring the identities left over when fewer than P remain) and ``#ids × K`` for the gallery sampler
(ignoring singletons) — :meth:`RandomIdentitySampler.official_length` gives the former.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler


def _records(data_source: Any) -> Sequence:
    """Accept a list of ``(path, pid, camid)`` records or an object with ``.samples`` (e.g. ``ImageDataset``)."""
    return data_source.samples if hasattr(data_source, "samples") else data_source


def _default_seed(seed: int | None) -> int:
    return int(torch.randint(0, 2**31 - 1, ()).item()) if seed is None else int(seed)


class _EpochSampler(Sampler[int]):
    """Shared plumbing: seed/epoch handling and a cache of the current epoch's index list."""

    def __init__(self, seed: int | None) -> None:
        self.seed = _default_seed(seed)
        self.epoch = 0
        self._auto_epoch = True
        self._cache: tuple[int, np.ndarray] | None = None

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose list ``iter()`` and ``len()`` describe (disables auto-advancing)."""
        self.epoch = int(epoch)
        self._auto_epoch = False

    def _build(self, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def epoch_indices(self, epoch: int | None = None) -> np.ndarray:
        """The full index list of ``epoch`` (default: the current one)."""
        epoch = self.epoch if epoch is None else int(epoch)
        if self._cache is None or self._cache[0] != epoch:
            self._cache = (epoch, self._build(np.random.default_rng([self.seed, epoch])))
        return self._cache[1]

    def __iter__(self) -> Iterator[int]:
        indices = self.epoch_indices()
        if self._auto_epoch:
            self.epoch += 1
        return iter(indices.tolist())

    def __len__(self) -> int:
        return len(self.epoch_indices())


class RandomIdentitySampler(_EpochSampler):
    """P×K sampling with the official semantics (docs/reference.md §4.3).

    Each epoch: every identity's images are shuffled (an identity with fewer than K images is first drawn K times
    with replacement) and cut into chunks of K (a remainder shorter than K is dropped); then, while at least P
    identities still have chunks, P distinct identities are drawn uniformly and each emits its next chunk. So every
    consecutive block of ``batch_size`` indices holds P identities × K images.

    Args:
        data_source: ``(path, pid, camid)`` records (or an object with ``.samples``).
        batch_size: P×K (64 in the paper's configs).
        num_instances: K (4).
        seed: base seed of the per-epoch generator; ``None`` draws one from torch's global RNG.
    """

    def __init__(self, data_source: Any, batch_size: int = 64, num_instances: int = 4, seed: int | None = None
                 ) -> None:
        super().__init__(seed)
        if num_instances < 1 or batch_size < num_instances or batch_size % num_instances:
            raise ValueError(f"batch_size ({batch_size}) must be a positive multiple of num_instances "
                             f"({num_instances})")
        self.batch_size = batch_size
        self.num_instances = num_instances
        self.num_pids_per_batch = batch_size // num_instances
        by_pid: dict[int, list[int]] = defaultdict(list)
        for index, record in enumerate(_records(data_source)):
            by_pid[int(record[1])].append(index)
        self.pids = sorted(by_pid)
        self.pid_indices = [np.asarray(by_pid[p], dtype=np.int64) for p in self.pids]
        if len(self.pids) < self.num_pids_per_batch:
            raise ValueError(f"RandomIdentitySampler needs at least P={self.num_pids_per_batch} identities "
                             f"(batch_size {batch_size} / num_instances {num_instances}); the data has "
                             f"{len(self.pids)}")

    def official_length(self) -> int:
        """The official ``__len__`` estimate ``sum_i (max(n_i,K) - max(n_i,K) % K)`` (an upper bound)."""
        k = self.num_instances
        return sum(max(len(i), k) - max(len(i), k) % k for i in self.pid_indices)

    def _build(self, rng: np.random.Generator) -> np.ndarray:
        k, p = self.num_instances, self.num_pids_per_batch
        chunks: list[np.ndarray] = []  # per identity: (n_chunks, K)
        for idxs in self.pid_indices:
            idxs = rng.choice(idxs, size=k, replace=True) if len(idxs) < k else rng.permutation(idxs)
            n = len(idxs) // k
            chunks.append(idxs[: n * k].reshape(n, k))
        remaining = np.array([len(c) for c in chunks])
        taken = np.zeros(len(chunks), dtype=np.int64)
        available = np.flatnonzero(remaining > 0)
        out: list[np.ndarray] = []
        while len(available) >= p:
            selected = rng.choice(available, size=p, replace=False)
            out.extend(chunks[i][taken[i]] for i in selected)
            taken[selected] += 1
            if np.any(taken[selected] == remaining[selected]):
                available = available[taken[available] < remaining[available]]
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


class DistributedRandomIdentitySampler(RandomIdentitySampler):
    """The P×K sampler split over ``num_replicas`` processes (docs/reference.md §4.3 ``RandomIdentitySampler_DDP``).

    Every rank builds the *same* global list (same ``seed`` and epoch; the seed must therefore be shared, not
    ``None``) and takes, from each global batch of ``batch_size``, its own block of ``batch_size / num_replicas``
    consecutive indices. Blocks are whole K-chunks, so each rank sees complete identities, and the union of the
    ranks' blocks of one step is exactly the single-process batch. (The official version draws P/world_size
    identities per block, so one identity may land on two ranks in the same step; here a global batch always
    holds P distinct identities.)

    Args:
        data_source, batch_size, num_instances: as :class:`RandomIdentitySampler`; ``batch_size`` is global.
        num_replicas, rank: default to ``torch.distributed``'s world size and rank (must be initialised).
        seed: shared base seed (default 0).
    """

    def __init__(self, data_source: Any, batch_size: int = 64, num_instances: int = 4, *,
                 num_replicas: int | None = None, rank: int | None = None, seed: int = 0) -> None:
        if seed is None:
            raise ValueError("DistributedRandomIdentitySampler needs an explicit seed shared by all ranks")
        if num_replicas is None or rank is None:
            if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
                raise ValueError("pass num_replicas and rank, or initialise torch.distributed first")
            num_replicas = torch.distributed.get_world_size() if num_replicas is None else num_replicas
            rank = torch.distributed.get_rank() if rank is None else rank
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is not in [0, {num_replicas})")
        if batch_size % (num_replicas * num_instances):
            raise ValueError(f"batch_size {batch_size} must be divisible by num_replicas × num_instances = "
                             f"{num_replicas} × {num_instances}, so that each rank gets whole identities")
        super().__init__(data_source, batch_size, num_instances, seed)
        self.num_replicas = num_replicas
        self.rank = rank
        self.mini_batch_size = batch_size // num_replicas

    def _build(self, rng: np.random.Generator) -> np.ndarray:
        full = super()._build(rng)  # length is a multiple of batch_size
        blocks = full.reshape(-1, self.num_replicas, self.mini_batch_size)  # (batches, ranks, B/ranks)
        return blocks[:, self.rank].reshape(-1)


class RandomMultipleGallerySampler(_EpochSampler):
    """Cluster-contrast's sampler over pseudo-labelled data (docs/reference.md §5.4).

    Each epoch visits every (pseudo-)identity once in random order and emits: one random image of it, then K−1
    more of the same identity taken from *other cameras* than that image (without replacement if there are at
    least K such images, else with replacement); if the identity has no image from another camera, K−1 of its
    other images (same rule); an identity with a single image contributes only that image. Records with pid < 0
    (DBSCAN outliers) are ignored.

    Args:
        data_source: ``(path, pid, camid)`` records (or an object with ``.samples``); pids are pseudo labels.
        num_instances: K (8 in the paper's USL/UDA scripts).
        seed: base seed of the per-epoch generator; ``None`` draws one from torch's global RNG.
    """

    def __init__(self, data_source: Any, num_instances: int = 8, seed: int | None = None) -> None:
        super().__init__(seed)
        if num_instances < 1:
            raise ValueError(f"num_instances must be >= 1, got {num_instances}")
        self.num_instances = num_instances
        by_pid: dict[int, list[int]] = defaultdict(list)
        cams: dict[int, list[int]] = defaultdict(list)
        for index, record in enumerate(_records(data_source)):
            pid = int(record[1])
            if pid < 0:
                continue
            by_pid[pid].append(index)
            cams[pid].append(int(record[2]))
        if not by_pid:
            raise ValueError("RandomMultipleGallerySampler: no records with pid >= 0")
        self.pids = sorted(by_pid)
        self.pid_indices = [np.asarray(by_pid[p], dtype=np.int64) for p in self.pids]
        self.pid_cams = [np.asarray(cams[p], dtype=np.int64) for p in self.pids]

    def _build(self, rng: np.random.Generator) -> np.ndarray:
        k = self.num_instances
        out: list[np.ndarray] = []
        for j in rng.permutation(len(self.pids)):
            idxs, cams = self.pid_indices[j], self.pid_cams[j]
            a = int(rng.integers(len(idxs)))
            out.append(idxs[a : a + 1])
            if k == 1:
                continue
            pool = idxs[cams != cams[a]]
            if len(pool) == 0:  # no other camera: other images of the same camera
                pool = np.delete(idxs, a)
                if len(pool) == 0:  # singleton
                    continue
            out.append(rng.choice(pool, size=k - 1, replace=len(pool) < k))
        return np.concatenate(out)
