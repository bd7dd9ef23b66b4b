"""Training machinery shared by every trainer: seeding, devices, torchrun DDP, checkpoints, logs, schedules.

Nothing in here knows about a particular method; :mod:`reid_lab.ssl.train` (DINO, docs/reference.md §2.6) and the ReID
trainers build on it. The pieces:

* :func:`seed_everything`, :func:`capture_rng_state` / :func:`restore_rng_state` — exact resume needs the
  python, numpy and torch (CPU + CUDA) generators back where they were;
* :func:`resolve_device`, :func:`init_distributed` / :func:`cleanup_distributed` (torchrun's ``RANK`` /
  ``WORLD_SIZE`` / ``LOCAL_RANK``; gloo on CPU, nccl on CUDA), :func:`all_reduce_mean`;
* :func:`save_checkpoint` (atomic: temporary file in the same folder + ``os.replace``; orphans of killed writes are
  removed by :func:`remove_orphan_temporaries` when the next run starts) and :func:`load_checkpoint` /
  :func:`read_torch_file` (``torch.load(weights_only=True)`` — checkpoints hold tensors and plain python values
  only, never pickled objects; errors say corrupt, truncated or unsafe and name the path);
* :class:`NonFiniteLossError` / :func:`check_finite` — the NaN/inf guard;
* :class:`JsonlLog` — one JSON line per epoch (DINO's ``log.txt`` convention);
* :func:`progress` — ``tqdm.auto`` bars that vanish when done and stay silent on non-zero ranks;
* :func:`cosine_schedule` — per-iteration linear warm-up + cosine (DINO ``utils.cosine_scheduler``).
"""
from __future__ import annotations

import json
import logging
import math
import os
import pickle
import random
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
import torch.distributed as dist

logger = logging.getLogger(__name__)

T = TypeVar("T")


