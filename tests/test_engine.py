"""reid_lab.engine: schedules, RNG capture, atomic checkpoints, the NaN guard, JSON-lines logs, devices, DDP env."""
from __future__ import annotations

import argparse
import math
import random

import numpy as np
import pytest
import torch

from reid_lab import engine


# ----------------------------------------------------------------------------------------------- schedules
def test_cosine_schedule_hand_computed():
    # 2 epochs x 2 iterations, 1 warm-up epoch: warm-up linspace(0, 1, 2) then cosine over 2 steps
    np.testing.assert_allclose(engine.cosine_schedule(1.0, 0.0, 2, 2, warmup_epochs=1), [0.0, 1.0, 1.0, 0.5])
    # no warm-up, 4 steps: final + (base - final)(1 + cos(pi i / 4)) / 2
    expected = [1.0, 0.5 * (1 + math.cos(math.pi / 4)), 0.5, 0.5 * (1 + math.cos(3 * math.pi / 4))]
    np.testing.assert_allclose(engine.cosine_schedule(1.0, 0.0, 1, 4), expected)
    # DINO's teacher momentum 0.996 -> 1 starts at 0.996 and rises monotonically towards 1
    m = engine.cosine_schedule(0.996, 1.0, 3, 5)
    assert m[0] == pytest.approx(0.996) and np.all(np.diff(m) > 0) and m[-1] < 1.0


def test_cosine_schedule_rejects_bad_input():
    with pytest.raises(ValueError, match="warmup_epochs=10"):
        engine.cosine_schedule(1.0, 0.0, 8, 3, warmup_epochs=10)
    with pytest.raises(ValueError, match="positive"):
        engine.cosine_schedule(1.0, 0.0, 0, 3)


# ----------------------------------------------------------------------------------------------- RNG
def _draw() -> tuple:
    return random.random(), float(np.random.rand()), torch.rand(3).tolist(), torch.randint(0, 1000, (2,)).tolist()


def test_rng_state_round_trip_through_a_weights_only_checkpoint(tmp_path):
    engine.seed_everything(123)
    _draw()
    state = engine.capture_rng_state()
    expected = _draw()
    _draw()  # move every generator on
    engine.save_checkpoint({"rng": state}, tmp_path / "rng.pth")
    engine.restore_rng_state(engine.load_checkpoint(tmp_path / "rng.pth")["rng"])
    assert _draw() == expected


def test_seed_everything_rejects_negative_seed():
    with pytest.raises(ValueError, match="non-negative"):
        engine.seed_everything(-1)


# ----------------------------------------------------------------------------------------------- checkpoints
def test_checkpoint_round_trip_and_weights_only(tmp_path):
    state = {"w": torch.arange(6.0).reshape(2, 3), "epoch": 3, "args": {"arch": "vit_tiny", "size": (64, 32)}}
    path = engine.save_checkpoint(state, tmp_path / "sub" / "ckpt.pth")
    loaded = engine.load_checkpoint(path)
    assert torch.equal(loaded["w"], state["w"]) and loaded["epoch"] == 3 and loaded["args"] == state["args"]
    assert [p.name for p in path.parent.iterdir()] == ["ckpt.pth"]  # no temporary file left behind


def test_load_checkpoint_refuses_pickled_objects_and_missing_files(tmp_path):
    torch.save({"args": argparse.Namespace(lr=0.1)}, tmp_path / "pickled.pth")
    with pytest.raises(engine.UnsafeCheckpointError, match="pickled.pth.*weights_only"):
        engine.load_checkpoint(tmp_path / "pickled.pth")
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        engine.load_checkpoint(tmp_path / "nope.pth")


def test_load_checkpoint_tells_corrupt_truncated_and_unsafe_apart(tmp_path):
    good = engine.save_checkpoint({"w": torch.zeros(1000), "epoch": 1}, tmp_path / "good.pth")
    data = good.read_bytes()
    (tmp_path / "random.pth").write_bytes(bytes(range(7, 256)) * 40)  # starts with b"\x07\x08\t\n"
    (tmp_path / "half.pth").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.pth").write_bytes(b"")
    torch.save({"args": argparse.Namespace(lr=0.1)}, tmp_path / "pickled.pth")
    for name, kind, words in (("random", engine.CorruptCheckpointError, "not a PyTorch checkpoint"),
                              ("half", engine.TruncatedCheckpointError, "truncated"),
                              ("empty", engine.TruncatedCheckpointError, "empty"),
                              ("pickled", engine.UnsafeCheckpointError, "Python objects")):
        with pytest.raises(kind, match=f"{tmp_path / name}.pth.*{words}|{words}.*{tmp_path / name}.pth") as info:
            engine.load_checkpoint(tmp_path / f"{name}.pth")
        assert isinstance(info.value, engine.CheckpointError)
        if kind is not engine.UnsafeCheckpointError:
            assert "Python objects" not in str(info.value)


