"""``make gpu-check``: does reid_lab work on this GPU server, and how fast? One command, under ten minutes (issue 18).

Designed for a **bare** GPU machine: a system ``python3`` with torch, torchvision, timm, scikit-learn, matplotlib,
seaborn and tqdm, perhaps without faiss, kornia, papermill or Jupyter, no internet, this checkout copied over, and a
report folder (``--out``) that is all that comes back (at most 8 files, each ≤ 16 MB). Five stages, each inside its
share of the time budget (``--budget``, 540 s on CUDA):

1. **environment**: ``nvidia-smi``, the versions of Python, torch, CUDA and cuDNN, the card, which optional packages
   import;
2. **full-profile dry run**: every training command of ``docs/full_profile.md`` with ``--dry-run`` on a fixture
   world in the real formats, on this device (bf16 autocast on CUDA), each ``torchrun`` as one NCCL process, the
   commands of a block side by side; then one notebook's full branch (``--notebook``, default 03, which loads the
   runs the commands wrote) through papermill, or, where papermill does not import, the notebook's code cells
   run as a plain Python script with the same parameters;
3. **benchmarks**, both sides of every ratio in this run: images/s of a training step of ViT-S/16 and ViT-B/16
   ± ICS at 256×128 in bf16 autocast and fp32; a DINO step with the full profile's multi-crop (2 global + 8 local
   crops, 65,536-way head); exact k-NN and the Jaccard distance of cluster contrast on the GPU and the CPU;
4. **course DINO pre-training** (the tiny profile's recipe, ``reid_lab.course``) for the rest of the budget,
   epoch by epoch with ``resume``; its checkpoint (split into ≤ 15 MB parts), log and, once finished, the teacher
   backbone go into the report. ``--course-resume REPORT`` continues an earlier report's run; ``--unpack REPORT
   --into runs/course/tiny/dino_vit_tiny_ics`` hands it to ``make course``;
5. **report**: ``report.json`` (everything), ``report.md`` (tables), ``commands.log`` (what the commands printed).

``--device cpu`` is the rehearsal ``make test`` runs (tiny caps, about 3 minutes on 2 cores): the same stages with
the doc's ICS pre-training (a torchrun job), notebook 00, tiny backbones and the smoke profile's pre-training, with
faiss, kornia and the Jupyter stack blocked from importing (``--bare``, the default there) as on the bare machine.

    python3 scripts/gpu_check.py --out runs/gpu_check                     # on the GPU server (make gpu-check)
    python3 scripts/gpu_check.py --device cpu --out /tmp/rehearsal        # the rehearsal (make gpu-check DEVICE=cpu)
    python3 scripts/gpu_check.py --update-readme runs/gpu_check           # the README's table from a report
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "scripts"), str(REPO / "benchmarks")]
WHEELS = REPO / ".whl"  # make gpu-wheels: papermill and its kernel stack for a bare GPU machine
OPTIONAL = ("faiss", "kornia", "papermill", "nbclient", "ipykernel", "onnxruntime")
BARE = ("faiss", "kornia", "papermill", "nbclient", "nbformat", "ipykernel", "jupyter_client", "IPython")
PART_BYTES = 15 * 2**20  # report files come back only up to 16 MB each
README_BLOCK = ("gpu-check", "last")  # <!-- gpu-check:last:start --> … in README.md
# the rehearsal's doc command: the ICS pre-training (a torchrun job); the GPU check runs them all
REHEARSAL_ONLY = r"dino_vit_small_ics$"
logger = logging.getLogger("gpu_check")


# ----------------------------------------------------------------------------------------------- time and imports
@dataclass
class Budget:
    """The run's deadline and each stage's share of what is left."""

    seconds: float
    began: float = field(default_factory=time.monotonic)

    def left(self) -> float:
        return self.seconds - (time.monotonic() - self.began)

    def deadline(self, cap: float, reserve: float = 0.0) -> float:
        """A ``time.monotonic()`` deadline: ``cap`` seconds from now, or earlier so that ``reserve`` seconds stay
        for the later stages."""
        return time.monotonic() + max(0.0, min(cap, self.left() - reserve))


BLOCKER = '''import importlib.abc, os, sys
class _Blocked(importlib.abc.MetaPathFinder):
    """gpu_check --bare: these packages are missing on the bare GPU machine."""
    names = set(filter(None, os.environ.get("REID_LAB_BLOCK_IMPORTS", "").split(",")))
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.names:
            raise ImportError(f"No module named {name!r} (blocked by gpu_check --bare)")
        return None
sys.meta_path.insert(0, _Blocked())
'''


def block_imports(names: tuple[str, ...], folder: Path) -> dict[str, str]:
    """Make ``names`` unimportable here and in every child process (a ``sitecustomize`` on ``PYTHONPATH``);
    returns the environment variables set."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(BLOCKER)
    env = {"REID_LAB_BLOCK_IMPORTS": ",".join(names),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))}
    os.environ.update(env)
    exec(compile(BLOCKER, str(folder / "sitecustomize.py"), "exec"), {})  # this process too
    for name in list(sys.modules):
        if name.split(".")[0] in names:
            del sys.modules[name]
    return env


