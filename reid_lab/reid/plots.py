"""Moved to :mod:`reid_lab.viz.finetune`; this alias will be removed in the next release."""
from ..viz.finetune import *  # noqa: F401,F403
from ..viz.finetune import __all__, plot_finetune_curves  # noqa: F401
