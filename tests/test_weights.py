"""load_pretrained: every published checkpoint format (docs/reference.md §3.1–3.4), built here from the published key layout."""
from __future__ import annotations

import argparse

import pytest
import torch

from official_reference import RefDINOHead, empty_backbone, randomize_, reference
from reid_lab.models import (
    ArchitectureMismatchError,
    UnsafeCheckpointError,
    build_backbone,
    load_pretrained,
    make_checkpoint,
    resize_pos_embed,
)

torch.set_num_threads(2)


def _images(n: int, h: int, w: int, seed: int = 3) -> torch.Tensor:
    return torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _assert_same_features(model, ref, size=(256, 128), n=2):
    x = _images(n, *size)
    with torch.no_grad():
        ours, theirs = model.eval()(x), ref(x)
    torch.testing.assert_close(ours, theirs, atol=2e-5, rtol=1e-4)


def _dino_checkpoint(teacher, student, head_dim: int, teacher_ddp: bool) -> dict:
    """main_dino.py's checkpoint.pth layout (docs/reference.md §3.1)."""
    head_t = RefDINOHead(head_dim, out_dim=64, hidden=32, bottleneck=16).official_state_dict()
    head_s = RefDINOHead(head_dim, out_dim=64, hidden=32, bottleneck=16).official_state_dict()
    t_prefix = "module." if teacher_ddp else ""
    teacher_sd = {f"{t_prefix}backbone.{k}": v for k, v in teacher.state_dict().items() if not k.startswith("fc.")}
    teacher_sd |= {f"{t_prefix}head.{k}": v for k, v in head_t.items()}
    student_sd = {f"module.backbone.{k}": v for k, v in student.state_dict().items() if not k.startswith("fc.")}
    student_sd |= {f"module.head.{k}": v for k, v in head_s.items()}
    return {
        "student": student_sd,
        "teacher": teacher_sd,
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.001, "params": [0, 1]}]},
        "epoch": 3,
        "args": argparse.Namespace(arch="ours_vit_small", out_dim=65536, lr=0.0005, local_crops_number=8),
        "dino_loss": {"center": torch.zeros(1, 64)},
        "fp16_scaler": None,
    }


# --- formats --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["vit_small", "vit_small_ics"])
def test_released_flat_backbone_gives_official_features(arch, tmp_path):
    """docs/reference.md §3.2: convert_model_dino.py saves the teacher backbone as a flat {name: tensor} dict."""
    ref = reference(arch, seed=10)
    flat = {k: v for k, v in ref.state_dict().items() if not k.startswith("fc.")}
    torch.save(flat, tmp_path / "released.pth")
    model = empty_backbone(arch)
    report = load_pretrained(model, tmp_path / "released.pth")
    assert report.source_format == "flat_backbone"
    assert len(report.loaded) == {"vit_small": 150, "vit_small_ics": 172}[arch]
    assert report.missing == [] and report.unexpected == [] and report.resized == {}
    _assert_same_features(model, ref, n=1)


@pytest.mark.parametrize("teacher_ddp", [False, True])
def test_dino_training_checkpoint_uses_the_teacher(teacher_ddp, tmp_path):
    """docs/reference.md §3.1: plain teacher -> backbone.*, ICS teacher (BN) -> module.backbone.*; student always module.*."""
    arch = "vit_tiny_ics" if teacher_ddp else "vit_tiny"
    teacher, student = reference(arch, img_size=(128, 64), seed=1), reference(arch, img_size=(128, 64), seed=2)
    torch.save(_dino_checkpoint(teacher, student, 192, teacher_ddp), tmp_path / "checkpoint.pth")
    model = build_backbone(arch)
    report = load_pretrained(model, tmp_path / "checkpoint.pth")
    assert report.source_format == "dino_checkpoint"
    assert any(k.startswith("head.last_layer.weight_g") for k in report.ignored)
    assert report.missing == [] and report.unexpected == []
    _assert_same_features(model, teacher, size=(128, 64))
    # the student is reachable explicitly, and differs (so the check above can tell them apart)
    load_pretrained(model, tmp_path / "checkpoint.pth", checkpoint_key="student")
    _assert_same_features(model, student, size=(128, 64))
    with torch.no_grad():
        assert (model(_images(2, 128, 64)) - teacher(_images(2, 128, 64))).abs().max() > 1e-2


