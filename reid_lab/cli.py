"""The ``reid-lab`` command line. Sub-commands import their heavy modules lazily, so ``--help`` is instant.

Every sub-command runs through :func:`run_command`: expected failures (config, checkpoint and data errors, a
locked run directory, NaN/collapse guards, Ctrl-C) print one ``error:`` line plus a hint and exit non-zero;
``--debug`` shows the traceback instead.
"""
from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

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

    options = {"version": args.msmt_version} if args.dataset.lower() == "msmt17" else {}
    print(build_dataset(args.dataset, args.root, **options).summary())
    return 0


def _tutorial(args: argparse.Namespace) -> int:
    from . import paths
    from .tutorial.notebook import run_tutorial

    logging.getLogger("papermill").setLevel(logging.WARNING)  # one progress line per notebook is enough
    only = [*args.notebooks, *(n for n in (args.only or "").split(",") if n.strip())] or None
    readme = (args.readme or paths.repo_root() / "README.md") if args.update_readme else None
    run = run_tutorial(args.profile, only=only, notebook_dir=args.notebook_dir, force=args.force,
                       retrain=args.retrain, data_root=args.data_root or "", runs_root=args.runs_root or "",
                       seed=args.seed, device=args.device, timeout=args.timeout, readme=readme,
                       dry_run=args.dry_run)
    print(f"\n{run.table}\n\nresults table written to {run.results_path}")
    if run.readme_changed is not None:
        print(f"{readme}: results block {'updated' if run.readme_changed else 'already up to date'}")
    return 0


