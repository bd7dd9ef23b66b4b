"""``reid-lab usl`` and ``reid-lab uda``: Cluster-Contrast unsupervised and domain-adaptive ReID (docs/reference.md §5).

Examples::

    reid-lab usl --profile tiny --dataset market1501 --init runs/tiny/02_dino_ics_pretraining/dino_vit_tiny/teacher_backbone.pth
    reid-lab usl --profile full --dataset market1501 --arch vit_small_ics --init model/vit_small_ics_cfs_lup.pth
    reid-lab uda --profile full --dataset market1501 --arch vit_small --source-checkpoint runs/full/train_msmt17_vit_small/model.pth
    torchrun --nproc_per_node 4 -m reid_lab usl --profile full --dataset market1501 --init model/vit_small_cfs_lup.pth

Full-profile defaults are the Market scripts (eps 0.6, 4-GPU BN chunks). With ``--dataset msmt17`` and the full
profile the MSMT scripts' values apply unless given explicitly: eps 0.7, bn_chunks 2 (2 GPUs), eval_step 50
(docs/reference.md §5.6).
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..cli import add_dry_run, add_msmt_version
from ..config import PROFILES, parse_overrides

logger = logging.getLogger(__name__)

__all__ = ["add_usl_parsers", "run_usl_cli", "run_uda_cli"]

DATASETS = ("market1501", "msmt17")
MSMT_SCRIPT_VALUES = {"eps": 0.7, "bn_chunks": 2, "eval_step": 50}  # msmt_usl.sh / msmt_uda.sh (docs/reference.md §5.6)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=PROFILES, default="tiny", help="config profile (default: tiny)")
    p.add_argument("--dataset", choices=DATASETS, default=None, help="(target) dataset (default: the profile's)")
    p.add_argument("--data-root", default=None, help="data root (default: $REID_LAB_DATA or data/)")
    add_msmt_version(p)
    p.add_argument("--arch", default=None, help="backbone, e.g. vit_small_ics (default: the profile's)")
    p.add_argument("--output", default=None, help="output folder (default: runs/<profile>/<usl|uda>_<dataset>_<arch>)")
    p.add_argument("--resume", action="store_true", help="continue from <output>/checkpoint.pth if it exists")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--eps", type=float, default=None, help="DBSCAN eps (Market 0.6, MSMT 0.7)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other USLConfig field, e.g. --set bn_chunks=2 (repeatable)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (torchrun: cuda:LOCAL_RANK)")
    p.add_argument("--amp", choices=("auto", "bf16", "fp16", "none"), default="auto",
                   help="mixed precision (auto: bf16 on CUDA, fp32 on CPU)")
    p.add_argument("--num-workers", type=int, default=None, help="DataLoader workers per process (default: profile's)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_dry_run(p)


def add_usl_parsers(subparsers: argparse._SubParsersAction) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """Register ``usl`` and ``uda`` (called by :func:`reid_lab.cli.build_parser`)."""
    u = subparsers.add_parser("usl", help="unsupervised ReID with Cluster Contrast (torchrun-ready)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(u)
    u.add_argument("--init", default=None,
                   help="starting weights: DINO checkpoint.pth / teacher backbone, a released backbone, ... "
                        "(default: random init)")
    u.set_defaults(func=run_usl_cli)
    d = subparsers.add_parser("uda", help="domain adaptation = USL on the target from a source-supervised model",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common(d)
    d.add_argument("--source-checkpoint", required=True,
                   help="the supervised model fine-tuned on the source dataset (reid-lab train's model.pth, or an "
                        "official transformer_120.pth)")
    d.add_argument("--source-dataset", default=None, help="name of the source dataset, for the record")
    d.set_defaults(func=run_uda_cli)
    return u, d


def _config(stage: str, args: argparse.Namespace):
    from ..config import resolve

    overrides = parse_overrides(args.set)
    for name, value in (("arch", args.arch), ("epochs", args.epochs), ("eps", args.eps), ("seed", args.seed),
                        ("dataset", args.dataset), ("source_dataset", getattr(args, "source_dataset", None))):
        if value is not None:
            overrides[name] = value
    dataset = overrides.get("dataset", resolve(stage, args.profile).dataset)
    if dataset == "msmt17" and args.profile == "full":
        implied = {k: v for k, v in MSMT_SCRIPT_VALUES.items() if k not in overrides}
        if implied:
            logger.info("MSMT17 (full profile): using the MSMT scripts' %s", implied)
            overrides.update(implied)
    from ..dryrun import activate

    activate(args.dry_run, stage, args.profile, overrides)
    cfg = resolve(stage, args.profile, **overrides)
    if cfg.dataset not in DATASETS:
        raise SystemExit(f"error: dataset must be one of {DATASETS}, got {cfg.dataset!r}")
    return cfg


def _run(stage: str, args: argparse.Namespace) -> int:
    from .. import engine, paths
    from ..config import resolve
    from ..tutorial.profile import load_profile_data
    from .train import train_uda, train_usl

    cfg = _config(stage, args)
    num_workers = args.num_workers if args.num_workers is not None else resolve("data", args.profile).num_workers
    info, device = engine.init_distributed(args.device)
    try:
        data = load_profile_data(args.profile, args.data_root, progress=not args.no_progress,
                                 msmt_version=args.msmt_version)
        dataset = data.market if cfg.dataset == "market1501" else data.msmt
        output = (Path(args.output) if args.output
                  else paths.runs_root() / args.profile / f"{stage}_{cfg.dataset}_{cfg.arch}")
        common = dict(device=device, amp=args.amp, resume=args.resume, show_progress=not args.no_progress,
                      num_workers=num_workers)
        if stage == "uda":
            result = train_uda(cfg, dataset, args.source_checkpoint, output, **common)
        else:
            result = train_usl(cfg, dataset, output, init=args.init, **common)
    finally:
        engine.cleanup_distributed()
    if info.is_main:
        last = result.history[-1] if result.history else {}
        print(f"{stage.upper()} {cfg.arch} on {cfg.dataset}: {result.epochs_done}/{cfg.epochs} epochs, "
              f"last epoch {last.get('num_clusters', 0)} clusters")
        for title, m in (("start", result.initial), ("final", result.final)):
            if m:
                print(f"{title:6s} mAP {100 * m['mAP']:.1f}  Rank-1 {100 * m['rank1']:.1f}  mINP {100 * m['mINP']:.1f}")
        print(f"checkpoint {result.checkpoint}")
        if result.model_path:
            print(f"model      {result.model_path}")
    return 0


def run_usl_cli(args: argparse.Namespace) -> int:
    """Run ``reid-lab usl``; returns the exit status."""
    return _run("usl", args)


def run_uda_cli(args: argparse.Namespace) -> int:
    """Run ``reid-lab uda``; returns the exit status."""
    return _run("uda", args)
