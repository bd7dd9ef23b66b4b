"""Ghost batch norm: the BatchNorm statistics of multi-GPU ``nn.DataParallel`` on one device (docs/reference.md §5.1, §12.1).

The official USL/UDA scripts wrap the model in ``nn.DataParallel`` over 4 GPUs (Market) or 2 GPUs (MSMT). With a
batch of 256, each replica runs the *whole* forward on its ``batch.chunk(n_gpus)`` slice, so every BatchNorm
layer (the BN neck, and the ICS stem's BN layers) normalises with the statistics of a 64-image (or 128-image)
chunk. Running the same batch through one GPU normalises over 256 images instead — a different model, which is the
usual explanation of the 5–20 mAP gap users report for single-GPU cluster-contrast runs (docs/reference.md §12.1).

What ``DataParallel`` does with the *running* statistics: ``replicate`` broadcasts the buffers to every device, and
the copy on the first device *is* the original tensor (``comm.broadcast_coalesced`` returns the inputs themselves
for the source device); the other replicas' in-place updates land in temporary copies that are thrown away. So
the running mean/var (and ``num_batches_tracked``) are updated **once per step, from the first chunk only**.

:class:`GhostBatchNorm` reproduces both on one device: in train mode it runs the wrapped module on
``x.chunk(chunks)`` (``DataParallel``'s own split), the first chunk normally and the others with running-statistic
tracking switched off (batch statistics, no buffer update), and concatenates the outputs. Since everything else in
a ViT is per-sample, the outputs, the gradients (summed over chunks, as ``DataParallel``'s reduce does) and the
buffers are those of the multi-GPU run. In eval mode it is the plain module.

Under DDP with ``W`` processes each process already holds ``batch / W`` images, so it runs ``chunks / W`` chunks
(:func:`chunks_per_process`); DDP broadcasts rank 0's buffers before every forward, so again the running statistics
follow one chunk.

The full profile's defaults (``USLConfig.batch_size = 256``, ``bn_chunks = 4``) therefore encode the official
Market scripts (4 GPUs → 64-image chunks); the MSMT scripts used 2 GPUs (``bn_chunks = 2`` → 128-image chunks).
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["GhostBatchNorm", "chunks_per_process", "frozen_running_stats"]

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


@contextlib.contextmanager
def frozen_running_stats(module: nn.Module) -> Iterator[None]:
    """Inside the block, BatchNorm layers in train mode use batch statistics but leave their buffers untouched."""
    changed = [m for m in module.modules() if isinstance(m, _BATCH_NORMS) and m.track_running_stats]
    for m in changed:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in changed:
            m.track_running_stats = True


def chunks_per_process(bn_chunks: int, world_size: int = 1) -> int:
    """How many ghost-BN chunks each of ``world_size`` processes runs for a global ``bn_chunks``."""
    if not isinstance(bn_chunks, int) or bn_chunks < 1:
        raise ValueError(f"bn_chunks must be a positive integer, got {bn_chunks!r}")
    if bn_chunks % world_size:
        raise ValueError(f"bn_chunks={bn_chunks} is not divisible by the {world_size} processes: each process must "
                         f"run a whole number of BN chunks (use bn_chunks = a multiple of {world_size})")
    return bn_chunks // world_size


class GhostBatchNorm(nn.Module):
    """Run ``module`` on ``chunks`` slices of the batch in train mode, as ``nn.DataParallel`` over ``chunks`` GPUs.

    Args:
        module: the model (any module whose forward takes one batched tensor and returns one batched tensor).
        chunks: number of BN groups (1 = the plain module).

    The wrapped module is :attr:`module`; save *its* state dict (the wrapper adds a ``module.`` prefix).
    """

    def __init__(self, module: nn.Module, chunks: int = 1) -> None:
        super().__init__()
        chunks_per_process(chunks)  # validates
        self.module = module
        self.chunks = chunks

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.chunks == 1:
            return self.module(x)
        parts = x.chunk(self.chunks)  # DataParallel's scatter: torch.chunk along dim 0
        outputs = [self.module(parts[0])]  # the "first GPU": its running statistics are kept
        with frozen_running_stats(self.module):
            outputs += [self.module(p) for p in parts[1:]]
        return torch.cat(outputs)

    def extra_repr(self) -> str:
        return f"chunks={self.chunks}"
