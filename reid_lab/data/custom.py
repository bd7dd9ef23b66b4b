"""Your own labelled data as person folders (custom datasets with optional camera ids, docs/reference.md §12.6).

Layout::

    root/train/<person>/*.jpg        identities for training (folder names: any text, e.g. "0007" or "alice")
    root/query/<person>/*.jpg        probe images
    root/gallery/<person>/*.jpg      images searched; same folder name as a query = same person
    root/cameras.csv                 optional: "relative_path,camid" rows (paths relative to root)

Camera ids, in order of preference: ``cameras.csv`` (or the ``cameras=`` file), a ``cam_pattern`` regex with a
named group ``cam`` searched in each file name (e.g. ``r"_c(?P<cam>\\d+)"`` for Market-style names), or none.
Camera labels of any form are mapped to ``0..C-1`` in sorted order (numerically when all are integers).

**Without camera ids** every train and query image gets camid 0 and every gallery image camid 1. The
Market-1501 protocol (docs/reference.md §4.6) drops gallery images with the query's pid *and* camid, so with this choice it
drops nothing: every same-person gallery image counts as a true match. That is right when query and gallery were
captured separately; if the gallery holds near-duplicates of a query (frames of the same track), supply camera ids
so that those are excluded, or the scores will be optimistic. SIE-style camera embeddings learn nothing from the
constant train camid.
"""
from __future__ import annotations

import csv
import logging
import os
import re
from pathlib import Path

from .base import (
    DatasetError, ReIDDataset, Sample, VerifyMode, describe_folder, is_image_file, require_dir, require_nonempty,
    verify_images,
)
from .luperson import LUPersonPool

logger = logging.getLogger(__name__)

SPLITS = ("train", "query", "gallery")


def _sort_key(label: str) -> tuple[int, int | str]:
    """Integers first in numeric order, then other labels alphabetically."""
    return (0, int(label)) if re.fullmatch(r"-?\d+", label) else (1, label)


def _scan_split(folder: Path, split: str) -> list[tuple[str, str]]:
    """``(person folder name, image path)`` pairs of one split, sorted."""
    require_dir(folder, f"custom dataset split {split!r} (expected <root>/{split}/<person>/*.jpg)")
    loose = sorted(e.name for e in os.scandir(folder) if e.is_file() and is_image_file(e.name))
    if loose:
        raise DatasetError(f"{len(loose)} images lie directly in {str(folder)!r} (e.g. {loose[:3]}): put each "
                           f"image in a folder named after its person, {split}/<person>/<image>.jpg")
    pairs = []
    for person in sorted(e.name for e in os.scandir(folder) if e.is_dir()):
        for dirpath, _, files in sorted(os.walk(folder / person)):
            pairs += [(person, os.path.join(dirpath, f)) for f in sorted(files) if is_image_file(f)]
    if not pairs:
        raise DatasetError(f"split {split!r} is empty: no images in person folders under {str(folder)!r}. "
                           f"Found: {describe_folder(folder)}")
    return pairs


def _read_cameras_csv(path: Path, root: Path) -> dict[str, str]:
    """``{normalised relative path: camera label}`` from ``relative_path,camid`` rows (optional header)."""
    table: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        for lineno, row in enumerate(csv.reader(fh), 1):
            if not row or all(not c.strip() for c in row):
                continue
            if lineno == 1 and [c.strip().lower() for c in row] == ["relative_path", "camid"]:
                continue
            if len(row) != 2 or not row[1].strip():
                raise DatasetError(f"{path}:{lineno}: expected 'relative_path,camid', got {','.join(row)!r}")
            key = os.path.normpath(row[0].strip())
            if key in table:
                raise DatasetError(f"{path}:{lineno}: {row[0]!r} is listed twice")
            table[key] = row[1].strip()
    unknown = [k for k in table if not (root / k).is_file()]
    if unknown:
        raise DatasetError(f"{len(unknown)} files listed in {str(path)!r} do not exist under {str(root)!r}, "
                           f"e.g. {unknown[:5]}")
    return table


