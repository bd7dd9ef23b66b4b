"""Figures. Every plotting function returns a matplotlib ``Figure`` and saves a PNG when ``save`` is given.

* :mod:`.figures` — camera grid, CMC curves, bar chart (notebooks 00–02) and the shared ``_figure``/``_save``;
* :mod:`.attention` — last-block CLS attention per head, 60 %-mass masks and rollout for ViT / ViT+ICS at any
  size and stride; a models × images grid; the attention mass on the person (docs/reference.md §6, §12.3);
* :mod:`.ranking` — rank lists with green / red / ignored borders, AP and INP per query, best / worst queries
  (docs/reference.md §4.6, §12.4);
* :mod:`.curves` — training curves from ``log.jsonl`` of several runs;
* :mod:`.embedding` — t-SNE of features coloured by identity (and camera);
* :mod:`.cfs` — CFS score histograms and image grids (notebook 01);
* :mod:`.dino` — multi-crop views and DINO collapse-monitor curves (notebook 02);
* :mod:`.finetune` — supervised fine-tuning curves of several runs (notebook 03);
* :mod:`.style` — one colour per initialisation across the course, mAP axes in % from 0 with a chance line;
* :mod:`.diagrams` — the ICS stem against patchify, and DINO's student / teacher, drawn with matplotlib;
* :mod:`.usl` — k-reciprocal neighbours, DBSCAN eps sweeps, USL/UDA curves and results (notebooks 04–05).

The concept modules compute, :mod:`reid_lab.viz` draws. The modules of the list's end are imported by name
(``from reid_lab.viz.usl import plot_eps_sweep``): :mod:`.dino` needs :mod:`reid_lab.ssl`.
"""
from __future__ import annotations

from .attention import (
    REID_MEAN,
    REID_STD,
    AttentionMaps,
    MassInside,
    attention_mass_inside,
    attention_maps,
    mass_inside_table,
    mass_mask,
    plot_attention_grid,
    plot_attention_heads,
    positional_prior_mass,
    to_pixels,
    token_coverage,
)
from .curves import DEFAULT_METRICS, read_log, training_curves
from .embedding import tsne
from .figures import _figure, _save, bar_chart, camera_grid, cmc_curves  # noqa: F401 (_figure/_save: ssl uses them)
from .ranking import (
    STATUS_STYLE,
    RankList,
    best_and_worst_queries,
    per_query_metrics,
    plot_rank_lists,
    rank_list,
    rank_status,
    select_queries,
)

__all__ = [
    "DEFAULT_METRICS",
    "REID_MEAN",
    "REID_STD",
    "STATUS_STYLE",
    "AttentionMaps",
    "MassInside",
    "RankList",
    "attention_mass_inside",
    "attention_maps",
    "bar_chart",
    "best_and_worst_queries",
    "camera_grid",
    "cmc_curves",
    "mass_inside_table",
    "mass_mask",
    "per_query_metrics",
    "plot_attention_grid",
    "plot_attention_heads",
    "positional_prior_mass",
    "plot_rank_lists",
    "rank_list",
    "rank_status",
    "read_log",
    "select_queries",
    "to_pixels",
    "token_coverage",
    "training_curves",
    "tsne",
]
