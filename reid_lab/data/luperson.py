"""LUPerson-style unlabeled image pools and the CFS ranked list (docs/reference.md §1.3, §1.4, §2.8, §7.5).

Layout: ``root/images/<key>.jpg`` (the LMDB release decoded to JPEG files, key like ``34_01_0341_00001865``) and
optionally a ranked list of those file names, most ReID-relevant first. Two list formats are read:

* our plain text: one file name per line, relative to ``images/``, most relevant first;
* the official ``CFS_list.pkl``: a pickled ``list`` of such names. It is read with a restricted unpickler that
  refuses every global reference, so a malicious pickle cannot run code; anything but a list/tuple of ``str`` is
  refused with an explanation.

Differences from the official ``dino/main_dino.py`` (docs/reference.md §1.3, §9.23): with a ranked list only the kept entries
are checked (the official scans all 4.18 M files first); ``keep_ratio`` rounds half up, which reproduces the
README's ``keep_num`` values (50 % → 2,090,122, 60 % → 2,508,146 of 4,180,243).
"""
from __future__ import annotations

import logging
import math
import os
import pickle
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import overload

from ..dryrun import subset_names
from .base import (
    VERIFIED_CACHE_NAME, DatasetError, Sample, VerifyMode, describe_folder, is_image_file, require_dir, verify_images,
)

logger = logging.getLogger(__name__)

PICKLE_SUFFIXES = (".pkl", ".pickle")


# ----------------------------------------------------------------------------------------------------------------------
# Ranked lists
# ----------------------------------------------------------------------------------------------------------------------
class _Refused(pickle.UnpicklingError):
    """The pickle asked for something a list of str never needs."""


class _ListOfStrUnpickler(pickle.Unpickler):
    """Builds only containers and scalars: every class/function reference is refused before it is looked up."""

    def find_class(self, module: str, name: str):  # noqa: D102 - see class docstring
        raise _Refused(
            f"refusing to load global {module}.{name}: a CFS list must be a plain pickled list of str "
            "(no classes, functions or numpy arrays)"
        )

    def persistent_load(self, pid):  # noqa: D102
        raise _Refused("refusing a persistent id: a CFS list must be a plain pickled list of str")


def read_cfs_pickle(path: str | os.PathLike) -> list[str]:
    """Read an official-format ``CFS_list.pkl`` (a pickled list of file names) safely.

    The unpickler never imports anything (``find_class`` always raises), so a pickle whose ``__reduce__`` calls
    e.g. ``os.system`` is refused without executing. The result must be a ``list`` or ``tuple`` of ``str``.

    Raises:
        DatasetError: missing/unreadable file, a refused global, or content other than a list/tuple of str.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"CFS list {str(path)!r} does not exist")
    try:
        with open(path, "rb") as fh:
            obj = _ListOfStrUnpickler(fh).load()
    except _Refused as err:
        raise DatasetError(f"refused to unpickle {str(path)!r}: {err}") from None
    except Exception as err:  # truncated or not a pickle at all
        raise DatasetError(f"{str(path)!r} is not a readable pickle ({type(err).__name__}: {err})") from None
    if not isinstance(obj, (list, tuple)):
        raise DatasetError(f"{str(path)!r} holds a {type(obj).__name__}; a CFS list must be a list of file names "
                           "(str), most relevant first")
    bad = next((i for i, x in enumerate(obj) if not isinstance(x, str)), None)
    if bad is not None:
        raise DatasetError(f"{str(path)!r}: entry {bad} is a {type(obj[bad]).__name__} ({obj[bad]!r}); a CFS list "
                           "must contain only file names (str)")
    return list(obj)


def read_ranked_list(path: str | os.PathLike) -> list[str]:
    """File names of a ranked list, most relevant first: ``.pkl``/``.pickle`` → :func:`read_cfs_pickle`,
    anything else → plain text (one name per line; blank lines ignored; surrounding whitespace stripped)."""
    path = Path(path)
    if path.suffix.lower() in PICKLE_SUFFIXES:
        return read_cfs_pickle(path)
    if not path.is_file():
        raise DatasetError(f"ranked list {str(path)!r} does not exist")
    with open(path, encoding="utf-8") as fh:
        return [line.strip() for line in fh if line.strip()]


def _check_names(names: Iterable[str]) -> list[str]:
    names = list(names)
    for n in names:
        if not isinstance(n, str) or not n or "\n" in n or "\r" in n:
            raise ValueError(f"ranked-list entries must be non-empty single-line str, got {n!r}")
    return names


def write_ranked_list(names: Iterable[str], path: str | os.PathLike) -> Path:
    """Write our plain-text ranked list (one name per line, most relevant first); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = _check_names(names)
    path.write_text("".join(n + "\n" for n in names), encoding="utf-8")
    return path


