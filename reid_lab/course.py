"""Course checkpoints: longer DINO runs, their controls and the study that measures them (issue #11).

The tiny notebooks "train or load" (the UvA deep-learning notebooks' pattern): a notebook cell may spend a few
minutes, DINO needs more, so this module pre-trains the tiny backbones longer with the project's own code, measures
what each buys after fine-tuning (paired seeds), and ships the results in ``reid_lab/assets/`` as float16 files with
their provenance (command, config, seed, per-epoch log, the study, device, minutes, sha256). ``make course``
rebuilds everything from scratch; with ``--device cuda`` the same command runs on a GPU.

    python -m reid_lab.course --profile tiny                               # all stages (make course)
    python -m reid_lab.course --profile tiny --stage study --inits DINO+ICS --seeds 0 1 2   # one part, one process

Stages, each resumable (a finished run is loaded, never trained twice — so parts can run in parallel processes
and a final call assembles them):

1. ``pretrain`` — DINO of ``vit_tiny_ics`` and ``vit_tiny`` with the profile's recipe (``config.py``, tiny
   ``pretrain``) over the whole unlabelled pool;
2. ``study`` — the tiny supervised recipe on all SynthMarket training ids from each initialisation of
   :data:`INITS`, every seed, mAP / Rank-1 / mINP at every evaluation (:func:`reid.study.finetune_curves`).
   ``DINO+ICS permuted`` is the control that separates learned structure from weight statistics (issue 17): the
   course DINO backbone with every tensor's entries randomly permuted, one permutation per seed
   (:func:`models.permute_entries_`) — same per-tensor statistics, no learned structure;
3. ``ship`` — frozen k-NN of every initialisation, then the backbones and the seed-0 fine-tuned models into the
   assets with the provenance record.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch

from . import engine, paths
from .tutorial import zoo
from .config import resolve, to_dict

logger = logging.getLogger(__name__)

__all__ = ["INITS", "STUDY_NAME", "course_report", "permuted_backbone", "pretrain_backbones", "record_path", "run_course",
           "run_study", "ship_course", "write_record"]

# name → (ICS stem?, source): source None = random weights, "dino" = the course DINO backbone, "permuted" = the control
INITS: dict[str, tuple[bool, str | None]] = {
    "random": (False, None),
    "DINO": (False, "dino"),
    "random+ICS": (True, None),
    "DINO+ICS permuted": (True, "permuted"),
    "DINO+ICS": (True, "dino"),
}
CONTROL = "DINO+ICS permuted"
# the fine-tuned models shipped for the notebooks (their run-directory names, zoo.FINETUNED)
SHIPPED_FINETUNED = {"random": "random", "DINO": "dino", "random+ICS": "random_ics", "DINO+ICS": "dino_ics"}
STUDY_NAME = "course_study.json"
PROBE_EVERY, PROBE_IDS = 50, 75  # the pre-training health probe: every 50 steps, the first 75 SynthMarket test ids
SEEDS = (0, 1, 2)


def _arch(profile: str, ics: bool) -> str:
    plain = resolve("supervised", profile).arch.removesuffix("_ics")
    return plain + "_ics" if ics else plain


def _pool(profile: str, data_root: str | os.PathLike | None):
    from .data import LUPersonPool
    from .tutorial.profile import load_profile_data

    data = load_profile_data(profile, data_root)
    return data, LUPersonPool(data.pool_root)


def pretrain_backbones(profile: str, output: Path, device: str, data_root: str | os.PathLike | None = None,
                       archs: tuple[bool, ...] = (True, False)) -> dict[str, Any]:
    """Stage 1: DINO of the ICS and the plain backbone with the profile's recipe; returns ``{arch: PretrainResult}``."""
    from .ssl import KNNProbe, pretrain

    data, pool = _pool(profile, data_root)
    results = {}
    for ics in archs:
        arch = _arch(profile, ics)
        cfg = resolve("pretrain", profile, arch=arch, seed=0)
        probe = KNNProbe(data.market, cfg.global_size, num_ids=PROBE_IDS)
        logger.info("course: DINO %s, %d epochs over %d images; frozen k-NN of the teacher every %d steps on %d "
                    "SynthMarket test images", arch, cfg.epochs, len(pool), PROBE_EVERY, probe.num_images)
        results[arch] = pretrain(cfg, pool, output / f"dino_{arch}", device=device, resume=True, progress=False,
                                 probe=probe, probe_every=PROBE_EVERY)
    return results


