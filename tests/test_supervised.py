"""Supervised fine-tuning (docs/reference.md §4): model layout, checkpoints, the train loop, exact resume, NaN stop, 2-process DDP.

A hand-made dataset (8 identities, 64×32 images whose colours and stripes encode the identity) keeps every run
to a few seconds.
"""
from __future__ import annotations

import argparse
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from reid_lab import engine
from reid_lab.config import resolve
from reid_lab.data import ReIDDataset, Sample
from reid_lab.models import build_backbone, load_pretrained
from reid_lab.reid import ReIDModel, build_reid_model, load_reid_model, reid_checkpoint, train

from fixtures_data import toy_reid_world

IDS = 8


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> ReIDDataset:
    root = tmp_path_factory.mktemp("toy_reid")
    return toy_reid_world(root, IDS)


def _cfg(**overrides):
    base = dict(arch="vit_tiny", height=64, width=32, epochs=3, warmup_epochs=1, batch_size=16, num_instances=4,
                eval_period=2, base_lr=0.01)
    base.update(overrides)
    return resolve("supervised", "smoke", **base)


# ------------------------------------------------------------------------------------------------ model
def test_model_has_transreid_layout_and_modes():
    torch.manual_seed(0)
    model = build_reid_model("vit_tiny", num_classes=5, img_size=(64, 32))
    keys = list(model.state_dict())
    assert {k for k in keys if not k.startswith("base.")} == {
        "bottleneck.weight", "bottleneck.bias", "bottleneck.running_mean", "bottleneck.running_var",
        "bottleneck.num_batches_tracked", "classifier.weight"}
    assert "base.cls_token" in keys and "base.blocks.0.attn.qkv.weight" in keys
    assert model.classifier.weight.shape == (5, 192) and not model.bottleneck.bias.requires_grad
    x = torch.randn(4, 3, 64, 32)
    logits, feat = model.train()(x)
    assert logits.shape == (4, 5) and feat.shape == (4, 192)
    model.eval()
    torch.testing.assert_close(model(x), model.base(x))  # eval feature = pre-BN CLS (NECK_FEAT 'before')


def test_checkpoint_loads_as_backbone_and_as_reid_model(tmp_path):
    torch.manual_seed(0)
    model = build_reid_model("vit_tiny_ics", num_classes=3, img_size=(64, 32)).eval()
    engine.save_checkpoint(reid_checkpoint(model, epoch=1), tmp_path / "m.pth")
    # (a) load_pretrained reads its backbone (base.* stripped, neck/classifier ignored)
    backbone = build_backbone("vit_tiny_ics", img_size=(64, 32)).eval()
    report = load_pretrained(backbone, tmp_path / "m.pth")
    assert "classifier.weight" in report.ignored and not report.missing
    x = torch.randn(2, 3, 64, 32)
    torch.testing.assert_close(backbone(x), model(x))
    # (b) the whole model comes back, classifier included
    again = load_reid_model(tmp_path / "m.pth")
    assert isinstance(again, ReIDModel) and again.num_classes == 3 and again.arch == "vit_tiny_ics"
    torch.testing.assert_close(again(x), model(x))
    # (c) an official-style flat state dict with DDP prefix and the unused fc
    official = {f"module.{k}": v for k, v in model.state_dict().items()}
    official["module.base.fc.weight"] = torch.zeros(1000, 192)
    torch.testing.assert_close(load_reid_model(official, img_size=(64, 32))(x), model(x))


def test_pretrained_backbone_initialises_reid_model(tmp_path):
    from reid_lab.models import make_checkpoint

    torch.manual_seed(1)
    src = build_backbone("vit_tiny", img_size=(64, 32))
    engine.save_checkpoint(make_checkpoint(src), tmp_path / "b.pth")
    model = build_reid_model("vit_tiny", 4, (64, 32), pretrained=tmp_path / "b.pth")
    torch.testing.assert_close(model.base.state_dict()["pos_embed"], src.state_dict()["pos_embed"])


# ------------------------------------------------------------------------------------------------ training
def _flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([v.float().flatten() for v in model.state_dict().values()])


