"""The full profile's dry run (issue 12; ``make test-full``): every command of docs/full_profile.md, then the notebooks.

Not collected by pytest (no ``test_`` prefix): it takes minutes. On a fixture world in the real formats
(:mod:`reid_lab.data.synthetic.fixture`) in a temporary folder, with ``REID_LAB_DATA`` / ``REID_LAB_RUNS`` pointing
there, it runs the bash blocks of ``docs/full_profile.md`` *as written*, through two shell functions:

* ``torchrun …`` → ``python -m torch.distributed.run --standalone --nproc_per_node 2 … --dry-run N --device cpu``
  (2 gloo CPU processes, whatever count the doc asks for);
* ``reid-lab …`` → ``python -m reid_lab … --dry-run N --device cpu`` for the training commands and ``tutorial``;
* ``pip install`` is skipped and the doc's ``export REID_LAB_DATA=…`` / ``REID_LAB_RUNS=…`` point at the fixture.

Then it checks: every command succeeded, every notebook wrote ``metrics.json`` marked ``"dry_run": N``, and the
notebooks loaded the torchrun runs (their checkpoints unchanged, each named in a notebook's log as resumed) instead
of training them again. It prints the time of every command and block.

    python tests/full_dry_run.py [--n 2] [--keep DIR] [--nproc 2] [--only-doc]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "full_profile.md"
NOTEBOOKS = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))

SHIM = r"""
set -eo pipefail
_timed() {  # label, command...: run it, append "<seconds>\t<label>" to $TIMINGS
  local label="$1"; shift; local t0; t0=$(date +%s.%N)
  echo "+ $label" >&2
  "$@"
  echo "$(awk "BEGIN{print $(date +%s.%N) - $t0}")	$label" >> "$TIMINGS"
}
torchrun() {
  local args=() cmd=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --nproc_per_node) shift ;;
      --nproc_per_node=*) ;;
      -m) args+=(-m "$2"); cmd="$3"; shift ;;
      *) args+=("$1") ;;
    esac
    shift
  done
  _timed "torchrun x$NPROC $cmd ${args[*]: -1}" "$PYTHON" -m torch.distributed.run --standalone \
    --nproc_per_node "$NPROC" "${args[@]}" --dry-run "$DRY_N" --device cpu --no-progress
}
reid-lab() {
  case "$1" in
    pretrain|train|usl|uda) _timed "reid-lab $1 ${*: -1}" "$PYTHON" -m reid_lab "$@" --dry-run "$DRY_N" --device cpu --no-progress ;;
    tutorial) _timed "reid-lab $*" "$PYTHON" -m reid_lab "$@" --dry-run "$DRY_N" --device cpu ;;
    *) _timed "reid-lab $1" "$PYTHON" -m reid_lab "$@" ;;
  esac
}
pip() { echo "(skipped: pip $*)" >&2; }
"""


def doc_blocks(text: str) -> list[tuple[str, str]]:
    """``(heading, bash)`` for every ```bash block of the doc, under the ``##``/``###`` heading it follows."""
    out, heading, block = [], "", None
    for line in text.splitlines(keepends=True):
        if block is not None:
            if line.startswith("```"):
                out.append((heading, "".join(block)))
                block = None
            else:
                block.append(line)
        elif line.startswith("```bash"):
            block = []
        elif re.match(r"#{2,3} ", line):
            heading = line.lstrip("# ").strip()
    return out


def localise(block: str, data: Path, runs: Path) -> str:
    """The doc's block with its data / runs exports pointed at the fixture."""
    block = re.sub(r"^export REID_LAB_DATA=\S+", f"export REID_LAB_DATA={data}", block, flags=re.M)
    return re.sub(r"^export REID_LAB_RUNS=\S+", f"export REID_LAB_RUNS={runs}", block, flags=re.M)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "-"


