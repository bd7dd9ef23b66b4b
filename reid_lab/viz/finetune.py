"""Figures for supervised fine-tuning: training curves of several runs side by side, and the multi-seed study."""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["plot_finetune_curves", "plot_seed_study"]


def plot_finetune_curves(histories: Mapping[str, Sequence[Mapping[str, Any]]], *, title: str = "",
                         save: str | os.PathLike | None = None):
    """Loss, ID accuracy and mAP (evaluated epochs) per epoch, one line per run; returns the Figure."""
    import matplotlib.pyplot as plt

    from .figures import _save

    from .style import init_color

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.3))
    for name, hist in histories.items():
        color = init_color(name)
        epochs = [r["epoch"] for r in hist]
        axes[0].plot(epochs, [r["loss"] for r in hist], label=name, color=color)
        axes[1].plot(epochs, [100 * r["accuracy"] for r in hist], label=name, color=color)
        ev = [r for r in hist if "mAP" in r]
        axes[2].plot([r["epoch"] for r in ev], [100 * r["mAP"] for r in ev], marker="o", label=name, color=color)
    for ax, label in zip(axes, ("loss (CE + triplet)", "ID accuracy on training batches (%)", "test mAP (%)")):
        ax.set_xlabel("epoch"), ax.set_ylabel(label), ax.grid(alpha=0.3)
    axes[1].set_ylim(0, 100), axes[2].set_ylim(bottom=0)
    axes[2].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, save)


def plot_seed_study(study: Mapping[str, Any], reference: str, *, chance: float | None = None, title: str = "",
                    save: str | os.PathLike | None = None):
    """The multi-seed fine-tuning study (:func:`reid_lab.reid.study.run_study`): left, the final-budget mAP of every
    initialisation, one dot per seed and the mean ± sd; right, each initialisation minus ``reference`` paired by
    seed (dots) with its mean ± sd and the zero line. mAP in %, from 0, with the chance line when ``chance``
    (a fraction) is given. Colours: :mod:`reid_lab.viz.style`."""
    import matplotlib.pyplot as plt
    import numpy as np

    from .figures import _save
    from .style import init_color, percent_axis

    curves = {name: 100 * np.asarray(per_seed)[:, -1] for name, per_seed in study["curves"].items()}
    if reference not in curves:
        raise ValueError(f"reference {reference!r} is not one of the study's initialisations {list(curves)}")
    names, seeds = list(curves), study["seeds"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [1.1, 1]})
    for x, name in enumerate(names):
        values, color = curves[name], init_color(name, "#4c72b0")
        left.scatter(np.full(len(values), x), values, color=color, s=18, alpha=0.7)
        left.errorbar(x + 0.18, values.mean(), yerr=values.std(ddof=1) if len(values) > 1 else 0, fmt="o",
                      color=color, capsize=4, markersize=6)
    percent_axis(left, [v for vs in curves.values() for v in vs],
                 chance_percent=None if chance is None else 100 * chance,
                 label=f"mAP (%) after {study['budgets'][-1]} epochs")
    others = [n for n in names if n != reference]
    for x, name in enumerate(others):
        diff, color = curves[name] - curves[reference], init_color(name, "#4c72b0")
        right.scatter(np.full(len(diff), x), diff, color=color, s=18, alpha=0.7)
        right.errorbar(x + 0.18, diff.mean(), yerr=diff.std(ddof=1) if len(diff) > 1 else 0, fmt="o", color=color,
                       capsize=4, markersize=6)
    right.axhline(0, color="black", linewidth=0.8)
    right.set_ylabel(f"mAP − {reference} (points, paired by seed)")
    for ax, labels in ((left, names), (right, others)):
        ax.set_xticks(range(len(labels)), labels, rotation=15, ha="right", fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    if chance is not None:
        left.legend(fontsize=8)
    fig.suptitle(title or f"{len(seeds)} seeds per initialisation (dots), mean ± sd", fontsize=10)
    fig.tight_layout()
    return _save(fig, save)
