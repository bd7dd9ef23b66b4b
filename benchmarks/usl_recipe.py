"""Which tiny USL recipe lets the loop improve its own pseudo labels? One factor at a time, paired seeds (issue 22).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/usl_recipe.py --init supervised --seeds 1 2 \\
        --variant base: --variant official_memory:memory_features=eval --json runs/study/usl_recipe.json

Every run is USL on SynthMarket (tiny) with the ICS tiny ViT from one of the shipped course checkpoints:
``supervised`` (``reid_dino_ics_tiny.pth``, the fine-tuned DINO+ICS model — a *good start*), ``dino_ics`` (the
course DINO+ICS backbone) or ``random_ics`` (random weights). A variant is ``NAME:key=value,...`` of
:class:`~reid_lab.config.USLConfig` overrides on top of ``--base`` (the tiny profile's values). Each finished run is
stored in the JSON file under ``init/variant/seed`` and skipped when run again (resumable); per-epoch clusters,
purity, ARI, loss and mAP are printed and a markdown table of start → end mAP (mean ± sd over seeds) closes the run.
Purity / ARI / mAP use the true ids: they are the study's readings, never inputs of the trainer.
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from reid_lab.config import parse_overrides, resolve, to_dict
from reid_lab.tutorial import zoo
from reid_lab.tutorial.profile import load_profile_data
from reid_lab.usl import train_usl

INITS = {"supervised": lambda: zoo.shipped_finetuned("tiny", "dino_ics"),
         "dino_ics": lambda: zoo.shipped_backbone("tiny", "vit_tiny_ics"),
         "random_ics": lambda: None}


def run_one(init: str, overrides: dict[str, Any], seed: int, data: Any, workdir: Path) -> dict[str, Any]:
    cfg = resolve("usl", "tiny", arch="vit_tiny_ics", seed=seed, **overrides)
    began = time.perf_counter()
    result = train_usl(cfg, data.market, workdir, init=INITS[init](), device="cpu", resume=False,
                       show_progress=False)
    keys = ("epoch", "num_clusters", "outlier_fraction", "purity", "ari", "loss", "mAP", "rank1", "lr")
    return {"config": overrides, "cfg": to_dict(cfg), "seed": seed, "initial": result.initial, "final": result.final,
            "history": [{k: r.get(k) for k in keys} for r in result.history],
            "seconds": time.perf_counter() - began}


def describe(run: dict[str, Any]) -> str:
    rows = []
    for r in run["history"]:
        m = f" mAP {100 * r['mAP']:.1f}" if r.get("mAP") is not None else ""
        loss = "skip" if r["loss"] is None else f"{r['loss']:.2f}"
        rows.append(f"e{r['epoch']}: {r['num_clusters']}c pur {100 * (r['purity'] or 0):.0f} ari {r['ari'] or 0:.2f} "
                    f"loss {loss}{m}")
    return " | ".join(rows)


def mean_sd(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * sd:.1f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--init", choices=sorted(INITS), default="supervised")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    p.add_argument("--base", default="", help="overrides shared by every variant, e.g. 'lr=3.5e-4,iters=120'")
    p.add_argument("--variant", action="append", default=[], help="NAME:key=value,... (repeatable)")
    p.add_argument("--json", type=Path, default=Path("runs/study/usl_recipe.json"))
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("reid_lab.usl.train").setLevel(logging.INFO)  # one line per epoch
    data = load_profile_data("tiny")
    store = json.loads(args.json.read_text()) if args.json.is_file() else {}
    base = parse_overrides([x for x in args.base.split(",") if x])
    table = []
    for spec in args.variant or ["base:"]:
        name, _, rest = spec.partition(":")
        overrides = {**base, **parse_overrides([x for x in rest.split(",") if x])}
        runs = []
        for seed in args.seeds:
            key = f"{args.init}/{name}/{seed}"
            if key not in store or store[key]["config"] != overrides:
                with tempfile.TemporaryDirectory() as tmp:
                    store[key] = run_one(args.init, overrides, seed, data, Path(tmp))
                args.json.parent.mkdir(parents=True, exist_ok=True)
                args.json.write_text(json.dumps(store, indent=1))
            run = store[key]
            runs.append(run)
            print(f"{key} ({run['seconds']:.0f} s) start {100 * run['initial']['mAP']:.1f}: {describe(run)}", flush=True)
        gain = [r["final"]["mAP"] - r["initial"]["mAP"] for r in runs]
        table.append(f"| {name} | `{overrides}` | {mean_sd([r['initial']['mAP'] for r in runs])} | "
                     f"{mean_sd([r['final']['mAP'] for r in runs])} | {mean_sd(gain)} |")
    print(f"\nUSL on SynthMarket (tiny) from {args.init}, seeds {args.seeds}, mAP %\n")
    print("| variant | overrides | start | end | end − start |\n|---|---|---|---|---|")
    print("\n".join(table))


if __name__ == "__main__":
    main()
