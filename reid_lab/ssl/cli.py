"""``reid-lab pretrain``: DINO pre-training from the command line, one process or many under torchrun.

Examples::

    reid-lab pretrain --profile tiny --arch vit_tiny_ics                  # synthetic pool, generated on first use
    reid-lab pretrain --profile tiny --arch vit_tiny_ics --probe profile  # + frozen k-NN on SynthMarket every 50 steps
    reid-lab pretrain --profile full --arch vit_small_ics --data data/LUP --cfs-list data/LUP/CFS_list.pkl \\
        --output runs/full/dino_vit_small_ics
    torchrun --nproc_per_node 8 -m reid_lab pretrain --profile full --arch vit_small_ics --data data/LUP ... --resume

The full profile follows the official scripts (docs/reference.md §2.7): 100 epochs, global batch 512, 60 % CFS keep ratio.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..cli import add_dry_run
from ..config import PROFILES, parse_overrides

logger = logging.getLogger(__name__)


def add_pretrain_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register the ``pretrain`` sub-command (called by :func:`reid_lab.cli.build_parser`)."""
    p = subparsers.add_parser("pretrain", help="DINO self-supervised pre-training (torchrun-ready)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", choices=PROFILES, default="tiny", help="config profile (default: tiny)")
    p.add_argument("--arch", default=None, help="backbone, e.g. vit_small_ics (default: the profile's)")
    p.add_argument("--data", default=None,
                   help="LUPerson-style folder holding images/ (default: the profile's pool; synthetic profiles "
                        "generate it on first use)")
    p.add_argument("--data-root", default=None,
                   help="data root for the default pool (default: $REID_LAB_DATA or data/)")
    p.add_argument("--output", default=None, help="output folder (default: runs/<profile>/pretrain_<arch>)")
    p.add_argument("--resume", nargs="?", const=True, default=False, metavar="CHECKPOINT",
                   help="continue from <output>/checkpoint.pth, or from CHECKPOINT")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="global batch (split over processes)")
    p.add_argument("--base-lr", type=float, default=None, help="lr for batch 256 (linearly scaled)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--cfs-list", default=None, help="CFS ranked list (.pkl or .txt); default <data>/CFS_list.pkl")
    p.add_argument("--keep-ratio", default=None, help="fraction of the ranked list kept, or 'none' for the whole pool")
    p.add_argument("--keep-num", type=int, default=None, help="number of ranked images kept (overrides --keep-ratio)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any other PretrainConfig field, e.g. --set out_dim=4096 (repeatable)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (torchrun: cuda:LOCAL_RANK)")
    p.add_argument("--amp", choices=("auto", "bf16", "fp16", "none"), default="auto",
                   help="mixed precision (auto: bf16 on CUDA, fp32 on CPU)")
    p.add_argument("--compile", action="store_true", help="torch.compile the backbones")
    p.add_argument("--num-workers", type=int, default=None, help="DataLoader workers per process (default: profile's)")
    p.add_argument("--jitter-strength", type=float, default=None,
                   help="colour-jitter scale (1.0 = official; default: the profile's)")
    p.add_argument("--probe", default=None, metavar="MARKET_ROOT",
                   help="health probe: frozen k-NN of the teacher on a Market-1501-format folder's test split "
                        "every --probe-every steps, logged in steps.jsonl ('profile': the profile's SynthMarket)")
    p.add_argument("--probe-every", type=int, default=50, help="steps between probes (default 50)")
    p.add_argument("--probe-ids", type=int, default=75, help="query identities the probe keeps (default 75)")
    p.add_argument("--no-collapse-check", action="store_true", help="train on even if the teacher collapses")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_dry_run(p)
    p.set_defaults(func=run_pretrain_cli)
    return p


def _default_pool(profile: str, data_root: str | None) -> Path:
    from .. import paths
    from ..config import resolve

    data_cfg = resolve("data", profile)
    if data_cfg.synthetic:
        from ..data.synthetic import generate_worlds

        return Path(generate_worlds(profile, paths.synthetic_root(profile, data_root))["luperson"])
    return paths.data_root(data_root) / data_cfg.luperson_dir


def _probe(args: argparse.Namespace, cfg):
    from ..data import Market1501
    from .monitor import KNNProbe

    if args.probe == "profile":
        from ..tutorial.profile import load_profile_data

        market = load_profile_data(args.profile, args.data_root).market
    else:
        market = Market1501(args.probe)
    return KNNProbe(market, cfg.global_size, num_ids=args.probe_ids)


def run_pretrain_cli(args: argparse.Namespace) -> int:
    """Run ``reid-lab pretrain`` with parsed ``args``; returns the exit status."""
    from .. import dryrun, engine, paths
    from ..config import resolve
    from .train import pretrain

    overrides = parse_overrides(args.set)
    for name, value in (("arch", args.arch), ("epochs", args.epochs), ("batch_size", args.batch_size),
                        ("base_lr", args.base_lr), ("seed", args.seed), ("keep_num", args.keep_num),
                        ("jitter_strength", args.jitter_strength)):
        if value is not None:  # every flag goes through the config: it is what the checkpoint records
            overrides[name] = value
    if args.keep_ratio is not None:
        overrides["keep_ratio"] = None if str(args.keep_ratio).lower() == "none" else float(args.keep_ratio)
    dryrun.activate(args.dry_run, "pretrain", args.profile, overrides)
    cfg = resolve("pretrain", args.profile, **overrides)
    num_workers = args.num_workers if args.num_workers is not None else resolve("data", args.profile).num_workers

    info, device = engine.init_distributed(args.device)
    try:
        data = Path(args.data) if args.data else _default_pool(args.profile, args.data_root)
        probe = _probe(args, cfg) if args.probe else None
        output = Path(args.output) if args.output else paths.runs_root() / args.profile / f"pretrain_{cfg.arch}"
        result = pretrain(cfg, data, output, device=device, resume=args.resume, num_workers=num_workers,
                          amp=args.amp, compile=args.compile, collapse_check=not args.no_collapse_check,
                          progress=not args.no_progress, ranked_list=args.cfs_list, probe=probe,
                          probe_every=args.probe_every)
    finally:
        engine.cleanup_distributed()
    if info.is_main:
        last = result.history[-1] if result.history else {}
        print(f"pre-trained {cfg.arch} for {result.epochs_done}/{cfg.epochs} epochs "
              f"(final loss {last.get('loss', float('nan')):.4f}, ln K {last.get('ln_out_dim', float('nan')):.3f})")
        print(f"checkpoint       {result.checkpoint}")
        if result.backbone_path:
            print(f"teacher backbone {result.backbone_path}  (reid_lab.models.load_pretrained)")
    return 0


__all__ = ["add_pretrain_parser", "run_pretrain_cli"]
