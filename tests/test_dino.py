"""reid_lab.ssl: DINO loss against a reference, multi-crop, collapse guard, the trainer's step and the pre-training run.

Tiny images (64x32 globals, 32x16 locals) and vit_tiny keep the whole file well under a minute on 2 CPU cores.
"""
from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from reid_lab import engine
from reid_lab.config import resolve
from reid_lab.ssl import (
    CollapseError,
    CollapseMonitor,
    DINOLoss,
    MultiCropWrapper,
    PersonMultiCrop,
    StepStats,
    mean_pairwise_cosine,
    teacher_temperature_schedule,
)
from reid_lab.ssl import train as dino_train


# ----------------------------------------------------------------------------------------------- the loss
def reference_dino_loss(student, teacher, center, ncrops, student_temp, teacher_temp, momentum):
    """Straightforward transcription of docs/reference.md §2.4: a loop over (teacher view, student view) pairs."""
    s_chunks = (student / student_temp).chunk(ncrops)
    t_chunks = F.softmax((teacher - center) / teacher_temp, dim=-1).chunk(2)
    total, terms = 0.0, 0
    for i, q in enumerate(t_chunks):
        for v, s in enumerate(s_chunks):
            if v == i:
                continue
            total = total + torch.sum(-q * F.log_softmax(s, dim=-1), dim=-1).mean()
            terms += 1
    new_center = center * momentum + teacher.mean(0, keepdim=True) * (1 - momentum)
    return total / terms, new_center


def test_dino_loss_matches_reference_over_consecutive_calls():
    torch.manual_seed(0)
    ncrops, batch, k = 5, 3, 11
    loss_fn = DINOLoss(k, ncrops, warmup_teacher_temp=0.02, teacher_temp=0.07, warmup_teacher_temp_epochs=2,
                       nepochs=4, student_temp=0.1, center_momentum=0.9)
    center = torch.zeros(1, k)
    for epoch in (0, 1, 3):  # the centre carries over; the temperature follows the schedule
        student, teacher = torch.randn(ncrops * batch, k), torch.randn(2 * batch, k) + 0.5
        temp = [0.02, 0.07, 0.07, 0.07][epoch]
        expected, center = reference_dino_loss(student, teacher, center, ncrops, 0.1, temp, 0.9)
        torch.testing.assert_close(loss_fn(student, teacher, epoch), expected)
        torch.testing.assert_close(loss_fn.center, center)


def test_dino_loss_hand_computed_uniform_case_is_ln_k():
    # teacher and student both constant: every target is uniform, every prediction uniform -> loss = ln K exactly
    k = 8
    loss_fn = DINOLoss(k, ncrops=4, warmup_teacher_temp=0.04, teacher_temp=0.04, warmup_teacher_temp_epochs=0,
                       nepochs=1)
    teacher = torch.full((2 * 2, k), 3.0)
    loss = loss_fn(torch.zeros(4 * 2, k), teacher, 0)
    assert loss.item() == pytest.approx(math.log(k))
    assert loss_fn.last_stats["teacher_entropy"].item() == pytest.approx(math.log(k))
    torch.testing.assert_close(loss_fn.center, torch.full((1, k), 0.3))  # 0.9 * 0 + 0.1 * 3


def test_dino_loss_gradient_flows_to_student_only_and_rejects_bad_shapes():
    loss_fn = DINOLoss(6, 3, 0.04, 0.04, 0, 2)
    student = torch.randn(9, 6, requires_grad=True)
    teacher = torch.randn(6, 6, requires_grad=True)
    loss_fn(student, teacher, 0).backward()
    assert student.grad is not None and teacher.grad is None
    with pytest.raises(ValueError, match="6 columns"):
        loss_fn(torch.randn(9, 5), torch.randn(6, 5), 0)
    with pytest.raises(ValueError, match="2 global crops x 3 images"):
        loss_fn(torch.randn(9, 6), torch.randn(4, 6), 0)
    with pytest.raises(ValueError, match="epoch 2 outside"):
        loss_fn(torch.randn(9, 6), torch.randn(6, 6), 2)


