"""Helpers and file-name tables for the data tests: tiny real-format dataset folders written with PIL.

Every image is an 8×4 (H×W) JPEG; the names follow the real releases (docs/reference.md §7), so the tests' expectations are
computed by hand from the tables here. Fixtures wrapping these helpers live in ``conftest.py``.
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image


def write_jpeg(path: Path, color: tuple[int, int, int] = (120, 60, 30), size: tuple[int, int] = (4, 8)) -> Path:
    """An RGB JPEG of ``size`` = (W, H) at ``path`` (parents created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path, format="JPEG")
    return path


# Market-1501: file names per split (docs/reference.md §7.1). -1 = junk, 0000 = distractor; Thumbs.db is in the real release.
MARKET_FILES = {
    "bounding_box_train": [
        "0002_c1s1_000451_03.jpg", "0002_c2s1_000551_01.jpg", "0007_c3s1_000101_01.jpg",
        "0010_c6s2_000200_02.jpg", "0010_c1s1_000300_01.jpg", "-1_c1s1_000001_00.jpg",
    ],
    "query": ["0002_c5s1_000001_00.jpg", "0010_c4s1_000001_00.jpg", "-1_c2s1_000002_00.jpg"],
    "bounding_box_test": [
        "0000_c1s1_000003_00.jpg", "0000_c4s1_000004_00.jpg", "0002_c2s1_000005_00.jpg",
        "0010_c1s1_000006_00.jpg", "-1_c3s1_000007_00.jpg",
    ],
}


def make_market(base: Path, files: dict[str, list[str]] | None = None) -> Path:
    """Write a Market-1501 tree at ``base`` (the folder holding the three splits); returns ``base``."""
    for split, names in (files or MARKET_FILES).items():
        (base / split).mkdir(parents=True, exist_ok=True)
        for name in names:
            write_jpeg(base / split / name)
    (base / "bounding_box_test" / "Thumbs.db").write_bytes(b"not an image")
    return base


# MSMT17: list files "<relpath> <pid>" (docs/reference.md §7.2); third '_' field = camera 1..15.
MSMT_LISTS = {
    "list_train.txt": [
        "0000/0000_000_01_0303morning_0015_0.jpg 0",
        "0000/0000_001_03_0303morning_0016_0.jpg 0",
        "0001/0001_000_15_0303noon_0100_1.jpg 1",
    ],
    "list_val.txt": ["0001/0001_001_02_0303noon_0101_0.jpg 1"],
    "list_query.txt": [
        "0000/0000_000_07_0303afternoon_0200_0.jpg 0",
        "0001/0001_000_10_0303afternoon_0201_0.jpg 1",
    ],
    "list_gallery.txt": [
        "0000/0000_001_08_0303afternoon_0202_0.jpg 0",
        "0001/0001_001_11_0303afternoon_0203_0.jpg 1",
        "0001/0001_002_12_0303afternoon_0204_0.jpg 1",
    ],
}
MSMT_DIRS = {"V1": ("train", "test"), "V2": ("mask_train_v2", "mask_test_v2")}


def make_msmt(base: Path, version: str = "V1", lists: dict[str, list[str]] | None = None,
               write_images: bool = True) -> Path:
    """Write an MSMT17 release at ``base``: the list files and, for every listed entry, an image."""
    train_dir, test_dir = MSMT_DIRS[version]
    base.mkdir(parents=True, exist_ok=True)
    for fname, lines in (lists or MSMT_LISTS).items():
        (base / fname).write_text("".join(line + "\n" for line in lines))
        image_dir = base / (train_dir if fname in ("list_train.txt", "list_val.txt") else test_dir)
        image_dir.mkdir(parents=True, exist_ok=True)
        for line in lines:
            parts = line.split()
            if write_images and parts:
                write_jpeg(image_dir / parts[0])
    return base


LUP_NAMES = [f"34_01_0341_{i:08d}.jpg" for i in range(10)]


CUSTOM_FILES = [
    "train/alice/a_c1_1.jpg", "train/alice/a_c2_2.jpg", "train/bob/b_c1_1.jpg",
    "query/alice/a_c1_9.jpg", "query/carol/c_c2_1.jpg",
    "gallery/alice/a_c2_8.jpg", "gallery/carol/c_c1_2.jpg", "gallery/carol/c_c2_3.jpg",
    "gallery/dave/d_c3_1.jpg",
]


def toy_reid_image(pid: int, k: int, stripes: bool = True) -> Image.Image:
    """A 64×32 person stand-in: an upper and a lower colour per identity (and, with ``stripes``, a stripe width per
    identity), plus per-image noise — separable enough for a few training steps to learn."""
    import numpy as np

    rng = np.random.default_rng(1000 * pid + k)
    img = np.zeros((64, 32, 3), np.float32)
    img[:32] = [(37 * pid) % 256, (91 * pid) % 256, (53 * pid) % 256]  # upper-body colour
    img[32:] = [(11 * pid) % 256, 255 - (29 * pid) % 256, (67 * pid) % 256]
    if stripes:
        img[:, :: 2 + pid % 3] *= 0.5  # stripe width per identity
    img += rng.normal(0, 12, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


def toy_reid_world(root: Path, ids: int, stripes: bool = True):
    """A Market-style toy world of ``ids`` identities, 7 images each: 4 train images over 2 cameras, 1 query (camera
    0), 2 gallery (camera 1)."""
    from reid_lab.data import ReIDDataset, Sample

    splits: dict[str, list] = {"train": [], "query": [], "gallery": []}
    for pid in range(ids):
        for k in range(7):
            split, cam = ("train", k % 2) if k < 4 else ("query", 0) if k == 4 else ("gallery", 1)
            path = root / split / f"{pid:04d}_c{cam}_{k}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            toy_reid_image(pid, k, stripes).save(path)
            splits[split].append(Sample(str(path), pid, cam))
    return ReIDDataset(name="Toy", root=root, **splits)
