"""Deterministic synthetic person-ReID worlds in the real on-disk formats (docs/reference.md §7.1, §7.2, §2.8).

Nothing real can be downloaded in the tiny/smoke profiles, so a seeded generator draws person-like crops and
writes them exactly as Market-1501, MSMT17 and LUPerson are laid out; the project's real loaders read them.

>>> from reid_lab.data.synthetic import generate_worlds
>>> roots = generate_worlds("smoke", "/tmp/synth")          # doctest: +SKIP
>>> sorted(roots)                                           # doctest: +SKIP
['luperson', 'market1501', 'msmt17']

``render`` holds the drawing (identities, nuisances, domains); ``worlds`` the layouts, file names and splits.
``person_masks(paths)`` re-draws the visible person's pixel mask of any generated image (nothing extra on disk).
"""
from __future__ import annotations

from reid_lab.data.synthetic.render import DOMAINS, Identity, ImageSpec, person_mask, render, sample_identity
from reid_lab.data.synthetic.worlds import (
    GENERATOR_VERSION,
    WORLD_FILE,
    generate_market,
    generate_msmt,
    generate_pool,
    generate_worlds,
    person_masks,
    plan_market,
    plan_msmt,
    plan_pool,
    read_world_info,
)

__all__ = [
    "DOMAINS", "GENERATOR_VERSION", "WORLD_FILE", "Identity", "ImageSpec", "generate_market", "generate_msmt",
    "generate_pool", "generate_worlds", "person_mask", "person_masks", "plan_market", "plan_msmt", "plan_pool",
    "read_world_info", "render", "sample_identity",
]
