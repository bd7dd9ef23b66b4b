"""USL under DDP: 2 CPU processes (gloo) against one process with the same global batch and BN chunks.

Workers join through the variables torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``). Augmentation and drop path are off, so the only differences between the runs are where the work
happens: sharded feature extraction + all-gather, DBSCAN on rank 0 + broadcast, per-rank batch slices, the memory
update on the all-gathered batch, DDP's gradient averaging and the BN-buffer broadcast.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.multiprocessing as mp

from reid_lab import engine
from reid_lab.data import ReIDDataset, Sample
from reid_lab.usl import build_usl_model
from test_supervised import _free_port
from test_usl import _cfg, dataset  # noqa: F401  (the toy dataset fixture)

WORLD = 2


def _run(ds: ReIDDataset, out: Path):
    from reid_lab.data import build_usl_transforms
    from reid_lab.usl import train_usl

    cfg = _cfg(drop_path_rate=0.0, bn_chunks=2, epochs=2, eval_step=2)
    return train_usl(cfg, ds, out, device="cpu", show_progress=False,
                     train_transform=build_usl_transforms(cfg.height, cfg.width, train=False))


def _worker(rank: int, port: int, root: str, out: str, samples: dict) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    engine.init_distributed("cpu")
    try:
        ds = ReIDDataset(name="Toy", root=Path(root), **{k: [Sample(*s) for s in v] for k, v in samples.items()})
        result = _run(ds, Path(out) / "run")
        torch.save({"state": result.model.state_dict(), "history": result.history, "final": result.final},
                   Path(out) / f"rank{rank}.pth")
    finally:
        engine.cleanup_distributed()


def test_two_gloo_processes_match_one_process(dataset, tmp_path):  # noqa: F811
    samples = {k: [tuple(s) for s in getattr(dataset, k)] for k in ("train", "query", "gallery")}
    mp.spawn(_worker, args=(_free_port(), str(dataset.root), str(tmp_path), samples), nprocs=WORLD, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pth", weights_only=True) for r in range(WORLD))

    # ranks end identical: weights *and* BN buffers, pseudo labels and the logged (all-reduced) loss
    for key, value in r0["state"].items():
        assert torch.equal(value, r1["state"][key]), key
    for a, b in zip(r0["history"], r1["history"]):
        assert (a["num_clusters"], a["num_outliers"], a["loss"]) == (b["num_clusters"], b["num_outliers"], b["loss"])
    assert "mAP" in r0["history"][-1] and "mAP" not in r1["history"][-1]  # only rank 0 evaluates
    ckpt = engine.load_checkpoint(tmp_path / "run" / "checkpoint.pth")
    assert ckpt["world_size"] == WORLD and len(ckpt["rng"]) == WORLD and ckpt["epoch"] == 2
    assert not any(k.startswith("module.") for k in ckpt["model"])

    # and equal one process on the same global batches with the same 2 BN chunks
    torch.set_num_threads(1)
    single = _run(dataset, tmp_path / "single")
    assert [h["num_clusters"] for h in single.history] == [h["num_clusters"] for h in r0["history"]]
    for a, b in zip(single.history, r0["history"]):
        assert abs(a["loss"] - b["loss"]) < 1e-4
    for key, value in single.model.state_dict().items():
        torch.testing.assert_close(r0["state"][key].float(), value.float(), rtol=1e-4, atol=1e-5, msg=key)
    engine.seed_everything(_cfg().seed)
    init = build_usl_model(_cfg(drop_path_rate=0.0)).state_dict()
    step = max((single.model.state_dict()[k].float() - v.float()).abs().max() for k, v in init.items())
    assert step > 1e-3  # training moved the weights far more than the tolerance above
