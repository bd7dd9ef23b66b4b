"""The three synthetic worlds, written in the real datasets' on-disk formats (docs/reference.md §7.1, §7.2, §2.8).

* SynthMarket → ``<root>/market1501/{bounding_box_train,bounding_box_test,query}/PPPP_cCsS_FFFFFF_NN.jpg``
* SynthMSMT  → ``<root>/MSMT17/{train,test}/<pid>/…jpg`` + ``list_{train,val,query,gallery}.txt`` (V1 layout),
  or ``mask_train_v2/``/``mask_test_v2/`` with ``version="v2"``
* SynthLUP   → ``<root>/LUP/images/<cc>_<cc>_<vvvv>_<iiiiiiii>.jpg`` + ``membership.csv`` (which images are
  persons, which identity, which are off-domain: lets notebook 01 measure how well CFS rejects them)

Planning (who appears where, file names, splits) runs in the calling process from ``(synth_seed, world)``;
rendering is a pure function of each :class:`~reid_lab.data.synthetic.render.ImageSpec`, so any number of worker
processes writes byte-identical files. Each world folder gets a ``world.json`` (generator version, the config
fields that shape it, counts) written *last*: a folder without it is an interrupted run and is regenerated.
"""
from __future__ import annotations

import functools
import json
import logging
import multiprocessing
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from reid_lab.data.synthetic.render import (
    DOMAINS,
    TIMES_OF_DAY,
    VIEWS,
    ImageSpec,
    encode_jpeg,
    person_mask,
    render,
    sample_identity,
    stable_hash,
)

logger = logging.getLogger(__name__)

__all__ = [
    "GENERATOR_VERSION", "WORLD_FILE", "generate_worlds", "generate_market", "generate_msmt", "generate_pool",
    "plan_market", "plan_msmt", "plan_pool", "read_world_info", "person_masks",
]

GENERATOR_VERSION = "1.0"
WORLD_FILE = "world.json"
_MARKER = ".reid_lab_synthetic"  # written first: this folder is ours and may be deleted on regeneration
MARKET_MAX_PID = 1501  # docs/reference.md §7.1: loaders assert 0 <= pid <= 1501
MSMT_DATES = ("0113", "0114", "0302", "0303")
_CHUNK = 48
_MIN_PARALLEL = 400  # below this many images, worker start-up costs more than it saves
_MARKET_FIELDS = ("synth_height", "synth_width", "synth_seed", "market_train_ids", "market_test_ids",
                  "market_cameras", "images_per_id")
_MSMT_FIELDS = ("synth_height", "synth_width", "synth_seed", "msmt_train_ids", "msmt_test_ids", "msmt_cameras",
                "images_per_id")
_POOL_FIELDS = ("synth_height", "synth_width", "synth_seed", "pool_size", "pool_off_domain")
_LUP_STYLES = (("market", 0.3, 6), ("msmt", 0.3, 15), ("street", 0.4, 8))  # (domain, share, cameras)


# --------------------------------------------------------------------------------------------------------------
# Shared planning helpers
# --------------------------------------------------------------------------------------------------------------
def _rng(seed: int, *keys: str | int) -> np.random.Generator:
    return np.random.default_rng([seed, *(stable_hash(k) if isinstance(k, str) else k for k in keys)])


def _check_positive(cfg: Any, names: Sequence[str]) -> None:
    for name in names:
        value = getattr(cfg, name, None)
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"data config field {name}={value!r}: expected a positive integer")