def test_transreid_finetuned_checkpoint(tmp_path):
    """docs/reference.md §3.4: build_transformer state dict = base.* (with the unused base.fc) + bottleneck.* + classifier.weight."""
    ref = reference("vit_tiny_ics", img_size=(128, 64), seed=4)
    sd = {f"base.{k}": v for k, v in ref.state_dict().items()}  # includes base.fc.weight / base.fc.bias
    sd |= {"bottleneck.weight": torch.ones(192), "bottleneck.bias": torch.zeros(192),
           "bottleneck.running_mean": torch.zeros(192), "bottleneck.running_var": torch.ones(192),
           "bottleneck.num_batches_tracked": torch.tensor(5), "classifier.weight": torch.randn(751, 192)}
    torch.save(sd, tmp_path / "transformer_120.pth")
    model = build_backbone("vit_tiny_ics")
    report = load_pretrained(model, tmp_path / "transformer_120.pth")
    assert report.source_format == "transreid"
    assert set(report.ignored) == {"bottleneck.weight", "bottleneck.bias", "bottleneck.running_mean",
                                   "bottleneck.running_var", "bottleneck.num_batches_tracked", "classifier.weight",
                                   "fc.weight", "fc.bias"}
    assert len(report.loaded) == 76 and report.unexpected == []
    _assert_same_features(model, ref, size=(128, 64))


@pytest.mark.parametrize("wrapper", ["model", "state_dict"])
def test_wrapped_ddp_state_dict(wrapper):
    ref = reference("vit_tiny", img_size=(128, 64), seed=5)
    ckpt = {wrapper: {f"module.{k}": v for k, v in ref.state_dict().items()}, "epoch": 7}
    model = build_backbone("vit_tiny")
    report = load_pretrained(model, ckpt)
    assert f"unwrapped '{wrapper}'" in report.notes and "stripped 'module.'" in report.notes
    _assert_same_features(model, ref, size=(128, 64))


def test_reid_lab_checkpoint_roundtrip(tmp_path):
    torch.manual_seed(0)
    src = randomize_(build_backbone("vit_tiny_ics", img_size=(96, 48), stride_size=12), seed=6).eval()
    ckpt = make_checkpoint(src, epoch=2, optimizer={"state": {}, "param_groups": []})
    assert ckpt["format"] == "reid_lab" and ckpt["arch"] == "vit_tiny_ics" and ckpt["grid"] == [7, 3]
    torch.save(ckpt, tmp_path / "ckpt.pth")
    model = build_backbone("vit_tiny_ics", img_size=(96, 48), stride_size=12)
    report = load_pretrained(model, tmp_path / "ckpt.pth")
    assert report.source_format == "reid_lab" and len(report.loaded) == 76
    _assert_same_features(model, src, size=(96, 48))
    with pytest.raises(ValueError, match="override"):
        make_checkpoint(src, arch="vit_small")


def test_old_timm_2d_patch_embedding_is_reshaped():
    ref = reference("vit_tiny", img_size=(128, 64), seed=7)
    sd = dict(ref.state_dict())
    sd["patch_embed.proj.weight"] = sd["patch_embed.proj.weight"].reshape(192, -1)  # (D, 3*16*16)
    model = build_backbone("vit_tiny")
    load_pretrained(model, sd)
    _assert_same_features(model, ref, size=(128, 64))


# --- position-embedding resizing (docs/reference.md §3.4) -----------------------------------------------------------
def test_resize_pos_embed_bilinear_hand_computed():
    """A table whose value is the row index: bilinear (align_corners False) 16 -> 24 rows samples row
    y_src = (i + 0.5) * 16 / 24 - 0.5, clamped to [0, 15]; columns stay (8 -> 8)."""
    rows = torch.arange(16.0).view(16, 1).expand(16, 8).reshape(1, 128, 1)
    pos = torch.cat((torch.full((1, 1, 1), -7.0), rows), dim=1).expand(1, 129, 2).contiguous()
    out = resize_pos_embed(pos, (24, 8))  # old grid inferred: 16x8 with hw_ratio 2
    assert out.shape == (1, 193, 2)
    assert torch.all(out[0, 0] == -7.0)  # CLS row kept
    grid = out[0, 1:, 0].view(24, 8)
    expected = [min(max((i + 0.5) * 16 / 24 - 0.5, 0.0), 15.0) for i in range(24)]
    torch.testing.assert_close(grid[:, 3], torch.tensor(expected))
    assert torch.all(grid == grid[:, :1])  # constant along columns