def permuted_backbone(profile: str, seed: int, output: Path) -> Path:
    """The ``DINO+ICS permuted`` initialisation of ``seed``: the course DINO+ICS backbone with every tensor's entries
    randomly permuted with ``seed`` (:func:`models.permute_entries_`); written once to ``output/controls``."""
    from .models import build_backbone, load_pretrained, make_checkpoint, permute_entries_

    path = output / "controls" / f"dino_ics_permuted_seed{seed}.pth"
    if path.is_file():
        return path
    source = _dino_backbone(profile, output, ics=True)
    ckpt = engine.load_checkpoint(source, map_location="cpu")
    backbone = build_backbone(_arch(profile, True), img_size=tuple(ckpt["img_size"]))
    load_pretrained(backbone, source)
    permute_entries_(backbone, seed)
    engine.save_checkpoint(make_checkpoint(backbone, source="dino_permuted", seed=seed, permuted_from=str(source)),
                           path)
    return path


def _dino_backbone(profile: str, output: Path, ics: bool) -> Path:
    path = output / f"dino_{_arch(profile, ics)}" / "teacher_backbone.pth"
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run the pretrain stage first")
    return path


def _init_sources(profile: str, output: Path, names: list[str], seeds: list[int], device: str,
                  data_root: str | os.PathLike | None) -> dict[str, Any]:
    sources: dict[str, Any] = {}
    for name in names:
        ics, source = INITS[name]
        if source is None:
            sources[name] = None
        elif source == "dino":
            sources[name] = _dino_backbone(profile, output, ics)
        else:
            sources[name] = {s: permuted_backbone(profile, s, output) for s in seeds}
    return sources


def run_study(profile: str, output: Path, device: str, names: list[str] | None = None,
              seeds: list[int] | None = None, data_root: str | os.PathLike | None = None) -> dict[str, Any]:
    """Stage 2: the paired fine-tuning study; returns :func:`reid.study.finetune_curves`'s dict."""
    from .tutorial.profile import load_profile_data
    from .reid.study import finetune_curves

    names, seeds = names or list(INITS), list(seeds or SEEDS)
    unknown = sorted(set(names) - set(INITS))
    if unknown:
        raise ValueError(f"unknown initialisation(s) {unknown}; choose from {list(INITS)}")
    data = load_profile_data(profile, data_root)
    sources = _init_sources(profile, output, names, seeds, device, data_root)
    cfg = resolve("supervised", profile)
    return finetune_curves(sources, data.market, seeds=seeds, cfg=cfg, output_dir=output / "study",
                           archs={n: _arch(profile, INITS[n][0]) for n in names}, device=device)


def _frozen_knn(profile: str, output: Path, names: list[str], device: str,
                data_root: str | os.PathLike | None, random_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
                ) -> dict[str, dict[str, Any]]:
    """Frozen k-NN retrieval on the whole SynthMarket test split of every initialisation (seed 0 for the
    pre-trained ones, ``random_seeds`` for random weights, whose spread is the yardstick), at the fine-tuning size
    (the DINO position table resized, as a fine-tune loads it) and at the pre-training global-crop size."""
    from .models import build_backbone, load_pretrained
    from .ssl import evaluate_retrieval
    from .tutorial.profile import load_profile_data

    data = load_profile_data(profile, data_root)
    sup, pre = resolve("supervised", profile), resolve("pretrain", profile)
    sizes = {"": (sup.height, sup.width), "_pretrain_size": tuple(pre.global_size)}
    sources = _init_sources(profile, output, names, [0], device, data_root)
    knn: dict[str, dict[str, Any]] = {}
    for name in names:
        source = sources[name]
        source = source[0] if isinstance(source, dict) else source
        entry: dict[str, Any] = {}
        for suffix, size in sizes.items():
            values = []
            for seed in (random_seeds if source is None else (0,)):
                engine.seed_everything(seed)
                backbone = build_backbone(_arch(profile, INITS[name][0]), img_size=size)
                if source is not None:
                    load_pretrained(backbone, source)
                r = evaluate_retrieval(backbone, data.market, size, device)
                values.append((r.mAP, float(r.cmc[0])))
            entry[f"mAP{suffix}"], entry[f"rank1{suffix}"] = values[0]
            entry[f"mAP{suffix}_seeds"] = [v[0] for v in values]
            entry[f"size{suffix}"] = list(size)
        knn[name] = entry
    return knn


