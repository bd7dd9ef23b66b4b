"""Moved to :mod:`reid_lab.tutorial.zoo`; this alias will be removed in the next release."""
from .tutorial.zoo import *  # noqa: F401,F403
from .tutorial.zoo import (  # noqa: F401
    ASSETS,
    FINETUNED,
    PRETRAIN_NOTEBOOK,
    SUPERVISED_NOTEBOOK,
    dino_backbone,
    finetuned_model,
    finetuned_provenance,
    finetuned_run,
    notebook_backbone,
    provenance,
    ship_backbone,
    ship_finetuned,
    shipped_backbone,
    shipped_finetuned,
)
from .tutorial.zoo import __all__  # noqa: F401
