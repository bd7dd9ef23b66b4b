"""Speed of the synthetic-world generator: images/s at 128x64, rendering + JPEG encoding + writing the files.

Goal (project brief; docs/reference.md §11.1 measured ~850-1,100 img/s with throwaway numpy/PIL code): >= 500
images/s on the 2-core CPU. The "reference s" column is the time the goal allows (N / 500); "ratio" = reference /
ours (> 1: faster than the goal). "agree": the files are byte-identical to the 1-worker run (determinism across
worker counts). The CPU column is the parent's + workers' CPU time per image, which is what a busy machine
does not change much.

    .venv/bin/python benchmarks/bench_synthetic.py            # 3,000 SynthMarket images (tiny profile)
    .venv/bin/python benchmarks/bench_synthetic.py --quick    # 300 images
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reid_lab import paths  # noqa: E402
from reid_lab.config import resolve  # noqa: E402
from reid_lab.data.synthetic import worlds  # noqa: E402

GOAL_IMG_S = 500.0


def _cpu_seconds() -> float:
    self_, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return self_.ru_utime + self_.ru_stime + children.ru_utime + children.ru_stime


def _run(specs, dest: Path, workers: int, height: int, width: int) -> tuple[float, float]:
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    cpu0, t0 = _cpu_seconds(), time.perf_counter()
    worlds.render_specs(dest, specs, height, width, 0, workers=workers)
    return time.perf_counter() - t0, _cpu_seconds() - cpu0


def _digest(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*.jpg")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="300 images instead of 3,000")
    parser.add_argument("-n", type=int, default=None, help="number of images (default 3000, --quick 300)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--root", default=None,
                        help="scratch folder (default: a temporary folder under the data root, same disk as data)")
    args = parser.parse_args()
    n = args.n or (300 if args.quick else 3000)

    cfg = resolve("data", "tiny", market_train_ids=400, market_test_ids=400)  # enough images for any n
    specs = worlds.plan_market(cfg)[0][:n]
    base = Path(args.root) if args.root else paths.data_root()
    base.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=".bench_synthetic_", dir=base))
    worlds._MIN_PARALLEL = 0  # measure the pool even for --quick
    try:
        rows, reference = [], None
        for workers in args.workers:
            dest = scratch / f"w{workers}"
            wall, cpu = _run(specs, dest, workers, cfg.synth_height, cfg.synth_width)
            files = _digest(dest)
            if reference is None:
                reference = files
            rows.append((workers, wall, cpu, files == reference))
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        print(f"\nSynthetic worlds: {n} SynthMarket images at {cfg.synth_height}x{cfg.synth_width}, render + JPEG "
              f"+ write, {os.cpu_count()} CPUs, load average {load:.1f}\n")
        print("| what | ours s | reference s | ratio | agree | img/s | CPU ms/img |")
        print("|---|---|---|---|---|---|---|")
        goal_s = n / GOAL_IMG_S
        for workers, wall, cpu, agree in rows:
            label = f"{n} images, {workers} worker{'s' if workers > 1 else ''} (reference: goal {GOAL_IMG_S:.0f} img/s)"
            print(f"| {label} "
                  f"| {wall:.2f} | {goal_s:.2f} | {goal_s / wall:.2f} | {'yes' if agree else 'NO'} | {n / wall:.0f} "
                  f"| {1000 * cpu / n:.2f} |")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
