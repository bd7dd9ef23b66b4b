"""The ``reid-lab`` command line. Sub-commands import their heavy modules lazily, so ``--help`` is instant."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import __version__
from .config import PROFILES


def _synth(args: argparse.Namespace) -> int:
    from .data.synthetic import generate_worlds

    worlds = generate_worlds(args.profile, args.root, force=args.force, workers=args.workers)
    for name, path in worlds.items():
        print(f"{name:12s} {path}")
    return 0


def _info(args: argparse.Namespace) -> int:
    from .data import build_dataset

    dataset = build_dataset(args.dataset, args.root)
    print(dataset.summary())
    return 0


def _tutorial(args: argparse.Namespace) -> int:
    from .notebook import NotebookFailed, results_table, run_notebooks
    from . import paths

    logging.getLogger("papermill").setLevel(logging.WARNING)  # one progress line per notebook is enough
    notebooks = [Path(n) for n in args.notebooks] if args.notebooks else None
    try:
        records = run_notebooks(args.profile, notebooks=notebooks, force=args.force, device=args.device)
    except NotebookFailed as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    table = results_table(records)
    out = paths.runs_root() / args.profile / "results.md"
    out.write_text(f"# reid_lab tutorial results ({args.profile} profile)\n\n{table}\n")
    print(table)
    print(f"\nresults table written to {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reid-lab", description=__doc__)
    parser.add_argument("--version", action="version", version=f"reid_lab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser("synth", help="generate the synthetic ReID worlds (SynthMarket, SynthMSMT, SynthLUP)")
    synth.add_argument("--profile", choices=PROFILES[:2], default="tiny")
    synth.add_argument("--root", default=None, help="output folder (default: data/synthetic/<profile>)")
    synth.add_argument("--force", action="store_true", help="regenerate even if the worlds exist")
    synth.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores)")
    synth.set_defaults(func=_synth)

    info = sub.add_parser("info", help="print the statistics of a dataset folder")
    info.add_argument("--dataset", required=True, help="market1501, msmt17 or custom")
    info.add_argument("--root", required=True, help="dataset folder")
    info.set_defaults(func=_info)

    tutorial = sub.add_parser("tutorial", help="run every notebook in order with papermill into runs/<profile>/")
    tutorial.add_argument("--profile", choices=PROFILES, default="tiny")
    tutorial.add_argument("--force", action="store_true", help="re-run notebooks whose results are current")
    tutorial.add_argument("--device", default="auto")
    tutorial.add_argument("notebooks", nargs="*", help="only these notebooks (default: all)")
    tutorial.set_defaults(func=_tutorial)

    try:  # later stages register their own sub-commands
        from .ssl.cli import add_pretrain_parser
    except ImportError:
        pass
    else:
        add_pretrain_parser(sub)
    try:
        from .reid.cli import add_supervised_parsers
    except ImportError:
        pass
    else:
        add_supervised_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