def missing_wheels(wheels: list[Path]) -> list[Path]:
    """The wheels whose distribution is not installed here (``pip download`` brings every dependency; a bare GPU
    machine already holds most of them, and a second copy would shadow its own build)."""
    from importlib import metadata

    missing = []
    for wheel in wheels:
        try:
            metadata.distribution(wheel.name.split("-")[0])
        except metadata.PackageNotFoundError:
            missing.append(wheel)
    return missing


def install_wheels(target: Path) -> str:
    """Install what this machine lacks of ``.whl/`` (``make gpu-wheels``) into ``target``, for this and every child
    process; returns what happened, in words."""
    wheels = missing_wheels(sorted(WHEELS.glob("*.whl")))
    if not wheels:
        return "nothing to install (no .whl/ folder, or everything in it is installed)"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                           "--target", str(target), *map(str, wheels)], capture_output=True, text=True)
    if proc.returncode:
        return f"pip install of {len(wheels)} wheels failed: {proc.stderr.strip()[-300:]}"
    sys.path.insert(0, str(target))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(target), os.environ.get("PYTHONPATH")]))
    return f"installed {len(wheels)} wheels from .whl/: {', '.join(w.name.split('-')[0] for w in wheels)}"


def importable(name: str) -> bool:
    try:
        __import__(name)
    except Exception:  # noqa: BLE001 — any failure means "not usable here"
        return False
    return True


# ----------------------------------------------------------------------------------------------- 1 · environment
def environment(device: str) -> tuple[dict[str, Any], str]:
    """``(facts, text)``: versions, the card, which optional packages import, and ``nvidia-smi``'s output."""
    import torch

    facts: dict[str, Any] = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "device": device,
        "python": platform.python_version(), "machine": platform.machine(), "cpu_cores": os.cpu_count(),
        "torch": torch.__version__, "cuda": torch.version.cuda, "cuda_available": torch.cuda.is_available(),
        "packages": {name: importable(name) for name in OPTIONAL},
    }
    if device == "cuda":
        props = torch.cuda.get_device_properties(0)
        facts.update(card=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                     capability=f"{props.major}.{props.minor}", cudnn=torch.backends.cudnn.version(),
                     bf16_supported=torch.cuda.is_bf16_supported(), gpus=torch.cuda.device_count())
    else:
        facts["card"] = f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    smi = shutil.which("nvidia-smi")
    text = subprocess.run([smi], capture_output=True, text=True).stdout if smi else "nvidia-smi: not found\n"
    return facts, json.dumps(facts, indent=1) + "\n\n" + text


# ----------------------------------------------------------------------------------------------- 2 · dry run
def notebook_parameters(profile: str, data: Path, runs: Path, device: str, dry_run: int) -> dict[str, Any]:
    """The parameters ``reid-lab tutorial`` gives a notebook (``reid_lab.tutorial.notebook.run_notebooks``)."""
    return dict(PROFILE=profile, DATA_ROOT=str(data), RUN_ROOT=str(runs), SEED=0, DEVICE=device, DRY_RUN=dry_run)


