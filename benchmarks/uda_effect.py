"""Does UDA beat direct transfer on the tiny worlds? Direct transfer, BN-only and UDA variants, paired seeds (issue 11).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/uda_effect.py --archs vit_tiny vit_tiny_ics --seeds 1 2 3 \
        --variants official adabn --epochs 2 --json runs/study/uda_effect.json

For every direction and backbone one source model (see ``--help`` of ``--runs`` for where it is taken from; a
missing SynthMSMT source is fine-tuned with the tiny supervised recipe first) is adapted with every variant and every
UDA seed: the seeds of a variant pair with those of the other variants (same source, same seed). Printed: per run the
pseudo-label statistics per epoch — clusters, outlier %, purity and ARI against the *true* ids (diagnosis only: a user
without labels cannot compute them) — and a markdown table of mAP: direct transfer, BN-only (AdaBN, no gradient
step; deterministic), after UDA (mean ± sd over seeds) and the paired UDA − direct and UDA − BN-only differences.

Variants: ``official`` (the paper's recipe with the profile's tiny values), ``adabn`` (AdaBN start,
``UDAConfig.adabn``), or ``NAME:key=value,key=value`` for any UDA config override (e.g. ``lr1e-4:adabn=True,lr=1e-4``).
"""
from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from reid_lab import reid
from reid_lab.tutorial import zoo
from reid_lab.config import resolve
from reid_lab.tutorial.profile import load_profile_data
from reid_lab.usl import bn_only_transfer, train_uda

NAMES = {"market1501": "SynthMarket", "msmt17": "SynthMSMT"}
NB03 = {"vit_tiny": "dino", "vit_tiny_ics": "dino_ics"}  # notebook 03's SynthMarket runs
BUILTIN = {"official": {}, "adabn": {"adabn": True}}


def parse_variant(spec: str) -> tuple[str, dict[str, Any]]:
    """``official`` / ``adabn`` or ``NAME:key=value,...`` (values parsed as JSON when possible)."""
    if spec in BUILTIN:
        return spec, dict(BUILTIN[spec])
    name, sep, rest = spec.partition(":")
    if not sep:
        raise SystemExit(f"unknown variant {spec!r}: use {', '.join(BUILTIN)} or NAME:key=value,...")
    overrides = {}
    for item in filter(None, rest.split(",")):
        key, _, value = item.partition("=")
        try:
            overrides[key] = json.loads(value.replace("True", "true").replace("False", "false"))
        except json.JSONDecodeError:
            overrides[key] = value
    return name, overrides


def source_path(src: str, arch: str, runs: Path, data: Any, profile: str) -> Path:
    """SynthMarket: notebook 03's run; SynthMSMT: notebook 05's ``source_msmt17_<arch>`` run, trained when missing."""
    if src == "market1501":
        path = runs / profile / "03_supervised_reid" / NB03[arch] / "model.pth"
        if not path.is_file():
            raise SystemExit(f"{path} is missing: run notebook 03 first")
        return path
    out = runs / profile / "05_uda_reid" / f"source_{src}_{arch}"
    if not (out / "model.pth").is_file():
        logging.warning("training the %s source %s in %s", NAMES[src], arch, out)
        reid.train(resolve("supervised", profile, arch=arch, dataset=src), data[src], out, device="cpu",
                   pretrained=zoo.dino_backbone(profile, arch, runs), resume=True, progress=False)
    return out / "model.pth"


def mean_sd(values: list[float]) -> str:
    """``mean ± sd`` in % (sd over seeds; ``±0`` for one value)."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{100 * statistics.mean(values):.1f} ± {100 * sd:.1f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--directions", nargs="+", default=["market1501:msmt17", "msmt17:market1501"])
    p.add_argument("--archs", nargs="+", default=["vit_tiny", "vit_tiny_ics"])
    p.add_argument("--variants", nargs="+", default=["official", "adabn"])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--runs", default="runs", help="run root holding the source models (notebooks 03 and 05)")
    p.add_argument("--output", default="runs/study/uda_effect")
    p.add_argument("--json", default=None)
    p.add_argument("--quick", action="store_true", help="smoke sizes (seconds; the sources must exist in smoke)")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    profile = "smoke" if args.quick else "tiny"
    loaded = load_profile_data(profile)
    data = {"market1501": loaded.market, "msmt17": loaded.msmt}
    variants = dict(parse_variant(v) for v in args.variants)
    rows, runs = [], []
    for direction in args.directions:
        src, tgt = direction.split(":")
        for arch in args.archs:
            source = source_path(src, arch, Path(args.runs), data, profile)
            base = resolve("uda", profile, arch=arch, dataset=tgt, source_dataset=src, epochs=args.epochs, eval_step=1)
            bn_only = bn_only_transfer(base, data[tgt], source, device="cpu")["mAP"]
            per_variant: dict[str, list[dict[str, float]]] = {}
            for name, overrides in variants.items():
                for seed in args.seeds:
                    cfg = resolve("uda", profile, **{**vars(base), **overrides, "seed": seed})
                    began = time.perf_counter()
                    out = Path(args.output) / f"{src}_to_{tgt}" / arch / name / f"seed{seed}"
                    r = train_uda(cfg, data[tgt], source, out, device="cpu", resume=False, show_progress=False)
                    epochs = " | ".join(f"e{h['epoch']}: {h['num_clusters']} cl, {100 * h['outlier_fraction']:.0f}% out, "
                                        f"purity {h['purity'] or 0:.2f}, ARI {h['ari'] or 0:.2f}, mAP {100 * h['mAP']:.1f}"
                                        for h in r.history)
                    adabn = f", AdaBN {100 * r.bn_adapted['mAP']:.1f}" if r.bn_adapted else ""
                    print(f"{NAMES[src]}→{NAMES[tgt]} {arch} {name} seed {seed}: direct {100 * r.initial['mAP']:.1f}"
                          f"{adabn} | {epochs} ({time.perf_counter() - began:.0f} s)", flush=True)
                    per_variant.setdefault(name, []).append({"direct": r.initial["mAP"], "uda": r.final["mAP"]})
                    runs.append({"direction": direction, "arch": arch, "variant": name, "seed": seed,
                                 "initial": r.initial, "bn_adapted": r.bn_adapted, "final": r.final,
                                 "history": r.history})
            for name, results in per_variant.items():
                direct = results[0]["direct"]
                uda = [x["uda"] for x in results]
                rows.append(f"| {NAMES[src]}→{NAMES[tgt]} | {arch} | {name} | {100 * direct:.1f} | {100 * bn_only:.1f} | "
                            f"{mean_sd(uda)} | {mean_sd([u - direct for u in uda])} | {mean_sd([u - bn_only for u in uda])} |")
    print(f"\nUDA {args.epochs} epochs, seeds {args.seeds} (mAP %, mean ± sd over seeds; direct and BN-only are "
          "deterministic)\n")
    print("| direction | backbone | variant | direct | BN-only | after UDA | UDA − direct | UDA − BN-only |")
    print("|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"args": vars(args), "runs": runs, "table": rows}, indent=1))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
