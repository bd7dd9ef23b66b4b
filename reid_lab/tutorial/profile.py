"""The datasets a notebook uses under a profile: generated synthetic worlds (smoke/tiny) or real data (full)."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from .. import paths
from ..config import resolve

logger = logging.getLogger(__name__)


@dataclass
class ProfileData:
    """The labelled worlds and the unlabeled pool of one profile, plus where they live."""

    profile: str
    market: "object"  # ReIDDataset
    msmt: "object"  # ReIDDataset
    pool_root: Path  # LUPerson-style folder holding images/
    synthetic: bool

    @property
    def membership_csv(self) -> Path | None:
        """SynthLUP's ground truth of which pool images are off-domain (None for real LUPerson)."""
        path = self.pool_root / "membership.csv"
        return path if path.is_file() else None


def load_profile_data(profile: str, data_root: str | os.PathLike | None = None, *,
                      progress: bool = True, msmt_version: str = "auto") -> ProfileData:
    """Generate (first use only) and load the synthetic worlds, or open the real datasets for ``full``.

    ``full`` expects the layouts of docs/reference.md §7 under the data root: ``market1501/``, ``MSMT17/`` and ``LUP/images``
    (folder names in :class:`reid_lab.config.DataConfig`). ``msmt_version`` (``auto``/``v1``/``v2``) picks the
    MSMT17 release where the folder holds both (:class:`~reid_lab.data.MSMT17`).
    """
    from ..data import Market1501, MSMT17

    cfg = resolve("data", profile)
    if cfg.synthetic:
        from ..data.synthetic import generate_worlds

        worlds = generate_worlds(profile, paths.synthetic_root(profile, data_root), progress=progress)
        market_root, msmt_root, pool_root = worlds["market1501"], worlds["msmt17"], worlds["luperson"]
    else:
        root = paths.data_root(data_root)
        market_root, msmt_root, pool_root = root / cfg.market_dir, root / cfg.msmt_dir, root / cfg.luperson_dir
    if (Path(pool_root) / "LUP").is_dir():
        pool_root = Path(pool_root) / "LUP"
    from ..dryrun import subset_dataset  # a dry run: a few identities per split

    return ProfileData(profile=profile, market=subset_dataset(Market1501(market_root)),
                       msmt=subset_dataset(MSMT17(msmt_root, version=msmt_version)), pool_root=Path(pool_root),
                       synthetic=cfg.synthetic)
