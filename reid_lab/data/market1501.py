"""Market-1501 (Zheng et al., ICCV 2015) in its released folder layout (docs/reference.md §7.1).

Reference loaders: ``transreid_pytorch/datasets/market1501.py`` and
``cluster-contrast-reid/clustercontrast/datasets/market1501.py``. Download: http://zheng-lab.cecs.anu.edu.au/Project/project_reid.html

Layout (``root`` = the folder holding the three splits)::

    bounding_box_train/0002_c1s1_000451_03.jpg   12,936 images, 751 ids  (train)
    query/...                                      3,368 images, 750 ids  (query)
    bounding_box_test/...                         15,913 images, 751 ids incl. distractors pid 0 (gallery)

File names ``PPPP_cCsS_FFFFFF_BB.jpg``: person id ``PPPP`` (``-1`` = junk, ``0000`` = distractor), camera ``C`` 1–6.
Counts are after junk removal, 6 cameras.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from .base import (
    VERIFIED_CACHE_NAME, DatasetError, ReIDDataset, Sample, VerifyMode, describe_folder, list_images, relabel,
    require_dir, require_nonempty, verify_images,
)

logger = logging.getLogger(__name__)

SPLIT_DIRS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}
PARENT_NAMES = ("market1501", "Market-1501-v15.09.15", "market1501/Market-1501-v15.09.15")
# Official regex ``([-\d]+)_c(\d)``, here anchored at the start of the *file name*: the official code searches
# the full path, so a parent folder such as ``.../12_c3x/`` was parsed as pid 12, camera 3 (docs/reference.md §9.28).
_NAME_RE = re.compile(r"^(-?\d+)_c(\d)")


def find_market_root(root: str | os.PathLike) -> Path:
    """The folder that holds ``bounding_box_train/ bounding_box_test/ query/``.

    ``root`` itself, or one of its sub-folders ``market1501/``, ``Market-1501-v15.09.15/`` or
    ``market1501/Market-1501-v15.09.15/`` (the layouts of TransReID, cluster-contrast and torchreid).
    """
    root = require_dir(Path(root).expanduser(), "Market-1501 root")
    need = list(SPLIT_DIRS.values())
    for candidate in [root] + [root / p for p in PARENT_NAMES]:
        if all((candidate / d).is_dir() for d in need):
            if candidate != root:
                logger.info("Market-1501: using %s (found under %s)", candidate, root)
            return candidate
    missing = [d + "/" for d in need if not (root / d).is_dir()]
    raise DatasetError(
        f"Market-1501 layout not found under {str(root)!r}: expected folders {', '.join(d + '/' for d in need)} "
        f"there or in one of its sub-folders {', '.join(p + '/' for p in PARENT_NAMES)}; missing {', '.join(missing)}. "
        f"Found: {describe_folder(root)}"
    )


def parse_market_name(name: str, *, max_pid: int = 1501, num_cams: int = 6) -> tuple[int, int]:
    """``(pid, camera)`` from a Market-1501 file name (camera one-based as in the name).

    Raises:
        DatasetError: the name does not start with ``<pid>_c<camera>``, or pid/camera are out of range.
    """
    m = _NAME_RE.match(name)
    if m is None:
        raise DatasetError(f"cannot parse Market-1501 file name {name!r}: expected '<pid>_c<camera>s<seq>_...jpg', "
                           "e.g. '0002_c1s1_000451_03.jpg'")
    pid, cam = int(m.group(1)), int(m.group(2))
    if pid != -1 and not 0 <= pid <= max_pid:
        raise DatasetError(f"pid {pid} in {name!r} is out of range: expected -1 (junk) or 0..{max_pid}")
    if not 1 <= cam <= num_cams:
        raise DatasetError(f"camera {cam} in {name!r} is out of range: expected 1..{num_cams}")
    return pid, cam


def _read_split(folder: Path, split: str, max_pid: int, num_cams: int) -> list[Sample]:
    samples = []
    for name in list_images(folder):  # sorted -> deterministic order
        try:
            pid, cam = parse_market_name(name, max_pid=max_pid, num_cams=num_cams)
        except DatasetError as err:
            raise DatasetError(f"{err} (file {str(folder / name)!r})") from None
        if pid == -1:  # junk detections are dropped from every split
            continue
        samples.append(Sample(str(folder / name), pid, cam - 1))
    require_nonempty(samples, split, folder)
    return samples


class Market1501(ReIDDataset):
    """Market-1501 as a :class:`~reid_lab.data.base.ReIDDataset` (docs/reference.md §7.1).

    Differences from the official loader, on purpose: ids are parsed from the file *name*, not the full path
    (docs/reference.md §9.28); train ids are relabelled in sorted order (the official relies on set iteration order, which is
    sorted in practice); files are listed in sorted order in every split; ``.jpeg``/``.png`` are accepted too.

    Args:
        root: the Market-1501 folder, or a parent holding ``market1501/`` or ``Market-1501-v15.09.15/``.
        relabel_train: map train pids to ``0..750`` (query/gallery always keep raw pids).
        verify: image check at build time, see :func:`~reid_lab.data.base.verify_images` (default ``"full"``:
            every file decoded once, ~15-25 s for the 32,217 files on a 2-core machine, then cached in
            ``root/.reid_lab_verified.tsv``).
        max_pid, num_cams: range checks (official asserts ``0 <= pid <= 1501``, ``1 <= cam <= 6``).

    Example:
        >>> ds = Market1501("data/market1501")  # doctest: +SKIP
        >>> ds.num_train_pids, ds.train[0]      # doctest: +SKIP
        (751, Sample(path='.../0002_c1s1_000451_03.jpg', pid=0, camid=0))
    """

    def __init__(self, root: str | os.PathLike, *, relabel_train: bool = True, verify: VerifyMode = "full",
                 max_pid: int = 1501, num_cams: int = 6) -> None:
        base = find_market_root(root)
        splits = {k: _read_split(base / d, k, max_pid, num_cams) for k, d in SPLIT_DIRS.items()}
        if relabel_train:
            splits["train"] = relabel(splits["train"])
        super().__init__(name="Market1501", root=base, **splits)
        verify_images(self.train + self.query + self.gallery, verify, cache=base / VERIFIED_CACHE_NAME)
        logger.info("built %s", self.summary())
