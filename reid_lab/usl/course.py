"""USL / UDA course runs: the multi-seed evidence notebooks 04 and 05 show, trained once and shipped (issue 22).

An ICS tiny ViT trains at ~40 images/s on one CPU thread, so the paired multi-seed runs behind notebook 04's and
05's claims take about an hour; the notebooks cannot train them live. This module runs them with the library's own
:func:`~reid_lab.usl.train_usl` / :func:`~reid_lab.usl.train_uda` and the profile's recipe (``config.py``, tiny
``usl``/``uda``), and writes one provenance record, ``reid_lab/assets/usl_course_<profile>.json``: command, device,
recipe, and per run and seed the start, the BN-only control (UDA), the end and the per-epoch history (clusters,
outliers, purity, ARI, loss, mAP). The seed-0 USL model from DINO+ICS ships too (float16), for notebook 04's t-SNE.

    python -m reid_lab.usl.course --profile tiny                       # every run, then ship (make course-usl)
    python -m reid_lab.usl.course --profile tiny --runs usl_dino_ics --seeds 1 --no-ship   # one part, one process

Runs (:data:`RUNS`), each resumable (a finished run is read back, never trained twice, so parts can run in
parallel processes and a final call assembles them):

* ``usl_dino_ics`` — USL on SynthMarket from the course DINO+ICS backbone: the claim of notebook 04;
* ``usl_random_ics`` — the same from random ICS weights: the contrast;
* ``usl_oracle_dino_ics`` — the same start with the true ids instead of DBSCAN: the loop's ceiling (a control);
* ``usl_good_start`` — from the supervised DINO+ICS SynthMarket model (41 % mAP): must end at or above its start;
* ``uda_market_to_msmt`` / ``uda_msmt_to_market`` — UDA of the ICS model in both directions; the SynthMSMT source
  is fine-tuned here with the tiny supervised recipe from the course DINO+ICS backbone (seed 0).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from .. import engine, paths
from ..config import resolve, to_dict

logger = logging.getLogger(__name__)

__all__ = ["RUNS", "CourseRun", "course_arch", "course_record", "course_table", "load_course", "main", "run_course_runs",
           "ship_usl_course", "shipped_usl_model", "train_or_load", "course_model", "ablation_table", "load_ablation",
           "ship_ablation", "course_report"]

SEEDS = (0, 1, 2)


def course_arch(profile: str) -> str:
    """The ICS variant of the profile's USL backbone (tiny: ``vit_tiny_ics``, full: ``vit_small_ics``)."""
    return resolve("usl", profile).arch.removesuffix("_ics") + "_ics"


@dataclass(frozen=True)
class CourseRun:
    """One course run: USL on ``target`` from ``init``, or UDA (``source`` set) from that source's model."""

    what: str
    target: str  # "market1501" | "msmt17"
    init: str  # "dino_ics" | "random_ics" | "supervised"
    seeds: tuple[int, ...] = SEEDS
    overrides: dict[str, Any] = field(default_factory=dict)
    source: str | None = None  # UDA: the source dataset

    @property
    def stage(self) -> str:
        return "uda" if self.source else "usl"


RUNS: dict[str, CourseRun] = {
    "usl_dino_ics": CourseRun("USL on SynthMarket from the course DINO+ICS backbone", "market1501", "dino_ics"),
    "usl_random_ics": CourseRun("USL on SynthMarket from random ICS weights (contrast)", "market1501", "random_ics",
                                seeds=(0,)),
    "usl_oracle_dino_ics": CourseRun("the same loop from DINO+ICS fed the true ids (control: the loop's ceiling)",
                                     "market1501", "dino_ics", seeds=(0,), overrides={"pseudo_labels": "oracle"}),
    "usl_good_start": CourseRun("USL on SynthMarket from the supervised DINO+ICS model (a good start)",
                                "market1501", "supervised", seeds=(0,)),
    "uda_market_to_msmt": CourseRun("UDA SynthMarket -> SynthMSMT, ViT+ICS", "msmt17", "supervised",
                                    source="market1501"),
    "uda_msmt_to_market": CourseRun("UDA SynthMSMT -> SynthMarket, ViT+ICS", "market1501", "supervised",
                                    source="msmt17"),
}


