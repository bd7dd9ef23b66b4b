"""Architecture diagrams drawn with matplotlib (no image files to ship): the ICS stem against the patchify layer,
and DINO's student / teacher (the paper, §3; docs/reference.md §2.2, §2.4–2.5)."""
from __future__ import annotations

import os

from .figures import _figure, _save
from .style import INIT_COLORS

__all__ = ["plot_dino_diagram", "plot_stem_diagram"]


def _box(ax, x: float, y: float, text: str, *, width: float = 1.9, height: float = 0.62, color: str = "#eaeaf2",
         fontsize: float = 8) -> tuple[float, float, float, float]:
    from matplotlib.patches import FancyBboxPatch

    ax.add_patch(FancyBboxPatch((x - width / 2, y - height / 2), width, height, boxstyle="round,pad=0.04",
                                facecolor=color, edgecolor="#444444", linewidth=0.8))
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)
    return x, y, width, height


def _arrow(ax, start: tuple[float, float], end: tuple[float, float], text: str = "", *, style: str = "-|>",
           color: str = "#333333", dashed: bool = False, fontsize: float = 7, side: str = "right") -> None:
    ax.annotate("", xy=end, xytext=start, arrowprops=dict(arrowstyle=style, color=color, lw=1.0,
                                                          linestyle="--" if dashed else "-", shrinkA=2, shrinkB=2))
    if text:
        offset = 0.08 if side == "right" else -0.08
        ax.text((start[0] + end[0]) / 2 + offset, (start[1] + end[1]) / 2, text, fontsize=fontsize, color=color,
                ha="left" if side == "right" else "right", va="center")


def _canvas(width: float, height: float, figsize: tuple[float, float]):
    fig, ax = _figure(figsize=figsize)
    ax.set_xlim(0, width), ax.set_ylim(0, height), ax.axis("off")
    return fig, ax


def plot_stem_diagram(embed_dim: int = 384, size: tuple[int, int] = (256, 128),
                      save: str | os.PathLike | None = None):
    """Patchify (one 16×16 convolution with stride 16) beside the ICS stem (three 3×3/7×7 convolutions with IBN, then
    an 8×8 projection): both turn an image into the same token grid, ICS with a deeper, normalised stem."""
    h, w = size
    grid = f"{h // 16}×{w // 16} tokens × {embed_dim}"
    fig, ax = _canvas(10, 6.2, (9.5, 5.2))
    ax.text(2.5, 5.9, "patchify (ViT)", ha="center", fontsize=10, weight="bold", color=INIT_COLORS["DINO"])
    ax.text(7.5, 5.9, "ICS: IBN-based convolution stem", ha="center", fontsize=10, weight="bold",
            color=INIT_COLORS["DINO+ICS"])
    image = f"image 3×{h}×{w}"
    for x in (2.5, 7.5):
        _box(ax, x, 5.2, image, color="#ffffff")
    _box(ax, 2.5, 3.2, "Conv 16×16, stride 16\n3 → D (one linear map\nper non-overlapping patch)", height=1.1,
         color="#dbe4f1")
    _arrow(ax, (2.5, 4.88), (2.5, 3.76))
    steps = [("Conv 7×7 / 2, 3 → 64\nIBN (half IN, half BN) · ReLU", 4.25),
             ("Conv 3×3, 64 → 64\nIBN · ReLU", 3.35),
             ("Conv 3×3, 64 → 64\nBN · ReLU", 2.45),
             ("proj: Conv 8×8 / 8, 64 → D\n(zero-mean filters at init)", 1.55)]
    previous = 4.88
    for text, y in steps:
        _box(ax, 7.5, y, text, width=2.7, height=0.7, color="#f3dcdc")
        _arrow(ax, (7.5, previous), (7.5, y + 0.36))
        previous = y - 0.36
    for x, top in ((2.5, 2.64), (7.5, previous)):
        _box(ax, x, 0.55, grid + "\n+ CLS token, position embedding → transformer", width=3.6, height=0.7,
             color="#ffffff")
        _arrow(ax, (x, top), (x, 0.91))
    ax.text(5.0, 3.2, "same grid:\neach token still\nsees a 16×16 patch", ha="center", fontsize=7.5, color="#555555")
    fig.tight_layout()
    return _save(fig, save)


def plot_dino_diagram(local_crops: int = 8, save: str | os.PathLike | None = None):
    """DINO self-distillation: every crop through the student, the two global crops through the teacher (an EMA of
    the student); the teacher's output is centred and sharpened, the student's is tempered, and the loss is their
    cross-entropy over all (global teacher view, other student view) pairs."""
    fig, ax = _canvas(10, 6, (9.5, 3.6))
    ax.set_ylim(1.1, 4.9)
    _box(ax, 1.1, 3.0, "one unlabelled\nperson image", width=1.7, height=0.8, color="#ffffff")
    _box(ax, 3.3, 4.3, "2 global crops\n(≥ 40 % of the image)", width=2.1, color="#ffffff")
    _box(ax, 3.3, 1.7, f"{local_crops} local crops\n(5–40 %, half size)", width=2.1, color="#ffffff")
    _arrow(ax, (1.95, 3.2), (2.25, 4.2), "multi-crop\naugmentation")
    _arrow(ax, (1.95, 2.8), (2.25, 1.8))
    _box(ax, 6.0, 4.3, "teacher: backbone + head\n= EMA of the student\n(momentum 0.996 → 1)", width=2.1, height=0.8,
         color="#f3dcdc", fontsize=7.5)
    _box(ax, 6.0, 1.7, "student\nbackbone + head", width=2.0, color="#dbe4f1")
    _arrow(ax, (4.35, 4.3), (5.0, 4.3))
    _arrow(ax, (4.35, 4.15), (5.0, 1.95))
    ax.text(4.55, 2.9, "global\ncrops too", fontsize=7, color="#333333", ha="right")
    _arrow(ax, (4.35, 1.7), (5.0, 1.7))
    _arrow(ax, (6.0, 2.02), (6.0, 3.89), "EMA,\nno gradient", color=INIT_COLORS["DINO+ICS"], dashed=True,
           side="left")
    _box(ax, 8.45, 4.3, "centre (running mean)\nsharpen: softmax(/0.04)", width=2.5, color="#f3dcdc", fontsize=7.5)
    _box(ax, 8.45, 1.7, "softmax(/0.1)", width=2.5, color="#dbe4f1", fontsize=7.5)
    _arrow(ax, (7.05, 4.3), (7.2, 4.3))
    _arrow(ax, (7.0, 1.7), (7.2, 1.7))
    _box(ax, 8.45, 3.0, "cross-entropy over\n(teacher view, other student view)", width=2.7, height=0.7,
         color="#ffffff", fontsize=7.5)
    _arrow(ax, (8.45, 3.98), (8.45, 3.36))
    _arrow(ax, (8.45, 2.02), (8.45, 2.64))
    _arrow(ax, (7.1, 2.85), (6.8, 2.05), color=INIT_COLORS["DINO"])
    ax.text(6.25, 2.45, "gradient:\nstudent only", fontsize=7, color=INIT_COLORS["DINO"], ha="left")
    fig.tight_layout()
    return _save(fig, save)
