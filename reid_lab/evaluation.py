"""Moved to :mod:`reid_lab.retrieval.evaluation`; this alias will be removed in the next release."""
from .retrieval.evaluation import *  # noqa: F401,F403
from .retrieval.evaluation import (  # noqa: F401
    ArrayLike,
    RankResult,
    cosine_distance,
    euclidean_distance,
    evaluate_features,
    evaluate_rank,
    extract_features,
    format_results,
    re_ranking,
)
from .retrieval.evaluation import __all__  # noqa: F401