def test_teacher_temperature_schedule():
    np.testing.assert_allclose(teacher_temperature_schedule(0.04, 0.07, 3, 5), [0.04, 0.055, 0.07, 0.07, 0.07])
    with pytest.raises(ValueError, match="warmup_teacher_temp_epochs=6"):
        teacher_temperature_schedule(0.04, 0.07, 6, 5)


# ----------------------------------------------------------------------------------------------- multi-crop
def test_person_multicrop_shapes_and_seeded_determinism():
    aug = PersonMultiCrop(global_size=(64, 32), local_size=(32, 16), local_crops_number=3)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (128, 64, 3), dtype=np.uint8))
    torch.manual_seed(5)
    crops = aug(image)
    assert [tuple(c.shape) for c in crops] == [(3, 64, 32)] * 2 + [(3, 32, 16)] * 3
    torch.manual_seed(5)
    again = aug(image)
    assert all(torch.equal(a, b) for a, b in zip(crops, again))
    assert not torch.equal(crops[0], crops[1])  # two differently augmented global views
    with pytest.raises(ValueError, match="local_crops_scale"):
        PersonMultiCrop(local_crops_scale=(0.5, 0.1))


class CountingBackbone(nn.Module):
    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(3, 4)
        self.calls: list[tuple[int, ...]] = []

    def forward(self, x):
        self.calls.append(tuple(x.shape))
        return self.proj(x.mean(dim=(2, 3)))


def test_multicrop_wrapper_one_backbone_pass_per_resolution():
    backbone, head = CountingBackbone(), nn.Linear(4, 5)
    wrapper = MultiCropWrapper(backbone, head)
    crops = [torch.randn(2, 3, 8, 4), torch.randn(2, 3, 8, 4)] + [torch.randn(2, 3, 4, 2) for _ in range(3)]
    out, feats = wrapper(crops, return_features=True)
    assert backbone.calls == [(4, 3, 8, 4), (6, 3, 4, 2)]
    expected = torch.cat([head(backbone.proj(c.mean(dim=(2, 3)))) for c in crops])
    torch.testing.assert_close(out, expected)
    assert feats.shape == (10, 4)


# ----------------------------------------------------------------------------------------------- collapse guard
def test_mean_pairwise_cosine_hand_cases():
    assert mean_pairwise_cosine(torch.eye(3)) == pytest.approx(0.0)
    assert mean_pairwise_cosine(torch.ones(4, 5)) == pytest.approx(1.0)
    # pairs: (a,b)=1, (a,c)=0, (b,c)=0 -> mean over ordered pairs = 2/6
    assert mean_pairwise_cosine(torch.tensor([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0]])) == pytest.approx(1 / 3)


def test_collapse_monitor_detects_both_collapses_and_passes_a_healthy_run():
    k = 256
    ln_k = math.log(k)
    uniform = CollapseMonitor(k, window=4)
    for _ in range(4):
        uniform.update(StepStats(loss=ln_k, teacher_entropy=ln_k - 1e-3, batch_mean_entropy=ln_k))
    with pytest.raises(CollapseError, match="uniform collapse"):
        uniform.check(epoch=3, step=40)
    single = CollapseMonitor(k, window=4)
    for _ in range(4):
        single.update(StepStats(loss=0.01, teacher_entropy=0.01, batch_mean_entropy=0.02))
    with pytest.raises(CollapseError, match="single-prototype"):
        single.check(epoch=3, step=40)
    healthy = CollapseMonitor(k, window=4)
    for _ in range(3):
        healthy.update(StepStats(loss=ln_k, teacher_entropy=ln_k, batch_mean_entropy=ln_k))
    healthy.check(epoch=0, step=2)  # window not full yet: no verdict
    healthy.update(StepStats(loss=3.0, teacher_entropy=2.0, batch_mean_entropy=5.0))
    for _ in range(4):
        healthy.update(StepStats(loss=3.0, teacher_entropy=2.0, batch_mean_entropy=5.0))
    healthy.check(epoch=1, step=8)


