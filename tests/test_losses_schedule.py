"""ReID losses (docs/reference.md §4.2), the per-epoch warm-up cosine schedule (§4.4, §9.8) and the SGD groups."""
from __future__ import annotations

import math

import pytest
import torch

from reid_lab.config import resolve
from reid_lab.reid import ReIDLoss, WarmupCosineLR, batch_hard_triplet_loss, build_optimizer, build_reid_model, id_loss
from reid_lab.reid.losses import hard_example_mining, pairwise_euclidean


# ------------------------------------------------------------------------------------------------ triplet
# Four 2-D points, ids [0, 0, 1, 1]: a=(0,0), b=(3,4) share id 0; c=(6,0), d=(0,1) share id 1.
POINTS = torch.tensor([[0.0, 0.0], [3.0, 4.0], [6.0, 0.0], [0.0, 1.0]])
LABELS = torch.tensor([0, 0, 1, 1])
# by hand: |ab|=5, |ac|=6, |ad|=1, |bc|=5, |bd|=sqrt(18), |cd|=sqrt(37)
D_AP = torch.tensor([5.0, 5.0, math.sqrt(37), math.sqrt(37)])
D_AN = torch.tensor([1.0, math.sqrt(18), 5.0, 1.0])


def test_hard_mining_by_hand():
    d_ap, d_an = hard_example_mining(pairwise_euclidean(POINTS), LABELS)
    torch.testing.assert_close(d_ap, D_AP)
    torch.testing.assert_close(d_an, D_AN)


def test_soft_margin_triplet_by_hand():
    expected = torch.log1p(torch.exp(D_AP - D_AN)).mean()
    torch.testing.assert_close(batch_hard_triplet_loss(POINTS, LABELS), expected)


def test_fixed_margin_triplet_by_hand():
    expected = torch.clamp(D_AP - D_AN + 0.3, min=0).mean()
    torch.testing.assert_close(batch_hard_triplet_loss(POINTS, LABELS, margin=0.3), expected)
    assert batch_hard_triplet_loss(torch.tensor([[0.0], [0.1], [10.0], [10.1]]), LABELS, margin=0.3) == 0


def test_singleton_identity_uses_itself_as_positive():
    # id 2 appears once: its hardest positive is itself, at distance sqrt(1e-12) (official clamp)
    d_ap, _ = hard_example_mining(pairwise_euclidean(POINTS[:3]), torch.tensor([0, 0, 2]))
    assert d_ap[2].item() == pytest.approx(1e-6, rel=1e-3)


def test_triplet_needs_two_identities():
    with pytest.raises(ValueError, match="two identities"):
        batch_hard_triplet_loss(POINTS, torch.zeros(4, dtype=torch.long))


def test_triplet_is_float32_under_bf16_input():
    loss = batch_hard_triplet_loss(POINTS.bfloat16(), LABELS)
    assert loss.dtype == torch.float32


# ------------------------------------------------------------------------------------------------ ID loss
def test_label_smoothing_matches_transreid_formula():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 3.0]])
    labels = torch.tensor([0, 2])
    eps, c = 0.1, 3
    log_p = logits.log_softmax(1)
    target = torch.full_like(log_p, eps / c)
    target[torch.arange(2), labels] += 1 - eps
    torch.testing.assert_close(id_loss(logits, labels, eps), -(target * log_p).sum(1).mean())
    torch.testing.assert_close(id_loss(logits, labels), -log_p[torch.arange(2), labels].mean())


def test_id_loss_rejects_labels_outside_classifier():
    with pytest.raises(ValueError, match="relabel"):
        id_loss(torch.zeros(2, 3), torch.tensor([0, 3]))