def _course_file(profile: str, assets: str | os.PathLike | None = None) -> Path:
    from ..tutorial import zoo

    return Path(assets or zoo.ASSETS) / f"usl_course_{profile}.json"


def load_course(profile: str, assets: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """The shipped course record of ``profile`` (``None`` when none is shipped, or during a dry run)."""
    from ..dryrun import active

    path = _course_file(profile, assets)
    if active() or not path.is_file():
        return None
    return json.loads(path.read_text())


def shipped_usl_model(profile: str, assets: str | os.PathLike | None = None) -> Path | None:
    """The shipped seed-0 USL model from DINO+ICS (a :class:`~reid_lab.usl.USLModel` checkpoint) or ``None``."""
    from ..dryrun import active
    from ..tutorial import zoo

    path = Path(assets or zoo.ASSETS) / f"usl_dino_ics_{profile}.pth"
    return None if active() or not path.is_file() else path


def course_model(record: dict[str, Any], profile: str, name: str = "usl_dino_ics") -> Path | None:
    """The trained model of run ``name`` behind ``record`` (:func:`train_or_load`): its lowest seed's ``model.pth``
    for a live run, the shipped seed-0 model (``usl_dino_ics`` only) for a shipped record; ``None`` if absent."""
    if record.get("source") == "trained":
        seeds = record["runs"].get(name, {}).get("seeds") or []
        path = Path(record["folder"]) / name / f"seed{min(seeds)}" / "model.pth" if seeds else None
        return path if path is not None and path.is_file() else None
    return shipped_usl_model(profile) if name == "usl_dino_ics" else None


def _source_model(profile: str, source: str, data: Any, output: Path, device: str,
                  run_root: str | os.PathLike | None = None) -> Path:
    """The supervised ICS model of ``source``: SynthMarket's is the course model (shipped, else notebook 03's run);
    SynthMSMT's is fine-tuned here with the profile's supervised recipe from the DINO+ICS backbone (seed 0)."""
    from .. import reid

    if source == "market1501":
        return _init_path(profile, "supervised", run_root)
    arch = course_arch(profile)
    folder = output / f"source_{source}_{arch}"
    if not (folder / "model.pth").is_file():
        cfg = resolve("supervised", profile, arch=arch, dataset=source, seed=0)
        logger.info("course: fine-tuning the %s source model (%s) in %s", source, arch, folder)
        reid.train(cfg, data[source], folder, device=device, pretrained=_init_path(profile, "dino_ics", run_root),
                   resume=True, progress=False)
    return folder / "model.pth"


def _init_path(profile: str, init: str, run_root: str | os.PathLike | None = None) -> Path | None:
    """``random_ics`` → None; ``dino_ics`` → the DINO+ICS backbone (shipped, else notebook 02's); ``supervised`` →
    the SynthMarket DINO+ICS fine-tune (shipped, else notebook 03's)."""
    from ..tutorial import zoo

    if init == "random_ics":
        return None
    if init == "dino_ics":
        return zoo.dino_backbone(profile, course_arch(profile), run_root)
    path = zoo.finetuned_model(profile, "dino_ics", run_root)
    if path is None:
        raise FileNotFoundError(f"no supervised DINO+ICS model for {profile!r}: run notebook 03 (or `make course`)")
    return path


def run_course_runs(profile: str, output: Path, device: str, names: list[str] | None = None,
                    seeds: list[int] | None = None, data_root: str | os.PathLike | None = None,
                    run_root: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None,
                    init_paths: dict[str, Any] | None = None, only_finished: bool = False,
                    exact_seeds: bool = False) -> dict[str, dict[int, dict[str, Any]]]:
    """Train (or read back) every requested run and seed; returns ``{name: {seed: summary}}`` (:func:`_summary`).

    ``seeds``: the seeds of each run's own (:attr:`CourseRun.seeds`) to run, or with ``exact_seeds`` exactly these
    for every run (a notebook's ``SEED``). ``overrides``: config overrides for every run; ``init_paths``:
    ``{"dino_ics" | "supervised": path}`` replaces where an initialisation is looked up (e.g. a notebook's own DINO
    run); ``only_finished`` reads back the runs that have finished (``summary.json``) and skips the others instead
    of training them. A run folder whose checkpoint holds other settings is trained afresh, not read back.
    """
    from ..tutorial.exercises import resumable
    from ..tutorial.profile import load_profile_data
    from .train import bn_only_transfer, train_uda, train_usl

    names = list(RUNS) if names is None else list(names)
    unknown = sorted(set(names) - set(RUNS))
    if unknown:
        raise ValueError(f"unknown course run(s) {unknown}; choose from {list(RUNS)}")
    loaded = load_profile_data(profile, data_root, progress=False)
    data = {"market1501": loaded.market, "msmt17": loaded.msmt}
    results: dict[str, dict[int, dict[str, Any]]] = {}
    for name in names:
        run = RUNS[name]
        for seed in run.seeds if seeds is None else [s for s in seeds if exact_seeds or s in run.seeds]:
            folder = output / name / f"seed{seed}"
            cfg = resolve(run.stage, profile, **{"arch": course_arch(profile), "dataset": run.target, "seed": seed, **run.overrides,
                                                 **({"source_dataset": run.source} if run.source else {}),
                                                 **(overrides or {})})
            began = time.perf_counter()
            summary_path = folder / "summary.json"
            fresh = not resumable(folder, cfg)  # another recipe in this folder: its summary is not this run's
            done = json.loads(summary_path.read_text()) if summary_path.is_file() and not fresh else {}
            if only_finished and not done:
                logger.warning("course %s seed %d has not finished: left out", name, seed)
                continue
            if run.source:
                source = (init_paths or {}).get("supervised") if run.source == "market1501" else None
                source = source or _source_model(profile, run.source, data, output, device, run_root)
                result = train_uda(cfg, data[run.target], source, folder, device=device, show_progress=False,
                                   resume=not fresh)
                bn_only = result.bn_adapted or done.get("bn_only") or bn_only_transfer(cfg, data[run.target], source,
                                                                                        device=device)
            else:
                init = (init_paths or {}).get(run.init) or _init_path(profile, run.init, run_root)
                result = train_usl(cfg, data[run.target], folder, init=init, device=device, show_progress=False,
                                   resume=not fresh)
                bn_only = {}
            minutes = (time.perf_counter() - began) / 60
            summary = _summary(result, bn_only, to_dict(cfg))
            minutes = done.get("minutes", minutes)  # read back: keep the minutes of the run that trained
            summary["minutes"] = round(minutes, 1)
            summary_path.write_text(json.dumps(summary, indent=1))
            results.setdefault(name, {})[seed] = summary
            logger.info("course %s seed %d: mAP %.1f -> %.1f (%.1f min)", name, seed, 100 * summary["start"]["mAP"],
                        100 * summary["end"]["mAP"], minutes)
    return results


def _summary(result: Any, bn_only: dict[str, float], config: dict[str, Any]) -> dict[str, Any]:
    keys = ("epoch", "num_clusters", "num_outliers", "outlier_fraction", "purity", "ari", "nmi", "loss", "mAP", "rank1",
            "seconds")
    return {"config": config, "start": result.initial, "bn_only": bn_only, "end": result.final,
            "history": [{k: r.get(k) for k in keys} for r in result.history]}


def _stats(values: list[float]) -> dict[str, float]:
    mean = statistics.mean(values)
    return {"mean": mean, "sd": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)}