def test_train_evaluates_logs_and_resumes_exactly(dataset, tmp_path):
    full = train(_cfg(), dataset, tmp_path / "full", device="cpu", progress=False, rerank=True)
    assert full["finished"] and full["epochs_done"] == 3 and full["num_classes"] == IDS
    assert [r["epoch"] for r in full["history"]] == [1, 2, 3]
    evaluated = [r["epoch"] for r in full["history"] if "mAP" in r]
    assert evaluated == [2, 3]  # every eval_period and at the end
    m = full["metrics"]
    for key in ("mAP", "rank1", "rank5", "rank10", "mINP", "rerank_mAP", "rerank_rank1", "rerank_mINP"):
        assert 0.0 <= m[key] <= 1.0, key
    assert len(engine.JsonlLog(tmp_path / "full" / "log.jsonl").read()) == 3
    assert (tmp_path / "full" / "model.pth").is_file()
    assert np.isfinite([r["loss"] for r in full["history"]]).all()

    part = train(_cfg(), dataset, tmp_path / "part", device="cpu", progress=False, rerank=True, stop_after=1)
    assert part["epochs_done"] == 1 and not part["finished"] and part["model_path"] is None
    resumed = train(_cfg(), dataset, tmp_path / "part", device="cpu", progress=False, rerank=True, resume=True)
    assert resumed["epochs_done"] == 3
    assert torch.equal(_flat(resumed["model"]), _flat(full["model"]))
    assert [r["loss"] for r in resumed["history"]] == [r["loss"] for r in full["history"]]
    assert resumed["metrics"] == full["metrics"]
    assert len(engine.JsonlLog(tmp_path / "part" / "log.jsonl").read()) == 3


def test_training_learns_the_toy_identities(dataset, tmp_path):
    result = train(_cfg(epochs=6, warmup_epochs=1, drop_path_rate=0.0, base_lr=0.02), dataset, tmp_path, device="cpu",
                   progress=False, eval_period=6)
    first, last = result["history"][0], result["history"][-1]
    assert last["loss"] < 0.7 * first["loss"] and last["triplet_loss"] < first["triplet_loss"]
    assert last["accuracy"] > 2.0 / IDS  # ID accuracy well above chance (1/8) on the training batches


def test_resume_refuses_another_architecture(dataset, tmp_path):
    train(_cfg(epochs=1), dataset, tmp_path, device="cpu", progress=False)
    with pytest.raises(ValueError, match="arch"):
        train(_cfg(epochs=1, arch="vit_tiny_ics"), dataset, tmp_path, device="cpu", progress=False, resume=True)


def test_nan_loss_stops_before_the_update(dataset, tmp_path):
    def nan_images(img):
        return torch.full((3, 64, 32), float("nan"))

    with pytest.raises(engine.NonFiniteLossError, match="epoch 1, global step 0.*no checkpoint"):
        train(_cfg(), dataset, tmp_path, device="cpu", progress=False, train_transform=nan_images)
    assert not (tmp_path / "checkpoint.pth").exists()


def test_cli_registers_train_and_evaluate(tmp_path):
    from reid_lab.reid.cli import add_supervised_parsers

    parser = argparse.ArgumentParser()
    add_supervised_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["train", "--profile", "smoke", "--dataset", "market1501", "--arch", "vit_small_ics",
                              "--pretrained", "x.pth", "--set", "warmup_epochs=2"])
    assert (args.arch, args.pretrained, args.set) == ("vit_small_ics", "x.pth", ["warmup_epochs=2"])
    args = parser.parse_args(["evaluate", "--checkpoint", "m.pth", "--rerank"])
    assert args.rerank and args.checkpoint == "m.pth"


# ------------------------------------------------------------------------------------------------ DDP
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, port: int, root: str, out: str, samples: dict) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE="2", LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    info, _ = engine.init_distributed("cpu")
    try:
        ds = ReIDDataset(name="Toy", root=Path(root), **{k: [Sample(*s) for s in v] for k, v in samples.items()})
        result = train(_cfg(epochs=1, eval_period=1), ds, Path(out) / "run", device="cpu", progress=False)
        params = torch.cat([p.detach().flatten() for p in result["model"].parameters()])  # BN buffers stay per rank
        torch.save({"flat": params, "history": result["history"]}, Path(out) / f"rank{rank}.pth")
    finally:
        engine.cleanup_distributed()


def test_ddp_two_gloo_processes(dataset, tmp_path):
    samples = {k: [tuple(s) for s in getattr(dataset, k)] for k in ("train", "query", "gallery")}
    mp.spawn(_ddp_worker, args=(_free_port(), str(dataset.root), str(tmp_path), samples), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pth", weights_only=True) for r in (0, 1))
    assert torch.equal(r0["flat"], r1["flat"])  # DDP kept the replicas' weights identical
    assert "mAP" in r0["history"][0] and "mAP" not in r1["history"][0]  # only rank 0 evaluates
    assert r0["history"][0]["loss"] == r1["history"][0]["loss"]  # the logged loss is averaged over ranks
    ckpt = engine.load_checkpoint(tmp_path / "run" / "checkpoint.pth")
    assert ckpt["world_size"] == 2 and not any(k.startswith("module.") for k in ckpt["model"])
    assert len(ckpt["rng"]) == 2
