"""Moved to :mod:`reid_lab.retrieval.diagnostics`; this alias will be removed in the next release."""
from .retrieval.diagnostics import *  # noqa: F401,F403
from .retrieval.diagnostics import (  # noqa: F401
    camera_shortcut_report,
    keep_region,
)
