"""Tiny DINO pre-training speed on a CPU: where a step's time goes, and today's pipeline against the new one (issue 17).

    .venv/bin/python benchmarks/dino_pretrain_speed.py            # ~3 min on one core
    .venv/bin/python benchmarks/dino_pretrain_speed.py --quick    # fewer steps

Both pipelines are the real code path: SynthLUP JPEGs → ``MultiCropImages`` (PIL multi-crop) → ``DataLoader`` →
``DINOTrainer.train_step`` (student on all crops, teacher on the globals, loss, backward, AdamW, EMA), one torch
thread, data loading in the same process. They differ only in the crop sizes:

* **before** — the tiny recipe until issue 17: global crops 128×64, local 64×32 (the fine-tuning resolution);
* **now** — global 64×32, local 32×16. Fine-tuning still runs at 128×64; ``load_pretrained`` resizes the
  position table (bilinear, as the official ``resize_pos_embed``) as the paper's code does between
  pre-training and fine-tuning resolutions.

Table 1 breaks one step down per crop size (milliseconds per image): decoding, PIL augmentation of the 2 global and
the local crops, the same crops drawn on the whole batch with kornia (``augment="batched"``), and forward + backward
of the student per crop size with the ICS stem's share. Table 2 times whole steps end to end and gives the ratio;
extra rows add batched augmentation, bf16 autocast (CPUs with AVX512-BF16 or AMX gain) and a second thread (not
"per core": two cores).
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import torch
from torch.utils.data import DataLoader

from reid_lab import engine
from reid_lab.config import resolve
from reid_lab.data import LUPersonPool, read_image
from reid_lab.ssl.batched_multicrop import ResizeToTensor
from reid_lab.ssl.train import DINOTrainer, MultiCropImages, build_multicrop
from reid_lab.tutorial.profile import load_profile_data

BEFORE = dict(global_size=(128, 64), local_size=(64, 32))


def configs() -> dict[str, object]:
    now = resolve("pretrain", "tiny", arch="vit_tiny_ics")
    return {"before (128x64 / 64x32)": dataclasses.replace(now, **BEFORE),
            f"now ({now.global_size[0]}x{now.global_size[1]} / {now.local_size[0]}x{now.local_size[1]})": now}


def _ms_per_image(fn, n: int) -> float:
    began = time.perf_counter()
    fn()
    return 1e3 * (time.perf_counter() - began) / n


def breakdown(cfg, paths, batch: int) -> dict[str, float]:
    """Milliseconds per image of each part of one step."""
    multicrop = build_multicrop(cfg)
    images = [read_image(p) for p in paths[:batch]]
    resize = ResizeToTensor([2 * s for s in cfg.global_size])
    sources = torch.stack([resize(im) for im in images])
    batched = build_multicrop(cfg, batched=True)
    batched(sources)  # warm-up
    out = {"decode": _ms_per_image(lambda: [read_image(p) for p in paths[:batch]], batch),
           "augment 2 global": _ms_per_image(lambda: [(multicrop.global_transform1(im), multicrop.global_transform2(im))
                                                      for im in images], batch),
           f"augment {cfg.local_crops_number} local": _ms_per_image(
               lambda: [[multicrop.local_transform(im) for _ in range(cfg.local_crops_number)] for im in images], batch),
           "augment all crops, batched (kornia)": _ms_per_image(lambda: batched(sources), batch)}
    engine.seed_everything(0)
    trainer = DINOTrainer(dataclasses.replace(cfg, freeze_last_layer=0), torch.device("cpu"), 100, amp="none")
    backbone = trainer.student_module.backbone
    for name, size, n in (("global", cfg.global_size, 2), ("local", cfg.local_size, cfg.local_crops_number)):
        x = torch.randn(n * batch, 3, *size)
        for part, module in (("student fwd+bwd", backbone), ("of which ICS stem", backbone.patch_embed)):
            module(x).float().sum().backward()  # warm-up
            out[f"{part}, {n} {name}"] = _ms_per_image(lambda: module(x).float().sum().backward(), batch)
    with torch.no_grad():
        x = torch.randn(2 * batch, 3, *cfg.global_size)
        out["teacher fwd, 2 global"] = _ms_per_image(lambda: trainer.teacher(list(x.chunk(2))), batch)
    return out


def end_to_end(cfg, paths, steps: int, amp: str = "none", batched: bool = False) -> float:
    """Images/s of ``steps`` whole steps (data loading and augmentation included), after one warm-up step."""
    engine.seed_everything(0)
    if batched:  # what pretrain() does with augment="batched"
        dataset = MultiCropImages(paths, ResizeToTensor([2 * s for s in cfg.global_size]))
        augment = build_multicrop(cfg, batched=True)
    else:
        dataset, augment = MultiCropImages(paths, build_multicrop(cfg)), None
    loader = iter(DataLoader(dataset, batch_size=cfg.batch_size, shuffle=True, drop_last=True))
    trainer = DINOTrainer(dataclasses.replace(cfg, freeze_last_layer=0), torch.device("cpu"), steps + 1, amp=amp)

    def step(it: int) -> None:
        crops = next(loader)
        trainer.train_step(augment(crops) if augment is not None else crops, 0, it)

    step(0)
    times = []
    for it in range(1, steps + 1):
        began = time.perf_counter()
        step(it)
        times.append(time.perf_counter() - began)
    return cfg.batch_size / statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 timed steps per row instead of 5")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the main rows (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    steps = 2 if args.quick else 5
    data = load_profile_data("tiny", None)
    paths = LUPersonPool(data.pool_root).samples
    cfgs = configs()
    batch = next(iter(cfgs.values())).batch_size

    parts = {name: breakdown(cfg, paths, batch) for name, cfg in cfgs.items()}
    names = list(cfgs)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), batch {batch}, vit_tiny_ics\n")
    print("Table 1 — milliseconds per image of one step\n")
    print("| part | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
    rows = list(parts[names[0]])
    for i, row in enumerate(rows):
        cells = [f"{list(parts[n].values())[i]:.2f}" for n in names]
        label = row.replace(f"{cfgs[names[0]].local_crops_number} local", "local crops")
        print(f"| {label} | " + " | ".join(cells) + " |")

    print("\nTable 2 — whole steps end to end (data loading in the same process)\n")
    print("| pipeline | threads | precision | images/s | vs before |\n|---|---|---|---|---|")
    before = end_to_end(cfgs[names[0]], paths, steps)
    print(f"| {names[0]} | {args.threads} | fp32 | {before:.1f} | 1.00x |")
    now_cfg = cfgs[names[1]]
    rows = [(args.threads, "none", False), (args.threads, "none", True), (args.threads, "bf16", True)]
    rows += [(2, "none", True)] if args.threads == 1 else []
    for threads, amp, batched in rows:
        torch.set_num_threads(threads)
        rate = end_to_end(now_cfg, paths, steps, amp=amp, batched=batched)
        print(f"| {names[1]}{', batched augmentation' if batched else ''} | {threads} | "
              f"{'bf16 autocast' if amp == 'bf16' else 'fp32'} | {rate:.1f} | {rate / before:.2f}x |")
    torch.set_num_threads(args.threads)


if __name__ == "__main__":
    main()
