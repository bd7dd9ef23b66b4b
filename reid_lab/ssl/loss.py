"""The DINO loss: cross-entropy between a centred, sharpened teacher and a tempered student (docs/reference.md §2.4).

Numerically the official ``DINOLoss`` of ``dino/main_dino.py``: for teacher views ``i`` (the 2 global crops)
and student views ``v ≠ i`` (all crops), ``L = mean_{(i,v)} mean_b  -Σ_k p_t[i,b,k] log softmax(s[v,b]/τ_s)_k``
with ``p_t = softmax((t - c)/τ_t)``. The centre ``c`` is updated after every call,
``c ← m c + (1 - m) mean_batch(t)``, the batch mean all-reduced across processes under DDP.

Differences from the official code (documented, numerically harmless):
* the ``2 × ncrops`` loop is one matrix product (same sum, one kernel);
* logits are cast to float32 before the softmaxes, so bf16 autocast does not round the targets;
* it works in a plain process without ``torch.distributed`` (the official all-reduce requires a process group);
* :attr:`last_stats` keeps the teacher's entropy and batch-mean entropy of the call (collapse monitoring).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from .monitor import entropy


def teacher_temperature_schedule(warmup_teacher_temp: float, teacher_temp: float, warmup_teacher_temp_epochs: int,
                                 nepochs: int) -> np.ndarray:
    """Per-epoch teacher temperature: linear warm-up then constant (official ``teacher_temp_schedule``)."""
    if nepochs <= 0:
        raise ValueError(f"nepochs must be positive, got {nepochs}")
    if not 0 <= warmup_teacher_temp_epochs <= nepochs:
        raise ValueError(f"warmup_teacher_temp_epochs={warmup_teacher_temp_epochs} must lie in [0, nepochs={nepochs}]")
    if teacher_temp <= 0 or warmup_teacher_temp <= 0:
        raise ValueError(f"teacher temperatures must be positive, got {warmup_teacher_temp}, {teacher_temp}")
    return np.concatenate((
        np.linspace(warmup_teacher_temp, teacher_temp, warmup_teacher_temp_epochs),
        np.full(nepochs - warmup_teacher_temp_epochs, teacher_temp),
    ))


class DINOLoss(nn.Module):
    """DINO self-distillation loss with a running centre (docs/reference.md §2.4).

    Args:
        out_dim: number of prototypes K (head output size).
        ncrops: crops per image seen by the student (2 global + local); the teacher sees the first 2.
        warmup_teacher_temp, teacher_temp, warmup_teacher_temp_epochs, nepochs: the teacher temperature schedule.
        student_temp: student temperature τ_s (0.1).
        center_momentum: EMA momentum of the centre (0.9).

    ``forward(student_output, teacher_output, epoch)``: ``student_output`` is ``(ncrops·B, K)`` ordered crop by
    crop (crop 0 of every image, then crop 1, …) as :class:`~reid_lab.ssl.multicrop.MultiCropWrapper` returns
    it; ``teacher_output`` is ``(2·B, K)``. Returns the scalar loss; the centre is updated afterwards.
    """

    center: torch.Tensor

    def __init__(self, out_dim: int, ncrops: int, warmup_teacher_temp: float, teacher_temp: float,
                 warmup_teacher_temp_epochs: int, nepochs: int, student_temp: float = 0.1,
                 center_momentum: float = 0.9):
        super().__init__()
        if out_dim <= 0:
            raise ValueError(f"out_dim must be positive, got {out_dim}")
        if ncrops < 2:
            raise ValueError(f"ncrops must be ≥ 2 (the two global crops), got {ncrops}")
        if student_temp <= 0:
            raise ValueError(f"student_temp must be positive, got {student_temp}")
        if not 0 <= center_momentum <= 1:
            raise ValueError(f"center_momentum must lie in [0, 1], got {center_momentum}")
        self.out_dim = out_dim
        self.ncrops = ncrops
        self.student_temp = student_temp
        self.center_momentum = center_momentum
        self.register_buffer("center", torch.zeros(1, out_dim))
        self.teacher_temp_schedule = teacher_temperature_schedule(
            warmup_teacher_temp, teacher_temp, warmup_teacher_temp_epochs, nepochs)
        self.last_stats: dict[str, torch.Tensor] = {}

    def teacher_temp(self, epoch: int) -> float:
        if not 0 <= epoch < len(self.teacher_temp_schedule):
            raise ValueError(f"epoch {epoch} outside the teacher temperature schedule "
                             f"[0, {len(self.teacher_temp_schedule)})")
        return float(self.teacher_temp_schedule[epoch])

    def teacher_log_probs(self, teacher_output: torch.Tensor, epoch: int) -> torch.Tensor:
        """log of the centred, sharpened teacher targets ``log softmax((t - c)/τ_t)``, float32, no gradient."""
        return F.log_softmax((teacher_output.detach().float() - self.center) / self.teacher_temp(epoch), dim=-1)

    def teacher_probs(self, teacher_output: torch.Tensor, epoch: int) -> torch.Tensor:
        """Centred and sharpened teacher targets ``softmax((t - c)/τ_t)``, float32, no gradient."""
        return self.teacher_log_probs(teacher_output, epoch).exp()

    def forward(self, student_output: torch.Tensor, teacher_output: torch.Tensor, epoch: int) -> torch.Tensor:
        n_student, k = student_output.shape
        if k != self.out_dim or teacher_output.shape[-1] != self.out_dim:
            raise ValueError(f"expected logits with {self.out_dim} columns, got student {tuple(student_output.shape)}"
                             f" and teacher {tuple(teacher_output.shape)}")
        if n_student % self.ncrops or teacher_output.shape[0] % 2:
            raise ValueError(f"student rows ({n_student}) must be a multiple of ncrops={self.ncrops} and teacher rows "
                             f"({teacher_output.shape[0]}) a multiple of 2")
        batch = n_student // self.ncrops
        if teacher_output.shape[0] != 2 * batch:
            raise ValueError(f"teacher has {teacher_output.shape[0]} rows, expected 2 global crops x {batch} images")

        log_p_s = F.log_softmax(student_output.float() / self.student_temp, dim=-1)
        log_p_t = self.teacher_log_probs(teacher_output, epoch)
        p_t = log_p_t.exp()
        # cross[i, v] = mean_b -Σ_k p_t[i,b,k] log p_s[v,b,k]: one (2, B·K) x (B·K, ncrops) product
        cross = -(p_t.reshape(2, batch * k) @ log_p_s.reshape(self.ncrops, batch * k).T) / batch
        same_view = torch.zeros_like(cross, dtype=torch.bool)
        same_view[0, 0] = same_view[1, 1] = True
        n_terms = 2 * self.ncrops - 2
        loss = cross.masked_fill(same_view, 0.0).sum() / n_terms

        with torch.no_grad():
            mean_entropy = -(p_t * log_p_t).sum(-1).mean()
            mean_p = p_t.mean(0)
            batch_entropy = entropy(mean_p)
            self.last_stats = {"teacher_entropy": mean_entropy, "batch_mean_entropy": batch_entropy}
        self.update_center(teacher_output)
        return loss

    @torch.no_grad()
    def update_center(self, teacher_output: torch.Tensor) -> None:
        """``c ← m c + (1 - m) · mean`` of the teacher logits over the global batch (all processes)."""
        batch_sum = teacher_output.detach().float().sum(dim=0, keepdim=True)
        count = teacher_output.shape[0]
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(batch_sum)
            count *= dist.get_world_size()
        self.center.mul_(self.center_momentum).add_(batch_sum / count, alpha=1 - self.center_momentum)


__all__ = ["DINOLoss", "teacher_temperature_schedule"]
