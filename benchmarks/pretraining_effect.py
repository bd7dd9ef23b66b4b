"""What pre-training buys on SynthMarket: fine-tuning curves, random vs DINO initialisation, several seeds (issue #4).

    .venv/bin/python benchmarks/pretraining_effect.py --init DINO=reid_lab/assets/dino_vit_tiny_tiny.pth \
        --seeds 0 1 2 --ids 50 --epochs 12 --eval-period 3 --json runs/study/effect.json

Every seed draws its own labelled identities; all initialisations of a seed share them and the training seed
(a paired design). Prints frozen k-NN mAP per initialisation and a markdown table of mAP (mean ± sd over seeds) at
each fine-tuning budget, with the paired difference to random initialisation. ``--quick`` = smoke sizes.
"""
from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import torch

from reid_lab.config import resolve
from reid_lab.tutorial.profile import load_profile_data
from reid_lab.models import build_backbone, load_pretrained
from reid_lab.reid.study import finetune_curves, format_summary, summarize
from reid_lab.ssl import evaluate_retrieval


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--init", action="append", default=[], metavar="NAME=PATH", help="a pre-trained backbone")
    p.add_argument("--arch", default="vit_tiny")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--ids", type=int, default=50, help="labelled identities per seed")
    p.add_argument("--images-per-id", type=int, default=None)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--eval-period", type=int, default=3)
    p.add_argument("--warmup-epochs", type=int, default=2)
    p.add_argument("--base-lr", type=float, default=None, help="default: the tiny profile's")
    p.add_argument("--output", default="runs/study/pretraining_effect")
    p.add_argument("--json", default=None, help="write the curves and the summary here")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quick", action="store_true", help="smoke sizes (seconds)")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.threads:
        torch.set_num_threads(args.threads)

    profile = "smoke" if args.quick else "tiny"
    data = load_profile_data(profile)
    inits: dict[str, str | None] = {"random": None}
    for item in args.init:
        name, sep, path = item.partition("=")
        if not sep or not Path(path).is_file():
            raise SystemExit(f"--init expects NAME=PATH to an existing file, got {item!r}")
        inits[name] = path
    overrides = dict(arch=args.arch, epochs=args.epochs, eval_period=args.eval_period, warmup_epochs=args.warmup_epochs)
    if args.base_lr is not None:
        overrides["base_lr"] = args.base_lr
    cfg = resolve("supervised", profile, **overrides)

    knn = {}
    for name, path in inits.items():
        torch.manual_seed(0)
        backbone = build_backbone(args.arch, img_size=(cfg.height, cfg.width))
        if path:
            load_pretrained(backbone, path)
        r = evaluate_retrieval(backbone, data.market, (cfg.height, cfg.width), "cpu")
        knn[name] = {"mAP": r.mAP, "rank1": float(r.cmc[0])}
    began = time.perf_counter()
    result = finetune_curves(inits, data.market, seeds=args.seeds, cfg=cfg, output_dir=args.output,
                             num_ids=None if args.quick else args.ids, images_per_id=args.images_per_id)
    seconds = time.perf_counter() - began

    print(f"SynthMarket ({profile}), {args.arch}, {args.ids} labelled ids, seeds {args.seeds}, {seconds:.0f} s\n")
    print("| init | frozen k-NN mAP | Rank-1 |\n|---|---|---|")
    for name, r in knn.items():
        print(f"| {name} | {100 * r['mAP']:.1f} | {100 * r['rank1']:.1f} |")
    print("\nfine-tuned mAP (%), mean ± sd over seeds:\n")
    print(format_summary(result, reference="random"))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({**result, "knn": knn, "summary": summarize(result, "random"),
                                               "inits": inits, "seconds": seconds}, indent=1))


if __name__ == "__main__":
    main()