def test_resize_pos_embed_infers_square_imagenet_grid_and_refuses_unknown():
    pos = torch.randn(1, 1 + 196, 4)
    assert resize_pos_embed(pos, (16, 8)).shape == (1, 129, 4)  # 14x14 (hw_ratio 1 baselines)
    with pytest.raises(ValueError, match="pretrain_grid"):
        resize_pos_embed(torch.randn(1, 1 + 30, 4), (16, 8))


def test_vit_base_ics_256x128_weights_into_384x128_model():
    """ViT-B+ICS is pre-trained at 256x128 and fine-tuned at 384x128 (docs/reference.md §3.4, §10): 129 -> 193 tokens."""
    ref = reference("vit_base_ics", img_size=(256, 128), seed=8)
    flat = {k: v for k, v in ref.state_dict().items() if not k.startswith("fc.")}
    model = empty_backbone("vit_base_ics", img_size=(384, 128))
    report = load_pretrained(model, flat)
    assert report.resized == {"pos_embed": ((1, 129, 768), (1, 193, 768))}
    expected = resize_pos_embed(flat["pos_embed"], (24, 8), (16, 8))
    torch.testing.assert_close(model.pos_embed.data, expected)
    # everything else is loaded as is: same features as the reference (small input to keep ViT-B cheap on CPU;
    # it goes through the same bicubic position-embedding path in both)
    model256 = empty_backbone("vit_base_ics", img_size=(256, 128))
    load_pretrained(model256, flat)
    _assert_same_features(model256, ref, size=(64, 32), n=1)


# --- errors ---------------------------------------------------------------------------------------------------------
def test_ics_weights_into_plain_vit_name_both():
    sd = {k: v for k, v in reference("vit_tiny_ics", img_size=(128, 64)).state_dict().items()}
    with pytest.raises(ArchitectureMismatchError, match=r"vit_tiny_ics .*ICS stem.* model is vit_tiny .*patchify"):
        load_pretrained(build_backbone("vit_tiny"), sd)


def test_vit_base_into_vit_small_names_both():
    with torch.device("meta"):
        base = build_backbone("vit_base_ics")
        small = build_backbone("vit_small_ics")
    sd = {k: torch.zeros(v.shape) for k, v in base.state_dict().items()}
    with pytest.raises(ArchitectureMismatchError, match="vit_base_ics.*vit_small_ics.*embedding sizes"):
        load_pretrained(small, sd)


def test_depth_mismatch_and_non_strict_partial_load():
    sd = dict(reference("vit_tiny", img_size=(128, 64)).state_dict())
    truncated = {k: v for k, v in sd.items() if not k.startswith("blocks.3.")}
    model = build_backbone("vit_tiny")
    with pytest.raises(ArchitectureMismatchError, match="blocks"):
        load_pretrained(model, truncated)
    report = load_pretrained(model, truncated, strict_arch=False)
    assert sorted(report.missing) == sorted(k for k in model.state_dict() if k.startswith("blocks.3."))
    torch.testing.assert_close(model.blocks[0].attn.qkv.weight.data, sd["blocks.0.attn.qkv.weight"])


class _Payload:
    """A custom class: unpickling it would call _mark(), i.e. run code chosen by the file's author."""

    def __reduce__(self):
        return (_mark, ())


CALLED: list[int] = []


def _mark():
    CALLED.append(1)
    return {}


def test_unsafe_pickle_is_refused_without_running_it(tmp_path):
    torch.save({"model": _Payload()}, tmp_path / "evil.pth")
    with pytest.raises(UnsafeCheckpointError, match="refusing to load .*evil.pth"):
        load_pretrained(build_backbone("vit_tiny"), tmp_path / "evil.pth")
    assert CALLED == []


def test_missing_file_and_bad_inputs(tmp_path):
    model = build_backbone("vit_tiny")
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_pretrained(model, tmp_path / "nope.pth")
    with pytest.raises(ValueError, match="no backbone tensors"):
        load_pretrained(model, {"head.weight": torch.zeros(3)})
    with pytest.raises(TypeError, match="path or a dict"):
        load_pretrained(model, 42)


def test_report_is_readable():
    ref = reference("vit_tiny", img_size=(128, 64))
    sd = {f"module.backbone.{k}": v for k, v in ref.state_dict().items()} | {"module.head.mlp.0.weight": torch.zeros(1)}
    report = load_pretrained(build_backbone("vit_tiny"), {"teacher": sd})
    text = str(report)
    assert "vit_tiny" in text and "dino_checkpoint" in text and "loaded 54 / 54" in text
    assert "ignored (3)" in text  # fc.weight, fc.bias of the reference + the head key
