"""The fast dev run (reid_lab.dryrun): what it caps and keeps, how it marks outputs, and what it refuses."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from reid_lab import dryrun, engine
from reid_lab.cli import build_parser
from reid_lab.config import resolve
from reid_lab.data import ReIDDataset, Sample
from reid_lab.tutorial import save_metrics


@pytest.fixture
def dry(monkeypatch):
    """Activate a dry run of N iterations for one test (the environment variable is restored afterwards)."""
    monkeypatch.delenv(dryrun.ENV, raising=False)
    for name in (dryrun.WORLD_ENV, "WORLD_SIZE"):  # batches sized for the default 2 processes
        monkeypatch.delenv(name, raising=False)

    def on(n: int) -> None:
        monkeypatch.setenv(dryrun.ENV, str(n))
    return on


def test_supervised_caps_the_loops_and_keeps_the_code_path(dry):
    full = resolve("supervised", "full", dry_run=0)
    capped, text = dryrun.cap_config("supervised", full, 3)
    assert (capped.epochs, capped.warmup_epochs, capped.eval_period, capped.batch_size) == (2, 1, 2, 16)  # 2x2 ids x 4
    assert (capped.arch, capped.height, capped.width, capped.num_instances, capped.triplet_margin) == \
        ("vit_small_ics", 256, 128, 4, None)
    assert text == "epochs 120->2, warmup_epochs 20->1, eval_period 120->2, batch_size 64->16"
    assert dryrun.cap_config("supervised", full, 0) == (full, "")


def test_usl_batch_keeps_whole_identities_and_bn_chunks(dry):
    usl = resolve("usl", "full", dry_run=0)  # batch 256, 8 instances, 4 BN chunks, 200 iterations
    capped, _ = dryrun.cap_config("usl", usl, 3)
    assert (capped.iters, capped.batch_size, capped.bn_chunks, capped.epochs, capped.eval_step) == (3, 8, 4, 2, 2)
    assert capped.eps == 0.6 and capped.k1 == 30
    odd = resolve("usl", "full", dry_run=0, bn_chunks=3, batch_size=48)
    assert dryrun.cap_config("usl", odd, 1)[0].batch_size == 24  # 8 and 16 do not split in 3 chunks, 24 does


def test_pretrain_keeps_crops_and_head_sizes(dry):
    capped, _ = dryrun.cap_config("pretrain", resolve("pretrain", "full", dry_run=0), 2)
    assert (capped.epochs, capped.warmup_epochs, capped.batch_size) == (2, 1, 4)
    assert (capped.out_dim, capped.local_crops_number, capped.global_size, capped.local_size, capped.keep_ratio) == \
        (65_536, 8, (256, 128), (128, 64), 0.6)


def test_batches_are_sized_for_the_process_count(dry, monkeypatch):
    sup, usl = resolve("supervised", "full", dry_run=0), resolve("usl", "full", dry_run=0, bn_chunks=2)
    monkeypatch.setenv("WORLD_SIZE", "4")  # inside a 4-process torchrun job
    assert dryrun.cap_config("supervised", sup, 1)[0].batch_size == 32  # 2 ids of 4 images per process
    assert dryrun.cap_config("pretrain", resolve("pretrain", "full", dry_run=0), 1)[0].batch_size == 8
    monkeypatch.setenv(dryrun.WORLD_ENV, "3")  # said explicitly (a notebook loading a 3-process job's runs)
    assert dryrun.cap_config("supervised", sup, 1)[0].batch_size == 24
    assert dryrun.cap_config("usl", usl, 1)[0].batch_size == 24  # multiple of 8 instances, 2 chunks and 3 processes


def test_resolve_caps_while_a_dry_run_is_active(dry):
    assert resolve("supervised", "full").epochs == 120
    dry(2)
    assert resolve("supervised", "full").epochs == 2
    assert resolve("supervised", "full", epochs=120, eval_period=120).eval_period == 2  # caps apply after overrides
    assert resolve("supervised", "full", dry_run=0).epochs == 120
    assert dryrun.limit(500) == 2 and dryrun.limit(1) == 1


def test_limit_and_pool_head_are_untouched_without_a_dry_run(dry):
    names = [f"{i:03d}.jpg" for i in range(100)]
    assert dryrun.limit(500) == 500 and dryrun.subset_names(names) == names
    dry(2)
    assert dryrun.subset_names(names) == names[:64]  # 32 images per iteration of the cap


def test_subset_dataset_keeps_few_ids_relabelled_and_the_junk():
    train = [Sample(f"t{p}_{i}.jpg", p, i % 2) for p in range(10, 40) for i in range(3)]  # 30 ids
    query = [Sample(f"q{p}.jpg", p, 0) for p in range(1, 21)]
    gallery = ([Sample(f"g{p}.jpg", p, 1) for p in range(1, 21)] + [Sample("junk.jpg", -1, 1)]
               + [Sample("distractor.jpg", 0, 2)])
    ds = ReIDDataset("Toy", Path("."), train, query, gallery)
    small = dryrun.subset_dataset(ds, 1)
    assert sorted({s.pid for s in small.train}) == list(range(16)) and len(small.train) == 48
    assert [s.pid for s in small.query] == list(range(1, 9))
    assert [s.pid for s in small.gallery] == [*range(1, 9), -1, 0]
    assert dryrun.subset_dataset(ds, 0) is ds and len(ds.train) == 90  # the original is untouched


def test_outputs_are_marked(dry, tmp_path):
    dry(3)
    log = engine.JsonlLog(tmp_path / "log.jsonl")
    log.append({"epoch": 1})
    assert log.read() == [{"epoch": 1, "dry_run": 3}]
    assert json.loads(save_metrics(tmp_path, {"mAP": 0.5}).read_text()) == {"dry_run": 3, "mAP": 0.5}
    engine.save_checkpoint({"format": "reid_lab", "model": {}}, tmp_path / "c.pth")
    assert torch.load(tmp_path / "c.pth", weights_only=True)["dry_run"] == 3


def test_a_real_run_refuses_a_dry_run_checkpoint(dry, monkeypatch, tmp_path):
    dry(2)
    engine.save_checkpoint({"trainer": "reid_lab.supervised", "epoch": 1}, tmp_path / "checkpoint.pth")
    assert engine.load_checkpoint(tmp_path / "checkpoint.pth")["epoch"] == 1  # another dry run may use it
    monkeypatch.delenv(dryrun.ENV)
    with pytest.raises(dryrun.DryRunMismatchError, match="written by a dry run"):
        engine.load_checkpoint(tmp_path / "checkpoint.pth")


def test_a_dry_run_refuses_a_real_reid_lab_checkpoint_but_not_outside_weights(dry, tmp_path):
    engine.save_checkpoint({"format": "reid_lab", "model": {}}, tmp_path / "real.pth")
    torch.save({"blocks.0.weight": torch.zeros(1)}, tmp_path / "released.pth")
    dry(2)
    with pytest.raises(dryrun.DryRunMismatchError, match="written by a real run"):
        engine.load_checkpoint(tmp_path / "real.pth")
    assert set(engine.read_torch_file(tmp_path / "released.pth")) == {"blocks.0.weight"}


def test_supervised_resume_of_a_dry_run_checkpoint_fails_in_a_real_run(dry, monkeypatch, tmp_path):
    from reid_lab.reid import train

    pids = [p for p in range(4) for _ in range(4)]
    images = []
    for i, p in enumerate(pids):
        path = tmp_path / f"{p:04d}_c{i % 2 + 1}s1_{i:06d}_00.jpg"
        Image.new("RGB", (16, 32), (40 * p, 30, 200 - 40 * p)).save(path)
        images.append(Sample(str(path), p, i % 2))
    ds = ReIDDataset("Toy", tmp_path, images, images[::4], images[1::2])
    cfg = resolve("supervised", "smoke", height=32, width=16, batch_size=8, num_instances=2, epochs=3)
    dry(1)
    result = train(resolve("supervised", "smoke", height=32, width=16, batch_size=8, num_instances=2, epochs=3),
                   ds, tmp_path / "run", device="cpu", progress=False)
    assert result["epochs_done"] == 2 and result["finished"]  # 3 epochs capped at 2
    assert [r["dry_run"] for r in engine.JsonlLog(tmp_path / "run" / "log.jsonl").read()] == [1, 1]
    monkeypatch.delenv(dryrun.ENV)
    with pytest.raises(dryrun.DryRunMismatchError):
        train(cfg, ds, tmp_path / "run", device="cpu", progress=False, resume=True)


@pytest.mark.parametrize("command", [["pretrain"], ["train"], ["usl"], ["uda", "--source-checkpoint", "m.pth"],
                                     ["tutorial"]])
def test_every_training_command_takes_dry_run(command):
    assert build_parser().parse_args([*command, "--dry-run", "2"]).dry_run == 2
    assert build_parser().parse_args(command).dry_run == 0
