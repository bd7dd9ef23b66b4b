"""Datasets, samplers and transforms (docs/reference.md §4.3, §5.4, §7).

Build a labelled dataset by name, torchreid-style::

    from reid_lab.data import build_dataset, ImageDataset, RandomIdentitySampler, build_reid_transforms
    ds = build_dataset("market1501", data_root / "market1501")   # -> ReIDDataset (train / query / gallery)
    train_set = ImageDataset(ds.train, build_reid_transforms(256, 128, train=True))
    sampler = RandomIdentitySampler(ds.train, batch_size=64, num_instances=4, seed=0)

Registered names: ``market1501``, ``msmt17``, ``custom``; add your own with :func:`register_dataset`.
The synthetic worlds (``reid_lab.data.synthetic``) are not imported here, to keep this import light.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from .base import (
    DatasetError, ImageDataset, ReIDDataset, Sample, merge_market_msmt, read_image, verify_images,
)
from .custom import FolderDataset
from .luperson import (
    LUPersonPool, read_cfs_pickle, read_ranked_list, write_cfs_pickle, write_ranked_list,
)
from .market1501 import Market1501
from .msmt17 import MSMT17
from .samplers import DistributedRandomIdentitySampler, RandomIdentitySampler, RandomMultipleGallerySampler

_LAZY = {"build_reid_transforms": "transforms", "build_usl_transforms": "transforms"}


def __getattr__(name: str) -> Any:
    """Import the transforms (torchvision + timm, ~2 s) only when first used."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_F = TypeVar("_F", bound=Callable[..., ReIDDataset])
_REGISTRY: dict[str, Callable[..., ReIDDataset]] = {}


def register_dataset(name: str) -> Callable[[_F], _F]:
    """Decorator registering a builder ``f(root, **kwargs) -> ReIDDataset`` under ``name`` (case-insensitive)."""
    key = name.lower()

    def decorator(builder: _F) -> _F:
        if key in _REGISTRY and _REGISTRY[key] is not builder:
            raise ValueError(f"dataset name {name!r} is already registered to {_REGISTRY[key]!r}")
        _REGISTRY[key] = builder
        return builder

    return decorator


def list_datasets() -> list[str]:
    """Registered dataset names, sorted."""
    return sorted(_REGISTRY)


def build_dataset(name: str, root: str | os.PathLike, **kwargs: Any) -> ReIDDataset:
    """Build the dataset registered as ``name`` from ``root`` (keyword arguments go to its builder)."""
    try:
        builder = _REGISTRY[name.lower()]
    except KeyError:
        raise ValueError(f"unknown dataset {name!r}; valid names: {', '.join(list_datasets())}") from None
    return builder(root, **kwargs)


register_dataset("market1501")(Market1501)
register_dataset("msmt17")(MSMT17)
register_dataset("custom")(FolderDataset)

__all__ = [
    "DatasetError", "Sample", "ReIDDataset", "ImageDataset", "read_image", "verify_images", "merge_market_msmt",
    "Market1501", "MSMT17", "FolderDataset", "LUPersonPool", "read_ranked_list", "read_cfs_pickle",
    "write_ranked_list", "write_cfs_pickle", "RandomIdentitySampler", "DistributedRandomIdentitySampler",
    "RandomMultipleGallerySampler", "build_reid_transforms", "build_usl_transforms", "register_dataset",
    "build_dataset", "list_datasets",
]
