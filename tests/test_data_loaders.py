"""Dataset builders on tiny real-format folders (fixtures in conftest.py); expectations computed by hand."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
import torch
from PIL import Image

from reid_lab.data import (
    MSMT17, DatasetError, FolderDataset, ImageDataset, LUPersonPool, Market1501, ReIDDataset, Sample,
    build_dataset, list_datasets, merge_market_msmt, read_cfs_pickle, read_ranked_list, register_dataset,
    verify_images, write_cfs_pickle, write_ranked_list,
)
from reid_lab.data.luperson import keep_count

from fixtures_data import LUP_NAMES, MSMT_LISTS


def _rows(samples: list[Sample]) -> list[tuple[str, int, int]]:
    return [(Path(s.path).name, s.pid, s.camid) for s in samples]


# ----------------------------------------------------------------------------------------------------------------------
# Market-1501
# ----------------------------------------------------------------------------------------------------------------------
def test_market_parses_names_relabels_and_skips_junk(market_parent: Path) -> None:
    ds = Market1501(market_parent)  # parent "12_c3" holding market1501/: found, and not parsed as pid 12 / cam 3
    assert ds.root == market_parent / "market1501"
    assert _rows(ds.train) == [  # sorted names; -1 dropped; pids 2,7,10 -> 0,1,2; cam c -> c-1
        ("0002_c1s1_000451_03.jpg", 0, 0), ("0002_c2s1_000551_01.jpg", 0, 1), ("0007_c3s1_000101_01.jpg", 1, 2),
        ("0010_c1s1_000300_01.jpg", 2, 0), ("0010_c6s2_000200_02.jpg", 2, 5),
    ]
    assert _rows(ds.query) == [("0002_c5s1_000001_00.jpg", 2, 4), ("0010_c4s1_000001_00.jpg", 10, 3)]
    assert _rows(ds.gallery) == [  # distractors (pid 0) kept, raw pids, Thumbs.db ignored
        ("0000_c1s1_000003_00.jpg", 0, 0), ("0000_c4s1_000004_00.jpg", 0, 3), ("0002_c2s1_000005_00.jpg", 2, 1),
        ("0010_c1s1_000006_00.jpg", 10, 0),
    ]
    assert ds.num_train_pids == 3 and ds.num_train_cams == 4
    assert ds.stats() == {
        "train": {"identities": 3, "images": 5, "cameras": 4},
        "query": {"identities": 2, "images": 2, "cameras": 2},
        "gallery": {"identities": 3, "images": 4, "cameras": 3},
    }
    assert all(isinstance(s, Sample) and len(s) == 3 for s in ds.train)
    path, pid, camid = ds.train[0]  # tuple-unpackable like the official records
    assert os.path.isfile(path)


def test_market_root_variants_and_no_relabel(tmp_path: Path, make_market) -> None:
    direct = make_market(tmp_path / "a" / "Market-1501-v15.09.15")
    assert Market1501(direct).root == direct
    assert Market1501(tmp_path / "a").root == direct
    raw = Market1501(direct, relabel_train=False, verify="none")
    assert [s.pid for s in raw.train] == [2, 2, 7, 10, 10]


def test_market_summary_table(market_parent: Path) -> None:
    text = repr(Market1501(market_parent))
    lines = text.splitlines()
    assert lines[0].startswith("Market1501 (")
    cells = {ln.split("|")[0].strip(): [c.strip() for c in ln.split("|")[1:]] for ln in lines[1:] if "|" in ln}
    assert cells["train"] == ["3", "5", "4"] and cells["gallery"] == ["3", "4", "3"]
    assert len({len(ln) for ln in lines[1:]}) == 1  # aligned


@pytest.mark.parametrize("name, message", [
    ("foo.jpg", "cannot parse"),
    ("0002_c7s1_000001_00.jpg", "camera 7"),
    ("0002_c0s1_000001_00.jpg", "camera 0"),
    ("1502_c1s1_000001_00.jpg", "pid 1502"),
])
def test_market_bad_file_names(tmp_path: Path, make_market, write_jpeg, name: str, message: str) -> None:
    base = make_market(tmp_path / "market1501")
    write_jpeg(base / "bounding_box_train" / name)
    with pytest.raises(DatasetError, match=message) as info:
        Market1501(base)
    assert name in str(info.value)


def test_market_missing_and_wrong_layout(tmp_path: Path, make_market) -> None:
    with pytest.raises(DatasetError, match="does not exist"):
        Market1501(tmp_path / "nowhere")
    base = make_market(tmp_path / "m")
    for p in (base / "query").iterdir():
        p.unlink()
    (base / "query").rmdir()
    with pytest.raises(DatasetError) as info:
        Market1501(base)
    msg = str(info.value)
    assert "missing query/" in msg and "bounding_box_train/" in msg and str(base) in msg


def test_market_empty_split(tmp_path: Path, make_market) -> None:
    files = {"bounding_box_train": ["0002_c1s1_000451_03.jpg"], "query": ["-1_c1s1_000001_00.jpg"],
             "bounding_box_test": ["0002_c2s1_000005_00.jpg"]}
    base = make_market(tmp_path / "m", files)
    with pytest.raises(DatasetError, match="'query' is empty"):
        Market1501(base)


def test_corrupt_image_fails_at_build(tmp_path: Path, make_market) -> None:
    base = make_market(tmp_path / "m")
    bad = base / "bounding_box_test" / "0002_c3s1_000009_00.jpg"
    bad.write_bytes(b"\x00garbage, not a jpeg" * 10)
    with pytest.raises(DatasetError, match="1 of 12 images cannot be read") as info:
        Market1501(base)
    assert str(bad) in str(info.value)
    ds = Market1501(base, verify="none")  # skipped check: the error comes when the image is read
    index = [s.path for s in ds.gallery].index(str(bad))
    with pytest.raises(DatasetError, match="cannot read image"):
        ImageDataset(ds.gallery)[index]


def test_truncated_jpeg_needs_full_check(tmp_path: Path) -> None:
    good = tmp_path / "a.jpg"
    noise = torch.randint(0, 256, (128, 64, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    Image.fromarray(noise.numpy()).save(good, format="JPEG")  # noise: most bytes are pixel data
    data = good.read_bytes()
    cut = tmp_path / "b.jpg"
    cut.write_bytes(data[: len(data) // 2])
    assert verify_images([good, cut], "header") == 2  # header intact
    with pytest.raises(DatasetError, match="b.jpg"):
        verify_images([good, cut], "full")
    assert verify_images([cut], "none") == 0
    with pytest.raises(ValueError, match="verify must be"):
        verify_images([good], "fast")


def _truncated_noise_jpeg(path: Path) -> Path:
    noise = torch.randint(0, 256, (128, 64, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    Image.fromarray(noise.numpy()).save(path, format="JPEG")
    path.write_bytes(path.read_bytes()[:-200])  # header intact, the last rows of pixel data missing
    return path


def test_default_check_catches_a_truncated_jpeg_at_build_time(tmp_path: Path, make_market) -> None:
    base = make_market(tmp_path / "market1501")
    cut = _truncated_noise_jpeg(base / "bounding_box_test" / "0002_c2s1_000005_00.jpg")
    assert Market1501(base, verify="header")  # what the default used to be: the file passes
    with pytest.raises(DatasetError, match=f"1 of 11 images cannot be read \\(full check\\):\n  {cut}: OSError"):
        Market1501(base)


def test_pool_default_check_catches_an_empty_image_and_caches_verified_files(lup_root: Path, monkeypatch) -> None:
    import reid_lab.data.base as base

    empty = lup_root / "images" / "34_01_0341_99999999.jpg"
    empty.write_bytes(b"")
    with pytest.raises(DatasetError, match=f"1 of 11 images cannot be read .*\n  {empty}: UnidentifiedImageError"):
        LUPersonPool(lup_root)
    empty.unlink()
    cache = (lup_root / base.VERIFIED_CACHE_NAME).read_text().splitlines()
    assert sorted(line.split("\t")[2] for line in cache) == [str(lup_root / "images" / n) for n in LUP_NAMES]
    calls: list[str] = []
    check = base._check_one
    monkeypatch.setattr(base, "_check_one", lambda path, full: calls.append(path) or check(path, full))
    assert len(LUPersonPool(lup_root)) == 10
    assert calls == []  # the 10 good files were verified by the failed build: known by path, size and mtime
    changed = lup_root / "images" / LUP_NAMES[3]
    Image.new("RGB", (6, 12), (1, 2, 3)).save(changed, format="JPEG")
    os.utime(changed, ns=(1, 1))
    LUPersonPool(lup_root)
    assert calls == [str(changed)]


def test_image_dataset_items_and_loader(market_parent: Path) -> None:
    from reid_lab.data import RandomIdentitySampler, build_reid_transforms

    ds = Market1501(market_parent)
    items = ImageDataset(ds.train, build_reid_transforms(16, 8, train=False))
    img, pid, camid, index = items[3]
    assert img.shape == (3, 16, 8) and (pid, camid, index) == (2, 0, 3)
    raw = ImageDataset(ds.train)[0][0]
    assert raw.mode == "RGB" and raw.size == (4, 8)
    loader = torch.utils.data.DataLoader(items, batch_size=4,
                                         sampler=RandomIdentitySampler(ds.train, 4, 2, seed=0))
    batches = list(loader)
    assert len(batches) == len(loader) >= 1
    imgs, pids, camids, idx = batches[0]
    assert imgs.shape == (4, 3, 16, 8) and len(set(pids.tolist())) == 2


# ----------------------------------------------------------------------------------------------------------------------
# MSMT17
# ----------------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("version", ["V1", "V2"])
def test_msmt_reads_lists(tmp_path: Path, make_msmt, version: str) -> None:
    make_msmt(tmp_path / f"MSMT17_{version}", version)
    ds = MSMT17(tmp_path)  # parent holding MSMT17_Vx/
    assert ds.version == version and ds.root == tmp_path / f"MSMT17_{version}"
    train_dir = "train" if version == "V1" else "mask_train_v2"
    assert Path(ds.train[0].path).parent.parent.name == train_dir
    assert _rows(ds.train) == [  # list_train then list_val; camid = 3rd field - 1
        ("0000_000_01_0303morning_0015_0.jpg", 0, 0), ("0000_001_03_0303morning_0016_0.jpg", 0, 2),
        ("0001_000_15_0303noon_0100_1.jpg", 1, 14), ("0001_001_02_0303noon_0101_0.jpg", 1, 1),
    ]
    assert [(p, c) for _, p, c in _rows(ds.query)] == [(0, 6), (1, 9)]
    assert [(p, c) for _, p, c in _rows(ds.gallery)] == [(0, 7), (1, 10), (1, 11)]
    assert f"MSMT17 {version}" in ds.summary().splitlines()[0]
    assert len(MSMT17(tmp_path / f"MSMT17_{version}", include_val=False).train) == 3


def test_msmt_both_versions_need_a_choice(tmp_path: Path, make_msmt) -> None:
    base = make_msmt(tmp_path / "MSMT17", "V1")
    make_msmt(base, "V2")
    with pytest.raises(DatasetError, match="version='v1' or version='v2'"):
        MSMT17(base)
    assert MSMT17(base, version="v2").version == "V2"
    assert MSMT17(base, version="v1").version == "V1"
    v1_only = make_msmt(tmp_path / "other" / "MSMT17_V1", "V1")
    with pytest.raises(DatasetError, match="V2 requested"):
        MSMT17(v1_only, version="v2")


def test_msmt_without_lists_lists_what_was_found(tmp_path: Path) -> None:
    (tmp_path / "MSMT17" / "train").mkdir(parents=True)
    (tmp_path / "MSMT17" / "readme.txt").write_text("x")
    with pytest.raises(DatasetError, match="list files not found") as info:
        MSMT17(tmp_path / "MSMT17")
    assert "readme.txt" in str(info.value) and "train/" in str(info.value)
    with pytest.raises(DatasetError, match="does not exist"):
        MSMT17(tmp_path / "missing")


def _lists_with(**changes: list[str]) -> dict[str, list[str]]:
    lists = {k: list(v) for k, v in MSMT_LISTS.items()}
    lists.update({k.replace("__", "."): v for k, v in changes.items()})
    return lists


def test_msmt_line_without_pid(tmp_path: Path, make_msmt) -> None:
    lists = _lists_with(list_query__txt=["0000/0000_000_07_0303afternoon_0200_0.jpg"])
    base = make_msmt(tmp_path / "MSMT17", lists=lists)
    with pytest.raises(DatasetError, match=r"list_query.txt:1: expected '<relative path> <pid>'"):
        MSMT17(base)


def test_msmt_missing_listed_file(tmp_path: Path, make_msmt) -> None:
    base = make_msmt(tmp_path / "MSMT17")
    gone = base / "test" / "0001" / "0001_002_12_0303afternoon_0204_0.jpg"
    gone.unlink()
    with pytest.raises(DatasetError, match="1 files listed in .*list_gallery.txt.* are missing") as info:
        MSMT17(base)
    assert str(gone) in str(info.value)


def test_msmt_non_contiguous_pids(tmp_path: Path, make_msmt) -> None:
    lists = _lists_with(list_val__txt=["0003/0003_001_02_0303noon_0101_0.jpg 3"])
    base = make_msmt(tmp_path / "MSMT17", lists=lists)
    with pytest.raises(DatasetError, match=r"contiguous 0..N-1.*absent: \[2\]"):
        MSMT17(base)


def test_msmt_camera_out_of_range(tmp_path: Path, make_msmt) -> None:
    lists = _lists_with(list_val__txt=["0001/0001_001_16_0303noon_0101_0.jpg 1"])
    base = make_msmt(tmp_path / "MSMT17", lists=lists)
    with pytest.raises(DatasetError, match="camera 16"):
        MSMT17(base)


def test_merge_market_msmt(tmp_path: Path, market_parent: Path, make_msmt) -> None:
    market = Market1501(market_parent)
    msmt = MSMT17(make_msmt(tmp_path / "MSMT17"))
    mm = merge_market_msmt(market, msmt)
    assert mm.train[:4] == msmt.train
    # Market raw pids 2,7,10 -> 2,3,4 (offset = 2 MSMT ids); camids + 15 (max MSMT camid 14, + 1)
    assert [(s.pid, s.camid) for s in mm.train[4:]] == [(2, 15), (2, 16), (3, 17), (4, 15), (4, 20)]
    assert mm.query == market.query and mm.gallery == market.gallery
    assert mm.num_train_pids == 5


# ----------------------------------------------------------------------------------------------------------------------
# LUPerson pool and ranked lists
# ----------------------------------------------------------------------------------------------------------------------
def test_lup_pool_without_list(lup_root: Path, write_jpeg) -> None:
    write_jpeg(lup_root / "images" / "sub" / "x.png")
    (lup_root / "images" / "notes.txt").write_text("x")
    pool = LUPersonPool(lup_root)
    assert pool.names == LUP_NAMES + ["sub/x.png"]  # sorted, recursive, images only
    assert len(pool) == 11 and pool.samples[0] == lup_root / "images" / LUP_NAMES[0]
    assert list(pool.samples)[-1] == lup_root / "images" / "sub" / "x.png"
    assert LUPersonPool(lup_root / "images").names == pool.names  # root = images/ directly
    assert "11 images" in pool.summary()


def test_lup_ranked_plain_text(lup_root: Path, tmp_path: Path) -> None:
    ranked = [LUP_NAMES[i] for i in (7, 2, 9, 0, 5, 1, 8, 3, 6, 4)]
    path = write_ranked_list(ranked, tmp_path / "cfs.txt")
    assert read_ranked_list(path) == ranked
    assert LUPersonPool(lup_root, ranked_list=path, keep_num=3).names == ranked[:3]
    assert len(LUPersonPool(lup_root, ranked_list=path, keep_ratio=0.45)) == 5  # 4.5 rounds up
    assert len(LUPersonPool(lup_root, ranked_list=path, keep_ratio=0.25)) == 3  # 2.5 rounds up (round() gives 2)
    pool = LUPersonPool(lup_root, ranked_list=path, keep_ratio=1.0)
    assert pool.names == ranked and "10 of 10" in pool.summary()


def test_lup_cfs_pickle(lup_root: Path, tmp_path: Path) -> None:
    ranked = list(reversed(LUP_NAMES))
    ours = write_cfs_pickle(ranked, tmp_path / "ours.pkl")
    assert ours.read_bytes()[:2] == b"\x80\x04"  # protocol 4
    assert pickle.loads(ours.read_bytes()) == ranked  # our own file: plain list of str
    official = tmp_path / "CFS_list.pkl"
    official.write_bytes(pickle.dumps(tuple(ranked), protocol=2))
    assert read_cfs_pickle(official) == ranked
    assert LUPersonPool(lup_root, ranked_list=official, keep_num=4).names == ranked[:4]


def test_lup_keep_arguments(lup_root: Path, tmp_path: Path) -> None:
    path = write_ranked_list(LUP_NAMES, tmp_path / "r.txt")
    with pytest.raises(ValueError, match="exactly one"):
        LUPersonPool(lup_root, ranked_list=path)
    with pytest.raises(ValueError, match="exactly one"):
        LUPersonPool(lup_root, ranked_list=path, keep_num=2, keep_ratio=0.5)
    with pytest.raises(DatasetError, match="keep_num=11 exceeds the 10"):
        LUPersonPool(lup_root, ranked_list=path, keep_num=11)
    with pytest.raises(ValueError, match="ranked_list"):
        LUPersonPool(lup_root, keep_num=3)
    assert keep_count(4_180_243, keep_ratio=0.5) == 2_090_122 and keep_count(4_180_243, keep_ratio=0.6) == 2_508_146


def test_lup_missing_listed_files(lup_root: Path, tmp_path: Path) -> None:
    ranked = ["gone_1.jpg", LUP_NAMES[0], "gone_2.jpg"] + LUP_NAMES[1:] + ["gone_at_tail.jpg"]
    path = write_ranked_list(ranked, tmp_path / "r.txt")
    with pytest.raises(DatasetError, match="2 of the 3 kept entries") as info:
        LUPersonPool(lup_root, ranked_list=path, keep_num=3)
    assert "gone_1.jpg" in str(info.value) and "gone_2.jpg" in str(info.value)
    # only the kept head is checked: the missing tail entry does not matter
    ok = write_ranked_list(LUP_NAMES + ["gone_at_tail.jpg"], tmp_path / "ok.txt")
    assert len(LUPersonPool(lup_root, ranked_list=ok, keep_num=10)) == 10
    escape = write_ranked_list(["../../etc/passwd"], tmp_path / "escape.txt")
    with pytest.raises(DatasetError, match="not paths inside"):
        LUPersonPool(lup_root, ranked_list=escape, keep_num=1)


class _Evil:
    """Pickles to a call of os.system that would create a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("payload, message", [
    ("evil", "refusing to load global"),
    ("evil_in_list", "refusing to load global"),
    ({"a.jpg": 1}, "holds a dict"),
    (["a.jpg", 3], "entry 1 is a int"),
    (b"not a pickle", "not a readable pickle"),
])
def test_cfs_pickle_refuses_anything_but_list_of_str(tmp_path: Path, payload, message: str) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "CFS_list.pkl"
    if payload == "evil":
        path.write_bytes(pickle.dumps(_Evil(marker)))
    elif payload == "evil_in_list":
        path.write_bytes(pickle.dumps(["a.jpg", _Evil(marker)]))
    elif isinstance(payload, bytes):
        path.write_bytes(payload)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(DatasetError, match=message):
        read_cfs_pickle(path)
    assert not marker.exists()  # nothing was executed


