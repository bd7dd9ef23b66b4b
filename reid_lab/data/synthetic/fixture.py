"""A small real-format data root for the full profile's dry run (issue 12): what ``$REID_LAB_DATA`` holds on a server.

``generate_fixture(root)`` writes, with the synthetic generators of :mod:`reid_lab.data.synthetic.worlds`:

* ``root/market1501/`` — Market-1501 at its real 128×64, real file names, junk ``-1_…`` and distractors ``0000_…``;
* ``root/MSMT17/`` — MSMT17 V1 (``train/``, ``test/``, ``list_{train,val,query,gallery}.txt``) with images
  re-saved at varied sizes, as the real crops are;
* ``root/LUP/images/<cc>_<cc>_<vvvv>_<iiiiiiii>.jpg`` at varied sizes plus ``root/LUP/CFS_list.pkl`` in the
  official layout (a pickled list of file names, most relevant first: the person crops, then the off-domain ones).

The generators' own records (``world.json``, ``membership.csv``, the ownership marker) are removed, so the loaders and notebooks see
what real data gives them: the ``full`` code paths, not the synthetic-world extras (person masks, membership).
"""
from __future__ import annotations

import csv
import dataclasses
import logging
import os
from pathlib import Path

import numpy as np
from PIL import Image

from .worlds import _MARKER, WORLD_FILE, generate_market, generate_msmt, generate_pool

logger = logging.getLogger(__name__)

# Tens of identities: a dry run is about code paths, not numbers.
FIXTURE = dict(synth_height=128, synth_width=64, synth_seed=0, market_train_ids=16, market_test_ids=12,
               market_cameras=6, msmt_train_ids=16, msmt_test_ids=12, msmt_cameras=15, images_per_id=6,
               pool_size=160, pool_off_domain=0.25)
DONE_FILE = ".fixture_done"


def _vary_sizes(folder: Path, seed: int, heights: tuple[int, int]) -> int:
    """Re-save every JPEG under ``folder`` at a seeded size (height in ``heights``, aspect 0.35–0.6); return the count."""
    files = sorted(p for p in folder.rglob("*.jpg"))
    rng = np.random.default_rng(seed)
    for path in files:
        h = int(rng.integers(*heights))
        w = max(16, int(h * rng.uniform(0.35, 0.6)))
        with Image.open(path) as img:
            img.convert("RGB").resize((w, h), Image.BILINEAR).save(path, quality=90)
    return len(files)


def _cfs_order(lup: Path, seed: int) -> list[str]:
    """File names of the pool, persons first then off-domain images (each group shuffled): a CFS-like ranking."""
    with open(lup / "membership.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    rng = np.random.default_rng(seed)
    person = [r["filename"] for r in rows if r["kind"] == "person"]
    other = [r["filename"] for r in rows if r["kind"] != "person"]
    return [person[i] for i in rng.permutation(len(person))] + [other[i] for i in rng.permutation(len(other))]


def generate_fixture(root: str | os.PathLike, *, seed: int = 0, workers: int | None = 1,
                     force: bool = False) -> dict[str, Path]:
    """Write the real-format fixture world under ``root`` (module docstring); skipped when it is complete.

    Returns ``{"market1501": path, "msmt17": path, "luperson": path, "cfs_list": path}``.
    """
    from ...config import resolve
    from ..luperson import write_cfs_pickle

    root = Path(root)
    out = {"market1501": root / "market1501", "msmt17": root / "MSMT17", "luperson": root / "LUP",
           "cfs_list": root / "LUP" / "CFS_list.pkl"}
    if (root / DONE_FILE).is_file() and not force:
        return out
    cfg = dataclasses.replace(resolve("data", "smoke", dry_run=0), **{**FIXTURE, "synth_seed": seed})
    generate_market(root, cfg, force=True, workers=workers)
    generate_msmt(root, cfg, "v1", force=True, workers=workers)
    generate_pool(root, cfg, force=True, workers=workers)
    _vary_sizes(out["msmt17"], seed + 1, (96, 384))
    _vary_sizes(out["luperson"] / "images", seed + 2, (64, 400))
    write_cfs_pickle(_cfs_order(out["luperson"], seed + 3), out["cfs_list"])
    extras = [out[k] / name for k in ("market1501", "msmt17", "luperson") for name in (WORLD_FILE, _MARKER)]
    for extra in (*extras, out["luperson"] / "membership.csv"):
        extra.unlink(missing_ok=True)
    (root / DONE_FILE).write_text("reid_lab fixture world (issue 12)\n")
    logger.info("fixture world written under %s", root)
    return out


__all__ = ["FIXTURE", "generate_fixture"]