def handed_over(timings: Path, runs: Path) -> dict[Path, str]:
    """The run folders the doc's training commands wrote (the last word of their timing labels) → sha of their
    checkpoint.pth."""
    folders = [Path(line.split()[-1]) for line in timings.read_text().splitlines()
               if re.search(r" (pretrain|train|usl|uda) ", line)] if timings.is_file() else []
    return {f: digest(f / "checkpoint.pth") for f in folders if runs in f.parents}


def check(runs: Path, before: dict[Path, str], n: int, notebooks: list[str]) -> list[str]:
    """Problems found after the tutorial (empty: all good)."""
    problems = []
    logs = "".join((runs / "full" / nb / "notebook.log").read_text() for nb in notebooks
                   if (runs / "full" / nb / "notebook.log").is_file())
    for folder, sha in before.items():
        if digest(folder / "checkpoint.pth") != sha:
            problems.append(f"{folder}: checkpoint.pth changed: a notebook trained it again instead of loading it")
        if f"{folder}/checkpoint.pth" not in logs:
            problems.append(f"{folder}: no notebook log names it (not picked up)")
    for nb in notebooks:
        path = runs / "full" / nb / "metrics.json"
        if not path.is_file():
            problems.append(f"{nb}: no metrics.json")
        elif json.loads(path.read_text()).get("dry_run") != n:
            problems.append(f"{nb}: metrics.json not marked dry_run={n}")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2, help="iterations per loop (--dry-run N)")
    parser.add_argument("--nproc", type=int, default=2, help="processes per torchrun command (gloo, CPU)")
    parser.add_argument("--keep", default=None, help="work in this folder and keep it (default: a temporary one)")
    parser.add_argument("--only-doc", action="store_true", help="stop after the torchrun / CLI stages")
    args = parser.parse_args(argv)
    work = Path(args.keep or tempfile.mkdtemp(prefix="reid_lab_full_dry_run_")).resolve()
    data, runs, timings = work / "data", work / "runs", work / "timings.tsv"
    sys.path.insert(0, str(REPO))
    from reid_lab.data.synthetic.fixture import generate_fixture

    began = time.perf_counter()
    generate_fixture(data)
    stages = [("fixture world", time.perf_counter() - began)]
    timings.unlink(missing_ok=True)
    env = {**os.environ, "REID_LAB_DATA": str(data), "REID_LAB_RUNS": str(runs), "OMP_NUM_THREADS": "1",
           "PYTHON": sys.executable, "DRY_N": str(args.n), "NPROC": str(args.nproc), "TIMINGS": str(timings),
           "REID_LAB_DRY_RUN_WORLD": str(args.nproc),  # notebooks size their batches as the torchrun jobs did
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    blocks = doc_blocks(DOC.read_text())
    setup = localise(blocks[0][1], data, runs)
    failed, before = None, {}
    for heading, block in blocks[1:]:
        if "tutorial" in block:
            if args.only_doc:
                break
            before = handed_over(timings, runs)
        began = time.perf_counter()
        proc = subprocess.run(["bash", "-c", SHIM + setup + localise(block, data, runs)], cwd=REPO, env=env)
        stages.append((heading, time.perf_counter() - began))
        if proc.returncode:
            failed = f"{heading}: exit status {proc.returncode}"
            break
    print("\n| seconds | step |\n|---:|---|")
    for line in timings.read_text().splitlines() if timings.is_file() else []:
        seconds, label = line.split("\t", 1)
        print(f"| {float(seconds):.0f} | {label.replace(str(runs), '$REID_LAB_RUNS')} |")
    print("\n| seconds | stage |\n|---:|---|")
    for name, seconds in stages:
        print(f"| {seconds:.0f} | {name} |")
    print(f"| {sum(s for _, s in stages):.0f} | **total** |")
    problems = [failed] if failed else []
    if not failed and not args.only_doc:
        problems += check(runs, before, args.n, NOTEBOOKS)
    print(f"\nwork folder: {work}")
    for problem in problems:
        print(f"FAIL {problem}")
    print("full dry run: " + ("FAILED" if problems else "passed"))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