def test_loss_statistics_of_a_flat_teacher_trip_the_monitor():
    # a backbone mapping every image to the same vector: the centred teacher output becomes flat
    k, loss_fn, monitor = 64, DINOLoss(64, 4, 0.04, 0.04, 0, 10), CollapseMonitor(64, window=3)
    teacher, student = torch.full((2 * 5, k), 1.0), torch.full((4 * 5, k), 1.0)
    for _ in range(40):
        loss = loss_fn(student, teacher, 0)
    for _ in range(3):
        loss = loss_fn(student, teacher, 0)
        s = loss_fn.last_stats
        monitor.update(StepStats(loss.item(), s["teacher_entropy"].item(), s["batch_mean_entropy"].item()))
    with pytest.raises(CollapseError):
        monitor.check(epoch=5, step=43)


# ----------------------------------------------------------------------------------------------- trainer pieces
def test_param_groups_and_per_tensor_clipping():
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4), nn.Linear(4, 2))
    model[2].weight.requires_grad_(False)
    groups = dino_train.param_groups(model)
    assert [tuple(p.shape) for p in groups[0]["params"]] == [(4, 3)]
    assert sorted(tuple(p.shape) for p in groups[1]["params"]) == [(2,), (4,), (4,), (4,)]
    assert groups[1]["weight_decay"] == 0.0
    layer = nn.Linear(2, 2)
    layer.weight.grad = torch.tensor([[6.0, 0.0], [0.0, 0.0]])  # norm 6 -> scaled to 3
    layer.bias.grad = torch.tensor([0.6, 0.8])  # norm 1 -> unchanged
    dino_train.clip_gradients_per_tensor(layer, 3.0)
    torch.testing.assert_close(layer.weight.grad, torch.tensor([[3.0, 0.0], [0.0, 0.0]]), atol=1e-5, rtol=0)
    torch.testing.assert_close(layer.bias.grad, torch.tensor([0.6, 0.8]))


