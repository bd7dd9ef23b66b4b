"""Attention maps (docs/reference.md §6) and ONNX export with parity (§12.5)."""
from __future__ import annotations

import pytest
import torch

from official_reference import reference
from reid_lab.models import (
    attention_entropy_by_block,
    attention_rollout,
    build_backbone,
    cls_attention_map,
    export_onnx,
    last_selfattention,
    load_pretrained,
)
from reid_lab.models.attention import block_attention

torch.set_num_threads(2)


def _images(n, h, w, seed=0):
    return torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", ["vit_tiny", "vit_tiny_ics"])
@pytest.mark.parametrize("size, stride", [((128, 64), 16), ((96, 64), 16), ((128, 64), 12)])
def test_last_selfattention_shape_and_rows(name, size, stride):
    torch.manual_seed(0)
    model = build_backbone(name, img_size=(128, 64), stride_size=stride).eval()
    gh, gw = model.grid_for(*size)
    with torch.no_grad():
        attn = last_selfattention(model, _images(2, *size))
    assert attn.shape == (2, 3, 1 + gh * gw, 1 + gh * gw)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 3, 1 + gh * gw))
    assert attn.min() >= 0


def test_explicit_attention_reproduces_the_fused_block():
    """Recombining the explicit probabilities with v gives exactly what timm's fused SDPA path computes."""
    torch.manual_seed(0)
    model = build_backbone("vit_tiny_ics").eval()
    blk = model.blocks[1]
    assert blk.attn.fused_attn
    x = torch.randn(2, 33, 192)
    with torch.no_grad():
        probs = block_attention(blk, x)
        y = blk.norm1(x)
        v = blk.attn.qkv(y).reshape(2, 33, 3, 3, 64).permute(2, 0, 3, 1, 4)[2]
        manual = blk.attn.proj((probs @ v).transpose(1, 2).reshape(2, 33, 192))
        torch.testing.assert_close(manual, blk.attn(y), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("arch", ["vit_tiny", "vit_tiny_ics"])
def test_last_selfattention_equals_official_reference(arch):
    """Same weights, same input (also a DINO-interpolated size): same attention as the explicit reference."""
    ref = reference(arch, img_size=(128, 64), seed=3)
    model = build_backbone(arch).eval()
    load_pretrained(model, ref.state_dict())
    for size in ((128, 64), (64, 32)):
        x = _images(2, *size, seed=1)
        with torch.no_grad():
            torch.testing.assert_close(last_selfattention(model, x), ref.last_selfattention(x), atol=1e-5, rtol=1e-4)


def test_attention_rollout_definition():
    torch.manual_seed(0)
    model = build_backbone("vit_tiny").eval()
    x = _images(2, 96, 48)
    with torch.no_grad():
        roll = attention_rollout(model, x)
        # loop statement of Abnar & Zuidema with per-block attention read off the blocks one by one
        t = model._pos_embed(model.patch_embed(x))
        eye = torch.eye(t.shape[1])
        expected = eye.expand(2, -1, -1)
        for blk in model.blocks:
            a = (block_attention(blk, t).mean(1) + eye) / 2
            expected = a @ expected  # rows of (A + I)/2 already sum to 1
            t = blk(t)
    assert roll.shape == (2, 19, 19)
    torch.testing.assert_close(roll, expected)
    torch.testing.assert_close(roll.sum(-1), torch.ones(2, 19))


def test_attention_rollout_discard_and_fusion():
    torch.manual_seed(0)
    model = build_backbone("vit_tiny_ics").eval()
    x = _images(1, 128, 64)
    with torch.no_grad():
        base = attention_rollout(model, x)
        dropped = attention_rollout(model, x, discard_ratio=0.9, head_fusion="max")
    assert not torch.allclose(base, dropped)
    torch.testing.assert_close(dropped.sum(-1), torch.ones(1, 33))
    with pytest.raises(ValueError, match="head_fusion"):
        attention_rollout(model, x, head_fusion="median")
    with pytest.raises(ValueError, match="discard_ratio"):
        attention_rollout(model, x, discard_ratio=1.0)


def test_attention_entropy_by_block():
    """Zero queries in block 0 -> uniform rows (entropy exactly 1); queries x50 in block 1 -> far from uniform,
    equal to the entropy computed from block_attention by hand."""
    import math

    torch.manual_seed(0)
    model = build_backbone("vit_tiny").eval()
    d = model.embed_dim
    x = _images(2, 128, 64)
    with torch.no_grad():
        model.blocks[0].attn.qkv.weight[:d].zero_()
        model.blocks[0].attn.qkv.bias[:d].zero_()
        model.blocks[1].attn.qkv.weight[:d] *= 50
        ent = attention_entropy_by_block(model, x)
        t = model.blocks[0](model.norm_pre(model.patch_drop(model._pos_embed(model.patch_embed(x)))))
        p = block_attention(model.blocks[1], t)[..., 1:]
    assert ent.shape == (len(model.blocks), 2)
    torch.testing.assert_close(ent[0], torch.ones(2))
    p = p / p.sum(-1, keepdim=True)
    h = -(p * p.clamp_min(1e-30).log()).sum(-1) / math.log(32)
    torch.testing.assert_close(ent[1], torch.stack([h[:, :, 0].mean(), h[:, :, 1:].mean()]))
    assert ent[1].max() < 0.9 and ent[2:].min() > 0.9  # the sharpened block stands out


def test_cls_attention_map_grid():
    model = build_backbone("vit_tiny_ics", stride_size=12).eval()
    x = _images(2, 128, 64)
    with torch.no_grad():
        last = cls_attention_map(model, x)
        roll = cls_attention_map(model, x, method="rollout")
    assert last.shape == (2, 3, 10, 5) and roll.shape == (2, 1, 10, 5)
    with torch.no_grad():
        torch.testing.assert_close(last.flatten(2), last_selfattention(model, x)[:, :, 0, 1:])


# --- ONNX ------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, dynamo", [("vit_tiny", True), ("vit_tiny_ics", False)])
def test_export_onnx_parity(name, dynamo, tmp_path):
    onnx = pytest.importorskip("onnx")
    torch.manual_seed(0)
    model = build_backbone(name)
    with torch.no_grad():  # non-trivial BN statistics so eval-mode BN is exercised
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    model.train()
    diff = export_onnx(model, tmp_path / "m.onnx", (128, 64), dynamo=dynamo)
    assert model.training  # mode restored
    assert diff < 1e-4
    graph = onnx.load(str(tmp_path / "m.onnx"))
    onnx.checker.check_model(graph)
    dims = graph.graph.input[0].type.tensor_type.shape.dim
    assert not dims[0].HasField("dim_value")  # dynamic batch
    assert [d.dim_value for d in dims[1:]] == [3, 128, 64]