def course_record(results: dict[str, dict[int, dict[str, Any]]]) -> dict[str, Any]:
    """Per run: what it is, the per-seed summaries and the paired statistics (mAP end − start, end − BN-only)."""
    record: dict[str, Any] = {}
    for name, by_seed in results.items():
        seeds = sorted(by_seed)
        rows = [by_seed[s] for s in seeds]
        entry = {"what": RUNS[name].what, "seeds": seeds, "runs": {str(s): by_seed[s] for s in seeds},
                 "start_mAP": _stats([r["start"]["mAP"] for r in rows]),
                 "end_mAP": _stats([r["end"]["mAP"] for r in rows]),
                 "gain_mAP": _stats([r["end"]["mAP"] - r["start"]["mAP"] for r in rows])}
        purity = [[h["purity"] for h in r["history"]] for r in rows]
        if all(p and p[0] is not None and p[-1] is not None for p in purity):
            entry["first_purity"] = _stats([p[0] for p in purity])
            entry["last_purity"] = _stats([p[-1] for p in purity])
        if all(r["bn_only"] for r in rows):
            entry["bn_only_mAP"] = _stats([r["bn_only"]["mAP"] for r in rows])
            entry["gain_over_bn_only"] = _stats([r["end"]["mAP"] - r["bn_only"]["mAP"] for r in rows])
        record[name] = entry
    return record


