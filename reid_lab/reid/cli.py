"""``reid-lab train`` and ``reid-lab evaluate``: supervised fine-tuning and evaluation from the shell (docs/reference.md §4).

Examples::

    reid-lab train --profile tiny --dataset market1501                                # synthetic world, CPU
    reid-lab train --profile full --dataset market1501 --arch vit_small_ics --pretrained model/vit_small_ics_cfs_lup.pth
    torchrun --nproc_per_node 4 -m reid_lab train --profile full --dataset msmt17 --set batch_size=256 --set base_lr=0.0032
    reid-lab evaluate --checkpoint runs/full/train_market1501_vit_small_ics/model.pth --rerank
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..cli import add_dry_run, add_msmt_version
from ..config import PROFILES, parse_overrides

__all__ = ["add_supervised_parsers", "run_train_cli", "run_evaluate_cli"]

DATASETS = ("market1501", "msmt17", "mm")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=PROFILES, default="tiny", help="config profile (default: tiny)")
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help="market1501 | msmt17 | mm (= MSMT17 + Market train, docs/reference.md §7.4); default: the profile's")
    p.add_argument("--data-root", default=None, help="data root (default: $REID_LAB_DATA or data/)")
    add_msmt_version(p)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (torchrun: cuda:LOCAL_RANK)")
    p.add_argument("--rerank", action="store_true", help="also report k-reciprocal re-ranked metrics")
    p.add_argument("--num-workers", type=int, default=None, help="DataLoader workers per process (default: profile's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_supervised_parsers(subparsers: argparse._SubParsersAction) -> tuple[argparse.ArgumentParser, ...]:
    """Register ``train`` and ``evaluate`` (called by :func:`reid_lab.cli.build_parser`)."""
    t = subparsers.add_parser("train", help="supervised ReID fine-tuning, TransReID recipe (torchrun-ready)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(t)
    t.add_argument("--arch", default=None, help="backbone, e.g. vit_small_ics (default: the profile's)")
    t.add_argument("--pretrained", default=None,
                   help="backbone weights: DINO checkpoint.pth, a released backbone, a TransReID or reid_lab file")
    t.add_argument("--checkpoint-key", default=None, help="DINO checkpoint entry: teacher (default) or student")
    t.add_argument("--output", default=None, help="output folder (default: runs/<profile>/train_<dataset>_<arch>)")
    t.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                   help="continue from <output>/checkpoint.pth, or from CHECKPOINT")
    t.add_argument("--epochs", type=int, default=None)
    t.add_argument("--batch-size", type=int, default=None, help="global P x K batch")
    t.add_argument("--base-lr", type=float, default=None)
    t.add_argument("--seed", type=int, default=None)
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other SupervisedConfig field, e.g. --set warmup_epochs=5 (repeatable)")
    t.add_argument("--official-schedule", action="store_true",
                   help="reproduce the official per-epoch lr off-by-one (docs/reference.md §9.8)")
    t.add_argument("--amp", choices=("auto", "bf16", "fp16", "none"), default="auto",
                   help="mixed precision (auto: bf16 on CUDA, fp32 on CPU)")
    add_dry_run(t)
    t.set_defaults(func=run_train_cli)

    e = subparsers.add_parser("evaluate", help="evaluate a fine-tuned checkpoint (Market protocol, docs/reference.md §4.6)")
    _common(e)
    e.add_argument("--checkpoint", required=True, help="model.pth / checkpoint.pth, or an official transformer_*.pth")
    e.add_argument("--arch", default=None, help="only for official files: backbone name (default: inferred)")
    e.add_argument("--size", type=int, nargs=2, default=None, metavar=("H", "W"),
                   help="input size (default: the checkpoint's, else the arch's)")
    e.add_argument("--json", action="store_true", help="print the metrics as JSON")
    e.set_defaults(func=run_evaluate_cli)
    return t, e


def _dataset(name: str, profile: str, data_root: str | None, msmt_version: str = "auto"):
    from ..data import merge_market_msmt
    from ..tutorial.profile import load_profile_data

    data = load_profile_data(profile, data_root, msmt_version=msmt_version)
    if name == "market1501":
        return data.market
    if name == "msmt17":
        return data.msmt
    return merge_market_msmt(data.market, data.msmt)


def run_train_cli(args: argparse.Namespace) -> int:
    """Run ``reid-lab train``; returns the exit status."""
    from .. import dryrun, engine, paths
    from ..config import resolve
    from .supervised import train

    overrides = parse_overrides(args.set)
    for name, value in (("arch", args.arch), ("epochs", args.epochs), ("batch_size", args.batch_size),
                        ("base_lr", args.base_lr), ("seed", args.seed), ("dataset", args.dataset)):
        if value is not None:
            overrides[name] = value
    for flag in ("rerank", "official_schedule"):  # every flag goes through the config the checkpoint records
        if getattr(args, flag):
            overrides[flag] = True
    dryrun.activate(args.dry_run, "supervised", args.profile, overrides)
    cfg = resolve("supervised", args.profile, **overrides)
    if cfg.dataset not in DATASETS:
        raise SystemExit(f"error: dataset must be one of {DATASETS}, got {cfg.dataset!r}")
    num_workers = args.num_workers if args.num_workers is not None else resolve("data", args.profile).num_workers
    info, device = engine.init_distributed(args.device)
    try:
        dataset = _dataset(cfg.dataset, args.profile, args.data_root, args.msmt_version)
        output = Path(args.output) if args.output else paths.runs_root() / args.profile / f"train_{cfg.dataset}_{cfg.arch}"
        result = train(cfg, dataset, output, device=device, pretrained=args.pretrained, resume=args.resume,
                       num_workers=num_workers, amp=args.amp, progress=not args.no_progress,
                       checkpoint_key=args.checkpoint_key)
    finally:
        engine.cleanup_distributed()
    if info.is_main:
        m = result["metrics"]
        print(f"fine-tuned {cfg.arch} on {cfg.dataset} for {result['epochs_done']}/{cfg.epochs} epochs")
        if m:
            print(f"mAP {100 * m['mAP']:.1f}  Rank-1 {100 * m['rank1']:.1f}  mINP {100 * m['mINP']:.1f}"
                  + (f"  | re-ranked mAP {100 * m['rerank_mAP']:.1f}  Rank-1 {100 * m['rerank_rank1']:.1f}"
                     if "rerank_mAP" in m else ""))
        print(f"checkpoint {result['checkpoint']}")
        if result["model_path"]:
            print(f"model      {result['model_path']}")
    return 0


def run_evaluate_cli(args: argparse.Namespace) -> int:
    """Run ``reid-lab evaluate``; returns the exit status."""
    from .. import engine
    from ..config import resolve
    from .inference import model_input_size
    from .model import load_reid_model
    from .supervised import evaluate

    device = engine.resolve_device(args.device)
    model = load_reid_model(args.checkpoint, arch=args.arch, img_size=tuple(args.size) if args.size else None)
    height, width = model_input_size(model)
    dataset_name = args.dataset or resolve("supervised", args.profile).dataset
    dataset = _dataset(dataset_name, args.profile, args.data_root, args.msmt_version)
    num_workers = args.num_workers if args.num_workers is not None else resolve("data", args.profile).num_workers
    metrics = evaluate(model.to(device), dataset, device, height=height, width=width, rerank=args.rerank,
                       num_workers=num_workers, progress=not args.no_progress)
    if args.json:
        print(json.dumps(metrics, indent=2, sort_keys=True))
    else:
        print(f"{args.checkpoint} on {dataset_name} ({args.profile})")
        for prefix, title in (("", "plain"), ("rerank_", "re-ranked")):
            if f"{prefix}mAP" in metrics:
                print(f"{title:10s} mAP {100 * metrics[prefix + 'mAP']:5.1f}  Rank-1 {100 * metrics[prefix + 'rank1']:5.1f}"
                      f"  Rank-5 {100 * metrics[prefix + 'rank5']:5.1f}  Rank-10 {100 * metrics[prefix + 'rank10']:5.1f}"
                      f"  mINP {100 * metrics[prefix + 'mINP']:5.1f}")
    return 0
