"""Speed of a supervised fine-tuning step (TransReID recipe, docs/reference.md §4): images/s, and the loss against a loop port.

Rows (one run, interleaved repeats, minimum seconds per call — on a shared machine other processes only add time):

* ``triplet loss`` — :func:`reid_lab.reid.batch_hard_triplet_loss` (vectorised masks) against a straightforward
  per-anchor loop port of the official ``hard_example_mining`` + ``SoftMarginLoss``; agree = same loss value;
* ``train step`` — forward + CE/triplet + backward + SGD (one group per tensor) of :class:`reid_lab.reid.ReIDModel`,
  ours against the same step with the loop-port loss; ``what`` reports ours in images/s;
* on CUDA also ``bf16 vs fp32``: the step under bf16 autocast (ours) against fp32 (reference).

    .venv/bin/python benchmarks/supervised_step.py                    # CPU: vit_tiny 128x64, batch 64 (tiny profile)
    .venv/bin/python benchmarks/supervised_step.py --arch vit_small --height 256 --width 128 --batch 16
    .venv/bin/python benchmarks/supervised_step.py --device cuda --arch vit_small_ics --height 256 --width 128
    .venv/bin/python benchmarks/supervised_step.py --quick
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from reid_lab.config import resolve
from reid_lab.reid import ReIDLoss, batch_hard_triplet_loss, build_optimizer, build_reid_model, id_loss


def loop_triplet(feat: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-anchor loop port of the official batch-hard soft-margin triplet (the reference)."""
    feat = feat.float()
    losses = []
    for i in range(feat.shape[0]):
        d = ((feat - feat[i]) ** 2).sum(1).clamp(min=1e-12).sqrt()
        d_ap = max(d[j] for j in range(feat.shape[0]) if labels[j] == labels[i])
        d_an = min(d[j] for j in range(feat.shape[0]) if labels[j] != labels[i])
        losses.append(F.softplus(d_ap - d_an))
    return torch.stack(losses).mean()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _interleaved(fns: dict, repeats: int, device: torch.device) -> dict[str, float]:
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            _sync(device)
            t0 = time.perf_counter()
            fn()
            _sync(device)
            times[k].append(time.perf_counter() - t0)
    return {k: min(v) for k, v in times.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--arch", default="vit_tiny")
    p.add_argument("--height", type=int, default=128)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch", type=int, default=64, help="P x K with K = 4")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu")
    p.add_argument("--quick", action="store_true", help="seconds: 64x32, batch 16, 2 repeats")
    args = p.parse_args()
    if args.quick:
        args.height, args.width, args.batch, args.repeats = 64, 32, 16, 2
    device = torch.device(args.device)
    torch.manual_seed(0)
    classes = args.batch // 4 * 4
    labels = torch.arange(args.batch, device=device) // 4 % classes
    x = torch.randn(args.batch, 3, args.height, args.width, device=device)
    cfg = resolve("supervised", "smoke", arch=args.arch, height=args.height, width=args.width)
    model = build_reid_model(args.arch, classes, (args.height, args.width)).to(device).train()
    opt = build_optimizer(model, cfg)
    ours_loss = ReIDLoss()

    def step(loss_fn, amp: bool):
        def run():
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                logits, feat = model(x)
                loss = loss_fn(logits, feat)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return run

    feat = torch.randn(args.batch, model.embed_dim, device=device)
    rows = []
    t = _interleaved({"ours": lambda: batch_hard_triplet_loss(feat, labels), "ref": lambda: loop_triplet(feat, labels)},
                     args.repeats, device)
    agree = torch.allclose(batch_hard_triplet_loss(feat, labels), loop_triplet(feat, labels), rtol=1e-5)
    rows.append((f"triplet loss, batch {args.batch}", t["ours"], t["ref"], agree))

    amp_cpu = False
    t = _interleaved({"ours": step(lambda lo, f: ours_loss(lo, f, labels).total, amp_cpu),
                      "ref": step(lambda lo, f: id_loss(lo, labels) + loop_triplet(f, labels), amp_cpu)},
                     args.repeats, device)
    with torch.no_grad():
        logits, f = model(x)
    agree = torch.allclose(ours_loss(logits, f, labels).total, id_loss(logits, labels) + loop_triplet(f, labels),
                           rtol=1e-5)
    rows.append((f"train step {args.arch} {args.height}x{args.width} b{args.batch} "
                 f"(ours {args.batch / t['ours']:.0f} img/s)", t["ours"], t["ref"], agree))

    if device.type == "cuda":
        t = _interleaved({"ours": step(lambda lo, f: ours_loss(lo, f, labels).total, True),
                          "ref": step(lambda lo, f: ours_loss(lo, f, labels).total, False)}, args.repeats, device)
        rows.append((f"bf16 vs fp32 step {args.arch} (bf16 {args.batch / t['ours']:.0f} img/s, fp32 "
                     f"{args.batch / t['ref']:.0f} img/s)", t["ours"], t["ref"], "n/a"))

    print(f"device {device} | torch threads {torch.get_num_threads()}")
    print("| what | ours s | reference s | ratio | agree |")
    print("|---|---|---|---|---|")
    for what, ours, ref, ok in rows:
        print(f"| {what} | {ours:.4f} | {ref:.4f} | {ref / ours:.2f} | {ok} |")


if __name__ == "__main__":
    main()
