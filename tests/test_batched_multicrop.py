"""Tensor-side DINO multi-crop (reid_lab.ssl.batched_multicrop, PretrainConfig.augment = "batched")."""
from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from reid_lab.ssl import IMAGENET_MEAN, IMAGENET_STD
from reid_lab.ssl import train as dino_train
from reid_lab.ssl.batched_multicrop import BatchedMultiCrop, ResizeToTensor
from test_dino import make_gratings, small_cfg


def _batch(n=4, h=64, w=32) -> torch.Tensor:
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    image = torch.stack([yy * 255 // h, xx * 255 // w, (yy + xx) % 256]).to(torch.uint8)  # no two pixels alike
    return image.expand(n, -1, -1, -1).contiguous()


def test_resize_to_tensor_gives_uint8_chw_at_the_fixed_size():
    image = Image.new("RGB", (50, 90), (10, 20, 30))
    out = ResizeToTensor((64, 32))(image)
    assert out.dtype == torch.uint8 and out.shape == (3, 64, 32)
    assert out[:, 0, 0].tolist() == [10, 20, 30]


def test_a_constant_image_stays_its_normalised_colour_in_every_crop():
    # no jitter, no grayscale: crop, flip, blur and (for colours below 128) solarisation leave a flat image flat
    crops = BatchedMultiCrop((32, 16), (16, 8), local_crops_number=3, jitter_strength=0.0, grayscale_p=0.0,
                             blur_radius=(0.1, 0.5))
    colour = torch.tensor([100, 30, 40], dtype=torch.uint8)
    out = crops(colour.view(1, 3, 1, 1).expand(5, 3, 64, 32).contiguous())
    expected = (colour.float() / 255 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    assert [tuple(c.shape) for c in out] == [(5, 3, 32, 16)] * 2 + [(5, 3, 16, 8)] * 3
    for c in out:
        torch.testing.assert_close(c, expected.view(1, 3, 1, 1).expand_as(c), atol=1e-4, rtol=0)


def test_parameters_are_drawn_per_sample_and_follow_the_seed():
    crops = BatchedMultiCrop((32, 16), (16, 8), local_crops_number=2)
    torch.manual_seed(0)
    first = crops(_batch())
    assert not torch.allclose(first[0][0], first[0][1])  # same image, other crop / colour
    torch.manual_seed(0)
    again = crops(_batch())
    assert all(torch.equal(a, b) for a, b in zip(first, again))
    assert crops.ncrops == 4


def test_bad_batches_and_arguments_fail_clearly():
    crops = BatchedMultiCrop((32, 16), (16, 8), local_crops_number=1)
    with pytest.raises(ValueError, match="uint8"):
        crops(_batch().float())
    with pytest.raises(ValueError, match="blur_radius"):
        BatchedMultiCrop(blur_radius=(2.0, 1.0))
    with pytest.raises(ValueError, match="grayscale_p"):
        BatchedMultiCrop(grayscale_p=1.5)


@pytest.mark.slow
def test_pretrain_with_batched_augmentation_learns_and_rejects_unknown_modes(tmp_path):
    pool = make_gratings(tmp_path / "LUP")
    cfg = small_cfg("vit_tiny", epochs=4, batch_size=16, drop_path_rate=0.0, augment="batched")
    result = dino_train.pretrain(cfg, pool, tmp_path / "run", device="cpu", progress=False, collapse_window=4)
    losses = [h["loss"] for h in result.history]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    with pytest.raises(ValueError, match="augment must be one of"):
        dino_train.pretrain(small_cfg(augment="gpu"), pool, tmp_path / "bad", device="cpu", progress=False)
