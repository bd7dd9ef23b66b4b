"""The real-format fixture world of the full profile's dry run (reid_lab.data.synthetic.fixture)."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from reid_lab.data import LUPersonPool, Market1501, MSMT17
from reid_lab.data.luperson import read_cfs_pickle
from reid_lab.data.profile import load_profile_data
from reid_lab.data.synthetic.fixture import generate_fixture


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    return generate_fixture(tmp_path_factory.mktemp("fixture"))


def test_market_is_real_format(world):
    market = Market1501(world["market1501"])
    assert (market.num_train_pids, len({s.pid for s in market.query})) == (16, 12)
    names = [p.name for p in (world["market1501"] / "bounding_box_test").iterdir()]
    assert any(n.startswith("-1_") for n in names) and any(n.startswith("0000_") for n in names)
    assert {Image.open(s.path).size for s in market.train} == {(64, 128)}  # (width, height) of the real crops
    assert not (world["market1501"] / "world.json").exists()


def test_msmt_is_v1_with_lists_and_varied_sizes(world):
    msmt = MSMT17(world["msmt17"])
    assert msmt.version == "V1" and msmt.num_train_pids == 16
    assert all((world["msmt17"] / f"list_{k}.txt").is_file() for k in ("train", "val", "query", "gallery"))
    assert len({Image.open(s.path).size for s in msmt.train}) > 20


def test_cfs_list_is_the_official_layout_and_selects_its_head(world):
    names = read_cfs_pickle(world["cfs_list"])
    images = sorted(p.name for p in (world["luperson"] / "images").iterdir())
    assert sorted(names) == images and len(names) == 160
    pool = LUPersonPool(world["luperson"], ranked_list=world["cfs_list"], keep_ratio=0.6)
    assert list(pool.names) == names[:96]
    assert not (world["luperson"] / "membership.csv").exists()  # real LUPerson has no ground truth


def test_full_profile_loads_it_as_real_data(world):
    data = load_profile_data("full", world["market1501"].parent)
    assert not data.synthetic and data.membership_csv is None
    assert data.market.num_train_pids == 16 and data.msmt.title == "MSMT17 V1"