def _pm(stat: dict[str, float] | None, signed: bool = False) -> str:
    if stat is None:
        return "–"
    sign = "+" if signed else ""
    return f"{100 * stat['mean']:{sign}.1f} ± {100 * stat['sd']:.1f}" if stat["n"] > 1 else \
        f"{100 * stat['mean']:{sign}.1f}"


def course_table(record: dict[str, Any], names: list[str] | None = None) -> str:
    """Markdown: per run, seeds, mAP start → end (mean ± sd), paired gain, BN-only (UDA), purity first → last."""
    lines = ["| run | seeds | start mAP | BN-only mAP | end mAP | end − start (paired) | end − BN-only | "
             "purity first → last |", "|---|---|---|---|---|---|---|---|"]
    for name in names or list(record["runs"]):
        e = record["runs"].get(name)
        if e is None:
            continue
        purity = (f"{100 * e['first_purity']['mean']:.0f} → {100 * e['last_purity']['mean']:.0f} %"
                  if "first_purity" in e else "–")
        lines.append(f"| {e['what']} | {len(e['seeds'])} | {_pm(e['start_mAP'])} | {_pm(e.get('bn_only_mAP'))} | "
                     f"{_pm(e['end_mAP'])} | {_pm(e['gain_mAP'], True)} | {_pm(e.get('gain_over_bn_only'), True)} | "
                     f"{purity} |")
    return "\n".join(lines)


def ship_usl_course(profile: str, output: Path, results: dict[str, dict[int, dict[str, Any]]], *, command: str,
                    device: str, assets: str | os.PathLike | None = None) -> list[Path]:
    """Write the course record (and the seed-0 USL model from DINO+ICS, float16) into the assets."""
    from ..tutorial import zoo

    shipped = []
    record = {"command": command, "device": device, "torch": torch.__version__, "machine": platform.machine(),
              "made": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "recipe": {stage: to_dict(resolve(stage, profile)) for stage in ("usl", "uda")},
              "runs": course_record(results)}
    model = output / "usl_dino_ics" / "seed0" / "model.pth"
    if model.is_file():
        target = Path(assets or zoo.ASSETS) / f"usl_dino_ics_{profile}.pth"
        shipped.append(zoo._ship(model, target, {k: record[k] for k in ("command", "device", "torch", "made")}
                                 | {"what": RUNS["usl_dino_ics"].what + " (seed 0)",
                                    "summary": results["usl_dino_ics"][0]}, course_arch(profile)))
    path = _course_file(profile, assets)
    path.write_text(json.dumps(record, indent=1) + "\n")
    shipped.append(path)
    return shipped


def _ablation_file(profile: str, assets: str | os.PathLike | None = None) -> Path:
    from ..tutorial import zoo

    return Path(assets or zoo.ASSETS) / f"usl_ablation_{profile}.json"


