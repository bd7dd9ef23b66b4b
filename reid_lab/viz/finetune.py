"""Figures for supervised fine-tuning: training curves of several runs side by side."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["plot_finetune_curves"]


def plot_finetune_curves(histories: Mapping[str, Sequence[Mapping[str, Any]]], *, title: str = "",
                         save: str | os.PathLike | None = None):
    """Loss, ID accuracy and mAP (evaluated epochs) per epoch, one line per run; returns the Figure."""
    import matplotlib.pyplot as plt

    from .figures import _save

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
    for name, hist in histories.items():
        epochs = [r["epoch"] for r in hist]
        axes[0].plot(epochs, [r["loss"] for r in hist], label=name)
        axes[1].plot(epochs, [100 * r["accuracy"] for r in hist], label=name)
        ev = [r for r in hist if "mAP" in r]
        axes[2].plot([r["epoch"] for r in ev], [100 * r["mAP"] for r in ev], marker="o", label=name)
    for ax, label in zip(axes, ("loss (CE + triplet)", "ID accuracy on training batches (%)", "test mAP (%)")):
        ax.set_xlabel("epoch"), ax.set_ylabel(label), ax.grid(alpha=0.3)
    axes[2].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, save)
