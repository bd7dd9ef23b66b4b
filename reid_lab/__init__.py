"""reid_lab — self-supervised pre-training for transformer person ReID (TransReID-SSL, Luo et al. 2021), re-implemented.

Heavy code lives in the sub-modules; notebooks import them. Importing ``reid_lab`` itself is cheap (no torch).
"""
import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