# ----------------------------------------------------------------------------------------------------------------------
# Custom person folders
# ----------------------------------------------------------------------------------------------------------------------
def test_custom_without_cameras(custom_root: Path) -> None:
    ds = FolderDataset(custom_root)
    assert ds.camera_source == "none"
    assert _rows(ds.train) == [("a_c1_1.jpg", 0, 0), ("a_c2_2.jpg", 0, 0), ("b_c1_1.jpg", 1, 0)]
    # query/gallery share one mapping: alice 0, carol 1, dave 2; query camid 0, gallery camid 1
    assert _rows(ds.query) == [("a_c1_9.jpg", 0, 0), ("c_c2_1.jpg", 1, 0)]
    assert _rows(ds.gallery) == [("a_c2_8.jpg", 0, 1), ("c_c1_2.jpg", 1, 1), ("c_c2_3.jpg", 1, 1),
                                 ("d_c3_1.jpg", 2, 1)]
    assert ds.id_names["test"] == {0: "alice", 1: "carol", 2: "dave"}
    # Market protocol drops same pid AND same camid: with these camids no true match is dropped
    dropped = [(q, g) for q in ds.query for g in ds.gallery if q.pid == g.pid and q.camid == g.camid]
    assert dropped == []


def test_custom_cameras_from_csv(custom_root: Path) -> None:
    rows = ["relative_path,camid", "train/alice/a_c1_1.jpg,7", "train/alice/a_c2_2.jpg,3", "train/bob/b_c1_1.jpg,7",
            "query/alice/a_c1_9.jpg,12", "query/carol/c_c2_1.jpg,3", "gallery/alice/a_c2_8.jpg,12",
            "gallery/carol/c_c1_2.jpg,3", "gallery/carol/c_c2_3.jpg,7", "gallery/dave/d_c3_1.jpg,7"]
    (custom_root / "cameras.csv").write_text("\n".join(rows) + "\n")
    ds = FolderDataset(custom_root)
    assert ds.camera_source == "csv"
    # labels 3, 7, 12 -> 0, 1, 2 (numeric order)
    assert [s.camid for s in ds.train] == [1, 0, 1]
    assert [s.camid for s in ds.query] == [2, 0] and [s.camid for s in ds.gallery] == [2, 0, 1, 1]
    (custom_root / "cameras.csv").write_text("\n".join(rows[:-1]) + "\n")
    with pytest.raises(DatasetError, match="1 images have no camera") as info:
        FolderDataset(custom_root)
    assert "d_c3_1.jpg" in str(info.value)
    (custom_root / "cameras.csv").write_text("\n".join(rows + ["gallery/ghost/x.jpg,1"]) + "\n")
    with pytest.raises(DatasetError, match="do not exist"):
        FolderDataset(custom_root)
    assert FolderDataset(custom_root, cameras=None).camera_source == "none"