def notebook_as_script(notebook: Path, parameters: dict[str, Any]) -> str:
    """The notebook's code cells as one Python script, ``parameters`` assigned right after the cell tagged
    ``parameters`` (as papermill injects them): the notebook's code path where Jupyter is missing."""
    cells = json.loads(notebook.read_text())["cells"]
    parts = ["import matplotlib\nmatplotlib.use('Agg')\n"]
    injected = False
    for cell in cells:
        if cell["cell_type"] != "code":
            continue
        parts.append("".join(cell["source"]))
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            parts.append("\n".join(f"{key} = {value!r}" for key, value in parameters.items()))
            injected = True
    if not injected:
        raise ValueError(f"{notebook}: no code cell is tagged 'parameters'")
    return "\n\n".join(parts) + "\n"


def run_notebook(name: str, parameters: dict[str, Any], env: dict[str, str], log: Any,
                 deadline: float) -> dict[str, Any]:
    """One notebook's branch in ``parameters["PROFILE"]``: papermill (``reid-lab tutorial --only``) when it imports,
    else :func:`notebook_as_script`. Returns how, whether it passed, seconds and the metrics it wrote."""
    from reid_lab import paths

    notebook = next((REPO / "notebooks").glob(f"{name}_*.ipynb"))
    run_dir = paths.run_dir(parameters["PROFILE"], notebook.stem, parameters["RUN_ROOT"])
    run_dir.mkdir(parents=True, exist_ok=True)
    metrics_path = run_dir / "metrics.json"
    metrics_path.unlink(missing_ok=True)
    papermill = importable("papermill")
    if papermill:
        how = "through papermill"
        cmd = [sys.executable, "-m", "reid_lab", "tutorial", "--profile", parameters["PROFILE"], "--only", name,
               "--dry-run", str(parameters["DRY_RUN"]), "--device", parameters["DEVICE"], "--force"]
    else:
        how = "as a plain script: papermill does not import"
        script = run_dir / f"{notebook.stem}.py"
        script.write_text(notebook_as_script(notebook, parameters))
        cmd = [sys.executable, str(script)]
    began = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=REPO if papermill else run_dir, env=env, stdout=log, stderr=log,
                              timeout=max(1.0, deadline - time.monotonic()))
        passed, why = proc.returncode == 0, f"exit status {proc.returncode}"
    except subprocess.TimeoutExpired:
        passed, why = False, "stopped at the time limit"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
    if passed and (metrics is None or metrics.get("dry_run") != parameters["DRY_RUN"]):
        passed, why = False, f"no metrics.json marked dry_run={parameters['DRY_RUN']} in {run_dir}"
    return {"notebook": notebook.stem, "how": how, "passed": passed, "why": None if passed else why,
            "seconds": round(time.perf_counter() - began, 1),
            "metrics": {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float, str))}}


