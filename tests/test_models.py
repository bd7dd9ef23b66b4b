"""Backbones and heads: names, key layout (docs/reference.md §3.3), forward contract, position embeddings (§2.3), ICS init, heads."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from official_reference import RefDINOHead, reference
from reid_lab.models import BNNeckHead, DINOHead, build_backbone, list_backbones, load_pretrained

torch.set_num_threads(2)


# --- registry ---------------------------------------------------------------------------------------------
def test_list_backbones_has_the_paper_variants_and_tiny_ones():
    names = list_backbones()
    for n in ("vit_small", "vit_small_ics", "vit_base", "vit_base_ics", "vit_tiny", "vit_tiny_ics"):
        assert n in names


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="vit_small_ics") as err:
        build_backbone("vit_smal")
    assert "vit_smal'" in str(err.value)


def test_unknown_kwarg_is_rejected():
    with pytest.raises(TypeError, match="num_classes"):
        build_backbone("vit_tiny", num_classes=10)


# --- key names and shapes against docs/reference.md §3.3 ----------------------------------------------------------
def _expected_keys(dim: int, depth: int, ics: bool, tokens: int = 129) -> dict[str, tuple[int, ...]]:
    keys = {"cls_token": (1, 1, dim), "pos_embed": (1, tokens, dim)}
    if ics:
        keys["patch_embed.conv.0.weight"] = (64, 3, 7, 7)
        for i in (1, 4):
            keys |= {f"patch_embed.conv.{i}.IN.weight": (32,), f"patch_embed.conv.{i}.IN.bias": (32,)}
            keys |= {f"patch_embed.conv.{i}.BN.{s}": (32,) for s in ("weight", "bias", "running_mean", "running_var")}
            keys[f"patch_embed.conv.{i}.BN.num_batches_tracked"] = ()
        keys |= {"patch_embed.conv.3.weight": (64, 64, 3, 3), "patch_embed.conv.6.weight": (64, 64, 3, 3)}
        keys |= {f"patch_embed.conv.7.{s}": (64,) for s in ("weight", "bias", "running_mean", "running_var")}
        keys["patch_embed.conv.7.num_batches_tracked"] = ()
        keys |= {"patch_embed.proj.weight": (dim, 64, 8, 8), "patch_embed.proj.bias": (dim,)}
    else:
        keys |= {"patch_embed.proj.weight": (dim, 3, 16, 16), "patch_embed.proj.bias": (dim,)}
    for i in range(depth):
        p = f"blocks.{i}."
        keys |= {p + f"norm{j}.{s}": (dim,) for j in (1, 2) for s in ("weight", "bias")}
        keys |= {p + "attn.qkv.weight": (3 * dim, dim), p + "attn.qkv.bias": (3 * dim,)}
        keys |= {p + "attn.proj.weight": (dim, dim), p + "attn.proj.bias": (dim,)}
        keys |= {p + "mlp.fc1.weight": (4 * dim, dim), p + "mlp.fc1.bias": (4 * dim,)}
        keys |= {p + "mlp.fc2.weight": (dim, 4 * dim), p + "mlp.fc2.bias": (dim,)}
    return keys | {"norm.weight": (dim,), "norm.bias": (dim,)}


@pytest.mark.parametrize(
    "name, dim, ics, n_tensors, n_params",
    [
        ("vit_small", 384, False, 150, 21_639_552),
        ("vit_small_ics", 384, True, 172, 23_001_024),
        ("vit_base_ics", 768, True, 172, 88_385_856),
        ("vit_base", 768, False, 150, None),
    ],
)
def test_state_dict_equals_spec_table(name, dim, ics, n_tensors, n_params):
    with torch.device("meta"):  # shapes only: skip initialising ~100M parameters
        model = build_backbone(name, img_size=(256, 128))
    sd = model.state_dict()
    got = {k: tuple(v.shape) for k, v in sd.items()}
    assert got == _expected_keys(dim, 12, ics)  # exact: no extra timm keys (head, fc_norm, reg_token, …)
    assert len(sd) == n_tensors
    if n_params is not None:  # docs/reference.md §2.1 counts parameters only (BN running stats are buffers)
        assert sum(p.numel() for p in model.parameters()) == n_params
    buffers = sum(b.numel() for b in model.buffers())
    assert buffers == (2 * (2 * 32 + 1) + (2 * 64 + 1) if ics else 0)  # running mean/var + num_batches_tracked


def test_tiny_variants_layout():
    for name, ics in (("vit_tiny", False), ("vit_tiny_ics", True)):
        got = {k: tuple(v.shape) for k, v in build_backbone(name).state_dict().items()}
        assert got == _expected_keys(192, 4, ics, tokens=1 + 8 * 4)  # 128x64 -> 8x4 grid


def test_vit_base_384x128_has_193_tokens():
    with torch.device("meta"):
        model = build_backbone("vit_base_ics", img_size=(384, 128))
    assert model.pos_embed.shape == (1, 193, 768)
    assert model.patch_embed.grid_size == (24, 8)


def test_transformer_configuration_matches_spec():
    with torch.device("meta"):
        model = build_backbone("vit_small", drop_path_rate=0.1)
    norms = [m for m in model.modules() if isinstance(m, nn.LayerNorm)]
    assert len(norms) == 2 * 12 + 1 and all(m.eps == 1e-6 for m in norms)
    assert all(blk.attn.qkv.bias is not None for blk in model.blocks)
    assert all(blk.attn.fused_attn for blk in model.blocks)  # timm's SDPA path is used for training
    rates = [getattr(blk.drop_path1, "drop_prob", 0.0) for blk in model.blocks]
    assert rates == pytest.approx([0.1 * i / 11 for i in range(12)])
    assert model.embed_dim == 384 and model.arch == "vit_small"


# --- forward contract -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["vit_tiny", "vit_tiny_ics"])
def test_eval_forward_is_cls_after_final_norm(name):
    torch.manual_seed(0)
    model = build_backbone(name).eval()
    x = torch.randn(3, 3, 128, 64)
    with torch.no_grad():
        feat = model(x)
        tokens = model.forward_tokens(x)
    assert feat.shape == (3, 192)
    assert tokens.shape == (3, 1 + 8 * 4, 192)
    torch.testing.assert_close(feat, tokens[:, 0])
    # it is a LayerNorm output: per-token mean = norm.bias mean, std ~ 1 when affine is at init
    assert feat.mean(-1).abs().max() < 1e-5
    assert torch.allclose(feat.var(-1, unbiased=False), torch.ones(3), atol=1e-3)


def test_drop_path_active_in_train_only():
    torch.manual_seed(0)
    model = build_backbone("vit_tiny", drop_path_rate=0.5)
    x = torch.randn(4, 3, 128, 64)
    with torch.no_grad():
        model.train()
        a, b = model(x), model(x)
        model.eval()
        c, d = model(x), model(x)
    assert not torch.allclose(a, b)
    torch.testing.assert_close(c, d)


@pytest.mark.parametrize("name", ["vit_tiny", "vit_tiny_ics"])
def test_overlapping_patches_follow_transreid_grid(name):
    model = build_backbone(name, img_size=(128, 64), stride_size=12)
    # TransReID: num_y = (H - 16) // stride + 1 = 10, num_x = (64 - 16) // 12 + 1 = 5
    assert model.patch_embed.grid_size == (10, 5)
    assert model.pos_embed.shape == (1, 51, 192)
    with torch.no_grad():
        assert model.eval().forward_tokens(torch.randn(1, 3, 128, 64)).shape == (1, 51, 192)


def test_ics_stride_is_honoured_not_ignored():
    """docs/reference.md §9.17: the official ICS stem silently uses stride 8 (16 px); ours uses stride/2 on the stem output."""
    with torch.device("meta"):
        model = build_backbone("vit_small_ics", stride_size=12)
    assert model.patch_embed.proj.stride == (6, 6) and model.patch_embed.proj.kernel_size == (8, 8)
    assert model.patch_embed.grid_size == ((256 - 16) // 12 + 1, (128 - 16) // 12 + 1)
    with pytest.raises(ValueError, match="even"):
        build_backbone("vit_tiny_ics", stride_size=11)


def test_bad_sizes_raise_clear_errors():
    with pytest.raises(ValueError, match="stride_size"):
        build_backbone("vit_tiny", stride_size=20)
    with pytest.raises(ValueError, match="img_size"):
        build_backbone("vit_tiny", img_size=(128,))
    model = build_backbone("vit_tiny").eval()
    with pytest.raises(ValueError, match="smaller than one patch"):
        model(torch.randn(1, 3, 8, 8))


# --- position embeddings (docs/reference.md §2.3) -------------------------------------------------------------------
def test_pos_embed_short_circuits_at_construction_grid():
    model = build_backbone("vit_tiny")
    assert model.interpolate_pos_encoding(8, 4) is model.pos_embed


def test_local_crop_pos_embed_uses_dino_bicubic_scale_factor():
    """128x64 local crop into a 256x128 model: bicubic with scale_factor ((8 + 0.1)/16, (4 + 0.1)/8), CLS kept."""
    torch.manual_seed(0)
    model = build_backbone("vit_tiny", img_size=(256, 128))
    pos = model.interpolate_pos_encoding(8, 4)
    assert pos.shape == (1, 33, 192)
    torch.testing.assert_close(pos[:, 0], model.pos_embed[:, 0])
    grid = model.pos_embed[:, 1:].reshape(1, 16, 8, 192).permute(0, 3, 1, 2)
    by_size = F.interpolate(grid, size=(8, 4), mode="bicubic").permute(0, 2, 3, 1).reshape(1, 32, 192)
    # the +0.1 scale factor changes the sampling positions, so it is distinguishable from size=(8, 4)
    assert (pos[:, 1:] - by_size).abs().max() > 1e-3


@pytest.mark.parametrize("arch", ["vit_tiny", "vit_tiny_ics"])
@pytest.mark.parametrize("size", [(256, 128), (128, 64), (96, 64)])
def test_features_equal_official_reference_at_any_size(arch, size):
    """Loaded into ours, official-layout weights give the reference's features, incl. DINO's interpolation."""
    ref = reference(arch, img_size=(256, 128), seed=1)
    model = build_backbone(arch, img_size=(256, 128)).eval()
    load_pretrained(model, ref.state_dict())
    x = torch.randn(2, 3, *size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), atol=2e-5, rtol=1e-4)


# --- initialisation (docs/reference.md §11.4: ICS collapse) -------------------------------------------------------
def _person_like_images(n: int, h: int, w: int, seed: int = 0) -> torch.Tensor:
    """Distinct images: per-image colour cast, contrast and a smooth random pattern, ImageNet-normalised."""
    g = torch.Generator().manual_seed(seed)
    base = torch.rand(n, 3, 1, 1, generator=g)
    contrast = 0.1 + 0.4 * torch.rand(n, 1, 1, 1, generator=g)
    pattern = F.interpolate(torch.rand(n, 3, 8, 4, generator=g) - 0.5, size=(h, w), mode="bilinear")
    x = (base + contrast * pattern + 0.03 * torch.randn(n, 3, h, w, generator=g)).clamp(0, 1)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    return (x - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)


def _mean_pairwise_cosine(f: torch.Tensor) -> float:
    f = F.normalize(f, dim=1)
    n = len(f)
    return float(((f @ f.T).sum() - n) / (n * (n - 1)))


@pytest.mark.parametrize("name", ["vit_tiny", "vit_tiny_ics", "vit_small_ics"])
def test_init_gives_dissimilar_cls_features_for_distinct_images(name):
    """docs/reference.md §11.4: a default-initialised ICS projection makes all CLS features alike (cosine ~0.9) and DINO collapses.

    Measured with BatchNorm on batch statistics (train mode), as DINO runs student and teacher.
    """
    torch.manual_seed(0)
    model = build_backbone(name, img_size=(128, 64)).train()  # small inputs keep the ViT-S case fast
    x = _person_like_images(16, 128, 64)
    with torch.no_grad():
        assert _mean_pairwise_cosine(model(x)) < 0.5
    if model.is_ics:  # the check can fail: PyTorch's default init of the projection brings the collapse back
        with torch.no_grad():
            model.patch_embed.proj.reset_parameters()
            assert _mean_pairwise_cosine(model(x)) > 0.6


def test_ics_projection_is_zero_mean_with_zero_bias():
    proj = build_backbone("vit_tiny_ics").patch_embed.proj
    assert proj.weight.mean(dim=(1, 2, 3)).abs().max() < 1e-6
    assert proj.weight.std() > 1e-3
    assert torch.count_nonzero(proj.bias) == 0


# --- heads --------------------------------------------------------------------------------------------------------
def test_dino_head_official_key_layout():
    head = DINOHead(384)
    got = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    assert got == {
        "mlp.0.weight": (2048, 384), "mlp.0.bias": (2048,),
        "mlp.2.weight": (2048, 2048), "mlp.2.bias": (2048,),
        "mlp.4.weight": (256, 2048), "mlp.4.bias": (256,),
        "last_layer.weight_g": (65536, 1), "last_layer.weight_v": (65536, 256),
    }
    assert torch.all(head.last_layer.weight_g == 1) and not head.last_layer.weight_g.requires_grad
    assert DINOHead(384, out_dim=32, norm_last_layer=False).last_layer.weight_g.requires_grad


def test_dino_head_matches_torch_weight_norm():
    torch.manual_seed(0)
    ref = RefDINOHead(48, out_dim=100, hidden=64, bottleneck=16)
    with torch.no_grad():  # non-unit g so the normalisation is exercised
        ref.last_layer.parametrizations.weight.original0.uniform_(0.5, 2.0)
    head = DINOHead(48, out_dim=100, hidden_dim=64, bottleneck_dim=16, norm_last_layer=False)
    head.load_state_dict(ref.official_state_dict())
    x = torch.randn(5, 48)
    with torch.no_grad():
        torch.testing.assert_close(head(x), ref(x))
        # hand check: each output row is g_k * <v_k/|v_k|, z/|z|>, so |out| <= g_k
        assert torch.all(head(x).abs() <= head.last_layer.weight_g.T + 1e-6)


def test_dino_head_single_layer_and_bn_layouts():
    assert set(DINOHead(8, out_dim=4, nlayers=1).state_dict()) == {"mlp.weight", "mlp.bias", "last_layer.weight_g",
                                                                   "last_layer.weight_v"}
    keys = set(DINOHead(8, out_dim=4, hidden_dim=6, bottleneck_dim=3, use_bn=True).state_dict())
    assert {"mlp.0.weight", "mlp.1.running_mean", "mlp.3.weight", "mlp.4.running_var", "mlp.6.weight"} <= keys
    with pytest.raises(ValueError, match="nlayers"):
        DINOHead(8, nlayers=0)


def test_bnneck_head_layout_and_modes():
    torch.manual_seed(0)
    head = BNNeckHead(16, num_classes=7)
    assert {k: tuple(v.shape) for k, v in head.state_dict().items()} == {
        "bottleneck.weight": (16,), "bottleneck.bias": (16,), "bottleneck.running_mean": (16,),
        "bottleneck.running_var": (16,), "bottleneck.num_batches_tracked": (), "classifier.weight": (7, 16),
    }
    assert not head.bottleneck.bias.requires_grad and head.bottleneck.weight.requires_grad
    assert head.classifier.bias is None
    big = BNNeckHead(384, num_classes=2000)
    assert abs(big.classifier.weight.std().item() - 0.001) < 1e-4

    feat = torch.randn(8, 16) * 3 + 1
    head.train()
    logits, f = head(feat)
    assert f is feat and logits.shape == (8, 7)
    bn_train = (feat - feat.mean(0)) / torch.sqrt(feat.var(0, unbiased=False) + 1e-5)
    torch.testing.assert_close(logits, bn_train @ head.classifier.weight.T, atol=1e-5, rtol=1e-4)

    head.eval()
    with torch.no_grad():
        head.bottleneck.running_mean.fill_(0.5)
        head.bottleneck.running_var.fill_(4.0)
        torch.testing.assert_close(head(feat), feat)  # neck_feat='before' (every official config)
        head.neck_feat = "after"
        torch.testing.assert_close(head(feat), (feat - 0.5) / math.sqrt(4.0 + 1e-5))
    with pytest.raises(ValueError, match="neck_feat"):
        BNNeckHead(16, 7, neck_feat="middle")