class FolderDataset(ReIDDataset):
    """A :class:`~reid_lab.data.base.ReIDDataset` from person folders (see the module docstring).

    Args:
        root: folder holding ``train/``, ``query/``, ``gallery/``.
        cameras: CSV of ``relative_path,camid`` rows; ``"auto"`` (default) uses ``root/cameras.csv`` if present;
            ``None`` ignores it.
        cam_pattern: regex with a named group ``cam``, searched in each file name (not with a CSV).
        verify: image check at build time, see :func:`~reid_lab.data.base.verify_images`.
        name: display name.

    Train pids are the sorted train folder names relabelled ``0..N-1``; query/gallery pids come from one shared
    mapping of their folder names (the integers themselves when every name is an integer, else sorted
    ``0..M-1``). ``id_names`` maps pids back to folder names; ``camera_source`` is ``"csv"``, ``"pattern"`` or
    ``"none"``.
    """

    def __init__(self, root: str | os.PathLike, *, cameras: str | os.PathLike | None = "auto",
                 cam_pattern: str | None = None, verify: VerifyMode = "full", name: str = "custom") -> None:
        root = require_dir(Path(root).expanduser(), "custom dataset root")
        present = [s for s in SPLITS if (root / s).is_dir()]
        if len(present) < len(SPLITS):
            raise DatasetError(f"custom dataset layout not found under {str(root)!r}: expected folders train/, "
                               f"query/, gallery/ (each with <person>/*.jpg); found: {describe_folder(root)}")
        pairs = {s: _scan_split(root / s, s) for s in SPLITS}

        # ---- camera labels -----------------------------------------------------------------------------------
        csv_path = root / "cameras.csv" if cameras == "auto" else (Path(cameras) if cameras is not None else None)
        if csv_path is not None and not csv_path.is_file():
            if cameras != "auto":
                raise DatasetError(f"camera file {str(csv_path)!r} does not exist")
            csv_path = None
        if csv_path is not None and cam_pattern is not None:
            raise ValueError(f"give camera ids either by {csv_path} or by cam_pattern, not both")
        labels: dict[str, str] | None = None
        if csv_path is not None:
            table = _read_cameras_csv(csv_path, root)
            labels, missing = {}, []
            for p in (p for s in SPLITS for _, p in pairs[s]):
                key = os.path.normpath(os.path.relpath(p, root))
                if key in table:
                    labels[p] = table[key]
                else:
                    missing.append(key)
            if missing:
                raise DatasetError(f"{len(missing)} images have no camera in {str(csv_path)!r}, e.g. {missing[:5]}")
            self.camera_source = "csv"
        elif cam_pattern is not None:
            regex = re.compile(cam_pattern)
            if "cam" not in regex.groupindex:
                raise ValueError(f"cam_pattern {cam_pattern!r} needs a named group (?P<cam>...)")
            labels = {}
            for p in (p for s in SPLITS for _, p in pairs[s]):
                m = regex.search(os.path.basename(p))
                if m is None:
                    raise DatasetError(f"cam_pattern {cam_pattern!r} does not match file name {p!r}")
                labels[p] = m.group("cam")
            self.camera_source = "pattern"
        else:
            self.camera_source = "none"
        if labels is not None:
            cam_ids = {c: i for i, c in enumerate(sorted(set(labels.values()), key=_sort_key))}

        def camid(split: str, path: str) -> int:
            if labels is None:
                return 1 if split == "gallery" else 0
            return cam_ids[labels[path]]

        # ---- person ids --------------------------------------------------------------------------------------
        train_names = sorted({n for n, _ in pairs["train"]}, key=_sort_key)
        train_ids = {n: i for i, n in enumerate(train_names)}
        test_names = sorted({n for s in ("query", "gallery") for n, _ in pairs[s]}, key=_sort_key)
        if all(_sort_key(n)[0] == 0 for n in test_names):
            test_ids = {n: int(n) for n in test_names}
        else:
            test_ids = {n: i for i, n in enumerate(test_names)}
        self.id_names = {"train": {i: n for n, i in train_ids.items()}, "test": {i: n for n, i in test_ids.items()}}
        splits = {
            s: [Sample(p, (train_ids if s == "train" else test_ids)[n], camid(s, p)) for n, p in pairs[s]]
            for s in SPLITS
        }
        for s in SPLITS:
            require_nonempty(splits[s], s, root / s)
        super().__init__(name=name, root=root, **splits)
        verify_images(self.train + self.query + self.gallery, verify)
        if self.camera_source == "none":
            logger.info("%s: no camera ids; query camid 0, gallery camid 1 (every same-id gallery image counts "
                        "as a match)", name)
        logger.info("built %s", self.summary())

    @staticmethod
    def from_flat_folder(path: str | os.PathLike, *, verify: VerifyMode = "full") -> LUPersonPool:
        """Unlabeled images in a folder (recursively) as a pool with ``.samples`` (e.g. for pre-training)."""
        return LUPersonPool(path, verify=verify, name="custom")