def _mean_sd(values: Any) -> tuple[float, float]:
    import numpy as np

    values = np.asarray(values, dtype=float) * 100
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def course_report(study: dict[str, Any], knn: dict[str, dict[str, float]], *, dino_log: list[dict[str, Any]] | None,
                  dino_minutes: float | None, pool_images: int, command: str, device: str,
                  reference: str = "random+ICS") -> str:
    """The README's generated course block: the study table (mAP per budget, paired differences to ``reference``),
    the final-budget metrics and frozen k-NN, and what they say — every number from ``study`` / ``knn``."""
    import numpy as np

    from .reid.study import summarize

    budgets, seeds = study["budgets"], study["seeds"]
    summary = summarize(study, reference)
    made = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    lines = []
    if dino_log:
        last = dino_log[-1]
        lines.append(f"Generated by `{command}` on {made} ({device}). DINO of the ICS backbone: {len(dino_log)} epochs "
                     f"over the {pool_images:,}-image SynthLUP pool"
                     + (f", {dino_minutes:.0f} min" if dino_minutes else "")
                     + f"; last epoch loss {last['loss']:.3f} (ln K {last['ln_out_dim']:.3f}), teacher "
                       f"entropy {last['teacher_entropy']:.2f}. ")
    else:
        lines.append(f"Generated by `{command}` on {made} ({device}). ")
    lines[-1] += (f"Then the tiny supervised recipe on all SynthMarket training ids from each initialisation, seeds "
                  f"{', '.join(map(str, seeds))}; a seed shares its training randomness across initialisations "
                  f"(paired). mAP (%), mean ± sd over seeds:")
    lines += ["", "| init | " + " | ".join(f"epoch {b}" for b in budgets) + " |", "|---" * (len(budgets) + 1) + "|"]
    for name, row in summary.items():
        lines.append(f"| {name} | " + " | ".join(f"{m:.1f} ± {d:.1f}" for m, d in zip(row["mean"], row["sd"])) + " |")
    for name in ("DINO+ICS", CONTROL):
        if name in summary and "diff_mean" in summary[name]:
            row = summary[name]
            lines.append(f"| {name} − {reference} (paired) | "
                         + " | ".join(f"{m:+.1f} ± {d:.1f}" for m, d in zip(row["diff_mean"], row["diff_sd"])) + " |")
    if "DINO" in study["curves"] and "random" in study["curves"]:
        row = summarize(study, "random")["DINO"]
        lines.append("| DINO − random (paired) | " + " | ".join(
            f"{m:+.1f} ± {d:.1f}" for m, d in zip(row["diff_mean"], row["diff_sd"])) + " |")
    lines += ["", f"After {budgets[-1]} epochs, mean ± sd over seeds (%), and the frozen backbone's k-NN retrieval "
                  "on the whole SynthMarket test split before any fine-tuning (random weights: mean ± sd over "
                  "their seeds; pre-trained: seed 0), at the fine-tuning size and at the pre-training crop size:", "",
              "| init | mAP | Rank-1 | mINP | frozen k-NN mAP | at the pre-training size |", "|---|---|---|---|---|---|"]

    def knn_cell(name: str, key: str) -> str:
        values = knn.get(name, {}).get(f"{key}_seeds")
        if not values:
            return ""
        m, d = _mean_sd(values)
        return f"{m:.1f} ± {d:.1f}" if len(values) > 1 else f"{m:.1f}"

    for name in study["curves"]:
        cells = [_mean_sd([per_seed[-1] for per_seed in study[key][name]]) for key in ("curves", "rank1", "mINP")]
        lines.append(f"| {name} | " + " | ".join(f"{m:.1f} ± {d:.1f}" for m, d in cells)
                     + f" | {knn_cell(name, 'mAP')} | {knn_cell(name, 'mAP_pretrain_size')} |")
    verdicts = []
    ref_sd = summary.get(reference, {}).get("sd", [0.0])[-1]
    if "DINO+ICS" in summary and reference in summary:
        row = summary["DINO+ICS"]
        gain, sd, wins = row["diff_mean"][-1], row["diff_sd"][-1], row["wins"]
        beyond = gain - 2 * sd > 0 and gain > ref_sd
        verdicts.append(f"DINO+ICS − {reference} after {budgets[-1]} epochs: {gain:+.1f} ± {sd:.1f} mAP, ahead in "
                        f"{wins} of {len(seeds)} seeds; {'beyond' if beyond else 'NOT beyond'} the seed spread "
                        f"(paired mean − 2 sd {gain - 2 * sd:+.1f}; {reference}'s own sd {ref_sd:.1f}).")
        if CONTROL in summary:
            perm = summary[CONTROL]["diff_mean"][-1]
            structure = summarize(study, CONTROL)["DINO+ICS"]
            share = perm / gain if gain > 0 else float("nan")
            verdicts.append(f"The permuted control (the DINO backbone's own entries in random order: same per-tensor "
                            f"statistics, no learned structure) − {reference}: {perm:+.1f} ± "
                            f"{summary[CONTROL]['diff_sd'][-1]:.1f} mAP"
                            + (f", {100 * share:.0f} % of the DINO gain" if np.isfinite(share) else "")
                            + f"; DINO+ICS − permuted: {structure['diff_mean'][-1]:+.1f} ± "
                              f"{structure['diff_sd'][-1]:.1f} (ahead in {structure['wins']} of {len(seeds)} seeds), "
                              "what the learned structure adds beyond the statistics.")
    verdicts += [knn_verdict(knn, key) for key in ("mAP", "mAP_pretrain_size")
                 if "DINO+ICS" in knn and knn.get(reference, {}).get(f"{key}_seeds")]
    if verdicts:
        lines += ["", " ".join(verdicts)]
    return "\n".join(lines)


