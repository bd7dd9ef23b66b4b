"""The full profile's dry run (issue 12; ``make test-full``): every command of docs/full_profile.md, then the notebooks.

Not collected by pytest (it lives in ``scripts/``): it takes minutes. On a fixture world in the real formats
(:mod:`reid_lab.data.synthetic.fixture`) in a temporary folder, with ``REID_LAB_DATA`` / ``REID_LAB_RUNS`` pointing
there, it runs the bash blocks of ``docs/full_profile.md`` *as written*, through two shell functions:

* ``torchrun …`` → ``python -m torch.distributed.run --standalone --nproc_per_node 2 … --dry-run N --device cpu``
  (2 gloo CPU processes, whatever count the doc asks for);
* ``reid-lab …`` → ``python -m reid_lab … --dry-run N --device cpu`` for the training commands and ``tutorial``;
* ``pip install`` is skipped and the doc's ``export REID_LAB_DATA=…`` / ``REID_LAB_RUNS=…`` point at the fixture.

Then it checks: every command succeeded, every notebook wrote ``metrics.json`` marked ``"dry_run": N``, and the
notebooks loaded the torchrun runs (their checkpoints unchanged, each named in a notebook's log as resumed) instead
of training them again. It prints the time of every command and block.

``scripts/gpu_check.py`` runs the same doc on CUDA through :func:`run_doc` (``device="cuda"``, one NCCL process per
torchrun, the commands of a block side by side).

    python scripts/full_dry_run.py [--n 2] [--keep DIR] [--nproc 2] [--only-doc] [--device cpu]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "full_profile.md"
NOTEBOOKS = sorted(p.stem for p in (REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))

SHIM = r"""
set -eo pipefail
_pids=()
_timed() {  # label, command...: run it, append "<seconds>\t<label>" to $TIMINGS; skip it unless it matches $ONLY;
            # with JOBS > 1 run it in the background (its output in $LOGS/<n>.log), at most JOBS at a time
  local label="$1"; shift
  if [ -n "$ONLY" ] && ! [[ "$label" =~ $ONLY ]]; then echo "- skipped: $label" >&2; return 0; fi
  echo "+ $label" >&2
  if [ "${JOBS:-1}" -gt 1 ]; then
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
    local log="$LOGS/$(echo "${label##*/}_${#_pids[@]}_$RANDOM" | tr -c 'A-Za-z0-9_.\n-' '_').log"
    ( _run "$label" "$@" >"$log" 2>&1 || { echo "FAILED (exit $?): $label, log $log" >&2; exit 1; } ) &
    _pids+=($!)
  else
    _run "$label" "$@"
  fi
}
_run() {
  local label="$1"; shift; local t0; t0=$(date +%s.%N)
  "$@"
  echo "$(awk "BEGIN{print $(date +%s.%N) - $t0}")	$label" >> "$TIMINGS"
}
_wait_all() {  # the end of a block: every background command must have succeeded
  local failed=0
  for pid in "${_pids[@]}"; do wait "$pid" || failed=1; done
  _pids=()
  return $failed
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
    --nproc_per_node "$NPROC" "${args[@]}" --dry-run "$DRY_N" --device "$DEVICE" --no-progress
}
reid-lab() {
  case "$1" in
    pretrain|train|usl|uda) _timed "reid-lab $1 ${*: -1}" "$PYTHON" -m reid_lab "$@" --dry-run "$DRY_N" --device "$DEVICE" --no-progress ;;
    tutorial) _timed "reid-lab $*" "$PYTHON" -m reid_lab "$@" --dry-run "$DRY_N" --device "$DEVICE" ;;
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


@dataclass
class DocRun:
    """What :func:`run_doc` did: per-command ``(seconds, label)``, per-block ``(heading, seconds)``, problems."""

    work: Path
    commands: list[tuple[float, str]]
    stages: list[tuple[str, float]]
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def tables(self) -> str:
        """Markdown: seconds per command, then per block (with the total)."""
        runs = str(self.work / "runs")
        lines = ["| seconds | step |", "|---:|---|"]
        lines += [f"| {seconds:.0f} | {label.replace(runs, '$REID_LAB_RUNS')} |" for seconds, label in self.commands]
        lines += ["", "| seconds | stage |", "|---:|---|"]
        lines += [f"| {seconds:.0f} | {name} |" for name, seconds in self.stages]
        lines.append(f"| {sum(s for _, s in self.stages):.0f} | **total** |")
        return "\n".join(lines)


