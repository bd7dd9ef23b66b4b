"""Common types of the labelled ReID datasets: records, the split container, image loading and checks.

Every builder (:mod:`.market1501`, :mod:`.msmt17`, :mod:`.custom`) returns a :class:`ReIDDataset` whose splits are
lists of :class:`Sample` ``(path, pid, camid)`` — the record layout of cluster-contrast (docs/reference.md §7.1; TransReID adds a
constant ``trackid=1`` that nothing uses). All file-system checks happen when a dataset is *built*, so a bad file
fails in the notebook cell that built the dataset, never later inside a DataLoader worker.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, NamedTuple

import torch
from PIL import Image, UnidentifiedImageError

from ..engine import progress as progress_bar

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
VERIFIED_CACHE_NAME = ".reid_lab_verified.tsv"  # VerifiedCache file kept in a dataset's or pool's folder
VerifyMode = Literal["header", "full", "none"]


class DatasetError(ValueError):
    """A dataset on disk does not have the expected layout or content (the message names the path)."""


class Sample(NamedTuple):
    """One labelled image: ``path``, person id ``pid`` and zero-based camera id ``camid``."""

    path: str
    pid: int
    camid: int


# ----------------------------------------------------------------------------------------------------------------------
# The split container
# ----------------------------------------------------------------------------------------------------------------------
@dataclass(repr=False)
class ReIDDataset:
    """Train / query / gallery splits of a labelled ReID dataset.

    Train pids are ``0..num_train_pids-1`` (the classifier's targets); query and gallery keep their own ids.

    Args:
        name: display name, e.g. ``"Market1501"``.
        root: the folder the splits were read from.
        train, query, gallery: lists of :class:`Sample`.
        version: release tag where a dataset has several (MSMT17 ``"V1"``/``"V2"``), else ``None``.
    """

    name: str
    root: Path
    train: list[Sample]
    query: list[Sample]
    gallery: list[Sample]
    version: str | None = None

    @property
    def num_train_pids(self) -> int:
        """Number of distinct identities in ``train``."""
        return len({s.pid for s in self.train})

    @property
    def num_train_cams(self) -> int:
        """Number of distinct cameras in ``train``."""
        return len({s.camid for s in self.train})

    @property
    def title(self) -> str:
        """``name`` plus ``version`` when there is one (``"MSMT17 V1"``)."""
        return f"{self.name} {self.version}" if self.version else self.name

    def stats(self) -> dict[str, dict[str, int]]:
        """Per split: ``{"identities", "images", "cameras"}`` counts."""
        return {
            split: {
                "identities": len({s.pid for s in samples}),
                "images": len(samples),
                "cameras": len({s.camid for s in samples}),
            }
            for split, samples in (("train", self.train), ("query", self.query), ("gallery", self.gallery))
        }

    def summary(self) -> str:
        """A small aligned table of :meth:`stats`, headed by the name (and version) and the root folder."""
        rows = [("subset", "ids", "images", "cameras")]
        rows += [(k, str(v["identities"]), str(v["images"]), str(v["cameras"])) for k, v in self.stats().items()]
        widths = [max(len(r[i]) for r in rows) for i in range(4)]
        lines = [f"{self.title} ({self.root})"]
        for j, row in enumerate(rows):
            cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:])]
            lines.append("  " + " | ".join(cells))
            if j == 0:
                lines.append("  " + "-+-".join("-" * w for w in widths))
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()


# ----------------------------------------------------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------------------------------------------------
def is_image_file(name: str | os.PathLike) -> bool:
    """True for the image suffixes the builders accept (``.jpg``, ``.jpeg``, ``.png``; any case)."""
    return os.fspath(name).lower().endswith(IMAGE_SUFFIXES)


def read_image(path: str | os.PathLike) -> Image.Image:
    """Open an image as RGB; raise :class:`DatasetError` naming the path if it cannot be decoded."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        raise DatasetError(f"cannot read image {os.fspath(path)!r}: {err}") from err


def _check_one(path: str, full: bool) -> str | None:
    """None if ``path`` opens (and, if ``full``, decodes to the last byte), else the reason.

    The full check decodes JPEGs in draft mode (DCT scaling to 1/8 size): every entropy-coded byte is still read,
    so truncated files fail, at ~2/3 of the cost of a full-size decode.
    """
    try:
        with Image.open(path) as img:
            if img.size[0] <= 0 or img.size[1] <= 0:
                return f"empty image size {img.size}"
            if full:
                if img.format == "JPEG":
                    img.draft(img.mode, (max(1, img.size[0] // 8), max(1, img.size[1] // 8)))
                img.load()
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        return f"{type(err).__name__}: {err}"
    return None


class VerifiedCache:
    """Files already decoded in full, keyed by path, size and modification time (one TSV line per file).

    Lets a pool of millions of images be verified once: later builds only ``stat`` each file. A changed, replaced
    or touched file no longer matches its key and is checked again. An unwritable location disables the cache.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.known: set[tuple[str, int, int]] = set()
        self.new: list[tuple[str, int, int]] = []
        try:
            with open(self.path, encoding="utf-8") as fh:
                for line in fh:
                    size, mtime, name = line.rstrip("\n").split("\t", 2)
                    self.known.add((name, int(size), int(mtime)))
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as err:
            logger.warning("ignoring unreadable image-check cache %s (%s)", self.path, err)
            self.known.clear()

    @staticmethod
    def key(path: str) -> tuple[str, int, int] | None:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return path, st.st_size, st.st_mtime_ns

    def save(self) -> None:
        """Append the newly verified files (a no-op, logged once, where the folder is read-only)."""
        if not self.new:
            return
        try:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.writelines(f"{size}\t{mtime}\t{name}\n" for name, size, mtime in self.new)
        except OSError as err:
            logger.info("image-check cache %s not written (%s): the next build checks again", self.path, err)
        self.known.update(self.new)
        self.new.clear()


def verify_images(
    samples: Iterable[Sample | str | os.PathLike],
    check: VerifyMode = "full",
    *,
    max_report: int = 5,
    progress: bool = True,
    cache: str | os.PathLike | None = None,
) -> int:
    """Check that every image can be read; raise one :class:`DatasetError` listing the bad files.

    Args:
        samples: :class:`Sample` records or paths.
        check: ``"full"`` (default) decodes every file (JPEGs in draft mode, see :func:`_check_one`) — catches
            missing, empty, garbage, non-image and truncated files; ``"header"`` only parses the header (~0.1-0.2 ms
            per file, ``benchmarks/bench_data.py``, but a truncated JPEG passes and fails later in a DataLoader
            worker); ``"none"`` skips the check. Measured on a loaded 2-core machine: 0.15 ms (header) vs 0.8 ms
            (full, draft) per 128x64 JPEG of noise, the worst case for the decoder.
        max_report: how many bad files the error message lists.
        progress: show a ``tqdm.auto`` bar for more than 5,000 files.
        cache: a :class:`VerifiedCache` file (``"full"`` only): files recorded there with the same size and
            modification time are not decoded again; newly verified ones are appended.

    Returns:
        The number of files checked (0 for ``"none"``).
    """
    if check not in ("header", "full", "none"):
        raise ValueError(f"verify must be 'header', 'full' or 'none', got {check!r}")
    if check == "none":
        return 0
    full = check == "full"
    known = VerifiedCache(cache) if cache is not None and full else None
    bad: list[tuple[str, str]] = []
    n = 0
    total = len(samples) if hasattr(samples, "__len__") else None
    bar = progress_bar(samples, total=total, desc=f"checking images ({check})", unit="img",
                       enabled=progress and total is not None and total > 5000)
    try:
        for item in bar:
            path = item.path if isinstance(item, Sample) else os.fspath(item)
            n += 1
            key = known.key(path) if known is not None else None
            if key is not None and key in known.known:
                continue
            reason = _check_one(path, full)
            if reason is not None:
                bad.append((path, reason))
            elif key is not None:
                known.new.append(key)
    finally:
        if known is not None:
            known.save()
    if bad:
        listed = "\n".join(f"  {p}: {r}" for p, r in bad[:max_report])
        more = f"\n  ... and {len(bad) - max_report} more" if len(bad) > max_report else ""
        raise DatasetError(
            f"{len(bad)} of {n} images cannot be read ({check} check):\n{listed}{more}\n"
            "Remove or replace these files (or pass verify='none' to skip the check)."
        )
    return n


class ImageDataset(torch.utils.data.Dataset):
    """A map-style dataset over :class:`Sample` records: ``(image, pid, camid, index)`` per item.

    Images are opened with PIL and converted to RGB; ``transform`` (e.g. from
    :func:`reid_lab.data.transforms.build_reid_transforms`) turns them into tensors. Without a transform the PIL
    image is returned. An unreadable file raises :class:`DatasetError` naming its path.

    Args:
        samples: records (an :class:`ReIDDataset` split).
        transform: callable applied to the PIL image.
    """

    def __init__(self, samples: Sequence[Sample], transform: Callable[[Image.Image], Any] | None = None) -> None:
        self.samples = list(samples)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Any, int, int, int]:
        path, pid, camid = self.samples[index]
        img = read_image(path)
        if self.transform is not None:
            img = self.transform(img)
        return img, pid, camid, index


# ----------------------------------------------------------------------------------------------------------------------
# Helpers shared by the builders
# ----------------------------------------------------------------------------------------------------------------------
def describe_folder(path: Path, limit: int = 12) -> str:
    """Comma-separated listing of a folder's entries (folders end in '/'), for error messages."""
    try:
        entries = sorted(os.scandir(path), key=lambda e: e.name)
    except OSError as err:
        return f"<cannot list: {err}>"
    names = [e.name + ("/" if e.is_dir() else "") for e in entries]
    if not names:
        return "<empty folder>"
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def require_dir(path: Path, what: str) -> Path:
    """``path`` if it is a folder, else a :class:`DatasetError` saying what was expected there."""
    if not path.exists():
        raise DatasetError(f"{what}: folder {str(path)!r} does not exist")
    if not path.is_dir():
        raise DatasetError(f"{what}: {str(path)!r} is not a folder")
    return path


def list_images(folder: Path) -> list[str]:
    """Sorted file names of the images directly inside ``folder`` (non-image files such as Thumbs.db ignored)."""
    return sorted(e.name for e in os.scandir(folder) if e.is_file() and is_image_file(e.name))


def require_nonempty(samples: list[Sample], split: str, path: Path | str) -> None:
    """Raise if a split ended up empty."""
    if not samples:
        raise DatasetError(f"split {split!r} is empty: no usable images under {str(path)!r}")


def relabel(samples: list[Sample], offset: int = 0) -> list[Sample]:
    """Map the distinct pids of ``samples`` in sorted order to ``offset, offset+1, ...``."""
    mapping = {pid: offset + i for i, pid in enumerate(sorted({s.pid for s in samples}))}
    return [Sample(s.path, mapping[s.pid], s.camid) for s in samples]


def merge_market_msmt(market: ReIDDataset, msmt: ReIDDataset) -> ReIDDataset:
    """The "MM" set that trains the CFS target proxy (docs/reference.md §7.4, official ``datasets/mm.py``).

    Train = MSMT17 train with its pids as they are, plus Market-1501 train relabelled in sorted pid order and
    offset by ``msmt.num_train_pids`` (1041 on the real data); Market camera ids are offset by the MSMT camera
    count (15 on the real data; computed as ``max(msmt train camid) + 1`` so ids never collide).
    Query/gallery = Market's.

    The official ``mm.py`` reads only MSMT ``list_train.txt`` (not ``list_val.txt``): build the MSMT17 input with
    ``MSMT17(root, include_val=False)`` to match it exactly.
    """
    if not msmt.train or not market.train:
        raise DatasetError("merge_market_msmt: both datasets need a non-empty train split")
    pids = sorted({s.pid for s in msmt.train})
    if pids != list(range(len(pids))):
        raise DatasetError(f"merge_market_msmt: {msmt.title} train pids must be 0..N-1 (found {len(pids)} ids, "
                           f"max {pids[-1]})")
    pid_offset = len(pids)
    cam_offset = max(s.camid for s in msmt.train) + 1
    market_train = [Sample(s.path, s.pid, s.camid + cam_offset) for s in relabel(market.train, pid_offset)]
    logger.info("MM: %s train (%d ids) + %s train (pids offset %d, camids offset %d)",
                msmt.title, pid_offset, market.title, pid_offset, cam_offset)
    return ReIDDataset(
        name="MM", root=market.root, train=list(msmt.train) + market_train,
        query=list(market.query), gallery=list(market.gallery), version=msmt.version,
    )