def test_load_pretrained_and_reid_model_report_the_path(tmp_path):
    from reid_lab.models import build_backbone, load_pretrained
    from reid_lab.models.weights import ArchitectureMismatchError
    from reid_lab.reid.model import build_reid_model, load_reid_model, reid_checkpoint

    (tmp_path / "cut.pth").write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(engine.TruncatedCheckpointError, match="cut.pth"):
        load_pretrained(build_backbone("vit_tiny", img_size=(64, 32)), tmp_path / "cut.pth")
    small = build_reid_model("vit_tiny", 3, (64, 32))
    engine.save_checkpoint(reid_checkpoint(small, source="supervised"), tmp_path / "tiny.pth")
    with pytest.raises(ArchitectureMismatchError, match="tiny.pth.*wrong architecture"):
        load_reid_model(tmp_path / "tiny.pth", arch="vit_small")


def test_orphan_temporaries_of_killed_writes_are_removed(tmp_path):
    engine.save_checkpoint({"epoch": 1}, tmp_path / "checkpoint.pth")
    orphans = [tmp_path / ".checkpoint.pth.abc123.tmp", tmp_path / "log.jsonl.tmp"]
    for orphan in orphans:
        orphan.write_bytes(b"half a write")
    (tmp_path / "notes.tmp.txt").write_text("kept")
    assert engine.remove_orphan_temporaries(tmp_path) == sorted(orphans)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pth", "notes.tmp.txt"]


def test_save_checkpoint_is_atomic_when_writing_fails(tmp_path, monkeypatch):
    path = engine.save_checkpoint({"epoch": 1}, tmp_path / "ckpt.pth")

    def broken_save(obj, fh):
        fh.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        engine.save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert engine.load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pth"]


# ----------------------------------------------------------------------------------------------- NaN guard
def test_check_finite(tmp_path):
    assert engine.check_finite(torch.tensor(2.5), epoch=0, step=0) == 2.5
    with pytest.raises(engine.NonFiniteLossError, match="no checkpoint had been written"):
        engine.check_finite(float("nan"), epoch=0, step=3)
    ckpt = engine.save_checkpoint({"epoch": 1}, tmp_path / "checkpoint.pth")
    with pytest.raises(engine.NonFiniteLossError,
                       match=r"loss is inf at epoch 2, global step 17.*checkpoint.pth is intact"):
        engine.check_finite(torch.tensor(float("inf")), epoch=2, step=17, last_checkpoint=ckpt)


# ----------------------------------------------------------------------------------------------- logs
def test_jsonl_log_append_read_truncate(tmp_path):
    log = engine.JsonlLog(tmp_path / "log.jsonl")
    for epoch in range(4):
        log.append({"epoch": epoch, "loss": torch.tensor(1.0 / (epoch + 1)), "x": np.float32(2.0)})
    assert [r["epoch"] for r in log.read()] == [0, 1, 2, 3]
    assert log.read()[1]["loss"] == pytest.approx(0.5) and log.read()[0]["x"] == 2.0
    kept = log.truncate("epoch", 1)
    assert [r["epoch"] for r in kept] == [0, 1] and log.read() == kept
    silent = engine.JsonlLog(tmp_path / "other.jsonl", enabled=False)
    silent.append({"epoch": 0})
    assert not silent.path.exists()


def test_progress_bar_can_be_disabled():
    assert list(engine.progress(range(3), enabled=False)) == [0, 1, 2]


# ----------------------------------------------------------------------------------------------- devices / DDP
def test_resolve_device():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert engine.resolve_device("auto").type == expected
    assert engine.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="invalid device 'gpu0'"):
        engine.resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            engine.resolve_device("cuda")


def test_init_distributed_single_process_and_bad_env(monkeypatch):
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    info, dev = engine.init_distributed("cpu")
    assert info == engine.DistInfo(0, 1, 0) and not info.distributed and info.is_main and dev.type == "cpu"
    assert torch.equal(engine.all_reduce_mean(torch.tensor([1.0, 3.0])), torch.tensor([1.0, 3.0]))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    with pytest.raises(RuntimeError, match="MASTER_ADDR is not set"):
        engine.init_distributed("cpu")
    monkeypatch.setenv("RANK", "2")
    with pytest.raises(ValueError, match="RANK=2"):
        engine.init_distributed("cpu")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE='two'"):
        engine.init_distributed("cpu")


def test_unwrap():
    inner = torch.nn.Linear(2, 2)
    assert engine.unwrap(inner) is inner
    assert engine.unwrap(torch.nn.DataParallel(inner)) is inner
