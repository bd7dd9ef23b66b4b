"""Training-step speed of reid_lab backbones (issue 3).

Two comparisons, each in one run with interleaved repeats:

* ``--mode timm`` (default on CPU): a training step (forward + backward + SGD step) of ``vit_small`` at 256×128
  against timm's own ``vit_small_patch16_224`` created at the same size, with the *same weights* (our parameter
  names equal timm's, so timm's state dict loads as is). Goal: ours ≥ 0.95× timm's speed. Also an eval forward.
* ``--mode precision`` (default on CUDA): images/s of ViT-S / ViT-B ± ICS, fp32 against bf16 autocast
  (fused scaled-dot-product attention in both).

Columns: ``ours s`` / ``reference s`` are the *minimum* seconds per step over the repeats (the least disturbed
measurement: on a shared machine other processes only ever add time); ``ratio`` = reference s / ours s (speed of ours
relative to the reference, > 1 = faster); ``agree`` = the two produce the same features (same weights, eval mode).

    .venv/bin/python benchmarks/train_step.py                 # CPU, ViT-S 256x128, batch 16
    .venv/bin/python benchmarks/train_step.py --device cuda   # GPU table (fp32 vs bf16)
    .venv/bin/python benchmarks/train_step.py --quick         # seconds: tiny sizes, both modes
"""
from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import timm
import torch
import torch.nn.functional as F

from reid_lab.models import build_backbone


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _train_step(model, opt, x, amp_dtype):
    ctx = torch.autocast(x.device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
    with ctx:
        loss = model(x).float().square().mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _timed(fn, device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def _interleaved(fns: dict, repeats: int, device) -> dict[str, float]:
    """Minimum seconds per call of each fn; one warm-up call each, then the fns alternate repeat by repeat."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            times[k].append(_timed(fn, device))
    return {k: min(v) for k, v in times.items()}


def _row(what, ours, ref, agree) -> str:
    return f"| {what} | {ours:.4f} | {ref:.4f} | {ref / ours:.3f} | {agree} |"


def compare_with_timm(args, device) -> list[str]:
    h, w = args.size
    if args.quick:
        ours = build_backbone("vit_tiny", img_size=(h, w), drop_path_rate=0.1)
        ref = timm.models.VisionTransformer(img_size=(h, w), patch_size=16, embed_dim=192, depth=4, num_heads=3,
                                            num_classes=0, drop_path_rate=0.1)
        label = "vit_tiny"
    else:
        ours = build_backbone("vit_small", img_size=(h, w), drop_path_rate=0.1)
        ref = timm.create_model("vit_small_patch16_224", img_size=(h, w), num_classes=0, drop_path_rate=0.1)
        label = "vit_small"
    ours.load_state_dict(ref.state_dict())  # identical key layout -> identical weights
    ours, ref = ours.to(device), ref.to(device)
    x = torch.randn(args.batch, 3, h, w, device=device)
    with torch.no_grad():
        diff = (ours.eval()(x) - ref.eval()(x)).abs().max().item()
    agree = f"{'yes' if diff < 1e-4 else 'NO'} (max diff {diff:.1e})"

    opts = {m: torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9) for m in (ours, ref)}
    ours.train(), ref.train()
    train = _interleaved({"ours": lambda: _train_step(ours, opts[ours], x, None),
                          "ref": lambda: _train_step(ref, opts[ref], x, None)}, args.repeats, device)
    ours.eval(), ref.eval()
    with torch.no_grad():
        fwd = _interleaved({"ours": lambda: ours(x), "ref": lambda: ref(x)}, args.repeats, device)
    tag = f"{label} {h}x{w} b{args.batch} {device.type}"
    return [
        _row(f"train step (fwd+bwd+SGD), {tag}; reference = timm", train["ours"], train["ref"], agree),
        _row(f"eval forward, {tag}; reference = timm", fwd["ours"], fwd["ref"], agree),
    ]


def compare_precision(args, device) -> list[str]:
    h, w = args.size
    archs = args.archs or (["vit_tiny", "vit_tiny_ics"] if args.quick else
                           ["vit_small", "vit_small_ics", "vit_base", "vit_base_ics"])
    rows = []
    for name in archs:
        torch.manual_seed(0)
        model = build_backbone(name, img_size=(h, w), drop_path_rate=0.1).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        x = torch.randn(args.batch, 3, h, w, device=device)
        with torch.no_grad():
            model.eval()
            f32 = model(x).float()
            with torch.autocast(device.type, dtype=torch.bfloat16):
                b16 = model(x).float()
        cos = F.cosine_similarity(f32, b16, dim=1).min().item()
        model.train()
        t = _interleaved({"bf16": lambda: _train_step(model, opt, x, torch.bfloat16),
                          "fp32": lambda: _train_step(model, opt, x, None)}, args.repeats, device)
        ips_b, ips_f = args.batch / t["bf16"], args.batch / t["fp32"]
        rows.append(_row(f"{name} train step {h}x{w} b{args.batch} {device.type}: bf16 autocast (ours) "
                         f"{ips_b:.0f} img/s vs fp32 (reference) {ips_f:.0f} img/s", t["bf16"], t["fp32"],
                         f"min cos(bf16, fp32) = {cos:.4f}"))
        del model, opt
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--mode", choices=["timm", "precision", "both"], default=None,
                   help="default: timm on CPU, precision on CUDA; --quick runs both")
    p.add_argument("--archs", nargs="+", default=None, help="backbones for --mode precision")
    p.add_argument("--batch", type=int, default=None, help="default 16 (CPU) / 64 (CUDA)")
    p.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"), help="default 256 128")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per model (default 5 CPU, 20 CUDA)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument("--quick", action="store_true", help="tiny models at 128x64, batch 4, 2 repeats")
    args = p.parse_args()

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda requested but CUDA is not available")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.size = args.size or [128, 64]
        args.batch = args.batch or 4
        args.repeats = args.repeats or 2
        args.mode = args.mode or "both"
    args.size = args.size or [256, 128]
    args.batch = args.batch or (64 if device.type == "cuda" else 16)
    args.repeats = args.repeats or (20 if device.type == "cuda" else 5)
    args.mode = args.mode or ("precision" if device.type == "cuda" else "timm")
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32
        torch.backends.cudnn.allow_tf32 = False

    print(f"torch {torch.__version__}, timm {timm.__version__}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else
             f" ({torch.get_num_threads()} threads)"))
    print("| what | ours s | reference s | ratio | agree |")
    print("|---|---|---|---|---|")
    if args.mode in ("timm", "both"):
        for row in compare_with_timm(args, device):
            print(row, flush=True)
    if args.mode in ("precision", "both"):
        for row in compare_precision(args, device):
            print(row, flush=True)


if __name__ == "__main__":
    main()
