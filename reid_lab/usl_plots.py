"""Moved to :mod:`reid_lab.viz.usl` (the figures) and :mod:`reid_lab.retrieval.clustering` (:func:`cluster_purity`,
:func:`eps_sweep`); this alias will be removed in the next release."""
from .retrieval.clustering import cluster_purity, eps_sweep  # noqa: F401
from .viz.usl import *  # noqa: F401,F403
from .viz.usl import (  # noqa: F401
    plot_eps_sweep,
    plot_kreciprocal,
    plot_tsne,
    plot_uda_results,
    plot_usl_history,
)

__all__ = ["cluster_purity", "eps_sweep", "plot_eps_sweep", "plot_kreciprocal", "plot_tsne", "plot_uda_results",
           "plot_usl_history"]
