"""A straightforward re-statement of the official backbones, used as the reference in tests (docs/reference.md §2.1–2.3, §4.1).

Written from the description in docs/reference.md, independent of timm: explicit softmax attention, a plain ``nn.ModuleList`` of
blocks, the ICS stem of docs/reference.md §2.2, TransReID's overlapping patch embedding, the unused ``fc`` Linear(D, 1000) of the
official classes (§9.15), and DINO's ``interpolate_pos_encoding`` with its own short-circuit rule (§2.3). Key names are
the published ones (docs/reference.md §3.3), so its state dicts are "real-format" checkpoints.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class RefAttention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=True)
        self.proj = nn.Linear(dim, dim)

    def weights(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        return ((q @ k.transpose(-2, -1)) * self.scale).softmax(dim=-1), v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, c = x.shape
        attn, v = self.weights(x)
        return self.proj((attn @ v).transpose(1, 2).reshape(b, n, c))


class RefMlp(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, 4 * dim), nn.GELU(), nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class RefBlock(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = RefAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = RefMlp(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class RefIBN(nn.Module):
    def __init__(self, planes: int) -> None:
        super().__init__()
        self.half = planes // 2
        self.IN = nn.InstanceNorm2d(self.half, affine=True)
        self.BN = nn.BatchNorm2d(planes - self.half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.IN(x[:, : self.half]), self.BN(x[:, self.half:])), dim=1)


class RefPatchEmbed(nn.Module):
    """TransReID PatchEmbed (stride) / PatchEmbed_VOLO (ICS, stride 16 only: the official ignores other strides)."""

    def __init__(self, dim: int, ics: bool, stride: int = 16) -> None:
        super().__init__()
        self.ics = ics
        if ics:
            assert stride == 16
            self.conv = nn.Sequential(
                nn.Conv2d(3, 64, 7, 2, 3, bias=False), RefIBN(64), nn.ReLU(),
                nn.Conv2d(64, 64, 3, 1, 1, bias=False), RefIBN(64), nn.ReLU(),
                nn.Conv2d(64, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(),
            )
            self.proj = nn.Conv2d(64, dim, 8, 8)
        else:
            self.proj = nn.Conv2d(3, dim, 16, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.ics:
            x = self.conv(x)
        return self.proj(x).flatten(2).transpose(1, 2)


class RefViT(nn.Module):
    """Official-layout ViT; ``forward`` returns the CLS token after the final LayerNorm (DINO / TransReID)."""

    def __init__(self, dim: int, depth: int, heads: int, ics: bool, img_size=(256, 128), stride: int = 16) -> None:
        super().__init__()
        self.img_size, self.stride = tuple(img_size), stride
        self.grid = ((img_size[0] - 16) // stride + 1, (img_size[1] - 16) // stride + 1)
        self.patch_embed = RefPatchEmbed(dim, ics, stride)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 1 + self.grid[0] * self.grid[1], dim))
        self.blocks = nn.ModuleList(RefBlock(dim, heads) for _ in range(depth))
        self.norm = nn.LayerNorm(dim, eps=1e-6)
        self.fc = nn.Linear(dim, 1000)  # unused, as in the official classes (docs/reference.md §9.15)

    def interpolate_pos_encoding(self, npatch: int, h: int, w: int) -> torch.Tensor:
        """DINO's rule (docs/reference.md §2.3): keep the table iff token count and image size both equal construction's."""
        if npatch == self.pos_embed.shape[1] - 1 and self.img_size == (h, w):
            return self.pos_embed
        oh, ow = self.grid
        dim = self.pos_embed.shape[-1]
        h0, w0 = h // 16 + 0.1, w // 16 + 0.1
        grid = F.interpolate(self.pos_embed[:, 1:].reshape(1, oh, ow, dim).permute(0, 3, 1, 2),
                             scale_factor=(h0 / oh, w0 / ow), mode="bicubic")
        assert grid.shape[-2:] == (int(h0), int(w0))
        return torch.cat((self.pos_embed[:, :1], grid.permute(0, 2, 3, 1).reshape(1, -1, dim)), dim=1)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        t = self.patch_embed(x)
        t = torch.cat((self.cls_token.expand(b, -1, -1), t), dim=1)
        return t + self.interpolate_pos_encoding(t.shape[1] - 1, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.tokens(x)
        for blk in self.blocks:
            t = blk(t)
        return self.norm(t)[:, 0]

    def last_selfattention(self, x: torch.Tensor) -> torch.Tensor:
        t = self.tokens(x)
        for blk in self.blocks[:-1]:
            t = blk(t)
        return self.blocks[-1].attn.weights(self.blocks[-1].norm1(t))[0]


class RefDINOHead(nn.Module):
    """DINO head with ``torch.nn.utils.parametrizations.weight_norm`` (independent of reid_lab's WeightNormLinear)."""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 2048, bottleneck: int = 256) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(in_dim, hidden), nn.GELU(), nn.Linear(hidden, hidden), nn.GELU(),
                                 nn.Linear(hidden, bottleneck))
        self.last_layer = nn.utils.parametrizations.weight_norm(nn.Linear(bottleneck, out_dim, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.last_layer(F.normalize(self.mlp(x), dim=-1))

    def official_state_dict(self) -> dict[str, torch.Tensor]:
        """Keys as the deprecated ``nn.utils.weight_norm`` names them (the official checkpoints, docs/reference.md §3.1)."""
        sd = {k: v for k, v in self.state_dict().items() if not k.startswith("last_layer.")}
        sd["last_layer.weight_g"] = self.last_layer.parametrizations.weight.original0.detach().clone()
        sd["last_layer.weight_v"] = self.last_layer.parametrizations.weight.original1.detach().clone()
        return sd


@torch.no_grad()
def randomize_(module: nn.Module, seed: int, scale: float = 0.05) -> nn.Module:
    """Fill every parameter and BN buffer with seeded random values (so no tensor is left at a trivial init)."""
    g = torch.Generator().manual_seed(seed)
    for name, t in module.state_dict().items():
        if not t.is_floating_point():
            continue
        r = torch.randn(t.shape, generator=g)
        if name.endswith("running_var"):
            t.copy_(0.5 + r.abs())
        elif name.endswith(("norm1.weight", "norm2.weight", "norm.weight", "IN.weight", "BN.weight")) or (
            name.endswith("weight") and t.ndim == 1
        ):
            t.copy_(1.0 + 0.1 * r)
        elif name.startswith("patch_embed.proj.weight") or name.endswith("conv.0.weight"):
            t.copy_(r / math.sqrt(t[0].numel()))
        elif ".conv." in f".{name}" and t.ndim == 4:
            t.copy_(r / math.sqrt(t[0].numel()))
        else:
            t.copy_(scale * r)
    return module


def reference(arch: str, img_size=(256, 128), seed: int = 0) -> RefViT:
    """The reference model for a reid_lab arch name, with random non-trivial weights, in eval mode."""
    dims = {"vit_tiny": (192, 4, 3), "vit_small": (384, 12, 6), "vit_base": (768, 12, 12)}
    base = arch.removesuffix("_ics")
    dim, depth, heads = dims[base]
    with torch.device("meta"):  # skip the default init: randomize_ overwrites every tensor
        model = RefViT(dim, depth, heads, arch.endswith("_ics"), img_size)
    model = model.to_empty(device="cpu")
    for name, t in model.state_dict().items():
        if not t.is_floating_point():
            t.zero_()  # num_batches_tracked
    return randomize_(model, seed).eval()


def empty_backbone(arch: str, **kwargs) -> nn.Module:
    """A reid_lab backbone with uninitialised tensors (fast for ViT-S/B); for tests that load every tensor."""
    from reid_lab.models import build_backbone

    with torch.device("meta"):
        model = build_backbone(arch, **kwargs)
    return model.to_empty(device="cpu")
