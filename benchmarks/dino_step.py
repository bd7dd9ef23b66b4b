"""DINO step speed: the matrix-product loss and the per-resolution multi-crop wrapper against straightforward loop
ports, then images/s of one full training step (tiny and small configs; CUDA bf16 vs fp32 when a GPU is present).

    .venv/bin/python benchmarks/dino_step.py            # issue sizes
    .venv/bin/python benchmarks/dino_step.py --quick    # seconds

Table 1 — what, ours s, reference s, ratio (reference / ours), agree:
* DINO loss forward+backward (+ centre update): one matrix product vs the official loop over (teacher view, student
  view) pairs; ours also computes the two entropies the collapse guard logs;
* one training step: MultiCropWrapper (one backbone pass per crop resolution) vs one pass per crop.
Table 2 — images/s of one DINO step (student + teacher + loss + backward + AdamW + EMA).
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from reid_lab import engine
from reid_lab.config import resolve
from reid_lab.ssl import DINOLoss, MultiCropWrapper
from reid_lab.ssl.train import DINOTrainer


def loop_dino_loss(student, teacher, center, ncrops, student_temp=0.1, teacher_temp=0.04, momentum=0.9):
    """The official DINOLoss.forward (loop over view pairs, then the centre update), transcribed (reference)."""
    s_chunks = (student / student_temp).chunk(ncrops)
    t_chunks = F.softmax((teacher - center) / teacher_temp, dim=-1).detach().chunk(2)
    total, n = 0.0, 0
    for i, q in enumerate(t_chunks):
        for v in range(ncrops):
            if v != i:
                total = total + torch.sum(-q * F.log_softmax(s_chunks[v], dim=-1), dim=-1).mean()
                n += 1
    with torch.no_grad():
        center.mul_(momentum).add_(teacher.mean(0, keepdim=True) * (1 - momentum))
    return total / n


class PerCropWrapper(MultiCropWrapper):
    """Reference: one backbone pass per crop (what a direct port without grouping does)."""

    def forward(self, crops, return_features=False):
        feats = torch.cat([self.backbone(c) for c in crops])
        out = self.head(feats)
        return (out, feats) if return_features else out


def timeit(fn, repeat: int, device: torch.device) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_loss(batch: int, ncrops: int, k: int, repeat: int, device: torch.device):
    gen = torch.Generator().manual_seed(0)
    student = torch.randn(ncrops * batch, k, generator=gen).to(device).requires_grad_(True)
    teacher = torch.randn(2 * batch, k, generator=gen).to(device)
    loss_fn = DINOLoss(k, ncrops, 0.04, 0.04, 0, 1).to(device)

    def ours():
        loss_fn.center.zero_()
        student.grad = None
        loss = loss_fn(student, teacher, 0)
        loss.backward()
        return loss

    def ref():
        student.grad = None
        loss = loop_dino_loss(student, teacher, torch.zeros(1, k, device=device), ncrops)
        loss.backward()
        return loss

    agree = torch.allclose(ours(), ref(), rtol=1e-5, atol=1e-5)
    return timeit(ours, repeat, device), timeit(ref, repeat, device), agree


def make_trainer(cfg, device, amp, wrapper_cls=MultiCropWrapper):
    engine.seed_everything(0)
    cfg = cfg.__class__(**{**cfg.__dict__, "freeze_last_layer": 0})  # time the steady state: every layer trains
    trainer = DINOTrainer(cfg, device, iters_per_epoch=1000, amp=amp)
    trainer.student_module.__class__ = wrapper_cls
    trainer.teacher.__class__ = wrapper_cls
    return trainer


def make_crops(cfg, batch, device):
    gen = torch.Generator().manual_seed(1)
    g = [torch.randn(batch, 3, *cfg.global_size, generator=gen) for _ in range(2)]
    loc = [torch.randn(batch, 3, *cfg.local_size, generator=gen) for _ in range(cfg.local_crops_number)]
    return [c.to(device) for c in g + loc]


def step_time(cfg, batch, device, amp, repeat, wrapper_cls=MultiCropWrapper):
    trainer = make_trainer(cfg, device, amp, wrapper_cls)
    crops = make_crops(cfg, batch, device)
    it = iter(range(1, 10_000))
    first = trainer.train_step(crops, epoch=0, it=0).loss
    return timeit(lambda: trainer.train_step(crops, epoch=0, it=next(it)), repeat, device), first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument("--repeat", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cpu = torch.device("cpu")
    repeat = args.repeat or (2 if args.quick else 5)

    # ---- table 1: ours vs straightforward ports
    tiny = resolve("pretrain", "tiny", warmup_epochs=0, drop_path_rate=0.0)
    rows = []
    if args.quick:
        loss_sizes, step_cfg, step_batch = (16, 4, 1024), resolve("pretrain", "smoke", warmup_epochs=0,
                                                                 drop_path_rate=0.0), 8
    else:
        loss_sizes, step_cfg, step_batch = (64, 10, 65536), tiny, 64
    b, n, k = loss_sizes
    ours, ref, agree = bench_loss(b, n, k, repeat, cpu)
    rows.append((f"DINO loss fwd+bwd ({n} crops x {b}, K={k})", ours, ref, agree))
    ours, loss_ours = step_time(step_cfg, step_batch, cpu, "none", repeat)
    ref, loss_ref = step_time(step_cfg, step_batch, cpu, "none", repeat, PerCropWrapper)
    rows.append((f"DINO step {step_cfg.arch} batch {step_batch}, 2+{step_cfg.local_crops_number} crops "
                 f"(grouped vs per-crop)", ours, ref, abs(loss_ours - loss_ref) < 1e-4))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads\n")
    print("| what | ours s | reference s | ratio | agree |\n|---|---|---|---|---|")
    for what, o, r, a in rows:
        print(f"| {what} | {o:.4f} | {r:.4f} | {r / o:.2f}x | {'yes' if a else 'NO'} |")

    # ---- table 2: images/s of one step
    configs = [("smoke", resolve("pretrain", "smoke", warmup_epochs=0), 8, cpu, "none")]
    if not args.quick:
        configs = [("tiny", tiny.__class__(**{**tiny.__dict__, "drop_path_rate": 0.1}), 64, cpu, "none"),
                   ("small (vit_small_ics, 256x128, 2+8 crops, K=65536)", resolve("pretrain", "full", warmup_epochs=0),
                    8, cpu, "none")]
        if torch.cuda.is_available():
            gpu = torch.device("cuda")
            full = resolve("pretrain", "full", warmup_epochs=0)
            configs += [("small", full, 64, gpu, "none"), ("small", full, 64, gpu, "bf16")]
    print("\n| config | device | precision | batch | s / step | images/s |\n|---|---|---|---|---|---|")
    for name, cfg, batch, device, amp in configs:
        seconds, _ = step_time(cfg, batch, device, amp, 1 if "small" in name and device.type == "cpu" else repeat)
        precision = {"none": "fp32", "bf16": "bf16 autocast"}[amp]
        dev = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
        print(f"| {name} | {dev} | {precision} | {batch} | {seconds:.3f} | {batch / seconds:.1f} |")


if __name__ == "__main__":
    main()
