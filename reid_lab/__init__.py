"""reid_lab — self-supervised pre-training for transformer person ReID (TransReID-SSL, Luo et al. 2021), re-implemented.

Heavy code lives in the sub-modules; notebooks import them. Importing ``reid_lab`` itself is cheap (no torch).
"""
import logging
import warnings

# tqdm.auto in a Jupyter kernel without ipywidgets warns "IProgress not found" and falls back to text bars, which is
# what we want (notebooks run headless under papermill): keep that warning out of every notebook's first cell.
warnings.filterwarnings("ignore", message="IProgress not found", module=r"tqdm\..*")

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())