def knn_verdict(knn: dict[str, dict[str, Any]], key: str = "mAP", reference: str = "random+ICS") -> str:
    """Is the DINO+ICS backbone's frozen k-NN above random ICS weights beyond their seed spread (mean + 2 sd)?"""
    mean, sd = _mean_sd(knn[reference][f"{key}_seeds"])
    dino = 100 * knn["DINO+ICS"][key]
    size = "x".join(map(str, knn["DINO+ICS"].get("size" + key.removeprefix("mAP"), [])))
    above = dino > mean + 2 * sd
    return (f"Frozen k-NN at {size}: DINO+ICS {dino:.1f} mAP against random ICS weights {mean:.1f} ± {sd:.1f} "
            f"({len(knn[reference][f'{key}_seeds'])} seeds): {'above' if above else 'NOT above'} their mean + 2 sd "
            f"({mean + 2 * sd:.1f}).")


def _iters_per_epoch(run: Path) -> int:
    return int(torch.load(run / "checkpoint.pth", map_location="cpu", weights_only=True)["iters_per_epoch"])


def probe_random_weights(profile: str, arch: str, data_root: str | os.PathLike | None = None,
                         seeds: tuple[int, ...] = (0, 1, 2, 3, 4)) -> list[float]:
    """The health probe's frozen k-NN mAP (%) of random ``arch`` weights, one value per seed: the yardstick of the
    course run's k-NN curve (same subset, same size, same evaluation)."""
    from .models import build_backbone
    from .ssl import KNNProbe
    from .tutorial.profile import load_profile_data

    cfg = resolve("pretrain", profile, arch=arch)
    probe = KNNProbe(load_profile_data(profile, data_root).market, cfg.global_size, num_ids=PROBE_IDS)
    values = []
    for seed in seeds:
        engine.seed_everything(seed)
        values.append(100 * probe(build_backbone(arch, img_size=cfg.global_size), "cpu")["mAP"])
    return values


