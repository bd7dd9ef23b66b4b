"""MSMT17 (Wei et al., CVPR 2018), releases V1 and V2 (docs/reference.md §7.2).

Reference loader: ``transreid_pytorch/datasets/msmt17.py`` (same logic in cluster-contrast). Layout of ``root``::

    list_train.txt  list_val.txt  list_query.txt  list_gallery.txt     lines "<relpath> <pid>"
    train/ test/                          (V1; the paper's numbers, docs/reference.md §7.2)
    mask_train_v2/ mask_test_v2/          (V2: faces blurred)

Train = list_train (30,248) + list_val (2,373) = 32,621 images of 1,041 ids; query 11,659 images of 3,060 ids;
gallery 82,161 images; 15 cameras. Names ``0000/0000_000_01_0303morning_0015_0.jpg``: the third ``_`` field is
the camera (1–15).

**V1 and V2 are not interchangeable**: V2 blurs faces, and users lose 2–4 mAP when they silently train or
evaluate on the other release than the paper (TransReID-SSL issue #13: 71.2 vs 75.1 mAP). The version is
therefore detected from the folders, refused when ambiguous, logged on build and printed in :meth:`summary`.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Literal

from .base import (
    VERIFIED_CACHE_NAME, DatasetError, ReIDDataset, Sample, VerifyMode, describe_folder, merge_market_msmt,
    require_dir, require_nonempty, verify_images,
)

__all__ = ["MSMT17", "find_msmt_root", "read_msmt_list", "merge_market_msmt"]

logger = logging.getLogger(__name__)

LIST_FILES = {"train": "list_train.txt", "val": "list_val.txt", "query": "list_query.txt",
              "gallery": "list_gallery.txt"}
IMAGE_DIRS = {"V1": ("train", "test"), "V2": ("mask_train_v2", "mask_test_v2")}
PARENT_NAMES = ("MSMT17", "MSMT17_V1", "MSMT17_V2")


def _has_lists(folder: Path) -> bool:
    return any((folder / f).is_file() for f in LIST_FILES.values())


def _versions_in(folder: Path) -> list[str]:
    return [v for v, dirs in IMAGE_DIRS.items() if all((folder / d).is_dir() for d in dirs)]


def find_msmt_root(root: str | os.PathLike, version: Literal["auto", "v1", "v2"] = "auto") -> tuple[Path, str]:
    """``(folder, "V1" | "V2")``: where the list files and image folders of the wanted release are.

    ``root`` itself or one of its sub-folders ``MSMT17/``, ``MSMT17_V1/``, ``MSMT17_V2/``. With ``version="auto"``
    exactly one release must be present; if both are, the error asks to choose.
    """
    if version not in ("auto", "v1", "v2", "V1", "V2"):
        raise ValueError(f"version must be 'auto', 'v1' or 'v2', got {version!r}")
    root = require_dir(Path(root).expanduser(), "MSMT17 root")
    if _has_lists(root):
        candidates = [root]
    else:
        candidates = [root / p for p in PARENT_NAMES if (root / p).is_dir() and _has_lists(root / p)]
    if not candidates:
        raise DatasetError(
            f"MSMT17 list files not found under {str(root)!r}: expected {', '.join(LIST_FILES.values())} there or in "
            f"one of its sub-folders {', '.join(p + '/' for p in PARENT_NAMES)}. Found: {describe_folder(root)}"
        )
    found = [(c, v) for c in candidates for v in _versions_in(c)]
    if not found:
        expected = " (V1) or ".join("/ + ".join(d) + "/" for d in IMAGE_DIRS.values()) + " (V2)"
        raise DatasetError(f"MSMT17 image folders not found in {', '.join(map(str, candidates))}: expected "
                           f"{expected}. Found: {describe_folder(candidates[0])}")
    wanted = [(c, v) for c, v in found if version == "auto" or v == version.upper()]
    if not wanted:
        raise DatasetError(f"MSMT17 {version.upper()} requested but only "
                           f"{', '.join(f'{v} in {c}' for c, v in found)} found")
    if len(wanted) > 1:
        raise DatasetError(
            "several MSMT17 releases found (" + "; ".join(f"{v} in {c}" for c, v in wanted) + "): pass "
            "version='v1' or version='v2' (command line: --msmt-version v1|v2; the paper's numbers are on V1; "
            "mixing them costs 2-4 mAP)"
        )
    folder, ver = wanted[0]
    if folder != root:
        logger.info("MSMT17: using %s (found under %s)", folder, root)
    return folder, ver


def read_msmt_list(list_path: Path, image_dir: Path, *, num_cams: int = 15) -> list[Sample]:
    """Parse one ``list_*.txt``: ``<relpath> <pid>`` per line; camid = third ``_`` field of the name − 1.

    Every listed file must exist under ``image_dir``; errors name the list file and line.
    """
    if not list_path.is_file():
        raise DatasetError(f"MSMT17 list file {str(list_path)!r} is missing. "
                           f"Found in {list_path.parent}: {describe_folder(list_path.parent)}")
    samples: list[Sample] = []
    missing: list[str] = []
    with open(list_path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.rsplit(None, 1)
            where = f"{list_path}:{lineno}"
            if len(parts) != 2:
                raise DatasetError(f"{where}: expected '<relative path> <pid>', got {line!r}")
            rel, pid_text = parts
            try:
                pid = int(pid_text)
            except ValueError:
                raise DatasetError(f"{where}: pid {pid_text!r} is not an integer (line {line!r})") from None
            fields = os.path.basename(rel).split("_")
            try:
                cam = int(fields[2])
            except (IndexError, ValueError):
                raise DatasetError(f"{where}: cannot read the camera from {rel!r}: expected a name like "
                                   "'0000_000_01_0303morning_0015_0.jpg' (third '_' field = camera)") from None
            if not 1 <= cam <= num_cams:
                raise DatasetError(f"{where}: camera {cam} in {rel!r} is out of range: expected 1..{num_cams}")
            path = image_dir / rel
            if not path.is_file():
                missing.append(str(path))
            samples.append(Sample(str(path), pid, cam - 1))
    if missing:
        raise DatasetError(f"{len(missing)} files listed in {str(list_path)!r} are missing, e.g. "
                           + ", ".join(missing[:5]))
    return samples


def _require_contiguous(samples: list[Sample], what: str) -> None:
    pids = sorted({s.pid for s in samples})
    if pids != list(range(len(pids))):
        gaps = sorted(set(range(pids[-1] + 1)) - set(pids))[:5] if pids[0] >= 0 else []
        raise DatasetError(
            f"MSMT17 {what} pids must be contiguous 0..N-1, found {len(pids)} ids from {pids[0]} to {pids[-1]}"
            + (f" (absent: {gaps}{' ...' if len(gaps) == 5 else ''})" if gaps else "")
        )


class MSMT17(ReIDDataset):
    """MSMT17 as a :class:`~reid_lab.data.base.ReIDDataset` (docs/reference.md §7.2).

    Args:
        root: the MSMT17 folder, or a parent holding ``MSMT17/``, ``MSMT17_V1/`` or ``MSMT17_V2/``.
        version: ``"auto"`` detects V1 (``train/ test/``) or V2 (``mask_train_v2/ mask_test_v2/``) and refuses a
            folder holding both; ``"v1"``/``"v2"`` force one.
        include_val: train = list_train + list_val (official loaders); ``False`` = list_train only (as the
            official "MM" merge, docs/reference.md §7.4).
        verify: image check at build time, see :func:`~reid_lab.data.base.verify_images` (``"full"`` decodes all
            126,441 files once — about a minute on a 2-core machine — and caches the result in
            ``.reid_lab_verified.tsv``; ``"header"`` is faster but misses truncated files; ``"none"`` skips it).
        num_cams: camera range check (15).

    Pids are used as listed (no relabelling): train pids and query∪gallery pids must each be ``0..N-1``.
    """

    def __init__(self, root: str | os.PathLike, *, version: Literal["auto", "v1", "v2"] = "auto",
                 include_val: bool = True, verify: VerifyMode = "full", num_cams: int = 15) -> None:
        base, ver = find_msmt_root(root, version)
        train_dir, test_dir = (base / d for d in IMAGE_DIRS[ver])
        lists = {k: base / f for k, f in LIST_FILES.items()}
        train = read_msmt_list(lists["train"], train_dir, num_cams=num_cams)
        if include_val:
            train += read_msmt_list(lists["val"], train_dir, num_cams=num_cams)
        query = read_msmt_list(lists["query"], test_dir, num_cams=num_cams)
        gallery = read_msmt_list(lists["gallery"], test_dir, num_cams=num_cams)
        for split, samples, path in (("train", train, lists["train"]), ("query", query, lists["query"]),
                                     ("gallery", gallery, lists["gallery"])):
            require_nonempty(samples, split, path)
        _require_contiguous(train, "train")
        _require_contiguous(query + gallery, "query+gallery")
        super().__init__(name="MSMT17", root=base, train=train, query=query, gallery=gallery, version=ver)
        verify_images(self.train + self.query + self.gallery, verify, cache=base / VERIFIED_CACHE_NAME)
        logger.info("built MSMT17 %s from %s (%s)\n%s", ver, base, "/".join(IMAGE_DIRS[ver]), self.summary())
