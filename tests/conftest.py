"""Fixtures for the data tests (helpers and file-name tables in ``fixtures_data.py``)."""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import fixtures_data as fd


@pytest.fixture
def write_jpeg() -> Callable[..., Path]:
    """``write_jpeg(path, color=..., size=(W, H))`` -> path of a new JPEG."""
    return fd.write_jpeg


@pytest.fixture
def make_market() -> Callable[..., Path]:
    """``make_market(base, files=None)`` writes a Market-1501 tree at ``base``."""
    return fd.make_market


@pytest.fixture
def make_msmt() -> Callable[..., Path]:
    """``make_msmt(base, version="V1", lists=None)`` writes an MSMT17 V1/V2 release at ``base``."""
    return fd.make_msmt


@pytest.fixture
def market_parent(tmp_path: Path) -> Path:
    """A parent folder named like a Market file name (``12_c3``) holding ``market1501/`` (docs/reference.md §9.28 bug)."""
    parent = tmp_path / "12_c3"
    fd.make_market(parent / "market1501")
    return parent


@pytest.fixture
def lup_root(tmp_path: Path) -> Path:
    """``LUP/images/`` with the 10 files of ``fixtures_data.LUP_NAMES``."""
    root = tmp_path / "LUP"
    for name in fd.LUP_NAMES:
        fd.write_jpeg(root / "images" / name)
    return root


@pytest.fixture
def custom_root(tmp_path: Path) -> Path:
    """Person folders (``fixtures_data.CUSTOM_FILES``): train alice(2)/bob(1); query alice(1)/carol(1);
    gallery alice(1)/carol(2)/dave(1). File names carry a camera tag ``_c<k>_`` for the ``cam_pattern`` tests."""
    root = tmp_path / "mydata"
    for f in fd.CUSTOM_FILES:
        fd.write_jpeg(root / f)
    return root