def dry_run_stage(work: Path, device: str, rehearsal: bool, notebook: str, log: Any, budget: Budget,
                  env: dict[str, str]) -> dict[str, Any]:
    from full_dry_run import run_doc

    n = 1 if rehearsal else 2
    deadline = budget.deadline(cap=270 if device == "cuda" else 90, reserve=90 if device == "cuda" else 45)
    jobs = 1 if device == "cpu" else min(8, max(1, (os.cpu_count() or 2) // 2))
    doc = run_doc(work, n=n, nproc=1, device=device, only_doc=True, only=REHEARSAL_ONLY if rehearsal else "",
                  jobs=jobs, stdout=log, deadline=deadline)
    log.flush()
    for extra in sorted((work / "logs").glob("*.log")):  # side-by-side commands logged to files of their own
        log.write(f"\n===== {extra.name}\n{extra.read_text()}")
    log.flush()
    result = {"passed": doc.passed, "problems": doc.problems, "dry_run": n, "torchrun_processes": 1, "jobs": jobs,
              "commands": [{"seconds": round(s, 1), "command": label.replace(str(work / "runs"), "$REID_LAB_RUNS")}
                           for s, label in doc.commands],
              "blocks": [{"block": h, "seconds": round(s, 1)} for h, s in doc.stages]}
    nb_env = {**os.environ, **env, "REID_LAB_DRY_RUN_WORLD": "1", "MPLBACKEND": "Agg",
              "REID_LAB_DATA": str(work / "data"), "REID_LAB_RUNS": str(work / "runs"),
              "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    nb_deadline = budget.deadline(cap=120 if device == "cuda" else 60, reserve=75 if device == "cuda" else 35)
    result["notebook"] = run_notebook(notebook, notebook_parameters("full", work / "data", work / "runs", device, n),
                                      nb_env, log, nb_deadline) if doc.passed else None
    return result


# ----------------------------------------------------------------------------------------------- 3 · benchmarks
def bench_train_steps(device: Any, archs: list[str], size: tuple[int, int], batch: int, repeats: int,
                      deadline: float) -> list[dict[str, Any]]:
    """Images/s of a training step (forward, backward, SGD) per backbone: bf16 autocast against fp32."""
    import torch
    import torch.nn.functional as F
    from train_step import _interleaved, _train_step  # benchmarks/train_step.py: the same step, the same timing

    from reid_lab.models import build_backbone

    rows = []
    for arch in archs:
        if time.monotonic() > deadline:
            rows.append({"arch": arch, "skipped": "time budget"})
            continue
        torch.manual_seed(0)
        model = build_backbone(arch, img_size=size, drop_path_rate=0.1).to(device)
        opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
        x = torch.randn(batch, 3, *size, device=device)
        with torch.no_grad():
            model.eval()
            f32 = model(x).float()
            with torch.autocast(device.type, dtype=torch.bfloat16):
                b16 = model(x).float()
        model.train()
        t = _interleaved({"bf16": lambda: _train_step(model, opt, x, torch.bfloat16),
                          "fp32": lambda: _train_step(model, opt, x, None)}, repeats, device)
        rows.append({"arch": arch, "size": list(size), "batch": batch, "bf16_images_per_s": batch / t["bf16"],
                     "fp32_images_per_s": batch / t["fp32"], "bf16_speedup": t["fp32"] / t["bf16"],
                     "min_cosine_bf16_fp32": F.cosine_similarity(f32, b16, dim=1).min().item()})
        del model, opt
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return rows


def bench_dino_step(device: Any, profile: str, batch: int, repeats: int) -> list[dict[str, Any]]:
    """Images/s of one DINO step (student + teacher + loss + backward + AdamW + EMA) with the profile's crops."""
    from dino_step import step_time

    from reid_lab.config import resolve

    cfg = resolve("pretrain", profile, warmup_epochs=0)
    rows = []
    for amp in (("bf16", "none") if device.type == "cuda" else ("none",)):
        seconds, _ = step_time(cfg, batch, device, amp, repeats)
        (gh, gw), (lh, lw) = cfg.global_size, cfg.local_size
        rows.append({"arch": cfg.arch, "crops": f"2 × {gh}×{gw} + {cfg.local_crops_number} × {lh}×{lw}",
                     "out_dim": cfg.out_dim, "batch": batch,
                     "precision": {"bf16": "bf16", "none": "fp32"}[amp], "images_per_s": batch / seconds})
    return rows


def bench_neighbours(device: Any, n: int, dim: int, repeats: int) -> list[dict[str, Any]]:
    """Exact k-NN (k = 30) and the Jaccard distance of cluster contrast (k1 = 30, k2 = 6): GPU against CPU, with
    the results compared (k-NN: identical neighbour sets; Jaccard: max difference)."""
    import numpy as np
    import torch

    from train_step import _interleaved

    from reid_lab.retrieval.clustering import jaccard_distance
    from reid_lab.retrieval.neighbors import knn

    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(n // 10, dim, generator=gen)
    x = torch.nn.functional.normalize(centres.repeat_interleave(10, 0) + 0.3 * torch.randn(n, dim, generator=gen),
                                      dim=1).numpy()
    sides = {"cpu": False, "gpu": True} if device.type == "cuda" else {"cpu": False}
    rows = []
    for what, fn in (("k-NN, k=30", lambda gpu: knn(x, 30, use_gpu=gpu)),
                     ("Jaccard distance, k1=30, k2=6", lambda gpu: jaccard_distance(x, 30, 6, use_gpu=gpu))):
        out = {side: fn(flag) for side, flag in sides.items()}
        t = _interleaved({side: (lambda flag=flag: fn(flag)) for side, flag in sides.items()}, repeats, device)
        row = {"what": what, "n": n, "dim": dim, "cpu_s": t["cpu"], "gpu_s": t.get("gpu"),
               "backend": "faiss" if importable("faiss") else "torch (faiss does not import)"}
        if "gpu" in out:
            row["gpu_speedup"] = t["cpu"] / t["gpu"]
            if what.startswith("k-NN"):
                same = np.mean([set(a) == set(b) for a, b in zip(out["cpu"][1], out["gpu"][1])])
                row["agree"] = f"same neighbour sets for {100 * same:.2f} % of rows"
            else:
                row["agree"] = f"max diff {abs(out['cpu'] - out['gpu']).max():.1e}"
        rows.append(row)
    return rows


def bench_stage(device_name: str, rehearsal: bool, budget: Budget) -> dict[str, Any]:
    import torch

    device = torch.device(device_name)
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False  # fp32 means fp32
        torch.backends.cudnn.allow_tf32 = False
    deadline = budget.deadline(cap=120 if device.type == "cuda" else 45, reserve=45 if device.type == "cuda" else 20)
    if rehearsal:
        archs, size, batch, repeats = ["vit_tiny", "vit_tiny_ics"], (128, 64), 4, 2
        dino = ("smoke", 8, 1)
        neighbours = (2000, 64, 1)
    else:
        archs, size, batch, repeats = ["vit_small", "vit_small_ics", "vit_base", "vit_base_ics"], (256, 128), 64, 10
        dino = ("full", 64, 5)
        neighbours = (20000, 384, 3)
    out: dict[str, Any] = {"train_step": bench_train_steps(device, archs, size, batch, repeats, deadline)}
    out["dino_step"] = bench_dino_step(device, *dino) if time.monotonic() < deadline else []
    out["neighbours"] = bench_neighbours(device, *neighbours) if time.monotonic() < deadline else []
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    return out


# ----------------------------------------------------------------------------------------------- 4 · course DINO
def split_file(path: Path, out: Path, stem: str, part_bytes: int = PART_BYTES) -> list[str]:
    """Write ``path`` as ``out/<stem>.part0``, ``.part1``, … of at most ``part_bytes`` each; returns their names."""
    data, names = path.read_bytes(), []
    for i, start in enumerate(range(0, max(len(data), 1), part_bytes)):
        (out / f"{stem}.part{i}").write_bytes(data[start:start + part_bytes])
        names.append(f"{stem}.part{i}")
    return names


def join_parts(folder: Path, stem: str, target: Path) -> Path:
    """The inverse of :func:`split_file`: ``folder/<stem>.part0…`` concatenated into ``target`` (atomically)."""
    parts = sorted(folder.glob(f"{stem}.part*"), key=lambda p: int(p.suffix.removeprefix(".part")))
    if not parts:
        raise FileNotFoundError(f"{folder}: no {stem}.part0 (was the course stage of that report skipped?)")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    with tmp.open("wb") as f:
        for part in parts:
            f.write(part.read_bytes())
    os.replace(tmp, target)
    return target


def unpack(report: Path, into: Path) -> list[Path]:
    """A report's course run into a run folder (``checkpoint.pth``, ``log.jsonl``, ``steps.jsonl`` and, if
    finished, ``teacher_backbone.pth``), where ``pretrain(..., resume=True)`` / ``make course`` continue it."""
    written = [join_parts(report, "course_checkpoint.pth", into / "checkpoint.pth")]
    logs = json.loads((report / "report.json").read_text())["course"]
    for name in ("log", "steps"):
        (into / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in logs[name]))
        written.append(into / f"{name}.jsonl")
    if (report / "course_teacher_backbone.pth").is_file():
        written.append(Path(shutil.copy2(report / "course_teacher_backbone.pth", into / "teacher_backbone.pth")))
    return written


def course_stage(device: str, rehearsal: bool, work: Path, out: Path, budget: Budget,
                 resume_from: Path | None) -> dict[str, Any]:
    """Epochs of the course DINO pre-training until the budget ends (``reid_lab.course.pretrain_backbones``'s
    recipe and probe), each call resuming the last; the checkpoint and logs into the report."""
    from reid_lab import course, engine
    from reid_lab.config import resolve
    from reid_lab.ssl import KNNProbe, pretrain

    profile = "smoke" if rehearsal else "tiny"
    began = time.monotonic()
    data, pool = course._pool(profile, work / "course_data")
    arch = course._arch(profile, ics=True)
    cfg = resolve("pretrain", profile, arch=arch, seed=0)
    run = work / "course" / f"dino_{arch}"
    if resume_from is not None:
        unpack(resume_from, run)
    probe = KNNProbe(data.market, cfg.global_size, num_ids=course.PROBE_IDS)
    workers = 0 if device == "cpu" else min(8, os.cpu_count() or 1)
    epochs, epoch_seconds, result = 0, 0.0, None
    if (run / "checkpoint.pth").is_file():
        epochs = int(engine.load_checkpoint(run / "checkpoint.pth")["epoch"])
    while epochs < cfg.epochs and budget.left() > max(20.0, 1.3 * epoch_seconds) + 15:
        t0 = time.monotonic()
        result = pretrain(cfg, pool, run, device=device, resume=True, progress=False, num_workers=workers,
                          probe=probe, probe_every=course.PROBE_EVERY, stop_after=epochs + 1)
        epochs, epoch_seconds = epochs + 1, time.monotonic() - t0
    log, steps = engine.JsonlLog(run / "log.jsonl").read(), engine.JsonlLog(run / "steps.jsonl").read()
    files = split_file(run / "checkpoint.pth", out, "course_checkpoint.pth") if (run / "checkpoint.pth").is_file() \
        else []
    if (run / "teacher_backbone.pth").is_file():
        shutil.copy2(run / "teacher_backbone.pth", out / "course_teacher_backbone.pth")
        files.append("course_teacher_backbone.pth")
    last = log[-1] if log else {}
    return {"profile": profile, "arch": arch, "epochs_done": epochs, "epochs": cfg.epochs,
            "steps_done": len(steps), "finished": epochs >= cfg.epochs, "seconds": round(time.monotonic() - began, 1),
            "images_per_s": last.get("images_per_s"), "knn_mAP": last.get("knn_mAP"), "loss": last.get("loss"),
            "continued_from": str(resume_from) if resume_from else None, "files": files, "log": log,
            "steps": steps, "ran_this_time": result is not None}


# ----------------------------------------------------------------------------------------------- 5 · report
def _f(value: Any, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"


def summary_table(report: dict[str, Any]) -> str:
    """The README's table: card and date, dry-run verdict, img/s bf16 vs fp32 per backbone, the DINO step, k-NN /
    Jaccard on GPU vs CPU, course steps trained."""
    env, dry, bench, course = report["env"], report.get("dry_run") or {}, report.get("bench") or {}, \
        report.get("course") or {}
    rehearsal = " — **CPU rehearsal, not a GPU measurement**" if env["device"] == "cpu" else ""
    cuda = f", CUDA {env['cuda']}" if env["device"] == "cuda" else ""
    lines = [f"Measured by `make gpu-check` on {env['card']}, {env['date']} (torch {env['torch']}{cuda}); "
             f"{report['seconds']:.0f} s in all{rehearsal}.", "",
             "| what | result |", "|---|---|"]
    nb = dry.get("notebook") or {}
    if dry:
        lines.append(f"| full-profile dry run (`--dry-run {dry['dry_run']}`, {env['device']}) | "
                     f"{'passed' if dry['passed'] else 'FAILED: ' + '; '.join(dry['problems'])}: "
                     f"{len(dry['commands'])} command{'s' * (len(dry['commands']) != 1)} in {sum(b['seconds'] for b in dry['blocks']):.0f} s |")
    if nb:
        lines.append(f"| notebook {nb['notebook']}, full branch, {nb['how']} | "
                     f"{'passed' if nb['passed'] else 'FAILED: ' + str(nb['why'])} in {nb['seconds']:.0f} s |")
    for row in bench.get("train_step", []):
        if "skipped" in row:
            lines.append(f"| train step {row['arch']} | skipped ({row['skipped']}) |")
            continue
        h, w = row["size"]
        lines.append(f"| train step {row['arch']} {h}×{w}, batch {row['batch']} | bf16 {_f(row['bf16_images_per_s'])}"
                     f" img/s, fp32 {_f(row['fp32_images_per_s'])} img/s: {row['bf16_speedup']:.2f}× "
                     f"(min cos {row['min_cosine_bf16_fp32']:.4f}) |")
    for row in bench.get("dino_step", []):
        lines.append(f"| DINO step {row['arch']}, {row['crops']}, K={row['out_dim']:,}, batch {row['batch']} | "
                     f"{row['precision']} {_f(row['images_per_s'])} img/s |")
    for row in bench.get("neighbours", []):
        gpu = (f"GPU {row['gpu_s']:.3f} s vs CPU {row['cpu_s']:.3f} s: {row['gpu_speedup']:.1f}× ({row['agree']})"
               if row.get("gpu_s") else f"CPU {row['cpu_s']:.3f} s (no GPU side)")
        lines.append(f"| {row['what']}, {row['n']:,} × {row['dim']}, {row['backend'].split()[0]} | {gpu} |")
    if course:
        lines.append(f"| course DINO ({course['profile']} recipe, {course['arch']}) | {course['steps_done']:,} steps, "
                     f"{course['epochs_done']}/{course['epochs']} epochs{' (finished)' if course['finished'] else ''}"
                     f", {_f(course['images_per_s'])} img/s, probe k-NN mAP "
                     f"{_f(None if course['knn_mAP'] is None else 100 * course['knn_mAP'], 1)} % |")
    return "\n".join(lines)


def write_report(out: Path, report: dict[str, Any]) -> None:
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    stages = "\n".join(f"| {name} | {seconds:.0f} |" for name, seconds in report["stage_seconds"].items())
    dry = report.get("dry_run") or {}
    commands = "\n".join(f"| {c['seconds']:.0f} | `{c['command']}` |" for c in dry.get("commands", []))
    (out / "report.md").write_text(
        f"# reid_lab gpu-check\n\n{summary_table(report)}\n\n## Stages\n\n| stage | seconds |\n|---|---:|\n{stages}\n\n"
        f"## Dry-run commands\n\n| seconds | command |\n|---:|---|\n{commands}\n\n## Environment\n\n"
        f"```\n{report['env_text']}```\n")


def update_readme(report_dir: Path, readme: Path = REPO / "README.md") -> bool:
    """Replace the README's ``<!-- gpu-check:last:start/end -->`` block with the report's summary table."""
    from reid_lab.tutorial.notebook import update_readme as replace_block

    report = json.loads((Path(report_dir) / "report.json").read_text())
    block, name = README_BLOCK
    return replace_block(readme, name, summary_table(report), block=block)


def run_check(device: str, out: Path, budget_s: float, *, bare: bool, notebook: str, rehearsal: bool,
              course_resume: Path | None, stages: tuple[str, ...]) -> dict[str, Any]:
    budget = Budget(budget_s)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.iterdir():
        if old.is_file():
            old.unlink()
    work = Path(tempfile.mkdtemp(prefix="reid_lab_gpu_check_"))
    env: dict[str, str] = {}
    setup = install_wheels(work / "site") if not bare else "bare: wheels not installed"
    if bare:
        env.update(block_imports(BARE, work / "blocker"))
    seconds: dict[str, float] = {}
    report: dict[str, Any] = {"device": device, "budget_s": budget_s, "bare": bare, "wheels": setup}
    t0 = time.monotonic()
    report["env"], report["env_text"] = environment(device)
    seconds["environment"] = time.monotonic() - t0
    with (out / "commands.log").open("w") as log:
        for stage, fn in (("dry_run", lambda: dry_run_stage(work / "dry", device, rehearsal, notebook, log, budget,
                                                             env)),
                          ("bench", lambda: bench_stage(device, rehearsal, budget)),
                          ("course", lambda: course_stage(device, rehearsal, work, out, budget, course_resume))):
            if stage not in stages:
                continue
            t0 = time.monotonic()
            logger.info("gpu-check: %s (%.0f s of the budget left)", stage, budget.left())
            try:
                report[stage] = fn()
            except Exception as error:  # noqa: BLE001 — a failing stage is a finding; the others still run
                logger.exception("gpu-check: stage %s failed", stage)
                report[stage] = None
                report.setdefault("errors", {})[stage] = f"{type(error).__name__}: {error}"
            seconds[stage] = time.monotonic() - t0
    report["stage_seconds"] = seconds
    report["seconds"] = time.monotonic() - budget.began
    write_report(out, report)
    shutil.rmtree(work, ignore_errors=True)
    return report


def passed(report: dict[str, Any]) -> bool:
    """Every stage that ran finished; the dry run and its notebook passed; the course run trained a step or was
    already finished."""
    dry, course = report.get("dry_run"), report.get("course")
    return (not report.get("errors")
            and (dry is None or (dry["passed"] and bool(dry.get("notebook")) and dry["notebook"]["passed"]))
            and (course is None or course["steps_done"] > 0))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "gpu_check", help="the report folder")
    parser.add_argument("--budget", type=float, default=None, help="seconds in all (default 540 CUDA, 170 CPU)")
    parser.add_argument("--notebook", default=None, help="the notebook run in the full profile (default 03; "
                                                         "00 in the CPU rehearsal)")
    parser.add_argument("--stages", default="dry_run,bench,course", help="comma-separated subset")
    parser.add_argument("--bare", action=argparse.BooleanOptionalAction, default=None,
                        help="block faiss, kornia and the Jupyter stack as on a bare GPU machine (default: on CPU)")
    parser.add_argument("--course-resume", type=Path, default=None, help="an earlier report folder to continue")
    parser.add_argument("--unpack", type=Path, default=None, help="a report folder: write its course run --into")
    parser.add_argument("--into", type=Path, default=REPO / "runs" / "course" / "tiny" / "dino_vit_tiny_ics")
    parser.add_argument("--update-readme", type=Path, default=None, metavar="REPORT",
                        help="write the README's gpu-check table from this report folder, then stop")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.update_readme is not None:
        print("README " + ("updated" if update_readme(args.update_readme) else "unchanged"))
        return 0
    if args.unpack is not None:
        for path in unpack(args.unpack, args.into):
            print(path)
        return 0
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA device here: use --device cpu for the rehearsal")
    rehearsal = args.device == "cpu"
    bare = rehearsal if args.bare is None else args.bare
    report = run_check(args.device, args.out.resolve(), args.budget or (170.0 if rehearsal else 540.0), bare=bare,
                       notebook=args.notebook or ("00" if rehearsal else "03"), rehearsal=rehearsal,
                       course_resume=args.course_resume, stages=tuple(args.stages.split(",")))
    print(summary_table(report))
    ok = passed(report)
    print(f"\nreport: {args.out}/report.md\ngpu-check: {'passed' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        raise SystemExit(main())
    raise SystemExit(130)
