"""What do frozen DINO features key on? Person, background or camera — against random weights (issue 17 diagnosis).

    .venv/bin/python benchmarks/dino_features.py --backbone course=runs/course/tiny/dino_vit_tiny_ics/teacher_backbone.pth \
        --backbone official_colour=runs/screens/L2_official_colour/teacher_backbone.pth

For every backbone (and random ICS weights over ``--random-seeds``) the whole SynthMarket test split is embedded at
the pre-training crop size (frozen CLS, eval mode, the probe's transform) three times: the images as they are, the
person alone (background blended into grey with the renderer's own person masks) and the background alone (person
removed, mask grown by 2 px). Market-protocol mAP of each, and where the top-1 neighbour comes from (the query's own
camera vs the chance share, ``reid_lab.retrieval.diagnostics.camera_shortcut_report``). Prints a markdown table.
"""
from __future__ import annotations

import argparse
import statistics

import torch

from reid_lab import engine
from reid_lab.config import resolve
from reid_lab.models import build_backbone, load_pretrained
from reid_lab.retrieval.diagnostics import knn_by_region, region_views
from reid_lab.ssl import IMAGENET_MEAN, IMAGENET_STD
from reid_lab.tutorial.profile import load_profile_data


def measure(backbone, query, gallery, market) -> dict[str, float]:
    r = knn_by_region(backbone, market, query, gallery)
    return {"image": 100 * r["image"], "same-camera top-1": 100 * r["same_camera_top1"],
            "chance": 100 * r["same_camera_chance"], "person only": 100 * r["person only"],
            "background only": 100 * r["background only"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", action="append", default=[], metavar="NAME=PATH")
    p.add_argument("--arch", default="vit_tiny_ics")
    p.add_argument("--random-seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    size = tuple(resolve("pretrain", "tiny").global_size)
    market = load_profile_data("tiny", None).market
    query, gallery = (region_views(split, size, IMAGENET_MEAN, IMAGENET_STD) for split in (market.query, market.gallery))
    rows = {}
    randoms = []
    for seed in args.random_seeds:
        engine.seed_everything(seed)
        randoms.append(measure(build_backbone(args.arch, img_size=size), query, gallery, market))
    rows[f"random ICS weights ({len(randoms)} seeds)"] = {
        k: (statistics.mean(r[k] for r in randoms), statistics.stdev(r[k] for r in randoms) if len(randoms) > 1 else 0)
        for k in randoms[0]}
    for spec in args.backbone:
        name, path = spec.split("=", 1)
        backbone = build_backbone(args.arch, img_size=size)
        load_pretrained(backbone, path)
        rows[name] = {k: (v, None) for k, v in measure(backbone, query, gallery, market).items()}
    keys = list(randoms[0])
    print(f"SynthMarket test split at {size[0]}x{size[1]}, frozen CLS features, mAP / top-1 shares (%)\n")
    print("| backbone | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys))
    for name, row in rows.items():
        cells = [f"{m:.1f}" + (f" ± {s:.1f}" if s else "") for m, s in (row[k] for k in keys)]
        print(f"| {name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
