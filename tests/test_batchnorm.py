"""reestimate_bn: BatchNorm running statistics re-estimated without gradients (issue #11 control)."""
import pytest
import torch
from torch import nn

from reid_lab.models import build_backbone, reestimate_bn
from reid_lab.models.batchnorm import batchnorm_layers


def test_running_stats_are_the_equal_weight_average_of_the_batches():
    torch.manual_seed(0)
    model = nn.Sequential(nn.BatchNorm1d(3), nn.Identity())
    model.eval()
    batches = [torch.randn(8, 3) * 2 + 5, torch.randn(8, 3) - 1]
    used = reestimate_bn(model, [(b, "pid") for b in batches], "cpu")  # (images, ...) tuples as a ReID loader yields
    bn = model[0]
    assert used == 2
    torch.testing.assert_close(bn.running_mean, torch.stack([b.mean(0) for b in batches]).mean(0))
    torch.testing.assert_close(bn.running_var, torch.stack([b.var(0, unbiased=True) for b in batches]).mean(0))
    assert bn.momentum == 0.1 and not model.training  # momentum and mode restored
    torch.testing.assert_close(bn.weight, torch.ones(3))  # parameters untouched


def test_order_of_batches_does_not_matter_and_parameters_stay():
    torch.manual_seed(1)
    images = [torch.rand(4, 3, 64, 32) for _ in range(3)]
    a = build_backbone("vit_tiny_ics", img_size=(64, 32))
    b = build_backbone("vit_tiny_ics", img_size=(64, 32))
    b.load_state_dict(a.state_dict())
    params = {k: v.clone() for k, v in a.named_parameters()}
    reestimate_bn(a, images, "cpu")
    reestimate_bn(b, images[::-1], "cpu")
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(x.float(), y.float(), msg=name)
    for name, p in a.named_parameters():
        assert torch.equal(p, params[name]), name
    assert len(batchnorm_layers(a)) == 3  # the BN halves of IBN conv.1 / conv.4, and conv.7 (IN halves excluded)
    assert all(m.num_batches_tracked == 3 for m in batchnorm_layers(a))


def test_plain_vit_has_nothing_to_reestimate_and_empty_input_is_an_error():
    assert reestimate_bn(build_backbone("vit_tiny", img_size=(64, 32)), [], "cpu") == 0
    with pytest.raises(ValueError, match="no batches"):
        reestimate_bn(build_backbone("vit_tiny_ics", img_size=(64, 32)), [], "cpu")


def test_max_batches_caps_the_pass():
    model = nn.BatchNorm1d(2)
    assert reestimate_bn(model, [torch.randn(4, 2) for _ in range(5)], "cpu", max_batches=2) == 2
    assert model.num_batches_tracked == 2
