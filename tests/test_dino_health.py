"""Health of a DINO run you can see (issue 17): the frozen k-NN probe, drift warnings, the permuted-weights control."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from reid_lab import engine
from reid_lab.data import Market1501
from reid_lab.data.synthetic.fixture import generate_fixture
from reid_lab.models import build_backbone, permute_entries_
from reid_lab.ssl import CollapseMonitor, StepStats, evaluate_retrieval
from reid_lab.ssl import train as dino_train
from reid_lab.ssl.monitor import KNNProbe
from test_dino import make_gratings, small_cfg


@pytest.fixture(scope="module")
def market(tmp_path_factory) -> Market1501:
    return Market1501(generate_fixture(tmp_path_factory.mktemp("fixture"))["market1501"])


class MeanColour(nn.Module):
    """A 'backbone' whose feature is the mean colour of each third of the image (rows): identity-ish, no weights."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([part.mean((2, 3)) for part in x.chunk(3, dim=2)], dim=1)


def test_probe_on_every_id_equals_the_full_frozen_evaluation(market):
    backbone = MeanColour()
    full = evaluate_retrieval(backbone, market, (64, 32), "cpu")
    probe = KNNProbe(market, (64, 32), num_ids=None)
    assert probe.num_images == len(market.query) + len(market.gallery)
    result = probe(backbone, "cpu")
    assert result["mAP"] == pytest.approx(full.mAP) and result["rank1"] == pytest.approx(float(full.cmc[0]))
    assert 0 < result["mAP"] <= 1


def test_probe_subset_keeps_the_first_ids_and_restores_the_mode(market):
    ids = sorted({s.pid for s in market.query})
    probe = KNNProbe(market, (64, 32), num_ids=3)
    assert probe.num_ids == 3
    assert probe.num_images == sum(s.pid in ids[:3] for s in market.query + market.gallery)
    backbone = build_backbone("vit_tiny_ics", img_size=(64, 32)).train()
    probe(backbone, "cpu")
    assert backbone.training  # put back in train mode after the eval-mode probe
    with pytest.raises(ValueError, match="num_ids"):
        KNNProbe(market, (64, 32), num_ids=1)


def test_drift_warning_fires_towards_uniform_or_constant_and_not_on_a_healthy_run():
    k = 1024
    ln_k = math.log(k)

    def monitor(entropy_share, cosine):
        m = CollapseMonitor(k, window=4)
        for _ in range(4):
            m.update(StepStats(loss=5.0, teacher_entropy=entropy_share * ln_k, batch_mean_entropy=6.0,
                               cls_cosine=cosine))
        return m.drifting()

    assert monitor(0.5, 0.4) is None
    assert "uniform" in monitor(0.9, 0.4)
    assert "constant" in monitor(0.5, 0.95)
    both = monitor(0.9, 0.95)
    assert "uniform" in both and "constant" in both
    assert CollapseMonitor(k).drifting() is None  # nothing seen yet


@pytest.mark.slow
def test_pretrain_records_the_probe_before_steps_and_after_the_last(tmp_path, market):
    pool = make_gratings(tmp_path / "LUP")
    cfg = small_cfg("vit_tiny_ics", epochs=2)
    probe = KNNProbe(market, cfg.global_size, num_ids=4)
    result = dino_train.pretrain(cfg, pool, tmp_path / "run", device="cpu", progress=False, probe=probe,
                                 probe_every=1)
    steps_per_epoch = len(result.steps) // 2
    assert [s["step"] for s in result.steps if "knn_mAP" in s] == list(range(2 * steps_per_epoch))
    first, last = result.history
    assert first["knn_step"] == steps_per_epoch - 1  # the epoch's last probe
    assert last["knn_step"] == 2 * steps_per_epoch  # the finished teacher
    assert last["knn_mAP"] == pytest.approx(probe(result.teacher, "cpu")["mAP"])
    assert result.steps[0]["knn_mAP"] == pytest.approx(_probe_of_init(cfg, probe))
    assert all(h["probe_seconds"] > 0 for h in result.history)
    with pytest.raises(ValueError, match="probe_every"):
        dino_train.pretrain(cfg, pool, tmp_path / "bad", device="cpu", progress=False, probe=probe, probe_every=0)


def _probe_of_init(cfg, probe) -> float:
    engine.seed_everything(cfg.seed)  # pretrain builds its student with this seed; the teacher copies it
    model = dino_train.build_dino_model(cfg, drop_path_rate=cfg.drop_path_rate)
    return probe(model.backbone, "cpu")["mAP"]


def test_permute_entries_keeps_each_tensors_values_and_destroys_their_order():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5))
    model[1].running_mean.copy_(torch.arange(5.0))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    names = permute_entries_(model, seed=3)
    after = model.state_dict()
    assert "1.num_batches_tracked" not in names and torch.equal(after["1.num_batches_tracked"],
                                                                before["1.num_batches_tracked"])
    for name in names:
        assert torch.equal(after[name].flatten().sort().values, before[name].flatten().sort().values), name
    assert not torch.equal(after["0.weight"], before["0.weight"])
    assert not torch.equal(after["1.running_mean"], before["1.running_mean"])
    # the same seed gives the same permutation; the parameters stay parameters (trainable)
    again = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5))
    again.load_state_dict(before)
    permute_entries_(again, seed=3)
    assert all(torch.equal(again.state_dict()[k], after[k]) for k in after)
    assert isinstance(model[0].weight, nn.Parameter) and model[0].weight.requires_grad


def test_permute_entries_include_and_exclude():
    backbone = build_backbone("vit_tiny_ics", img_size=(64, 32))
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    stem = permute_entries_(backbone, seed=0, include=("patch_embed.",))
    assert stem and all(n.startswith("patch_embed.") for n in stem)
    assert torch.equal(backbone.state_dict()["blocks.0.attn.qkv.weight"], before["blocks.0.attn.qkv.weight"])
    rest = permute_entries_(backbone, seed=0, exclude=("patch_embed.",))
    assert rest and not any(n.startswith("patch_embed.") for n in rest)
    with pytest.raises(ValueError, match="no floating-point tensor"):
        permute_entries_(backbone, seed=0, include=("nothing.",))


def test_course_permuted_control_is_built_from_the_course_backbone(tmp_path, monkeypatch):
    from reid_lab import course
    from reid_lab.models import load_pretrained, make_checkpoint

    arch = course._arch("tiny", True)
    dino = build_backbone(arch, img_size=(64, 32))
    run = tmp_path / f"dino_{arch}"
    run.mkdir()
    engine.save_checkpoint(make_checkpoint(dino), run / "teacher_backbone.pth")
    paths = [course.permuted_backbone("tiny", seed, tmp_path) for seed in (0, 1)]
    assert paths[0] != paths[1] and all(Path(p).is_file() for p in paths)
    loaded = build_backbone(arch, img_size=(128, 64))
    load_pretrained(loaded, paths[0])  # loads at the fine-tuning size (position table resized)
    control = engine.load_checkpoint(paths[0])["model"]
    original = dino.state_dict()
    assert torch.equal(control["blocks.1.mlp.fc1.weight"].flatten().sort().values,
                       original["blocks.1.mlp.fc1.weight"].flatten().sort().values)
    assert not torch.equal(control["blocks.1.mlp.fc1.weight"], original["blocks.1.mlp.fc1.weight"])
    assert course.permuted_backbone("tiny", 0, tmp_path) == paths[0]  # written once
