"""Moved to :mod:`reid_lab.retrieval.neighbors`; this alias will be removed in the next release."""
from .retrieval.neighbors import *  # noqa: F401,F403
from .retrieval.neighbors import (  # noqa: F401
    as_float32_matrix,
    canonical_order,
    knn,
    topk_block,
    topk_rows,
)