def test_custom_cameras_from_pattern(custom_root: Path) -> None:
    ds = FolderDataset(custom_root, cam_pattern=r"_c(?P<cam>\d+)_")
    assert [s.camid for s in ds.train] == [0, 1, 0]  # c1 c2 c1
    assert [s.camid for s in ds.gallery] == [1, 0, 1, 2]  # c2 c1 c2 c3
    with pytest.raises(ValueError, match="named group"):
        FolderDataset(custom_root, cam_pattern=r"_c(\d+)_")
    with pytest.raises(DatasetError, match="does not match"):
        FolderDataset(custom_root, cam_pattern=r"_cam(?P<cam>\d+)")


def test_custom_bad_layouts(custom_root: Path, write_jpeg) -> None:
    write_jpeg(custom_root / "query" / "loose.jpg")
    with pytest.raises(DatasetError, match="directly in"):
        FolderDataset(custom_root)
    (custom_root / "query" / "loose.jpg").unlink()
    for p in (custom_root / "gallery").rglob("*.jpg"):
        p.unlink()
    with pytest.raises(DatasetError, match="'gallery' is empty"):
        FolderDataset(custom_root)
    with pytest.raises(DatasetError, match="expected folders train/, query/, gallery/"):
        FolderDataset(custom_root / "train")


def test_custom_flat_folder(tmp_path: Path, write_jpeg) -> None:
    for i in range(3):
        write_jpeg(tmp_path / "crops" / f"{i}.jpg")
    pool = FolderDataset.from_flat_folder(tmp_path / "crops")
    assert [p.name for p in pool.samples] == ["0.jpg", "1.jpg", "2.jpg"]


# ----------------------------------------------------------------------------------------------------------------------
# Registry
# ----------------------------------------------------------------------------------------------------------------------
def test_registry(market_parent: Path, custom_root: Path) -> None:
    assert {"market1501", "msmt17", "custom"} <= set(list_datasets())
    assert build_dataset("Market1501", market_parent).num_train_pids == 3
    assert isinstance(build_dataset("custom", custom_root), ReIDDataset)
    with pytest.raises(ValueError, match="unknown dataset 'duke'.*custom, market1501, msmt17"):
        build_dataset("duke", market_parent)

    @register_dataset("tiny_test_set")
    def _tiny(root, **kw):
        return ReIDDataset("tiny", Path(root), [Sample("a", 0, 0)], [], [])

    assert build_dataset("tiny_test_set", "/x").name == "tiny"
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("tiny_test_set")(lambda root: None)