def _site(args: argparse.Namespace) -> int:
    from .tutorial.site import build_site

    index = build_site(args.profile, runs_root=args.runs_root or None, out=args.output or None)
    print(f"site written to {index.parent}\nopen {index.as_uri()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="reid-lab", description=__doc__)
    parser.add_argument("--version", action="version", version=f"reid_lab {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
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
    add_msmt_version(info)
    info.set_defaults(func=_info)

    tutorial = sub.add_parser("tutorial", help="run every notebook in order with papermill into runs/<profile>/",
                              description="Run the notebooks in order with papermill into runs/<profile>/<notebook>/ "
                                          "and write runs/<profile>/results.md. Notebooks whose results are current "
                                          "are skipped. Full profile: launch the training steps with torchrun "
                                          "first, see docs/full_profile.md.")
    tutorial.add_argument("--profile", choices=PROFILES, default="tiny")
    tutorial.add_argument("--force", action="store_true", help="re-run notebooks whose results are current")
    tutorial.add_argument("--retrain", action="store_true",
                          help="also pass FORCE_RETRAIN=True: retrain instead of loading finished checkpoints")
    tutorial.add_argument("--only", default=None, metavar="03,04", help="comma-separated notebooks to run")
    tutorial.add_argument("--device", default="auto")
    tutorial.add_argument("--seed", type=int, default=0)
    tutorial.add_argument("--data-root", default=None, help="data root (default: $REID_LAB_DATA or data/)")
    tutorial.add_argument("--runs-root", default=None, help="runs root (default: $REID_LAB_RUNS or runs/)")
    tutorial.add_argument("--notebook-dir", default=None, help="folder of NN_*.ipynb notebooks (default: notebooks/)")
    tutorial.add_argument("--timeout", type=int, default=None, help="seconds per cell (default: no limit)")
    tutorial.add_argument("--update-readme", action="store_true",
                          help="write the results table between the README's <!-- results:<profile>:start/end --> "
                               "markers (needs the whole tutorial)")
    tutorial.add_argument("--readme", default=None, help="README to update (default: the checkout's README.md)")
    add_dry_run(tutorial)
    tutorial.add_argument("notebooks", nargs="*", help="only these notebooks (numbers, names or paths; default: all)")
    tutorial.set_defaults(func=_tutorial)

    site = sub.add_parser("site", help="render the executed notebooks of runs/<profile>/ as a static HTML site",
                          description="Render the executed notebooks of runs/<profile>/ (make tutorial) with their "
                                      "outputs and figures into runs/site/<profile>/: one page per notebook and "
                                      "an index.html.")
    site.add_argument("--profile", choices=PROFILES, default="tiny")
    site.add_argument("--runs-root", default=None, help="runs root (default: $REID_LAB_RUNS or runs/)")
    site.add_argument("--output", default=None, help="site folder (default: <runs root>/site/<profile>)")
    site.set_defaults(func=_site)

    from .reid.cli import add_supervised_parsers  # the stages register their own sub-commands
    from .ssl.cli import add_pretrain_parser
    from .usl.cli import add_usl_parsers

    add_pretrain_parser(sub)
    add_supervised_parsers(sub)
    add_usl_parsers(sub)
    for command in sub.choices.values():
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show the full traceback of an error instead of one line")
    return parser


def add_dry_run(parser: argparse.ArgumentParser) -> None:
    """``--dry-run N`` for the training sub-commands and ``tutorial`` (:mod:`reid_lab.dryrun`)."""
    parser.add_argument("--dry-run", type=int, default=0, metavar="N",
                        help="fast dev run: the profile's code path with every loop capped at N iterations, 1-2 "
                             "epochs, a few identities; outputs are marked dry_run and never reused by a real run")


def add_msmt_version(parser: argparse.ArgumentParser) -> None:
    """``--msmt-version auto|v1|v2`` for the sub-commands that read MSMT17 (``info``, ``train``, ``usl`` …)."""
    parser.add_argument("--msmt-version", choices=("auto", "v1", "v2"), default="auto",
                        help="MSMT17 release where a folder holds both (the paper's numbers are on V1)")


def _error_kinds() -> list[tuple[tuple[type[BaseException], ...], int, str]]:
    """(exception classes, exit status, hint) for the failures a user can fix, most specific first."""
    from .config import ConfigError
    from .data import DatasetError
    from .engine import CheckpointError, NonFiniteLossError
    from .tutorial.notebook import NotebookFailed
    from .runlock import RunLockedError
    from .ssl.monitor import CollapseError

    return [
        ((KeyboardInterrupt,), 130, "the last finished epoch's checkpoint is intact: continue with --resume"),
        ((RunLockedError,), 2, "each run needs its own --output folder"),
        ((ConfigError,), 2, "check the flags and --set KEY=VALUE values (fields and defaults: reid_lab/config.py)"),
        ((CheckpointError,), 2, "check the checkpoint path; copy or download it again, or use an earlier one"),
        ((DatasetError,), 2, "check --data-root / --root and the dataset layout (README, docs/reference.md §7)"),
        ((NonFiniteLossError, CollapseError), 2, "resume from the last checkpoint with a lower learning rate"),
        ((NotebookFailed,), 1, "open the executed notebook named above to see the failing cell"),
        ((ValueError, FileNotFoundError, NotADirectoryError, PermissionError), 2, ""),
    ]


def _one_line(error: BaseException) -> str:
    """The message of ``error``; for an error re-raised from a DataLoader worker, the original message only."""
    if isinstance(error, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    if "Original Traceback" in str(text):  # torch's ExceptionWrapper: the worker's traceback, message last
        text = [line for line in str(text).splitlines() if line.strip()][-1]
    return str(text) or type(error).__name__


def run_command(func: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run a sub-command; report expected failures as one ``error:`` line plus a hint (tracebacks with --debug)."""
    try:
        return int(func(args) or 0)
    except (Exception, KeyboardInterrupt) as error:
        if getattr(args, "debug", False):
            raise
        for kinds, status, hint in _error_kinds():
            if isinstance(error, kinds):
                print(f"error: {_one_line(error)}", file=sys.stderr)
                if hint:
                    print(f"hint: {hint} (--debug shows the traceback)", file=sys.stderr)
                return status
        raise


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    return run_command(args.func, args)


if __name__ == "__main__":
    raise SystemExit(main())