def _person_passes(rng: np.random.Generator, n_cameras: int, images_per_id: int, *, test: bool,
                   cam_weights: np.ndarray) -> list[tuple[int, int]]:
    """Cameras an identity walks past and how many images each pass yields: [(camera0, count), ...].

    At least two cameras per identity; for test identities at least two images per camera, so that each camera
    can give a query and still leave a gallery image (and every query has a cross-camera match).
    """
    per_cam_min = 2 if test else 1
    n = max(2 * per_cam_min, int(round(images_per_id * rng.uniform(0.6, 1.4))))
    k_max = max(2, min(n_cameras, n // per_cam_min))
    k = int(rng.integers(2, k_max + 1))
    w = cam_weights / cam_weights.sum()
    cams = np.sort(rng.choice(n_cameras, size=k, replace=False, p=w))
    counts = np.full(k, per_cam_min) + rng.multinomial(n - k * per_cam_min, np.full(k, 1.0 / k))
    return [(int(c), int(m)) for c, m in zip(cams, counts)]


# --------------------------------------------------------------------------------------------------------------
# SynthMarket (docs/reference.md §7.1)
# --------------------------------------------------------------------------------------------------------------
def plan_market(cfg: Any) -> tuple[list[ImageSpec], dict[str, int]]:
    """File names and image specs of SynthMarket; relative paths start with the split folder."""
    _check_positive(cfg, ("market_train_ids", "market_test_ids", "market_cameras", "images_per_id"))
    n_cam = cfg.market_cameras
    if not 2 <= n_cam <= 6:
        raise ValueError(f"market_cameras={n_cam}: Market-1501 file names hold one camera digit and loaders "
                         f"accept cameras 1..6 (docs/reference.md §7.1); expected 2..6")
    total = cfg.market_train_ids + cfg.market_test_ids
    if total > MARKET_MAX_PID:
        raise ValueError(f"market_train_ids + market_test_ids = {total}: Market pids must fit in 1..{MARKET_MAX_PID}")
    seed = cfg.synth_seed
    rng = _rng(seed, "market/plan")
    pids = np.sort(rng.choice(np.arange(1, MARKET_MAX_PID + 1), size=total, replace=False))
    is_test = np.zeros(total, bool)
    is_test[rng.choice(total, size=cfg.market_test_ids, replace=False)] = True
    cam_weights = rng.dirichlet(np.full(n_cam, 8.0))
    style = DOMAINS["market"]
    used: set[str] = set()
    entries: list[dict[str, Any]] = []  # rel_path, kind, camera, identity, view

    def name(pid: int, cam: int, rng_: np.random.Generator, seq: int | None = None, frame: int | None = None) -> str:
        while True:
            s = seq if seq is not None else int(rng_.integers(1, 7))
            f = frame if frame is not None else int(rng_.integers(0, 1_000_000))
            stem = f"{pid:04d}" if pid >= 0 else str(pid)
            fname = f"{stem}_c{cam + 1}s{s}_{f:06d}_{int(rng_.integers(1, 9)):02d}.jpg"
            if fname not in used:
                used.add(fname)
                return fname
            frame = None  # collision (only possible for random frames): draw again

    for pid, test in zip(pids.tolist(), is_test.tolist()):
        ident = sample_identity(style, _rng(seed, "market/identity", pid))
        passes = _person_passes(rng, n_cam, cfg.images_per_id, test=test, cam_weights=cam_weights)
        for cam, count in passes:
            seq = int(rng.integers(1, 7))
            frame = int(rng.integers(0, 900_000))
            view = VIEWS[int(rng.integers(len(VIEWS)))]
            frames = frame + np.cumsum(rng.integers(3, 40, size=count))
            query_k = int(rng.integers(count)) if test else -1
            for k, f in enumerate(frames.tolist()):
                split = "bounding_box_train" if not test else ("query" if k == query_k else "bounding_box_test")
                entries.append(dict(rel=f"{split}/{name(pid, cam, rng, seq, f)}", kind="person", camera=cam,
                                    identity=ident, view=view))
    n_gallery_persons = sum(e["rel"].startswith("bounding_box_test/") for e in entries)
    n_distractors = max(2, int(round(0.03 * n_gallery_persons)))
    n_junk = max(2, int(round(0.02 * n_gallery_persons)))
    for kind, pid, count in (("distractor", 0, n_distractors), ("junk", -1, n_junk)):
        for _ in range(count):
            cam = int(rng.integers(n_cam))
            entries.append(dict(rel=f"bounding_box_test/{name(pid, cam, rng)}", kind=kind, camera=cam,
                                identity=None, view=None))
    specs = [
        ImageSpec(rel_path=e["rel"], kind=e["kind"], domain="market", scenes="market", camera=e["camera"],
                  num_cameras=n_cam, seed=(seed, stable_hash("market/image"), i), identity=e["identity"],
                  view=e["view"])
        for i, e in enumerate(entries)
    ]
    counts = dict(
        train_ids=int((~is_test).sum()), test_ids=int(is_test.sum()), cameras=n_cam,
        train_images=sum(s.rel_path.startswith("bounding_box_train/") for s in specs),
        query_images=sum(s.rel_path.startswith("query/") for s in specs),
        gallery_images=sum(s.rel_path.startswith("bounding_box_test/") for s in specs),
        distractors=n_distractors, junk=n_junk,
    )
    return specs, counts


# --------------------------------------------------------------------------------------------------------------
# SynthMSMT (docs/reference.md §7.2)
# --------------------------------------------------------------------------------------------------------------
def _msmt_folders(version: str) -> tuple[str, str]:
    if version == "v1":
        return "train", "test"
    if version == "v2":
        return "mask_train_v2", "mask_test_v2"
    raise ValueError(f"MSMT17 version {version!r}: expected 'v1' (train/, test/) or 'v2' (mask_train_v2/, "
                     f"mask_test_v2/)")


def plan_msmt(cfg: Any, version: str = "v1") -> tuple[list[ImageSpec], dict[str, list[str]], dict[str, int]]:
    """Image specs, list-file lines (``<pid>/<file> <pid>``) and counts of SynthMSMT."""
    train_dir, test_dir = _msmt_folders(version)
    _check_positive(cfg, ("msmt_train_ids", "msmt_test_ids", "msmt_cameras", "images_per_id"))
    n_cam = cfg.msmt_cameras
    if not 2 <= n_cam <= 99:
        raise ValueError(f"msmt_cameras={n_cam}: MSMT17 file names hold a two-digit camera; expected 2..99")
    seed = cfg.synth_seed
    rng = _rng(seed, "msmt/plan")
    cam_weights = rng.dirichlet(np.full(n_cam, 4.0))
    style = DOMAINS["msmt"]
    lists: dict[str, list[str]] = {"train": [], "val": [], "query": [], "gallery": []}
    entries: list[dict[str, Any]] = []

    def add_identity(split: str, pid: int) -> list[tuple[str, str]]:
        ident = sample_identity(style, _rng(seed, f"msmt/{split}/identity", pid))
        test = split == "test"
        passes = _person_passes(rng, n_cam, cfg.images_per_id, test=test, cam_weights=cam_weights)
        query_cams = set()
        if test:  # like MSMT17, not every camera gives a query: about half of them
            n_q = max(1, int(round(len(passes) / 2)))
            query_cams = set(rng.choice([c for c, _ in passes], size=n_q, replace=False).tolist())
        rows, index = [], 0
        for cam, count in passes:
            tod = TIMES_OF_DAY[int(rng.integers(3))]
            date = MSMT_DATES[int(rng.integers(len(MSMT_DATES)))]
            view = VIEWS[int(rng.integers(len(VIEWS)))]
            frames = int(rng.integers(0, 9000)) + np.cumsum(rng.integers(2, 25, size=count))
            query_k = int(rng.integers(count)) if cam in query_cams else -1
            for k, f in enumerate(frames.tolist()):
                box = int(rng.integers(3))
                rel = f"{pid:04d}/{pid:04d}_{index:03d}_{cam + 1:02d}_{date}{tod}_{f % 10000:04d}_{box}.jpg"
                index += 1
                folder = test_dir if test else train_dir
                entries.append(dict(rel=f"{folder}/{rel}", camera=cam, identity=ident, view=view, tod=tod))
                rows.append((rel, "query" if k == query_k else ("gallery" if test else "train")))
        return rows

    for pid in range(cfg.msmt_train_ids):
        for rel, which in add_identity("train", pid):
            lists[which].append(f"{rel} {pid}")
    # list_val: one image each of the first ids (about 7% of the training images). A contiguous block of pids
    # keeps each list's pid set 0..K-1, which MSMT17 loaders assert per list file (docs/reference.md §7.2).
    n_val = min(cfg.msmt_train_ids, max(1, int(round(0.07 * len(lists["train"])))))
    by_pid: dict[int, list[int]] = {}
    for i, line in enumerate(lists["train"]):
        by_pid.setdefault(int(line.rsplit(" ", 1)[1]), []).append(i)
    move = {by_pid[p][int(rng.integers(len(by_pid[p])))] for p in range(n_val)}
    lists["val"] = [line for i, line in enumerate(lists["train"]) if i in move]
    lists["train"] = [line for i, line in enumerate(lists["train"]) if i not in move]
    for pid in range(cfg.msmt_test_ids):
        for rel, which in add_identity("test", pid):
            lists[which].append(f"{rel} {pid}")
    specs = [
        ImageSpec(rel_path=e["rel"], kind="person", domain="msmt", scenes="msmt", camera=e["camera"],
                  num_cameras=n_cam, seed=(seed, stable_hash("msmt/image"), i), identity=e["identity"],
                  view=e["view"], time_of_day=e["tod"])
        for i, e in enumerate(entries)
    ]
    counts = dict(train_ids=cfg.msmt_train_ids, test_ids=cfg.msmt_test_ids, cameras=n_cam,
                  train_images=len(lists["train"]), val_images=len(lists["val"]),
                  query_images=len(lists["query"]), gallery_images=len(lists["gallery"]))
    return specs, lists, counts


# --------------------------------------------------------------------------------------------------------------
# SynthLUP (docs/reference.md §2.8)
# --------------------------------------------------------------------------------------------------------------
def plan_pool(cfg: Any) -> tuple[list[ImageSpec], list[tuple[str, str, int]], dict[str, int]]:
    """Image specs, membership rows ``(filename, kind, identity)`` sorted by file name, and counts of SynthLUP.

    Persons come in identities of 2–8 images filmed in one "video"; each video has one style (market-like,
    msmt-like or another street style) and its own scenes, distinct from the labelled worlds' scenes. Off-domain
    images (background, vehicle, clutter) sit in the same videos; image numbers inside a video are shuffled, so
    neither the key nor the sorted order tells what an image shows.
    """
    _check_positive(cfg, ("pool_size",))
    frac = cfg.pool_off_domain
    if not isinstance(frac, (int, float)) or not 0.0 <= frac < 1.0:
        raise ValueError(f"pool_off_domain={frac!r}: expected a fraction in [0, 1)")
    seed = cfg.synth_seed
    rng = _rng(seed, "lup/plan")
    n_off = int(round(cfg.pool_size * frac))
    n_person = cfg.pool_size - n_off
    off_kinds = ["background"] * (n_off - 2 * (n_off // 3)) + ["vehicle"] * (n_off // 3) + ["clutter"] * (n_off // 3)

    sizes: list[int] = []
    while sum(sizes) < n_person:
        sizes.append(int(rng.integers(2, 9)))
    if sizes:
        sizes[-1] -= sum(sizes) - n_person
        if sizes[-1] < 2 and len(sizes) > 1:  # every identity keeps at least two images
            last = sizes.pop()
            sizes[-1] += last
    # videos: each holds a few identities of one style
    videos: list[dict[str, Any]] = []
    video_numbers = rng.choice(10_000, size=10_000, replace=False)
    shares = np.array([s[1] for s in _LUP_STYLES])
    ident_i = 0
    while ident_i < len(sizes) or not videos:
        st = int(rng.choice(len(_LUP_STYLES), p=shares / shares.sum()))
        domain, _, n_cam = _LUP_STYLES[st]
        n_ids = int(rng.integers(2, 10))
        videos.append(dict(domain=domain, n_cam=n_cam, camera=int(rng.integers(n_cam)),
                           country=int(rng.integers(0, 40)), city=int(rng.integers(1, 20)),
                           video=int(video_numbers[len(videos) % 10_000]),
                           tod=TIMES_OF_DAY[int(rng.integers(3))] if DOMAINS[domain].time_of_day else "",
                           items=[]))
        for _ in range(n_ids):
            if ident_i >= len(sizes):
                break
            style = DOMAINS[domain]
            ident = sample_identity(style, _rng(seed, "lup/identity", ident_i))
            view = VIEWS[int(rng.integers(len(VIEWS)))]
            videos[-1]["items"] += [("person", ident_i, ident, view)] * sizes[ident_i]
            ident_i += 1
    for kind in off_kinds:
        videos[int(rng.integers(len(videos)))]["items"].append((kind, -1, None, None))

    rows: list[tuple[str, str, int]] = []
    pending: list[dict[str, Any]] = []
    for v in videos:
        items = v["items"]
        numbers = np.sort(rng.choice(100_000_000, size=len(items), replace=False))
        order = rng.permutation(len(items))  # which item gets which image number: scrambled
        for number, j in zip(numbers.tolist(), order.tolist()):
            kind, identity, ident, view = items[j]
            fname = f"{v['country']:02d}_{v['city']:02d}_{v['video']:04d}_{number:08d}.jpg"
            rows.append((fname, kind, identity))
            pending.append(dict(fname=fname, kind=kind, ident=ident, view=view, video=v))
    rows.sort()
    if len({r[0] for r in rows}) != len(rows):  # pragma: no cover - guarded by unique video numbers
        raise RuntimeError("SynthLUP planning produced duplicate keys; please report this with the config")
    pending.sort(key=lambda p: p["fname"])
    specs = [
        ImageSpec(rel_path=f"images/{p['fname']}", kind=p["kind"], domain=p["video"]["domain"],
                  scenes=f"lup-{p['video']['domain']}", camera=p["video"]["camera"],
                  num_cameras=p["video"]["n_cam"], seed=(seed, stable_hash("lup/image"), i), identity=p["ident"],
                  view=p["view"], time_of_day=p["video"]["tod"])
        for i, p in enumerate(pending)
    ]
    counts = dict(images=len(specs), person=n_person, identities=len(sizes), videos=len(videos),
                  background=off_kinds.count("background"), vehicle=off_kinds.count("vehicle"),
                  clutter=off_kinds.count("clutter"))
    return specs, rows, counts


# --------------------------------------------------------------------------------------------------------------
# Rendering in parallel, deterministically
# --------------------------------------------------------------------------------------------------------------
def _render_chunk(args: tuple[str, list[ImageSpec], int, int, int]) -> int:
    dest, specs, height, width, world_seed = args
    for spec in specs:
        image, quality = render(spec, height, width, world_seed)
        (Path(dest) / spec.rel_path).write_bytes(encode_jpeg(image, quality))
    return len(specs)


def _pool_context():
    """``fork`` on Linux (like torch's DataLoader: no re-import, works from scripts without a main guard; the
    workers only run numpy/PIL code, so threads of the parent do not matter), ``spawn`` elsewhere."""
    if sys.platform.startswith("linux"):
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def render_specs(dest: Path, specs: Sequence[ImageSpec], height: int, width: int, world_seed: int, *,
                 workers: int | None = None, progress: bool = False, desc: str = "") -> None:
    """Render and write every spec under ``dest``; the output does not depend on ``workers``."""
    from tqdm.auto import tqdm

    from ...paths import quiet

    for folder in sorted({str(Path(s.rel_path).parent) for s in specs}):
        (dest / folder).mkdir(parents=True, exist_ok=True)
    if workers is None:
        workers = min(os.cpu_count() or 1, 8)
    if workers < 1:
        raise ValueError(f"workers={workers}: expected at least 1")
    if len(specs) < _MIN_PARALLEL:
        workers = 1
    chunks = [(str(dest), list(specs[i:i + _CHUNK]), height, width, world_seed)
              for i in range(0, len(specs), _CHUNK)]
    with tqdm(total=len(specs), desc=desc, unit="img", disable=not progress or quiet(), leave=False) as bar:
        if workers == 1:
            for chunk in chunks:
                bar.update(_render_chunk(chunk))
        else:
            with _pool_context().Pool(workers) as pool:
                for n in pool.imap_unordered(_render_chunk, chunks):
                    bar.update(n)


# --------------------------------------------------------------------------------------------------------------
# World folders: idempotent, interrupted runs detected
# --------------------------------------------------------------------------------------------------------------
def read_world_info(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The ``world.json`` of a generated world folder, or None if it is absent (never generated or interrupted)."""
    path = Path(folder) / WORLD_FILE
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _world_folder(path: Path) -> Path:
    """The generated world folder (the nearest ancestor with a ``world.json``) that holds the image ``path``."""
    for folder in path.resolve().parents:
        if (folder / WORLD_FILE).is_file():
            return folder
    raise ValueError(f"{path} is not inside a synthetic world (no {WORLD_FILE} in any parent folder): person "
                     f"masks exist only for the images of reid_lab.data.synthetic")


@functools.lru_cache(maxsize=4)
def _world_specs(folder: Path) -> tuple[dict[str, ImageSpec], int, int, int]:
    """Re-plan the world in ``folder`` from its ``world.json``: ({relative path: spec}, height, width, seed)."""
    info = read_world_info(folder)
    if info is None or info.get("generator_version") != GENERATOR_VERSION:
        raise ValueError(f"{folder}/{WORLD_FILE} is missing or from another generator version than "
                         f"{GENERATOR_VERSION}: regenerate the world to get its person masks")
    cfg = SimpleNamespace(**info["config"])
    world = info["world"]
    if world == "market1501":
        specs = plan_market(cfg)[0]
    elif world == "msmt17":
        specs = plan_msmt(cfg, info.get("version", "v1"))[0]
    elif world == "luperson":
        specs = plan_pool(cfg)[0]
    else:
        raise ValueError(f"{folder}: unknown world {world!r}")
    return {s.rel_path: s for s in specs}, cfg.synth_height, cfg.synth_width, cfg.synth_seed


def person_masks(paths: Sequence[str | os.PathLike]) -> np.ndarray:
    """The visible person's pixel coverage (N, H, W) float32 in [0, 1] of generated world images (docs/reference.md §7).

    Nothing is stored: each world is re-planned from its ``world.json`` and each mask re-drawn from the image's
    spec (:func:`~reid_lab.data.synthetic.render.person_mask`), so the masks match the files exactly and the
    world folders keep the real datasets' layout. Raises ``ValueError`` for an image outside a synthetic world.
    """
    out = []
    for p in paths:
        path = Path(p)
        folder = _world_folder(path)
        specs, height, width, seed = _world_specs(folder)
        rel = path.resolve().relative_to(folder).as_posix()
        if rel not in specs:
            raise ValueError(f"{path}: not an image of the world in {folder}")
        out.append(person_mask(specs[rel], height, width, seed))
    if not out:
        raise ValueError("no image paths given")
    return np.stack(out)


def _fingerprint(world: str, cfg: Any, fields: Sequence[str], **extra: Any) -> dict[str, Any]:
    return dict(generator_version=GENERATOR_VERSION, world=world,
                config={f: getattr(cfg, f) for f in fields}, seed=cfg.synth_seed, **extra)


def _prepare(folder: Path, fingerprint: dict[str, Any], force: bool) -> bool:
    """True when ``folder`` must be (re)generated; clears it if it is ours and stale/interrupted."""
    info = read_world_info(folder)
    if info is not None and not force and all(info.get(k) == v for k, v in fingerprint.items()):
        logger.info("%s is up to date (world.json matches); skipping", folder)
        return False
    if folder.exists() and any(folder.iterdir()):
        if info is None and not (folder / _MARKER).exists():
            raise FileExistsError(
                f"{folder} exists, is not empty and was not written by the synthetic generator (no {WORLD_FILE} "
                f"or {_MARKER}); refusing to overwrite it. Choose another root or remove the folder.")
        reason = "forced" if force else ("interrupted run" if info is None else "config or version changed")
        logger.info("regenerating %s (%s)", folder, reason)
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / _MARKER).write_text("written by reid_lab.data.synthetic; safe to delete\n")
    return True


def _finish(folder: Path, fingerprint: dict[str, Any], counts: dict[str, int]) -> None:
    tmp = folder / (WORLD_FILE + ".tmp")
    tmp.write_text(json.dumps({**fingerprint, "counts": counts}, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, folder / WORLD_FILE)


def _cfg_size(cfg: Any) -> tuple[int, int]:
    h, w = getattr(cfg, "synth_height", None), getattr(cfg, "synth_width", None)
    if not (isinstance(h, int) and isinstance(w, int) and h >= 16 and w >= 8):
        raise ValueError(f"synth_height={h!r}, synth_width={w!r}: expected integers >= 16 and >= 8")
    return h, w


def generate_market(root: str | os.PathLike, cfg: Any, *, force: bool = False, progress: bool = False,
                    workers: int | None = None) -> Path:
    """Write SynthMarket to ``<root>/market1501`` (skipped when its ``world.json`` matches); return that folder.

    ``cfg`` is a :class:`reid_lab.config.DataConfig` (or anything with its ``synth_*``/``market_*`` fields).
    """
    h, w = _cfg_size(cfg)
    folder = Path(root) / "market1501"
    fp = _fingerprint("market1501", cfg, _MARKET_FIELDS)
    if not _prepare(folder, fp, force):
        return folder
    specs, counts = plan_market(cfg)
    render_specs(folder, specs, h, w, cfg.synth_seed, workers=workers, progress=progress, desc="SynthMarket")
    _finish(folder, fp, counts)
    logger.info("SynthMarket: %s", counts)
    return folder


def generate_msmt(root: str | os.PathLike, cfg: Any, version: str = "v1", *, force: bool = False,
                  progress: bool = False, workers: int | None = None) -> Path:
    """Write SynthMSMT to ``<root>/MSMT17`` in the V1 (``train/``, ``test/``) or V2 (``mask_*_v2/``) layout."""
    h, w = _cfg_size(cfg)
    train_dir, test_dir = _msmt_folders(version)
    folder = Path(root) / "MSMT17"
    fp = _fingerprint("msmt17", cfg, _MSMT_FIELDS, version=version)
    if not _prepare(folder, fp, force):
        return folder
    specs, lists, counts = plan_msmt(cfg, version)
    render_specs(folder, specs, h, w, cfg.synth_seed, workers=workers, progress=progress, desc="SynthMSMT")
    for which, lines in lists.items():
        (folder / f"list_{which}.txt").write_text("".join(line + "\n" for line in lines))
    _finish(folder, fp, {**counts, "train_dir": train_dir, "test_dir": test_dir})
    logger.info("SynthMSMT (%s): %s", version, counts)
    return folder


def generate_pool(root: str | os.PathLike, cfg: Any, *, force: bool = False, progress: bool = False,
                  workers: int | None = None) -> Path:
    """Write SynthLUP to ``<root>/LUP/images`` plus ``<root>/LUP/membership.csv``; return ``<root>/LUP``."""
    h, w = _cfg_size(cfg)
    folder = Path(root) / "LUP"
    fp = _fingerprint("luperson", cfg, _POOL_FIELDS)
    if not _prepare(folder, fp, force):
        return folder
    specs, rows, counts = plan_pool(cfg)
    render_specs(folder, specs, h, w, cfg.synth_seed, workers=workers, progress=progress, desc="SynthLUP")
    lines = ["filename,kind,identity"] + [f"{f},{k},{i}" for f, k, i in rows]
    (folder / "membership.csv").write_text("\n".join(lines) + "\n")
    _finish(folder, fp, counts)
    logger.info("SynthLUP: %s", counts)
    return folder


def generate_worlds(profile: str, root: str | os.PathLike | None = None, *, force: bool = False,
                    progress: bool = True, workers: int | None = None) -> dict[str, Path]:
    """Build SynthMarket, SynthMSMT (V1) and SynthLUP for ``profile`` under ``root``.

    ``root`` defaults to :func:`reid_lab.paths.synthetic_root` (``<data>/synthetic/<profile>``); sizes come from
    ``reid_lab.config.resolve("data", profile)``. Worlds whose ``world.json`` matches are skipped unless
    ``force``. Returns ``{"market1501": path, "msmt17": path, "luperson": path}``.
    """
    from reid_lab import config, paths

    cfg = config.resolve("data", profile)
    base = Path(root) if root not in (None, "") else paths.synthetic_root(profile)
    base.mkdir(parents=True, exist_ok=True)
    steps: list[tuple[str, Callable[..., Path]]] = [
        ("market1501", generate_market), ("msmt17", generate_msmt), ("luperson", generate_pool),
    ]
    out: dict[str, Path] = {}
    for key, fn in steps:
        out[key] = fn(base, cfg, force=force, progress=progress, workers=workers)
    return out