def write_cfs_pickle(names: Iterable[str], path: str | os.PathLike) -> Path:
    """Write the official ``CFS_list.pkl`` layout: a pickled ``list`` of str, protocol 4; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    names = _check_names(names)
    with open(path, "wb") as fh:
        pickle.dump(names, fh, protocol=4)
    return path


def keep_count(total: int, keep_num: int | None = None, keep_ratio: float | None = None) -> int:
    """How many head entries of a ranked list of length ``total`` to keep (exactly one of the two arguments).

    ``keep_ratio`` rounds half up: ``keep_count(4_180_243, keep_ratio=0.5) == 2_090_122`` (docs/reference.md §1.4).
    """
    if (keep_num is None) == (keep_ratio is None):
        raise ValueError("with a ranked list give exactly one of keep_num or keep_ratio "
                         f"(got keep_num={keep_num!r}, keep_ratio={keep_ratio!r}); keep_ratio=1.0 keeps all")
    if keep_num is not None:
        if isinstance(keep_num, bool) or not isinstance(keep_num, int) or keep_num < 1:
            raise ValueError(f"keep_num must be a positive int, got {keep_num!r}")
        k = keep_num
    else:
        if not 0.0 < float(keep_ratio) <= 1.0:
            raise ValueError(f"keep_ratio must be in (0, 1], got {keep_ratio!r}")
        k = math.floor(total * float(keep_ratio) + 0.5)
        if k < 1:
            raise ValueError(f"keep_ratio={keep_ratio} of {total} entries keeps nothing")
    if k > total:
        raise DatasetError(f"keep_num={k} exceeds the {total} entries of the ranked list")
    return k


# ----------------------------------------------------------------------------------------------------------------------
# The pool
# ----------------------------------------------------------------------------------------------------------------------
class PathSequence(Sequence[Path]):
    """A read-only list of ``folder / name`` paths that stores only the names (cheap for millions of files)."""

    def __init__(self, folder: Path, names: Sequence[str]) -> None:
        self.folder = folder
        self.names = names

    def __len__(self) -> int:
        return len(self.names)

    @overload
    def __getitem__(self, i: int) -> Path: ...
    @overload
    def __getitem__(self, i: slice) -> list[Path]: ...
    def __getitem__(self, i):
        if isinstance(i, slice):
            return [self.folder / n for n in self.names[i]]
        return self.folder / self.names[i]

    def __iter__(self) -> Iterator[Path]:
        folder = self.folder
        return (folder / n for n in self.names)

    def __repr__(self) -> str:
        return f"PathSequence({len(self)} files under {self.folder})"


def find_images_dir(root: str | os.PathLike) -> Path:
    """``root/images`` if it exists (docs/reference.md §2.8 layout), else ``root`` itself (a folder of images)."""
    root = require_dir(Path(root).expanduser(), "image pool root")
    return root / "images" if (root / "images").is_dir() else root


def scan_images(folder: Path) -> list[str]:
    """All image files under ``folder`` (recursively), as sorted POSIX paths relative to it."""
    names: list[str] = []
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(folder / rel if rel else folder) as it:
            for e in it:
                name = f"{rel}/{e.name}" if rel else e.name
                if e.is_dir():
                    stack.append(name)
                elif is_image_file(e.name):
                    names.append(name)
    names.sort()
    return names


class LUPersonPool:
    """An unlabeled pool of person images, optionally the head of a CFS-ranked list (docs/reference.md §1.3, §2.8).

    Args:
        root: folder holding ``images/`` (or the images folder itself).
        ranked_list: plain-text or ``.pkl`` ranked list (see :func:`read_ranked_list`); ``None`` = every image
            under the folder, in sorted order.
        keep_num, keep_ratio: with a ranked list, exactly one: keep its first ``keep_num`` entries or
            ``round(len * keep_ratio)`` (official ``--keep_num``; 60 % in all released scripts).
        verify: image check, default ``"full"``: every kept file is decoded once (a ``tqdm`` bar over millions of
            files) and recorded in ``root/.reid_lab_verified.tsv`` (path, size, mtime), so later builds only
            ``stat`` the files; see :func:`~reid_lab.data.base.verify_images`. ``"none"`` skips it.
        name: display name.

    Attributes:
        images_dir: the folder the names are relative to.
        names: kept file names relative to ``images_dir`` (ranked order, or sorted).
        samples: the kept files as paths (a lazy :class:`PathSequence`).
    """

    def __init__(self, root: str | os.PathLike, *, ranked_list: str | os.PathLike | None = None,
                 keep_num: int | None = None, keep_ratio: float | None = None, verify: VerifyMode = "full",
                 name: str = "LUPerson") -> None:
        self.name = name
        self.images_dir = find_images_dir(root)
        self.ranked_list = Path(ranked_list) if ranked_list is not None else None
        if self.ranked_list is None:
            if keep_num is not None or keep_ratio is not None:
                raise ValueError("keep_num / keep_ratio select the head of a ranked list: pass ranked_list too")
            names = scan_images(self.images_dir)
            if not names:
                raise DatasetError(f"no images (.jpg/.jpeg/.png) under {str(self.images_dir)!r}: expected "
                                   f"<root>/images/<key>.jpg. Found: {describe_folder(self.images_dir)}")
            names = list(subset_names(names))  # a dry run keeps the head only
            self.list_length = None
        else:
            ranked = read_ranked_list(self.ranked_list)
            if not ranked:
                raise DatasetError(f"ranked list {str(self.ranked_list)!r} is empty")
            self.list_length = len(ranked)
            names = list(subset_names(ranked[: keep_count(len(ranked), keep_num, keep_ratio)]))  # dry run: a head
            del ranked
            self._check_entries(names)
        self.names: list[str] = names
        self.samples = PathSequence(self.images_dir, self.names)
        verify_images(self.samples, verify, cache=Path(root).expanduser() / VERIFIED_CACHE_NAME)
        logger.info("built %s", self.summary())

    def _check_entries(self, names: list[str]) -> None:
        folder = self.images_dir
        unsafe = [n for n in names if os.path.isabs(n) or (".." in n and ".." in Path(n).parts)]
        if unsafe:
            raise DatasetError(f"{len(unsafe)} entries of {str(self.ranked_list)!r} are not paths inside "
                               f"{str(folder)!r}, e.g. {unsafe[:3]}")
        prefix = os.path.join(folder, "")  # string joins: millions of entries
        missing = [n for n in names if not os.path.isfile(prefix + n)]
        if missing:
            raise DatasetError(f"{len(missing)} of the {len(names)} kept entries of {str(self.ranked_list)!r} are "
                               f"missing under {str(folder)!r}, e.g. {missing[:5]}")
        dup = len(names) - len(set(names))
        if dup:
            logger.warning("%s: %d duplicate entries among the kept head of %s", self.name, dup, self.ranked_list)

    def __len__(self) -> int:
        return len(self.names)

    def to_samples(self) -> list[Sample]:
        """The pool as :class:`Sample` records with pid 0 and camid 0 (as ``ImageFolder`` labels, docs/reference.md §7.5)."""
        return [Sample(str(p), 0, 0) for p in self.samples]

    def summary(self) -> str:
        """One line: size, folder and, with a ranked list, how much of it is kept."""
        text = f"{self.name} pool: {len(self):,} images under {self.images_dir}"
        if self.ranked_list is not None:
            text += (f" (head of ranked list {self.ranked_list.name}: {len(self):,} of {self.list_length:,} = "
                     f"{100 * len(self) / self.list_length:.1f}%)")
        return text

    def __repr__(self) -> str:
        return self.summary()
