"""One trainer per run directory: an exclusive lock file in the output folder.

Two runs writing into one folder would interleave ``log.jsonl`` and overwrite each other's ``checkpoint.pth``
without a word. Every trainer (``pretrain``, ``train``, ``usl``/``uda``) is wrapped in :func:`locked_run`, which
holds ``<output_dir>/.reid_lab.lock`` for the whole call:

* the lock file records ``pid``, ``host``, start time and command line (JSON); it is written under a temporary
  name and ``os.link``-ed into place, which fails atomically when a lock already exists;
* a lock held by a live process is refused with :class:`RunLockedError` naming the holder;
* a stale lock (same host, dead pid: a killed run) is taken over with a warning; a lock of another host cannot be
  checked and is refused, naming the file to delete if that run is really gone;
* once the lock is held, orphan temporary files of interrupted atomic writes are removed
  (:func:`reid_lab.engine.remove_orphan_temporaries`).

Under torchrun only rank 0 takes the lock; the outcome is broadcast so every rank stops on a refusal.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from . import engine

logger = logging.getLogger(__name__)

LOCK_NAME = ".reid_lab.lock"
F = TypeVar("F", bound=Callable[..., Any])


class RunLockedError(RuntimeError):
    """Another live process is writing into this run directory."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read_holder(path: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _describe(holder: dict[str, Any]) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(holder.get("started", 0)))
    return f"pid {holder.get('pid')} on {holder.get('host')} since {started} ({holder.get('command', '?')})"


class RunLock:
    """Exclusive lock on ``run_dir`` (module docstring); use as a context manager or call acquire/release."""

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self.held = False

    def _try_create(self) -> bool:
        record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time(),
                  "command": " ".join(sys.argv)}
        tmp = self.run_dir / f"{LOCK_NAME}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(record), encoding="utf-8")
        try:
            os.link(tmp, self.path)
            return True
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)

    def acquire(self) -> RunLock:
        """Take the lock, taking over a stale one; raise :class:`RunLockedError` while a live process holds it."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # a takeover can race with another starter; the loser sees a live holder next round
            if self._try_create():
                self.held = True
                return self
            holder = _read_holder(self.path)
            if holder is None and not self.path.exists():  # released meanwhile: try again
                continue
            if holder is None:  # never half-written (created by link), so damaged: nothing to protect
                logger.warning("unreadable run lock %s: taking it over", self.path)
            elif holder.get("host") != socket.gethostname():
                raise RunLockedError(
                    f"run directory {self.run_dir} is locked by {_describe(holder)}, another host: this cannot be "
                    f"checked from here. Use another output folder, or delete {self.path} if that run is gone.")
            elif _pid_alive(int(holder.get("pid", -1))):
                raise RunLockedError(
                    f"run directory {self.run_dir} is in use by {_describe(holder)}: two runs would mix their logs "
                    "and checkpoints. Wait for it to finish or choose another output folder.")
            else:
                logger.warning("taking over the stale lock of a run that is gone (%s) in %s", _describe(holder),
                               self.run_dir)
            self.path.unlink(missing_ok=True)
        raise RunLockedError(f"could not take the lock {self.path}: other processes keep taking it")

    def release(self) -> None:
        """Remove the lock file if this object holds it."""
        if self.held:
            holder = _read_holder(self.path)
            if holder is not None and holder.get("pid") == os.getpid():
                self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


@contextlib.contextmanager
def hold_run_dir(run_dir: str | os.PathLike) -> Iterator[Path]:
    """Hold the lock on ``run_dir`` (rank 0 under torchrun) and clear orphan temporaries; yield the folder."""
    run_dir = Path(run_dir)
    info = engine.dist_info()
    lock = RunLock(run_dir)
    refusal = ""
    if info.is_main:
        try:
            lock.acquire()
            engine.remove_orphan_temporaries(run_dir)
        except RunLockedError as err:
            refusal = str(err)
    refusal = engine.broadcast_object(refusal)
    if refusal:
        raise RunLockedError(refusal)
    try:
        yield run_dir
    finally:
        lock.release()


def locked_run(func: F) -> F:
    """Decorator for trainers: hold the lock on the ``output_dir`` argument for the duration of the call."""
    signature = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        output_dir = signature.bind(*args, **kwargs).arguments["output_dir"]
        with hold_run_dir(output_dir):
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


__all__ = ["LOCK_NAME", "RunLock", "RunLockedError", "hold_run_dir", "locked_run"]