# ----------------------------------------------------------------------------------------------- seeding / RNG
def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (all devices); with ``deterministic`` also ask torch for deterministic kernels."""
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False


def capture_rng_state() -> dict[str, Any]:
    """Every random generator's state as tensors and plain python values (loadable with ``weights_only=True``)."""
    version, internal, gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "state": list(internal), "gauss": gauss},
        "numpy": {"name": np_name, "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(np_pos),
                  "has_gauss": int(np_has_gauss), "gauss": float(np_gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of :func:`capture_rng_state`."""
    try:
        py = state["python"]
        random.setstate((py["version"], tuple(py["state"]), py["gauss"]))
        npst = state["numpy"]
        np.random.set_state((npst["name"], npst["keys"].numpy().astype(np.uint32), npst["pos"],
                             npst["has_gauss"], npst["gauss"]))
        torch.set_rng_state(state["torch"])
    except (KeyError, TypeError) as err:
        raise ValueError(f"not an RNG state written by capture_rng_state (missing/invalid {err})") from err
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
        else:
            logger.warning("CUDA RNG state saved for %d device(s), %d visible: CUDA generators not restored",
                           len(cuda_states), torch.cuda.device_count())


# ----------------------------------------------------------------------------------------------- devices / DDP
@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in a (possibly single-process) job."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(device: str | torch.device = "auto", local_rank: int = 0) -> torch.device:
    """``"auto"`` → ``cuda:<local_rank>`` when CUDA is available, else ``cpu``; other values are checked and returned.

    A bare ``"cuda"`` becomes ``cuda:<local_rank>`` so torchrun processes land on their own GPU.
    """
    if isinstance(device, torch.device):
        dev = device
    elif device in (None, "", "auto"):
        dev = torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    else:
        try:
            dev = torch.device(device)
        except RuntimeError as err:
            raise ValueError(f"invalid device {device!r}; expected 'auto', 'cpu', 'cuda' or 'cuda:N'") from err
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {device!r} requested but CUDA is not available; use device='cpu' or 'auto'")
        if dev.index is None:
            dev = torch.device(f"cuda:{local_rank}")
        if dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {dev} requested but only {torch.cuda.device_count()} CUDA device(s) visible")
    return dev


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError as err:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from err


def init_distributed(device: str | torch.device = "auto", backend: str | None = None) -> tuple[DistInfo, torch.device]:
    """Join the process group torchrun describes (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``) and pick this rank's device.

    Without those variables (or with ``WORLD_SIZE=1``) nothing is initialised and a single-process
    :class:`DistInfo` is returned, so one code path serves 1..N processes. Backend: nccl for CUDA, gloo for CPU.
    Multi-node jobs need nothing more: torchrun's ``--nnodes/--node_rank/--master_addr`` fill the same variables.
    """
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if not 0 <= rank < world_size:
        raise ValueError(f"RANK={rank} is outside [0, WORLD_SIZE={world_size})")
    dev = resolve_device(device, local_rank)
    info = DistInfo(rank=rank, world_size=world_size, local_rank=local_rank)
    if world_size == 1:
        return info, dev
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        chosen = backend or ("nccl" if dev.type == "cuda" else "gloo")
        for var in ("MASTER_ADDR", "MASTER_PORT"):
            if not os.environ.get(var):
                raise RuntimeError(f"WORLD_SIZE={world_size} but {var} is not set; launch with torchrun")
        dist.init_process_group(backend=chosen, rank=rank, world_size=world_size)
        logger.info("joined process group: rank %d/%d, backend %s, device %s", rank, world_size, chosen, dev)
    return info, dev


def cleanup_distributed() -> None:
    """Leave the process group if one is active (safe to call always)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def dist_info() -> DistInfo:
    """The current process's :class:`DistInfo` (single-process when no process group is active)."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), dist.get_world_size(), _env_int("LOCAL_RANK", 0))
    return DistInfo()


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Mean of ``tensor`` over all processes (a no-op returning ``tensor`` without a process group)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        tensor = tensor.clone()
        dist.all_reduce(tensor)
        tensor /= dist.get_world_size()
    return tensor


def barrier() -> None:
    """``dist.barrier()`` when a process group is active."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def broadcast_object(value: T) -> T:
    """Rank 0's ``value`` on every rank (the value itself without a process group)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]
    return value


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The module inside a DDP / DataParallel wrapper (or the module itself)."""
    return model.module if hasattr(model, "module") and isinstance(model, torch.nn.Module) else model


# ----------------------------------------------------------------------------------------------- checkpoints
def save_checkpoint(state: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write ``state`` to ``path`` atomically: a temporary file in the same folder, then ``os.replace``.

    A crash mid-write leaves the previous file untouched. ``state`` must hold tensors and plain python
    values only (dicts, lists, tuples, str, int, float, bool, None) so :func:`load_checkpoint` can read
    it with ``weights_only=True``.
    """
    from .dryrun import mark

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = mark(state)  # a dry run's checkpoints say so ("dry_run": N)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(dict(state), fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


class CheckpointError(ValueError):
    """A checkpoint file cannot be used; the message names the path and what is wrong with it."""


class CorruptCheckpointError(CheckpointError):
    """The file is not a PyTorch checkpoint (random bytes, another format, damaged data)."""


class TruncatedCheckpointError(CheckpointError):
    """The file ends early (empty, or a zip archive without its end): typically a killed or failed write."""


class UnsafeCheckpointError(CheckpointError):
    """The file needs arbitrary unpickling (classes beyond tensors and plain containers) and was refused."""


_ZIP_MAGIC = b"PK\x03\x04"
_LEGACY_MAGIC = b"\x80\x02\x8a\x0a"  # torch's pre-1.6 format: a pickled magic number (protocol 2, LONG1)


def _checkpoint_failure(path: Path, err: Exception) -> CheckpointError:
    """Tell corrupt, truncated and unsafe apart for a file ``torch.load(weights_only=True)`` refused."""
    import zipfile

    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(4)
    if size == 0:
        return TruncatedCheckpointError(f"checkpoint {path} is empty (0 bytes): the write that produced it was "
                                        "interrupted; use an earlier checkpoint or train again")
    if head == _ZIP_MAGIC:
        try:
            with zipfile.ZipFile(path) as archive:
                damaged = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError):
            return TruncatedCheckpointError(
                f"checkpoint {path} is truncated ({size:,} bytes, the zip archive has no end): the write was "
                "interrupted or the copy is incomplete; copy it again or use an earlier checkpoint")
        if damaged is not None:
            return CorruptCheckpointError(f"checkpoint {path} is corrupt: entry {damaged} fails its CRC check")
    elif head != _LEGACY_MAGIC:
        return CorruptCheckpointError(f"checkpoint {path} is not a PyTorch checkpoint (it starts with bytes "
                                      f"{head!r}, expected a zip archive {_ZIP_MAGIC!r}); corrupt or another format")
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    message = next((line for line in lines if "WeightsUnpickler error" in line), lines[0] if lines else repr(err))
    if "Weights only load failed" in str(err) and isinstance(err, pickle.UnpicklingError):
        return UnsafeCheckpointError(
            f"refusing to load {path}: it contains Python objects that can only be restored by running arbitrary "
            f"code while unpickling (torch.load(weights_only=True) said: {message}). reid_lab never unpickles such "
            "files. If you trust where the file comes from, convert it once in a separate script: obj = "
            "torch.load(path, weights_only=False); torch.save(<its state dict of tensors>, new_path) — then load "
            "new_path.")
    if isinstance(err, (EOFError, pickle.UnpicklingError)) and head == _LEGACY_MAGIC:
        return TruncatedCheckpointError(f"checkpoint {path} (legacy format) ends early: {message}")
    return CorruptCheckpointError(f"checkpoint {path} is corrupt: {type(err).__name__}: {message}")


def read_torch_file(path: str | os.PathLike, map_location: str | torch.device = "cpu",
                    safe_globals: Iterable[Any] = ()) -> Any:
    """``torch.load(weights_only=True)`` that names the path and tells corrupt / truncated / unsafe apart.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: :class:`CorruptCheckpointError`, :class:`TruncatedCheckpointError` or
            :class:`UnsafeCheckpointError`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            obj = torch.load(path, map_location=map_location, weights_only=True)
    except (RuntimeError, pickle.UnpicklingError, EOFError, ValueError, OSError, KeyError, AttributeError,
            IndexError, TypeError) as err:
        raise _checkpoint_failure(path, err) from err
    from .dryrun import check_checkpoint

    check_checkpoint(obj, path)  # a dry run's checkpoint never reaches a real run, and vice versa
    return obj


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a training checkpoint with :func:`read_torch_file` (no arbitrary unpickling); it must hold a dict."""
    obj = read_torch_file(path, map_location)
    if not isinstance(obj, dict):
        raise CorruptCheckpointError(f"checkpoint {path} holds a {type(obj).__name__}, expected a dict")
    return obj


def resume_source(resume: bool | str | os.PathLike | None, default: Path) -> Path | None:
    """The checkpoint to resume from: ``True`` → ``default`` if it exists (else None, with a warning); a path → that
    file (which must exist); ``False``/``None`` → None."""
    if resume in (None, False, ""):
        return None
    if resume is True:
        if default.is_file():
            return default
        logger.info("resume requested but %s does not exist yet: starting from scratch", default)
        return None
    path = Path(resume)
    if not path.is_file():
        raise FileNotFoundError(f"cannot resume: checkpoint {path} does not exist")
    return path


def _as_tuples(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _as_tuples(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return tuple(_as_tuples(v) for v in value)
    return value


_MISSING = "<not recorded>"


def compare_resume_config(saved: Mapping[str, Any], current: Mapping[str, Any], path: str | os.PathLike, *,
                          structural: Iterable[str], quiet: Iterable[str] = ()) -> dict[str, tuple[Any, Any]]:
    """Compare the full config saved in a checkpoint with the current one; return the changed fields.

    A change of a ``structural`` field (network shapes, batch layout) raises ``ValueError``: the checkpoint cannot
    be resumed. Any other changed field — including one the checkpoint does not record — is logged as a warning
    (the run will not match an uninterrupted one), except those in ``quiet`` (e.g. ``epochs`` for extending a run).
    Lists and tuples compare equal (checkpoints store tuples as lists).
    """
    old, new = _as_tuples(dict(saved)), _as_tuples(dict(current))
    changed = {k: (old.get(k, _MISSING), new.get(k, _MISSING)) for k in sorted(set(old) | set(new))
               if old.get(k, _MISSING) != new.get(k, _MISSING)}
    clash = {k: v for k, v in changed.items() if k in set(structural)}
    if clash:
        details = ", ".join(f"{k}: checkpoint {a!r} vs config {b!r}" for k, (a, b) in clash.items())
        raise ValueError(f"cannot resume from {path}: the network or batch layout differs ({details})")
    loud = {k: v for k, v in changed.items() if k not in set(quiet)}
    if loud:
        logger.warning("resuming %s with changed settings %s: the run will not match an uninterrupted one", path,
                       ", ".join(f"{k} {a!r}->{b!r}" for k, (a, b) in loud.items()))
    return changed


_TEMPORARY_PATTERNS = (".*.tmp", "*.jsonl.tmp")  # save_checkpoint's mkstemp names, JsonlLog.truncate's


def remove_orphan_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete temporary files that interrupted atomic writes left in ``folder``; return them.

    Only safe while no other process writes there: :mod:`reid_lab.runlock` calls it once it holds the lock.
    """
    folder = Path(folder)
    removed = sorted({p for pattern in _TEMPORARY_PATTERNS for p in folder.glob(pattern) if p.is_file()})
    for orphan in removed:
        orphan.unlink(missing_ok=True)
        logger.warning("removed %s, left by an interrupted write", orphan)
    return removed


# ----------------------------------------------------------------------------------------------- NaN guard
class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; training stopped before the bad step touched the weights."""


def check_finite(loss: float | torch.Tensor, *, epoch: int, step: int, last_checkpoint: str | os.PathLike | None = None,
                 hint: str = "") -> float:
    """Return ``loss`` as a float, or raise :class:`NonFiniteLossError` saying where and what is left on disk."""
    value = float(loss.detach().float().item() if isinstance(loss, torch.Tensor) else loss)
    if math.isfinite(value):
        return value
    where = f"loss is {value} at epoch {epoch}, global step {step}; training stopped before this step's update"
    if last_checkpoint is not None and Path(last_checkpoint).is_file():
        kept = f"the last good checkpoint {last_checkpoint} is intact (resume from it, perhaps with a lower lr)"
    else:
        kept = "no checkpoint had been written yet"
    raise NonFiniteLossError(f"{where}; {kept}." + (f" {hint}" if hint else ""))


# ----------------------------------------------------------------------------------------------- logs / progress
class JsonlLog:
    """Append-only JSON-lines log (one record per epoch), like DINO's ``log.txt``.

    :meth:`truncate` drops records past a resumed epoch so the log always agrees with the checkpoint.
    """

    def __init__(self, path: str | os.PathLike, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled

    def append(self, record: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        from .dryrun import mark

        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(_jsonable(mark(record))) + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        with open(self.path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]

    def truncate(self, key: str, max_value: int) -> list[dict[str, Any]]:
        """Keep only records whose ``key`` is ≤ ``max_value``; return them."""
        kept = [r for r in self.read() if r.get(key, -1) <= max_value]
        if self.enabled and self.path.is_file():
            tmp = self.path.with_suffix(self.path.suffix + ".tmp")
            tmp.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
            os.replace(tmp, self.path)
        return kept


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    return value


def progress(iterable: Iterable[T], *, desc: str = "", total: int | None = None, enabled: bool = True,
             **kwargs: Any) -> Iterator[T]:
    """A ``tqdm.auto`` bar that disappears when done (``leave=False``).

    Silent when ``enabled`` is False or the environment variable ``REID_LAB_QUIET`` is set (notebooks set it in
    :func:`reid_lab.tutorial.notebook.start` so cell outputs carry results, not bars).
    """
    from tqdm.auto import tqdm

    from .paths import quiet

    return tqdm(iterable, desc=desc, total=total, disable=not enabled or quiet(), leave=False, dynamic_ncols=True,
                **kwargs)


# ----------------------------------------------------------------------------------------------- schedules
def cosine_schedule(base_value: float, final_value: float, epochs: int, iters_per_epoch: int,
                    warmup_epochs: int = 0, start_warmup_value: float = 0.0) -> np.ndarray:
    """Per-iteration values: linear warm-up from ``start_warmup_value``, then cosine ``base_value`` → ``final_value``.

    Same numbers as DINO's ``utils.cosine_scheduler`` (docs/reference.md §2.6): array of length ``epochs * iters_per_epoch``;
    the cosine part is ``final + (base - final)(1 + cos(pi i / n)) / 2`` for ``i = 0..n-1``.
    """
    if epochs <= 0 or iters_per_epoch <= 0:
        raise ValueError(f"epochs ({epochs}) and iters_per_epoch ({iters_per_epoch}) must be positive")
    if not 0 <= warmup_epochs <= epochs:
        raise ValueError(f"warmup_epochs={warmup_epochs} must lie in [0, epochs={epochs}]")
    warmup_iters = warmup_epochs * iters_per_epoch
    warmup = np.linspace(start_warmup_value, base_value, warmup_iters) if warmup_iters > 0 else np.array([])
    steps = np.arange(epochs * iters_per_epoch - warmup_iters)
    cosine = final_value + 0.5 * (base_value - final_value) * (1 + np.cos(np.pi * steps / max(len(steps), 1)))
    schedule = np.concatenate((warmup, cosine))
    assert len(schedule) == epochs * iters_per_epoch
    return schedule


__all__ = [
    "CheckpointError", "CorruptCheckpointError", "DistInfo", "JsonlLog", "NonFiniteLossError",
    "TruncatedCheckpointError", "UnsafeCheckpointError", "all_reduce_mean", "barrier", "broadcast_object",
    "capture_rng_state", "check_finite", "cleanup_distributed", "compare_resume_config", "cosine_schedule",
    "dist_info", "init_distributed", "load_checkpoint", "progress", "read_torch_file", "remove_orphan_temporaries",
    "resolve_device", "restore_rng_state", "resume_source", "save_checkpoint", "seed_everything", "unwrap",
]


def gather_rng_states(info: DistInfo) -> list[dict[str, Any]]:
    """Every rank's RNG state (a list indexed by rank), so a resumed DDP run draws the same numbers on each rank."""
    state = capture_rng_state()
    if not info.distributed:
        return [state]
    states: list[Any] = [None] * info.world_size
    dist.all_gather_object(states, state)
    return states


def resolve_amp(amp: str, device: torch.device) -> str:
    """Mixed-precision mode: ``auto`` → ``bf16`` on CUDA, ``none`` on CPU; ``fp16`` (GradScaler) needs CUDA."""
    if amp not in ("auto", "bf16", "fp16", "none"):
        raise ValueError(f"amp must be 'auto', 'bf16', 'fp16' or 'none', got {amp!r}")
    if amp == "auto":
        return "bf16" if device.type == "cuda" else "none"
    if amp == "fp16" and device.type != "cuda":
        raise ValueError("amp='fp16' (GradScaler) needs a CUDA device; use 'bf16' or 'none' on CPU")
    return amp


def restore_rank_rng(states: list[dict[str, Any]] | None, info: DistInfo, *, seed: int, epoch: int) -> None:
    """Restore this rank's RNG state from :func:`gather_rng_states`'s list; with another world size, reseed.

    Resuming with the same number of processes is bit-exact; with a different one it cannot be, and says so.
    """
    if states and len(states) == info.world_size:
        restore_rng_state(states[info.rank])
        return
    logger.warning("checkpoint RNG states are for %s process(es), running %d: reseeding (not bit-exact)",
                   len(states) if states else 0, info.world_size)
    seed_everything(seed + 1000 * epoch + info.rank)