def ship_ablation(sources: list[str | os.PathLike], profile: str, *, command: str,
                  assets: str | os.PathLike | None = None) -> Path:
    """Merge ``benchmarks/usl_recipe.py`` result files (``{"init/variant/seed": run}``) into the assets' ablation
    record, with the command that made them."""
    runs: dict[str, Any] = {}
    for source in sources:
        runs.update(json.loads(Path(source).read_text()))
    record = {"command": command, "made": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "profile_usl": to_dict(resolve("usl", profile)), "runs": runs}
    path = _ablation_file(profile, assets)
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def load_ablation(profile: str, assets: str | os.PathLike | None = None) -> dict[str, Any] | None:
    """The shipped recipe ablation of ``profile`` (``None`` when none is shipped)."""
    path = _ablation_file(profile, assets)
    return json.loads(path.read_text()) if path.is_file() else None


def ablation_table(record: dict[str, Any]) -> str:
    """Markdown: one row per (start, variant): how its config differs from the profile's recipe at shipping time
    (``profile_usl``), seeds, mAP start → after each epoch, purity per epoch."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for key, run in record["runs"].items():
        init, variant, _seed = key.split("/")
        groups.setdefault(f"{init} / {variant}", []).append(run)
    lines = ["| start / variant | differences from today's tiny recipe | seeds | mAP start → after each epoch (%) | "
             "end − start | purity per epoch (%) |", "|---|---|---|---|---|---|"]
    for name, rows in groups.items():
        epochs = [[h.get("mAP") for h in r["history"]] for r in rows]
        per_epoch = " → ".join("–" if any(e[i] is None for e in epochs) else
                               f"{100 * statistics.mean(e[i] for e in epochs):.1f}" for i in range(len(epochs[0])))
        gain = _stats([r["final"]["mAP"] - r["initial"]["mAP"] for r in rows])
        purity = " → ".join(f"{100 * statistics.mean((r['history'][i].get('purity') or 0) for r in rows):.0f}"
                            for i in range(len(rows[0]["history"])))
        full, now = rows[0].get("cfg"), record.get("profile_usl", {})
        changed = ({k: v for k, v in full.items() if k not in ("seed", "arch") and now.get(k) != v} if full
                   else rows[0]["config"])
        overrides = ", ".join(f"{k}={v}" for k, v in changed.items()) or "(the recipe itself)"
        lines.append(f"| {name} | {overrides} | {len(rows)} | "
                     f"{100 * statistics.mean(r['initial']['mAP'] for r in rows):.1f} → {per_epoch} | "
                     f"{_pm(gain, True)} | {purity} |")
    return "\n".join(lines)


def train_or_load(profile: str, folder: str | os.PathLike, device: str, *, names: list[str] | None = None,
                  seeds: list[int] | None = None, force_retrain: bool = False, data_root: str | os.PathLike | None = None,
                  run_root: str | os.PathLike | None = None, overrides: dict[str, Any] | None = None,
                  init_paths: dict[str, Any] | None = None) -> dict[str, Any]:
    """The course record for the notebooks: the shipped one (``source`` = ``"shipped"``), or — without one, or with
    ``force_retrain`` — the requested runs trained (or resumed) in ``folder`` now (``source`` = ``"trained"``).

    ``names``/``seeds`` choose what trains live (default: every run, every seed of its own; given seeds run for
    every named run); ``overrides`` are config overrides for live runs (e.g. a notebook's ``RECIPE``). The shipped
    record is used only when it holds what is asked: every named run with every given seed, and ``overrides`` that
    leave the profile's recipe unchanged — otherwise the runs train live, with a warning saying why (a notebook's
    ``SEED`` or knob is never answered by the shipped runs of other settings). The record has
    :func:`course_record`'s ``runs`` and the ``recipe``.
    """
    shipped = None if force_retrain else load_course(profile)
    missing = _not_in_record(shipped, profile, names, seeds, overrides) if shipped is not None else None
    if missing:
        logger.warning("the shipped %s course record does not hold %s: training live in %s", profile, missing, folder)
        shipped = None
    if shipped is not None:
        return {**shipped, "source": "shipped"}
    results = run_course_runs(profile, Path(folder), device, names, seeds, data_root, run_root, overrides, init_paths,
                              exact_seeds=seeds is not None)
    return {"runs": course_record(results), "source": "trained", "folder": str(folder),
            "recipe": {stage: to_dict(resolve(stage, profile, **(overrides or {}))) for stage in ("usl", "uda")}}


def _not_in_record(record: dict[str, Any], profile: str, names: list[str] | None, seeds: list[int] | None,
                   overrides: dict[str, Any] | None) -> str | None:
    """What of a request the shipped ``record`` lacks (``None``: it holds everything asked)."""
    for stage in sorted({RUNS[n].stage for n in (names or list(RUNS)) if n in RUNS}):
        asked = {k: v for k, v in (overrides or {}).items() if k in to_dict(resolve(stage, profile))}
        changed = {k: v for k, v in asked.items() if getattr(resolve(stage, profile, **asked), k)
                   != getattr(resolve(stage, profile), k)}
        if changed:
            return f"runs with {', '.join(f'{k}={v!r}' for k, v in changed.items())} (the shipped runs use the {stage} recipe)"
    for name in names or ([] if seeds is None else list(RUNS)):
        held = [int(s) for s in record["runs"].get(name, {}).get("seeds", [])]
        lacking = [s for s in seeds or [] if s not in held]
        if not held or lacking:
            return (f"{name}" + (f" with seed(s) {', '.join(map(str, lacking))}" if lacking else "") +
                    f" (shipped seeds: {', '.join(map(str, held)) or 'none'})")
    return None


def course_report(record: dict[str, Any], ablation: dict[str, Any] | None = None) -> str:
    """The README's generated ``usl-course`` block: provenance, the course table and (when shipped) the ablation."""
    lines = [f"Generated by `{record.get('command', '?')}` on {record.get('made', '?')} ({record.get('device', '?')}). "
             "mAP (%) on the target's query/gallery, mean ± sd over seeds; differences paired by seed; purity of the "
             "pseudo-labels against the true ids (display only), first → last clustering.", "",
             course_table(record)]
    if ablation:
        lines += ["", f"Recipe ablation (`{ablation.get('command', '?')}`; USL on SynthMarket, mAP after each "
                  "epoch, purity per clustering):", "", ablation_table(ablation)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="tiny")
    p.add_argument("--output", type=Path, default=None, help="default: runs/course/<profile>/usl")
    p.add_argument("--device", default="cpu")
    p.add_argument("--runs", nargs="+", default=None, choices=sorted(RUNS))
    p.add_argument("--seeds", nargs="+", type=int, default=None)
    p.add_argument("--no-ship", action="store_true", help="train only (parallel parts); a final call ships")
    p.add_argument("--only-finished", action="store_true",
                   help="assemble what has finished (summary.json) instead of training the missing runs")
    p.add_argument("--update-readme", action="store_true",
                   help="with shipping: write the course table between the README's usl-course markers")
    p.add_argument("--ship-ablation", nargs="+", type=Path, default=None, metavar="JSON",
                   help="only merge these benchmarks/usl_recipe.py result files into the assets' ablation record")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.ship_ablation:
        command = "python -m reid_lab.usl.course " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
        print("shipped", ship_ablation(args.ship_ablation, args.profile, command=command))
        return 0
    output = args.output or paths.runs_root() / "course" / args.profile / "usl"
    device = str(engine.resolve_device(args.device))
    results = run_course_runs(args.profile, output, device, args.runs, args.seeds, only_finished=args.only_finished)
    print(course_table({"runs": course_record(results)}))
    if not args.no_ship:
        command = "python -m reid_lab.usl.course " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
        for path in ship_usl_course(args.profile, output, results, command=command, device=device):
            print("shipped", path)
        if args.update_readme:
            from ..tutorial.notebook import update_readme

            report = course_report(load_course(args.profile), load_ablation(args.profile))
            changed = update_readme(paths.repo_root() / "README.md", args.profile, report, block="usl-course")
            print("README usl-course block", "updated" if changed else "unchanged")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