def ship_course(profile: str, output: Path, study: dict[str, Any], knn: dict[str, Any], *, command: str,
                device: str, minutes: dict[str, float], report: str | None = None,
                data_root: str | os.PathLike | None = None) -> list[Path]:
    """Stage 3: backbones and seed-0 fine-tuned models into the assets, each with its provenance record."""
    from .reid.study import format_summary, summarize
    from .ssl.monitor import knn_curve

    shipped = []
    common = {"command": command, "device": device, "torch": torch.__version__, "machine": platform.machine(),
              "made": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "study": {**study, "summary": summarize(study, "random+ICS"), "table": format_summary(study, "random+ICS"),
                        "knn": knn, "report": report}}
    for ics in (True, False):
        arch = _arch(profile, ics)
        run = output / f"dino_{arch}"
        if not (run / "teacher_backbone.pth").is_file():
            logger.warning("course: no finished DINO run of %s in %s: not shipped", arch, run)
            continue
        log = engine.JsonlLog(run / "log.jsonl").read()
        cfg = torch.load(run / "checkpoint.pth", map_location="cpu", weights_only=True)["config"]
        record = {**common, "what": f"DINO teacher backbone of {arch}, course pre-training", "config": cfg,
                  "seed": cfg["seed"], "log": log, "minutes": minutes.get(arch),
                  "images_seen": len(log) * cfg["batch_size"] * _iters_per_epoch(run),
                  "knn_curve": knn_curve(engine.JsonlLog(run / "steps.jsonl").read(), log),
                  "knn_probe_random": probe_random_weights(profile, arch, data_root)}
        shipped.append(zoo.ship_backbone(run / "teacher_backbone.pth", profile, arch, record))
    for name, folder in SHIPPED_FINETUNED.items():
        if name not in study["curves"]:
            continue
        run = Path(study["runs"][name][study["seeds"].index(0)])
        log = engine.JsonlLog(run / "log.jsonl").read()
        record = {**common, "what": f"SynthMarket fine-tune from {name} (the study's seed-0 run)",
                  "config": study["config"] | {"arch": _arch(profile, INITS[name][0]), "seed": 0}, "seed": 0,
                  "init": name, "log": log}
        shipped.append(zoo.ship_finetuned(run / "model.pth", profile, folder, _arch(profile, INITS[name][0]), record))
    return shipped


def record_path(profile: str) -> Path:
    """Where :func:`write_record` puts the course study's record: ``reid_lab/assets/course_record_<profile>.json``."""
    return zoo.ASSETS / f"course_record_{profile}.json"