def run_doc(work: Path, *, n: int = 2, nproc: int = 2, device: str = "cpu", only_doc: bool = False,
            only: str = "", jobs: int = 1, stdout: Any = None, deadline: float | None = None) -> DocRun:
    """Run docs/full_profile.md in ``--dry-run n`` mode on a fixture world in ``work`` (module docstring).

    Args:
        nproc: processes per ``torchrun`` command (gloo on CPU, nccl on CUDA).
        device: what every command gets as ``--device``.
        only_doc: stop before the tutorial block.
        only: a bash regular expression; only commands whose label (``reid-lab train <output folder>`` …) matches
            it run, the others are skipped (a shorter rehearsal; the commands it keeps must not need skipped ones).
        jobs: run up to this many commands of a block side by side (their output in ``work/logs/``).
        stdout: where the commands' output goes (default: this process's).
        deadline: a ``time.monotonic()`` value; the block running then is stopped and reported as a problem.
    """
    work = Path(work).resolve()
    data, runs, timings, logs = work / "data", work / "runs", work / "timings.tsv", work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    sys.path.insert(0, str(REPO))
    from reid_lab.data.synthetic.fixture import generate_fixture

    began = time.perf_counter()
    generate_fixture(data)
    stages = [("fixture world", time.perf_counter() - began)]
    timings.unlink(missing_ok=True)
    env = {**os.environ, "REID_LAB_DATA": str(data), "REID_LAB_RUNS": str(runs), "OMP_NUM_THREADS": "1",
           "PYTHON": sys.executable, "DRY_N": str(n), "NPROC": str(nproc), "TIMINGS": str(timings),
           "DEVICE": device, "ONLY": only, "JOBS": str(jobs), "LOGS": str(logs),
           "REID_LAB_DRY_RUN_WORLD": str(nproc),  # notebooks size their batches as the torchrun jobs did
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    blocks = doc_blocks(DOC.read_text())
    setup = localise(blocks[0][1], data, runs)
    failed, before, tutorial = None, {}, False
    for heading, block in blocks[1:]:
        if "tutorial" in block:
            if only_doc:
                break
            before, tutorial = handed_over(timings, runs), True
        began = time.perf_counter()
        script = SHIM + setup + localise(block, data, runs) + "\n_wait_all\n"
        proc = subprocess.Popen(["bash", "-c", script], cwd=REPO, env=env, stdout=stdout, stderr=stdout,
                                start_new_session=True)  # its own process group: a timeout stops every command
        try:
            returncode = proc.wait(timeout=None if deadline is None else max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            stages.append((heading, time.perf_counter() - began))
            failed = f"{heading}: stopped at the time limit"
            break
        stages.append((heading, time.perf_counter() - began))
        if returncode:
            failed = f"{heading}: exit status {returncode}"
            break
    commands = []
    for line in timings.read_text().splitlines() if timings.is_file() else []:
        seconds, label = line.split("\t", 1)
        commands.append((float(seconds), label))
    problems = [failed] if failed else []
    if tutorial and not failed:
        problems += check(runs, before, n, NOTEBOOKS)
    return DocRun(work, commands, stages, problems)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2, help="iterations per loop (--dry-run N)")
    parser.add_argument("--nproc", type=int, default=2, help="processes per torchrun command (gloo on CPU)")
    parser.add_argument("--device", default="cpu", help="--device of every command (default cpu)")
    parser.add_argument("--jobs", type=int, default=1, help="commands of a block run side by side (default 1)")
    parser.add_argument("--keep", default=None, help="work in this folder and keep it (default: a temporary one)")
    parser.add_argument("--only-doc", action="store_true", help="stop after the torchrun / CLI stages")
    parser.add_argument("--only", default="", help="bash regex: run only the commands whose label matches")
    args = parser.parse_args(argv)
    work = Path(args.keep or tempfile.mkdtemp(prefix="reid_lab_full_dry_run_")).resolve()
    result = run_doc(work, n=args.n, nproc=args.nproc, device=args.device, only_doc=args.only_doc, jobs=args.jobs,
                     only=args.only)
    print("\n" + result.tables())
    print(f"\nwork folder: {work}")
    for problem in result.problems:
        print(f"FAIL {problem}")
    print("full dry run: " + ("passed" if result.passed else "FAILED"))
    return 0 if result.passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