# ----------------------------------------------------------------------------------------------- runs (vit_tiny)
def make_gratings(folder, n=16, h=64, w=32, seed=0):
    """n distinct images: sinusoidal gratings (4 orientations x 4 frequencies) in random colour pairs.

    Their content survives cropping, flipping and mild colour jitter, so DINO has something to learn quickly
    (random colour blocks do not: their invariant content is nearly nothing).
    """
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    for i in range(n):
        theta = np.pi * (i % 4) / 4 + 0.1 * rng.standard_normal()
        freq = (0.08, 0.15, 0.25, 0.4)[(i // 4) % 4]
        g = np.sin(2 * np.pi * freq * (xx * np.cos(theta) + yy * np.sin(theta)) + rng.uniform(0, 2 * np.pi))
        c1, c2 = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
        img = (0.5 * (1 + g))[..., None] * c1 + (0.5 * (1 - g))[..., None] * c2
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(folder / "images" / f"{i:03d}.png")
    return folder


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    return make_gratings(tmp_path_factory.mktemp("LUP"))


def small_cfg(arch="vit_tiny", **overrides):
    base = dict(arch=arch, epochs=3, warmup_epochs=1, batch_size=8, out_dim=256, head_hidden_dim=64,
                head_bottleneck_dim=32, global_size=(64, 32), local_size=(32, 16), local_crops_number=2,
                drop_path_rate=0.1, base_lr=0.008, momentum_teacher=0.99)
    base.update(overrides)
    return resolve("pretrain", "smoke", **base)


def images_tensor(folder, n=16):
    from torchvision.transforms.functional import normalize, to_tensor

    paths = sorted((folder / "images").iterdir())[:n]
    return torch.stack([normalize(to_tensor(Image.open(p).convert("RGB")), (0.5,) * 3, (0.5,) * 3) for p in paths])


@pytest.mark.slow
@pytest.mark.parametrize("arch", ["vit_tiny", "vit_tiny_ics"])
def test_backbone_learns_without_collapse(arch, pool, tmp_path):
    engine.seed_everything(0)
    from reid_lab.models import build_backbone

    # at init, distinct images get dissimilar CLS features (teacher mode = train mode: batch statistics in BN)
    backbone = build_backbone(arch, img_size=(64, 32)).train()
    with torch.no_grad():
        assert mean_pairwise_cosine(backbone(images_tensor(pool))) < 0.5
    # a short run: the loss falls clearly below ln K and the guard stays silent
    cfg = small_cfg(arch, epochs=8, batch_size=16, drop_path_rate=0.0)
    result = dino_train.pretrain(cfg, pool, tmp_path, device="cpu", progress=False, collapse_window=4,
                                 jitter_strength=0.5)
    ln_k = math.log(cfg.out_dim)
    first, last = result.history[0], result.history[-1]
    assert min(h["loss"] for h in result.history[-3:]) < 0.8 * ln_k, [h["loss"] for h in result.history]
    assert last["teacher_entropy"] < 0.8 * ln_k and last["batch_mean_entropy"] > 0.3 * ln_k
    assert first["loss"] > last["loss"]


def _states_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_resume_reproduces_the_uninterrupted_run(pool, tmp_path):
    cfg = small_cfg("vit_tiny_ics", epochs=2)  # BN buffers, drop-path and augmentation randomness all in play
    full = dino_train.pretrain(cfg, pool, tmp_path / "full", device="cpu", progress=False)
    part = dino_train.pretrain(cfg, pool, tmp_path / "part", device="cpu", progress=False, stop_after=1)
    assert part.epochs_done == 1 and not part.finished and part.backbone_path is None
    resumed = dino_train.pretrain(cfg, pool, tmp_path / "part", device="cpu", progress=False, resume=True)
    assert resumed.finished and resumed.epochs_done == 2

    a = engine.load_checkpoint(full.checkpoint)
    b = engine.load_checkpoint(resumed.checkpoint)
    for key in ("student", "teacher"):
        assert _states_equal(a[key], b[key]), key
    assert torch.equal(a["dino_loss"]["center"], b["dino_loss"]["center"])
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    assert all(_states_equal(a["optimizer"]["state"][k], b["optimizer"]["state"][k]) for k in a["optimizer"]["state"])
    assert [h["loss"] for h in full.history] == [h["loss"] for h in resumed.history]
    log = engine.JsonlLog(tmp_path / "part" / dino_train.LOG_NAME).read()
    assert [r["epoch"] for r in log] == [0, 1]
    # the teachers differ from their initialisation: the comparison above is not vacuous
    fresh = dino_train.build_dino_model(cfg, 0.0).state_dict()
    assert not _states_equal(fresh, a["teacher"])


def test_resume_refuses_another_network(pool, tmp_path):
    dino_train.pretrain(small_cfg(epochs=1), pool, tmp_path, device="cpu", progress=False)
    with pytest.raises(ValueError, match="out_dim: checkpoint 256 vs config 128"):
        dino_train.pretrain(small_cfg(epochs=2, out_dim=128), pool, tmp_path, device="cpu", progress=False,
                            resume=True)
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        dino_train.pretrain(small_cfg(), pool, tmp_path, device="cpu", progress=False, resume=tmp_path / "missing.pth")


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(pool, tmp_path, monkeypatch):
    cfg = small_cfg(epochs=2)  # 16 images, batch 8: 2 steps per epoch
    calls = {"n": 0}
    original = DINOLoss.forward

    def poisoned(self, student_output, teacher_output, epoch):
        calls["n"] += 1
        loss = original(self, student_output, teacher_output, epoch)
        return loss * float("nan") if calls["n"] == 4 else loss  # 2nd step of epoch 2

    monkeypatch.setattr(DINOLoss, "forward", poisoned)
    with pytest.raises(engine.NonFiniteLossError,
                       match=r"loss is nan at epoch 1, global step 3.*checkpoint.pth is intact"):
        dino_train.pretrain(cfg, pool, tmp_path, device="cpu", progress=False)
    ckpt = engine.load_checkpoint(tmp_path / dino_train.CHECKPOINT_NAME)
    assert ckpt["epoch"] == 1
    assert all(torch.isfinite(v).all() for v in ckpt["teacher"].values() if v.is_floating_point())
    monkeypatch.undo()
    resumed = dino_train.pretrain(cfg, pool, tmp_path, device="cpu", progress=False, resume=True)
    assert resumed.finished and all(math.isfinite(h["loss"]) for h in resumed.history)


class ConstantBackbone(nn.Module):
    """Maps every image to the same vector: the textbook route to a collapsed teacher."""

    embed_dim = 16

    def __init__(self, *args, **kwargs):
        super().__init__()
        self.vector = nn.Parameter(torch.randn(self.embed_dim))

    def forward(self, x):
        return self.vector.expand(x.shape[0], -1)


def test_collapse_guard_stops_a_collapsed_run(pool, tmp_path, monkeypatch):
    import reid_lab.models

    monkeypatch.setattr(reid_lab.models, "build_backbone", ConstantBackbone)
    cfg = small_cfg(epochs=20, warmup_epochs=1)
    with pytest.raises(CollapseError, match="collapse"):
        dino_train.pretrain(cfg, pool, tmp_path, device="cpu", progress=False, collapse_window=4)
    # without the guard the same run goes on to the end
    result = dino_train.pretrain(small_cfg(epochs=3, warmup_epochs=1), pool, tmp_path / "unguarded", device="cpu",
                                 progress=False, collapse_window=4, collapse_check=False)
    assert result.finished


def test_checkpoint_schema_and_load_pretrained(pool, tmp_path):
    from reid_lab.models import build_backbone, load_pretrained

    cfg = small_cfg("vit_tiny_ics", epochs=1, warmup_epochs=0, batch_size=16)  # a single step
    result = dino_train.pretrain(cfg, pool, tmp_path, device="cpu", progress=False)
    ckpt = engine.load_checkpoint(result.checkpoint)  # weights_only=True
    assert {"student", "teacher", "optimizer", "epoch", "args", "dino_loss", "fp16_scaler", "format", "config",
            "rng"} <= ckpt.keys()
    assert ckpt["format"] == "reid_lab-dino" and ckpt["epoch"] == 1 and isinstance(ckpt["args"], dict)
    assert ckpt["args"]["arch"] == "vit_tiny_ics" and ckpt["fp16_scaler"] is None
    assert ckpt["dino_loss"]["center"].shape == (1, cfg.out_dim)
    assert {k.split(".")[0] for k in ckpt["teacher"]} == {"backbone", "head"}
    assert "head.last_layer.weight_g" in ckpt["teacher"] and "head.mlp.0.weight" in ckpt["teacher"]
    # the teacher BN keeps its own running statistics (never copied from the student)
    key = "backbone.patch_embed.conv.7.running_mean"
    assert not torch.equal(ckpt["teacher"][key], ckpt["student"][key])
    for source in (result.checkpoint, result.backbone_path):
        model = build_backbone("vit_tiny_ics", img_size=(64, 32))
        load_pretrained(model, source)
        for name, value in model.state_dict().items():
            assert torch.equal(value, ckpt["teacher"]["backbone." + name]), (source, name)
    assert not result.teacher.training  # handed back in eval mode, for feature extraction


def test_jitter_strength_is_recorded_in_the_config_and_checked_on_resume(pool, tmp_path, caplog):
    cfg = small_cfg(epochs=2, warmup_epochs=0, batch_size=16)  # one step per epoch; the profile's jitter is 1.0
    dino_train.pretrain(cfg, pool, tmp_path, device="cpu", progress=False, jitter_strength=0.5, stop_after=1)
    ckpt = engine.load_checkpoint(tmp_path / "checkpoint.pth")
    assert ckpt["config"]["jitter_strength"] == 0.5 == ckpt["args"]["jitter_strength"]
    with caplog.at_level(logging.WARNING, logger="reid_lab.engine"):  # resumed without the flag: said, not silent
        dino_train.pretrain(cfg, pool, tmp_path, device="cpu", progress=False, resume=True, stop_after=1)
    assert "changed settings jitter_strength 0.5->1.0" in caplog.text


def test_unreadable_pool_image_is_skipped_with_a_counted_warning(pool, tmp_path, caplog):
    from reid_lab.data import DatasetError

    good = sorted((pool / "images").iterdir())[0]
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    images = dino_train.MultiCropImages([good, empty, empty], transform=lambda image: image.size)
    with caplog.at_level(logging.WARNING, logger="reid_lab.ssl.train"):
        assert images[1] == Image.open(good).size  # the bad file's slot is filled by the next readable image
    assert caplog.text.count(f"unreadable pre-training image (1 so far in this process): cannot read image "
                             f"'{empty}'") == 1
    assert "(2 so far" in caplog.text and images.skipped == 2
    with pytest.raises(DatasetError, match="2 unreadable pre-training images in a row from index 1"):
        dino_train.MultiCropImages([good, empty, empty], lambda image: image.size, max_consecutive_bad=2)[1]


def test_trainer_step_ema_and_frozen_last_layer():
    cfg = small_cfg("vit_tiny_ics", freeze_last_layer=1)
    engine.seed_everything(0)
    trainer = dino_train.DINOTrainer(cfg, torch.device("cpu"), iters_per_epoch=2)
    gen = torch.Generator().manual_seed(0)
    crops = [torch.randn(4, 3, 64, 32, generator=gen) for _ in range(2)] + [torch.randn(4, 3, 32, 16, generator=gen)
                                                                           for _ in range(2)]
    last_v = trainer.student_module.head.last_layer.weight_v.detach().clone()
    teacher_before = [p.detach().clone() for p in trainer.teacher.parameters()]
    trainer.train_step(crops, epoch=0, it=0)
    assert torch.equal(trainer.student_module.head.last_layer.weight_v, last_v)  # frozen in epoch 0
    m = float(trainer.momentum_schedule[0])
    for before, p_t, p_s in zip(teacher_before, trainer.teacher.parameters(), trainer.student_module.parameters()):
        torch.testing.assert_close(p_t, m * before + (1 - m) * p_s.detach())
    assert trainer.optimizer.param_groups[0]["weight_decay"] == pytest.approx(cfg.weight_decay)
    assert trainer.optimizer.param_groups[1]["weight_decay"] == 0.0
    trainer.train_step(crops, epoch=1, it=2)
    assert not torch.equal(trainer.student_module.head.last_layer.weight_v, last_v)  # trained from epoch 1


def test_bad_inputs_fail_with_clear_messages(pool, tmp_path):
    with pytest.raises(ValueError, match="warmup_epochs=10 exceeds epochs=8"):
        dino_train.pretrain(small_cfg(epochs=8, warmup_epochs=10), pool, tmp_path, device="cpu", progress=False)
    with pytest.raises(ValueError, match="not one full batch of 32"):
        dino_train.pretrain(small_cfg(batch_size=32), pool, tmp_path, device="cpu", progress=False)
    with pytest.raises(FileNotFoundError, match="CFS_list.pkl"):
        dino_train.pool_paths(str(pool), small_cfg(keep_ratio=0.5))
    with pytest.raises(ValueError, match="amp='fp16'"):
        dino_train.DINOTrainer(small_cfg(), torch.device("cpu"), 2, amp="fp16")


def test_cfs_keep_ratio_selects_the_head_of_the_ranked_list(pool):
    from reid_lab.data import write_ranked_list

    names = sorted(p.name for p in (pool / "images").iterdir())[::-1]
    ranked = write_ranked_list(names, pool / "ranked.txt")
    paths = dino_train.pool_paths(str(pool), small_cfg(keep_ratio=0.25), ranked_list=ranked)
    assert [p.name for p in paths] == names[:4]
    assert [p.name for p in dino_train.pool_paths(str(pool), small_cfg(), ranked_list=ranked, keep_num=3)] == names[:3]
