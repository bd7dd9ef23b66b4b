"""CFS AUC (person vs off-domain SynthLUP images) with different DINO source proxies, one target (issue 17).

    .venv/bin/python benchmarks/cfs_by_source.py --source course=runs/course/tiny/dino_vit_tiny_ics/teacher_backbone.pth

Notebook 01's measurement (``cfs.score_pool`` at the tiny score size 64×32, the shipped DINO+ICS SynthMarket model as
the target proxy, ``cfs.separation`` over the pool's membership) for every ``--source`` backbone, the shipped course
backbone and random ICS weights, so that a new pre-training run can be judged by the CFS it gives before it is shipped.
"""
from __future__ import annotations

import argparse

import torch

from reid_lab import cfs, engine, reid
from reid_lab.data import LUPersonPool
from reid_lab.models import build_backbone, load_pretrained
from reid_lab.tutorial import load_profile_data, zoo


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--source", action="append", default=[], metavar="NAME=PATH")
    p.add_argument("--size", type=int, nargs=2, default=(64, 32))
    args = p.parse_args()
    torch.set_num_threads(1)
    data = load_profile_data("tiny")
    pool = LUPersonPool(data.pool_root)
    kinds = cfs.read_membership(data.membership_csv)
    target = reid.load_reid_model(zoo.finetuned_model("tiny", "dino_ics"))
    sources = {"random ICS weights (seed 0)": None, "shipped course backbone": zoo.shipped_backbone("tiny", "vit_tiny_ics")}
    sources.update(dict(spec.split("=", 1) for spec in args.source))
    print("| source proxy | AUC person vs off-domain | centred |\n|---|---|---|")
    for name, path in sources.items():
        engine.seed_everything(0)
        source = build_backbone("vit_tiny_ics", img_size=tuple(args.size))
        if path is not None:
            load_pretrained(source, path)
        result = cfs.score_pool(source, target, pool, "cpu", image_size=tuple(args.size), progress=False)
        groups = [kinds.get(n, "unknown") for n in result.names]
        sep = cfs.separation(result.scores, groups)
        centred = cfs.separation(cfs.cosine(result.source_features, result.target_features, centre=True), groups)
        print(f"| {name} | {sep['auc']:.2f} | {centred['auc']:.2f} |")


if __name__ == "__main__":
    main()
