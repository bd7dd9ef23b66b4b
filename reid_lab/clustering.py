"""Moved to :mod:`reid_lab.retrieval.clustering`; this alias will be removed in the next release."""
from .retrieval.clustering import *  # noqa: F401,F403
from .retrieval.clustering import (  # noqa: F401
    PseudoLabelStats,
    cluster_purity,
    dbscan_from_distance,
    dbscan_pseudo_labels,
    eps_sweep,
    jaccard_distance,
    summarize_labels,
)
