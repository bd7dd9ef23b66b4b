"""One look for every figure of the course: a colour per initialisation, mAP in percent from 0, a chance line.

The same initialisation has the same colour in every notebook (:data:`INIT_COLORS`, found from free-form labels by
:func:`init_key`), so a reader who learnt "red = DINO+ICS" in notebook 03 reads notebooks 05 and 06 without a legend
hunt.
"""
from __future__ import annotations

__all__ = ["ATTENTION_VMAX", "CHANCE_STYLE", "INIT_COLORS", "init_color", "init_key", "percent_axis"]

INIT_COLORS = {
    "random": "#8c8c8c",             # grey: no pre-training
    "DINO": "#4c72b0",               # blue: DINO, patchify stem
    "random+ICS": "#dd8452",         # orange: the ICS stem, random weights
    "DINO+ICS": "#c44e52",           # red: the paper's DINO + ICS
    "DINO+ICS permuted": "#937860",  # brown: the control (DINO+ICS weights, entries shuffled)
}
CHANCE_STYLE = {"color": "black", "linestyle": ":", "linewidth": 1.0}
ATTENTION_VMAX = 3.0  # attention maps are drawn as weight ÷ uniform weight on one scale, 0 … 3 (1 = uniform)


def init_key(label: str) -> str | None:
    """The :data:`INIT_COLORS` key a label names ("fine-tuned DINO+ICS", "ICS / DINO", "random init · patchify" …),
    or ``None`` when it names no initialisation."""
    text = label.lower()
    dino, ics = "dino" in text, "ics" in text
    if "permut" in text and dino:
        return "DINO+ICS permuted"
    if dino:
        return "DINO+ICS" if ics else "DINO"
    if "random" in text:
        return "random+ICS" if ics else "random"
    return None


def init_color(label: str, default: str | None = None) -> str | None:
    """The colour of the initialisation ``label`` names (:func:`init_key`), else ``default``."""
    key = init_key(label)
    return INIT_COLORS[key] if key is not None else default


def percent_axis(ax, values_percent, *, chance_percent: float | None = None, label: str = "mAP (%)") -> None:
    """A percentage y axis from 0 (to a little above the largest value, at least 10) with an optional chance line."""
    top = max([10.0, *[v for v in values_percent if v == v]])
    if chance_percent is not None:
        ax.axhline(chance_percent, label=f"chance ({chance_percent:.1f} %)", **CHANCE_STYLE)
        top = max(top, chance_percent)
    ax.set_ylim(0, 1.1 * top)
    ax.set_ylabel(label)