def test_reid_loss_is_weighted_sum():
    logits = torch.tensor([[3.0, 0.0], [3.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    parts = ReIDLoss()(logits, POINTS, LABELS)
    torch.testing.assert_close(parts.total, id_loss(logits, LABELS) + batch_hard_triplet_loss(POINTS, LABELS))
    assert parts.accuracy.item() == pytest.approx(0.75)  # argmax 0, 0, 1, 0 vs labels 0, 0, 1, 1


# ------------------------------------------------------------------------------------------------ schedule
def _official(base=4e-4):
    return WarmupCosineLR([base, 2 * base], epochs=120, warmup_epochs=20, base_lr=base, official=True)


@pytest.mark.parametrize("epoch_1based, expected", [(1, 4.0e-6), (2, 2.38e-5), (20, 3.80e-4), (21, 3.73e-4),
                                                    (60, 2.06e-4), (120, 8.7e-7)])
def test_official_schedule_reproduces_spec_numbers(epoch_1based, expected):
    # docs/reference.md §4.4: weight lr at BASE_LR 4e-4, scheduler stepped at the end of each epoch
    assert _official().lrs(epoch_1based - 1)[0] == pytest.approx(expected, rel=6e-3)


def test_official_schedule_ignores_bias_factor_in_first_epoch():
    weight, bias = _official().lrs(0)
    assert weight == bias == pytest.approx(4e-6)
    weight, bias = _official().lrs(1)
    assert bias == pytest.approx(4e-6 + (8e-4 - 4e-6) / 20)  # shared init 1 % of BASE_LR, then its own slope


def test_intended_schedule_reaches_peak_and_warms_each_group():
    s = WarmupCosineLR([4e-4, 8e-4], epochs=120, warmup_epochs=20)
    assert s.lrs(0) == pytest.approx([4e-6, 8e-6])  # 1 % of each group's own lr
    assert s.lrs(20) == pytest.approx([4e-4, 8e-4])  # the peak is used, at epoch W
    warm = [s.lrs(e)[0] for e in range(21)]
    decay = [s.lrs(e)[0] for e in range(20, 120)]
    assert all(a < b for a, b in zip(warm, warm[1:])) and all(a > b for a, b in zip(decay, decay[1:]))
    assert 8e-7 < s.lrs(119)[0] < 1e-6  # close to min_lr_factor x base at the last epoch


def test_schedule_sets_optimizer_and_checks_range():
    opt = torch.optim.SGD([{"params": [torch.nn.Parameter(torch.zeros(1))]},
                           {"params": [torch.nn.Parameter(torch.zeros(1))]}], lr=0.5)
    s = WarmupCosineLR([1.0, 1.0], epochs=3, warmup_epochs=0)
    assert s.apply(opt, 0) == [1.0, 1.0] and opt.param_groups[1]["lr"] == 1.0
    with pytest.raises(ValueError, match="outside"):
        s.lrs(3)
    with pytest.raises(ValueError, match="warmup_epochs"):
        WarmupCosineLR([1.0], epochs=2, warmup_epochs=3)


# ------------------------------------------------------------------------------------------------ optimiser
def test_optimizer_one_group_per_tensor_with_bias_rules():
    cfg = resolve("supervised", "smoke", base_lr=0.1, bias_lr_factor=2.0, weight_decay=1e-4, weight_decay_bias=5e-4)
    model = build_reid_model("vit_tiny", num_classes=5, img_size=(64, 32))
    opt = build_optimizer(model, cfg)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert [g["name"] for g in opt.param_groups] == trainable
    assert "bottleneck.bias" not in trainable  # frozen BNNeck bias (docs/reference.md §4.1)
    for g in opt.param_groups:
        assert len(g["params"]) == 1 and g["momentum"] == 0.9
        is_bias = "bias" in g["name"]
        assert g["lr"] == pytest.approx(0.2 if is_bias else 0.1)
        assert g["weight_decay"] == (5e-4 if is_bias else 1e-4)
    assert any(g["name"] == "base.pos_embed" and g["weight_decay"] == 1e-4 for g in opt.param_groups)  # no exclusions