def write_record(profile: str, output: Path, study: dict[str, Any], knn: dict[str, Any], *, command: str,
                 device: str, minutes: dict[str, float], report: str,
                 data_root: str | os.PathLike | None = None) -> Path:
    """The course study and its ICS DINO run as one provenance record (no weights): study, summary, frozen k-NN,
    report, and the run's config, per-epoch log, k-NN curve (with random weights on the same probe), minutes and
    the teacher backbone's sha256."""
    import hashlib

    from .reid.study import summarize
    from .ssl.monitor import knn_curve

    arch = _arch(profile, True)
    run = output / f"dino_{arch}"
    log = engine.JsonlLog(run / "log.jsonl").read()
    cfg = torch.load(run / "checkpoint.pth", map_location="cpu", weights_only=True)["config"]
    record = {"command": command, "device": device, "torch": torch.__version__, "machine": platform.machine(),
              "made": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
              "study": {**study, "summary": summarize(study, "random+ICS"), "knn": knn, "report": report},
              "dino": {"arch": arch, "config": cfg, "log": log, "minutes": minutes.get(arch),
                       "images_seen": len(log) * cfg["batch_size"] * _iters_per_epoch(run),
                       "knn_curve": knn_curve(engine.JsonlLog(run / "steps.jsonl").read(), log),
                       "knn_probe_random": probe_random_weights(profile, arch, data_root),
                       "teacher_backbone_sha256": hashlib.sha256((run / "teacher_backbone.pth").read_bytes()).hexdigest()}}
    path = record_path(profile)
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def run_course(profile: str = "tiny", output: str | os.PathLike | None = None, device: str = "cpu",
               stages: tuple[str, ...] = ("pretrain", "study", "ship"), names: list[str] | None = None,
               seeds: list[int] | None = None, data_root: str | os.PathLike | None = None,
               command: str | None = None, readme: str | os.PathLike | None = None,
               record_only: bool = False) -> dict[str, Any]:
    """Run the requested stages; returns what they produced (see the module docstring). With ``readme``, the ship
    stage also writes :func:`course_report` between its ``<!-- course:<profile>:start/end -->`` markers. With
    ``record_only`` the ship stage writes the study's record (:func:`write_record`) and leaves the shipped
    backbones and fine-tuned models as they are (for a run that should be reported, not made the course's start)."""
    unknown = sorted(set(names or ()) - set(INITS))
    if unknown:
        raise ValueError(f"unknown initialisation(s) {unknown}; choose from {list(INITS)}")
    output = Path(output) if output else paths.runs_root() / "course" / profile
    device = str(engine.resolve_device(device))
    command = command or "python -m reid_lab.course " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    out: dict[str, Any] = {}
    timings = output / "minutes.json"
    minutes = json.loads(timings.read_text()) if timings.is_file() else {}
    if "pretrain" in stages:
        # only the backbones the chosen initialisations need (all of them by default)
        wanted = [ics for ics in (True, False) if any(INITS[n] == (ics, "dino") for n in (names or INITS))]
        for ics in wanted:
            arch = _arch(profile, ics)
            result = pretrain_backbones(profile, output, device, data_root, archs=(ics,))[arch]
            # the run's own time over all its epochs (a resumed run's earlier parts included), probes included
            minutes[arch] = round(sum(r["seconds"] for r in result.history) / 60, 1)
        output.mkdir(parents=True, exist_ok=True)
        timings.write_text(json.dumps(minutes))
    if "study" in stages or "ship" in stages:
        out["study"] = run_study(profile, output, device, names, seeds, data_root)
        (output / STUDY_NAME).write_text(json.dumps(out["study"], indent=1))
    if "ship" in stages:
        knn = _frozen_knn(profile, output, list(out["study"]["curves"]), device, data_root)
        ics_arch = _arch(profile, True)
        dino_log = engine.JsonlLog(output / f"dino_{ics_arch}" / "log.jsonl").read()  # [] when there is none
        out["report"] = course_report(out["study"], knn, dino_log=dino_log, dino_minutes=minutes.get(ics_arch),
                                      pool_images=len(_pool(profile, data_root)[1]), command=command, device=device)
        if record_only:
            out["shipped"] = [write_record(profile, output, out["study"], knn, command=command, device=device,
                                           minutes=minutes, report=out["report"], data_root=data_root)]
        else:
            out["shipped"] = ship_course(profile, output, out["study"], knn, command=command, device=device,
                                         minutes=minutes, report=out["report"], data_root=data_root)
        (output / "course_report.md").write_text(out["report"] + "\n")
        if readme is not None:
            from .tutorial.notebook import update_readme

            changed = update_readme(readme, profile, out["report"], block="course")
            logger.info("course: README block course:%s %s", profile, "updated" if changed else "unchanged")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m reid_lab.course", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="tiny", choices=("smoke", "tiny"))
    p.add_argument("--output", default=None, help="working folder (default: runs/course/<profile>)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--stage", action="append", choices=("pretrain", "study", "ship"),
                   help="run only these stages (repeatable; default: all)")
    p.add_argument("--inits", default=None, help=f"comma-separated subset of {', '.join(INITS)}")
    p.add_argument("--seeds", type=int, nargs="+", default=None)
    p.add_argument("--data-root", default=None)
    p.add_argument("--record-only", action="store_true",
                   help="ship stage: write reid_lab/assets/course_record_<profile>.json and keep the shipped weights")
    p.add_argument("--update-readme", action="store_true",
                   help="ship stage: write the study report between the README's <!-- course:<profile>:start/end --> "
                        "markers")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run_course(args.profile, args.output, args.device, tuple(args.stage or ("pretrain", "study", "ship")),
               args.inits.split(",") if args.inits else None, args.seeds, args.data_root,
               readme=paths.repo_root() / "README.md" if args.update_readme else None, record_only=args.record_only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
