"""Moved to :mod:`reid_lab.retrieval.kreciprocal`; this alias will be removed in the next release."""
from .retrieval.kreciprocal import *  # noqa: F401,F403
from .retrieval.kreciprocal import (  # noqa: F401
    expanded_sets,
    half_k,
    jaccard_from_sums,
    jaccard_sparse,
    min_sums_dense,
    query_expansion,
    reciprocal_sets,
    softmax_rows,
    to_dense_distance,
)
