"""DINO under DDP: 2 CPU processes (gloo) against one process on the same global batch.

The workers are started with ``torch.multiprocessing.spawn`` and join through the same environment variables
torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), read by
``reid_lab.engine.init_distributed``.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from PIL import Image

from reid_lab import engine
from reid_lab.config import resolve

WORLD = 2
GLOBAL_BATCH = 8
STEPS = 3


def _cfg(**overrides):
    base = dict(arch="vit_tiny", batch_size=GLOBAL_BATCH, epochs=2, warmup_epochs=1, out_dim=64, head_hidden_dim=32,
                head_bottleneck_dim=16, drop_path_rate=0.0, global_size=(64, 32), local_size=(32, 16),
                local_crops_number=2, base_lr=0.05, momentum_teacher=0.9, freeze_last_layer=0)
    base.update(overrides)
    return resolve("pretrain", "smoke", **base)


def _fixed_batches() -> list[list[torch.Tensor]]:
    gen = torch.Generator().manual_seed(7)
    return [[torch.randn(GLOBAL_BATCH, 3, 64, 32, generator=gen) for _ in range(2)]
            + [torch.randn(GLOBAL_BATCH, 3, 32, 16, generator=gen) for _ in range(2)] for _ in range(STEPS)]


def _run_steps(rows: slice) -> dict:
    """STEPS training steps on rows ``rows`` of the fixed global batches (all rows = single process)."""
    from reid_lab.ssl.train import DINOTrainer

    engine.seed_everything(0)
    trainer = DINOTrainer(_cfg(), torch.device("cpu"), iters_per_epoch=STEPS)
    init = _flat(trainer.teacher.state_dict())
    losses = [trainer.train_step([c[rows] for c in crops], epoch=0, it=i).loss
              for i, crops in enumerate(_fixed_batches())]
    return {"losses": torch.tensor(losses), "center": trainer.dino_loss.center.clone(),
            "teacher": {k: v.clone() for k, v in trainer.teacher.state_dict().items()}, "init": init}


def _flat(state: dict) -> torch.Tensor:
    return torch.cat([v.float().flatten() for v in state.values()])


def _worker(rank: int, port: int, out_dir: str, pool_dir: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(WORLD), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    info, device = engine.init_distributed("cpu")
    try:
        assert info.world_size == WORLD and dist.get_backend() == "gloo" and device.type == "cpu"
        # (a) the step on half of each global batch
        per = GLOBAL_BATCH // WORLD
        result = _run_steps(slice(rank * per, (rank + 1) * per))
        # (b) a whole pretrain() run through DistributedSampler, checkpointing on rank 0
        from reid_lab.ssl import pretrain

        run = pretrain(_cfg(epochs=1, warmup_epochs=0), pool_dir, Path(out_dir) / "run", device="cpu", progress=False)
        teacher = _flat(run.teacher.state_dict())
        gathered = [torch.empty_like(teacher) for _ in range(WORLD)]
        dist.all_gather(gathered, teacher)
        result["run_teachers_identical"] = all(torch.equal(gathered[0], g) for g in gathered)
        result["run_iters"] = len(run.history) and run.history[0]["images_per_s"] > 0
        torch.save(result, Path(out_dir) / f"rank{rank}.pth")
    finally:
        engine.cleanup_distributed()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _make_pool(folder: Path, n: int = 16) -> Path:
    rng = np.random.default_rng(1)
    (folder / "images").mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (64, 32, 3), dtype=np.uint8)).save(folder / "images" / f"{i:03d}.png")
    return folder


def test_two_gloo_processes_match_one_process(tmp_path):
    pool = _make_pool(tmp_path / "LUP")
    mp.spawn(_worker, args=(_free_port(), str(tmp_path), str(pool)), nprocs=WORLD, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pth", weights_only=True) for r in range(WORLD)]
    single = _run_steps(slice(None))

    # ranks end with identical teachers (EMA of identical DDP students) and identical centres
    for key, value in ranks[0]["teacher"].items():
        assert torch.equal(value, ranks[1]["teacher"][key]), key
    assert torch.equal(ranks[0]["center"], ranks[1]["center"])
    # the all-reduced loss, the centre and the teacher equal one process on the same global batch
    torch.testing.assert_close(ranks[0]["losses"], single["losses"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ranks[0]["center"], single["center"], rtol=1e-5, atol=1e-6)
    ddp_teacher, single_teacher = _flat(ranks[0]["teacher"]), _flat(single["teacher"])
    # Adam turns float-rounding differences of near-zero gradients into lr-sized steps on a few elements
    torch.testing.assert_close(ddp_teacher, single_teacher, rtol=1e-4, atol=1e-4)
    moved = (single_teacher - single["init"]).abs().mean()
    assert (ddp_teacher - single_teacher).abs().mean() < 1e-3 * moved  # the steps did change the networks
    # the full pretrain() run under DDP
    assert all(r["run_teachers_identical"] and r["run_iters"] for r in ranks)
    ckpt = engine.load_checkpoint(tmp_path / "run" / "checkpoint.pth")
    assert ckpt["epoch"] == 1 and ckpt["args"]["world_size"] == WORLD and len(ckpt["rng"]) == WORLD
    assert not any(k.startswith("module.") for k in ckpt["student"])
