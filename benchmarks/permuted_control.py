"""Does a shipped DINO+ICS gain survive the permutation of its weights? (issue 17: the issue-11 course backbone)

    .venv/bin/python benchmarks/permuted_control.py --record runs/course/tiny_issue11/issue11_record.json \
        --study-output runs/course/tiny_issue11 --update-readme

The issue-11 course study (random+ICS and DINO+ICS, seeds 0-2, curves in the backbone's provenance record) is
completed with the permuted control of that very backbone — its float16 weights, every tensor's entries shuffled,
one permutation per seed — fine-tuned with the same recipe and seeds (``python -m reid_lab.course --output DIR
--stage study --inits "DINO+ICS permuted"`` with the backbone at ``DIR/dino_vit_tiny_ics/teacher_backbone.pth``).
The random+ICS runs of a seed are deterministic (re-run in issue 17: identical to the record to 0.1 mAP), so the
recorded curves pair with the new ones. Writes ``reid_lab/assets/course_issue11_control_tiny.json`` and, with
``--update-readme``, the README block ``course-issue11``.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from reid_lab import paths
from reid_lab.config import resolve
from reid_lab.course import CONTROL, course_report
from reid_lab.data import LUPersonPool
from reid_lab.reid.study import finetune_curves
from reid_lab.tutorial.profile import load_profile_data


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--record", required=True, help="provenance JSON of the issue-11 DINO+ICS backbone")
    p.add_argument("--study-output", required=True, help="course output folder holding the permuted runs")
    p.add_argument("--update-readme", action="store_true")
    args = p.parse_args()
    record = json.loads(Path(args.record).read_text())
    old = record["study"]
    seeds = old["seeds"]
    new = finetune_curves({CONTROL: {s: Path(args.study_output) / "controls" / f"dino_ics_permuted_seed{s}.pth"
                                     for s in seeds}}, load_profile_data("tiny").market, seeds=seeds,
                          cfg=resolve("supervised", "tiny"), output_dir=Path(args.study_output) / "study",
                          archs={CONTROL: "vit_tiny_ics"})  # finished runs are loaded, not trained
    study = {"budgets": old["budgets"], "seeds": seeds,
             **{key: {name: old[key][name] for name in ("random+ICS", "DINO+ICS")} | {CONTROL: new[key][CONTROL]}
                for key in ("curves", "rank1", "mINP")}}
    command = "python benchmarks/permuted_control.py " + " ".join(
        f"{k} {v}" for k, v in (("--record", args.record), ("--study-output", args.study_output)))
    data = load_profile_data("tiny")
    report = course_report(study, {}, dino_log=record["log"], dino_minutes=record.get("minutes"),
                           pool_images=len(LUPersonPool(data.pool_root)), command=command, device="cpu")
    report = ("The **issue-11 course backbone** (shipped until issue 17; DINO at 128×64, 186 steps): its recorded "
              "study completed with its own permuted control.\n\n" + report)
    out = paths.repo_root() / "reid_lab" / "assets" / "course_issue11_control_tiny.json"
    out.write_text(json.dumps({"command": command, "study": study, "report": report,
                               "backbone_sha256": record.get("sha256")}, indent=1) + "\n")
    print(report)
    if args.update_readme:
        from reid_lab.tutorial.notebook import update_readme

        update_readme(paths.repo_root() / "README.md", "tiny", report, block="course-issue11")


if __name__ == "__main__":
    main()
