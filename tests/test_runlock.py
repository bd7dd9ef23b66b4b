"""One run per output folder (issue 13, fix 1): the lock every trainer holds."""
import json
import logging
import os
import socket
import subprocess
import sys

import pytest

from reid_lab import config
from reid_lab.runlock import LOCK_NAME, RunLock, RunLockedError


def _write_lock(folder, pid, host=None):
    folder.mkdir(parents=True, exist_ok=True)
    record = {"pid": pid, "host": host or socket.gethostname(), "started": 0, "command": "reid-lab train --seed 1"}
    (folder / LOCK_NAME).write_text(json.dumps(record))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_is_exclusive_and_released(tmp_path):
    with RunLock(tmp_path / "run") as lock:
        holder = json.loads(lock.path.read_text())
        assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
        with pytest.raises(RunLockedError, match=f"in use by pid {os.getpid()}"):
            RunLock(tmp_path / "run").acquire()
    assert not (tmp_path / "run" / LOCK_NAME).exists()
    RunLock(tmp_path / "run").acquire().release()


def test_live_holder_refused_stale_taken_over_with_warning(tmp_path, caplog):
    _write_lock(tmp_path / "live", os.getppid())  # a live process that is not us
    with pytest.raises(RunLockedError, match=f"pid {os.getppid()} .*reid-lab train --seed 1"):
        RunLock(tmp_path / "live").acquire()
    _write_lock(tmp_path / "other", 1, host="some-other-host")
    with pytest.raises(RunLockedError, match=f"another host.*delete {tmp_path / 'other' / LOCK_NAME}"):
        RunLock(tmp_path / "other").acquire()
    dead = _dead_pid()
    _write_lock(tmp_path / "stale", dead)
    with caplog.at_level(logging.WARNING, logger="reid_lab.runlock"):
        lock = RunLock(tmp_path / "stale").acquire()
    assert f"stale lock of a run that is gone (pid {dead}" in caplog.text
    assert json.loads(lock.path.read_text())["pid"] == os.getpid()
    lock.release()


def test_every_trainer_refuses_a_folder_in_use(tmp_path):
    """The lock is taken before any data or model work: a held folder fails at once, for all four trainers."""
    from reid_lab.reid.supervised import train
    from reid_lab.ssl.train import pretrain
    from reid_lab.usl.train import train_uda, train_usl

    src = tmp_path / "source.pth"
    src.write_bytes(b"")
    _write_lock(tmp_path / "busy", os.getppid())
    calls = {
        "pretrain": lambda: pretrain(config.resolve("pretrain", "smoke"), [], tmp_path / "busy"),
        "train": lambda: train(config.resolve("supervised", "smoke"), None, output_dir=tmp_path / "busy"),
        "usl": lambda: train_usl(config.resolve("usl", "smoke"), None, tmp_path / "busy"),
        "uda": lambda: train_uda(config.resolve("uda", "smoke"), None, src, tmp_path / "busy"),
    }
    for name, call in calls.items():
        with pytest.raises(RunLockedError, match="in use by pid"):
            call()
    assert json.loads((tmp_path / "busy" / LOCK_NAME).read_text())["pid"] == os.getppid()  # not touched


def test_orphan_temporaries_are_removed_when_a_trainer_starts(tmp_path):
    from reid_lab.ssl.train import pretrain

    orphan = tmp_path / "run" / ".checkpoint.pth.x1y2.tmp"
    orphan.parent.mkdir()
    orphan.write_bytes(b"killed mid-write")
    with pytest.raises(ValueError, match="holds no images"):  # the lock is taken (and the folder cleaned) first
        pretrain(config.resolve("pretrain", "smoke"), [], tmp_path / "run")
    assert not orphan.exists() and not (tmp_path / "run" / LOCK_NAME).exists()
