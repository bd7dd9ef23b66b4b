"""Moved to :mod:`reid_lab.retrieval.reranking`; this alias will be removed in the next release."""
from .retrieval.reranking import *  # noqa: F401,F403
from .retrieval.reranking import (  # noqa: F401
    normalized_distance,
    re_ranking,
    scan_normalized_distance,
    _expanded_distances,
)
