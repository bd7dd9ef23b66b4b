"""Synthetic worlds (``reid_lab.data.synthetic``) and the non-deep baselines (``reid_lab.baselines``).

The worlds are small custom configs (smoke-sized, 64x32); each generated world is shared by the tests of one
module through module-scoped fixtures, so the whole file runs in seconds.
"""
from __future__ import annotations

import csv
import json
import re
from collections import Counter, defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from reid_lab.baselines import color_histogram_features, load_images, raw_pixel_features
from reid_lab.config import resolve
from reid_lab.data.synthetic import (
    DOMAINS,
    WORLD_FILE,
    generate_market,
    generate_msmt,
    generate_pool,
    generate_worlds,
    person_mask,
    person_masks,
    plan_market,
    read_world_info,
    sample_identity,
)
from reid_lab.data.synthetic.render import Canvas, _compose
from reid_lab.data.synthetic import worlds as worlds_mod

# docs/reference.md §7.1 / §7.2 / §2.8 file names
MARKET_RE = re.compile(r"^(\d{4}|-1)_c([1-6])s([1-6])_(\d{6})_(\d{2})\.jpg$")
MSMT_LINE_RE = re.compile(r"^(\d{4})/(\d{4})_(\d{3})_(\d{2})_(\d{4})(morning|noon|afternoon)_(\d{4})_(\d)\.jpg (\d+)$")
LUP_RE = re.compile(r"^\d{2}_\d{2}_\d{4}_\d{8}\.jpg$")


def small_cfg(**overrides):
    base = dict(market_train_ids=8, market_test_ids=8, market_cameras=3, msmt_train_ids=8, msmt_test_ids=8,
                msmt_cameras=4, images_per_id=6, pool_size=90, pool_off_domain=0.3)
    return resolve("data", "smoke", **{**base, **overrides})


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.jpg"))}


def market_records(folder: Path, split: str) -> list[tuple[int, int, str]]:
    out = []
    for p in sorted((folder / split).iterdir()):
        m = MARKET_RE.match(p.name)
        assert m, f"bad Market file name {p.name}"
        out.append((int(m.group(1)), int(m.group(2)), p.name))
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("synth")
    cfg = small_cfg()
    return {"root": root, "market": generate_market(root, cfg), "msmt": generate_msmt(root, cfg),
            "lup": generate_pool(root, cfg)}


# ---------------------------------------------------------------------------------------------------------------
# SynthMarket
# ---------------------------------------------------------------------------------------------------------------
def test_market_names_sizes_and_splits(world):
    folder = world["market"]
    assert folder.name == "market1501"
    train = market_records(folder, "bounding_box_train")
    query = market_records(folder, "query")
    gallery = market_records(folder, "bounding_box_test")
    train_ids = {p for p, _, _ in train}
    test_ids = {p for p, _, _ in query}
    assert len(train_ids) == 8 and len(test_ids) == 8
    assert train_ids.isdisjoint(test_ids)
    assert all(1 <= p <= 1501 for p in train_ids | test_ids)
    # distractors (0) and junk (-1) only in the gallery; the rest of the gallery are test ids
    assert {p for p, _, _ in gallery} == test_ids | {0, -1}
    assert 0 not in train_ids | test_ids and -1 not in train_ids | test_ids
    assert max(c for _, c, _ in train + query + gallery) <= 3
    with Image.open(folder / "query" / query[0][2]) as im:
        assert (im.format, im.mode, im.size) == ("JPEG", "RGB", (32, 64))


def test_market_queries_one_per_camera_and_all_valid(world):
    folder = world["market"]
    query = market_records(folder, "query")
    gallery = market_records(folder, "bounding_box_test")
    cams_of = defaultdict(set)
    for p, c, _ in query + gallery:
        cams_of[p].add(c)
    q_cams = defaultdict(list)
    for p, c, _ in query:
        q_cams[p].append(c)
    for pid, cams in q_cams.items():
        assert sorted(cams) == sorted(cams_of[pid]), f"pid {pid}: one query per camera it appears in"
        # Market protocol: a query needs a same-id gallery image from another camera
        for c in cams:
            assert any(p == pid and gc != c for p, gc, _ in gallery), f"query pid {pid} cam {c} has no match"


def test_market_world_json_counts(world):
    info = read_world_info(world["market"])
    assert info["world"] == "market1501" and info["seed"] == 0
    assert info["config"]["market_cameras"] == 3
    counts = info["counts"]
    assert counts["train_images"] == len(list((world["market"] / "bounding_box_train").iterdir()))
    assert counts["query_images"] == len(list((world["market"] / "query").iterdir()))
    gallery = market_records(world["market"], "bounding_box_test")
    assert counts["distractors"] == sum(p == 0 for p, _, _ in gallery) >= 2
    assert counts["junk"] == sum(p == -1 for p, _, _ in gallery) >= 2


# ---------------------------------------------------------------------------------------------------------------
# SynthMSMT
# ---------------------------------------------------------------------------------------------------------------
def read_list(path: Path) -> list[tuple[str, int]]:
    rows = []
    for line in path.read_text().splitlines():
        m = MSMT_LINE_RE.match(line)
        assert m, f"bad MSMT list line {line!r} in {path.name}"
        assert m.group(1) == m.group(2) and int(m.group(1)) == int(m.group(9)), line
        rows.append((line.split(" ")[0], int(m.group(9))))
    return rows


def test_msmt_lists_match_folders_and_pids_contiguous(world):
    folder = world["msmt"]
    lists = {k: read_list(folder / f"list_{k}.txt") for k in ("train", "val", "query", "gallery")}
    train_files = {str(p.relative_to(folder / "train")) for p in (folder / "train").rglob("*.jpg")}
    test_files = {str(p.relative_to(folder / "test")) for p in (folder / "test").rglob("*.jpg")}
    assert train_files == {r for r, _ in lists["train"] + lists["val"]}
    assert test_files == {r for r, _ in lists["query"] + lists["gallery"]}
    assert len(train_files) == len(lists["train"]) + len(lists["val"])  # no file listed twice
    assert {p for _, p in lists["train"] + lists["val"]} == set(range(8))
    assert {p for _, p in lists["query"] + lists["gallery"]} == set(range(8))
    for key in ("train", "val", "query", "gallery"):  # each list on its own is 0..K-1 as well
        pids = sorted({p for _, p in lists[key]})
        assert pids == list(range(len(pids))), key
    n_train = len(lists["train"]) + len(lists["val"])
    assert 1 <= len(lists["val"]) <= max(1, round(0.1 * n_train))
    cams = {int(r.split("_")[2]) for r, _ in lists["train"] + lists["query"]}
    assert cams <= set(range(1, 5))


def test_msmt_every_query_valid(world):
    folder = world["msmt"]
    query = read_list(folder / "list_query.txt")
    gallery = read_list(folder / "list_gallery.txt")
    g = {(p, int(r.split("_")[2])) for r, p in gallery}
    for rel, pid in query:
        cam = int(rel.split("_")[2])
        assert any(gp == pid and gc != cam for gp, gc in g), rel


def test_msmt_v2_layout(tmp_path, world):
    folder = generate_msmt(tmp_path, small_cfg(), version="v2")
    assert (folder / "mask_train_v2").is_dir() and (folder / "mask_test_v2").is_dir()
    assert not (folder / "train").exists() and not (folder / "test").exists()
    for key in ("train", "val", "query", "gallery"):  # same names and lines as V1
        assert (folder / f"list_{key}.txt").read_text() == (world["msmt"] / f"list_{key}.txt").read_text()
    assert read_world_info(folder)["version"] == "v2"
    with pytest.raises(ValueError, match="v3"):
        generate_msmt(tmp_path / "x", small_cfg(), version="v3")


# ---------------------------------------------------------------------------------------------------------------
# SynthLUP
# ---------------------------------------------------------------------------------------------------------------
def test_pool_membership(world):
    folder = world["lup"]
    with open(folder / "membership.csv", newline="") as fh:
        reader = csv.reader(fh)
        assert next(reader) == ["filename", "kind", "identity"]
        rows = [(f, k, int(i)) for f, k, i in reader]
    names = sorted(p.name for p in (folder / "images").iterdir())
    assert names == sorted(f for f, _, _ in rows) and len(names) == 90
    assert all(LUP_RE.match(n) for n in names)
    kinds = Counter(k for _, k, _ in rows)
    assert sum(kinds[k] for k in ("background", "vehicle", "clutter")) == round(90 * 0.3)
    assert kinds["vehicle"] == kinds["clutter"] == 9 and kinds["person"] == 63
    assert all((i == -1) == (k != "person") for _, k, i in rows)
    per_identity = Counter(i for _, k, i in rows if k == "person")
    assert min(per_identity.values()) >= 2
    info = read_world_info(folder)
    assert info["counts"]["identities"] == len(per_identity)
    # file names do not give membership away: in name order, kinds are interleaved, not in blocks
    order = [k == "person" for _, k, _ in sorted(rows)]
    switches = sum(a != b for a, b in zip(order, order[1:]))
    assert switches > 10


@pytest.mark.parametrize("size, frac", [(2, 0.0), (7, 0.25), (31, 0.25), (50, 0.5), (99, 0.1)])
def test_pool_plan_sizes_exact(size, frac):
    specs, rows, counts = worlds_mod.plan_pool(small_cfg(pool_size=size, pool_off_domain=frac))
    assert len(specs) == len(rows) == size == counts["images"]
    persons = Counter(i for _, k, i in rows if k == "person")
    assert sum(persons.values()) == size - round(size * frac) == counts["person"]
    assert min(persons.values()) >= 2  # several images per identity, also for the last one


# ---------------------------------------------------------------------------------------------------------------
# Determinism, idempotency, errors
# ---------------------------------------------------------------------------------------------------------------
def test_same_seed_same_bytes_any_worker_count(tmp_path, world, monkeypatch):
    monkeypatch.setattr(worlds_mod, "_MIN_PARALLEL", 0)  # exercise the process pool on a small world
    folder = generate_market(tmp_path / "two", small_cfg(), workers=2)
    ref = files_of(world["market"])
    assert files_of(folder) == ref
    other = generate_market(tmp_path / "seed1", small_cfg(synth_seed=1), workers=1)
    assert files_of(other) != ref


def test_idempotent_force_and_interrupted(tmp_path, caplog):
    cfg = small_cfg(market_train_ids=3, market_test_ids=3)
    folder = generate_market(tmp_path, cfg)
    sentinel = folder / "bounding_box_train" / "sentinel.txt"
    sentinel.write_text("x")
    with caplog.at_level("INFO", logger="reid_lab.data.synthetic.worlds"):
        assert generate_market(tmp_path, cfg) == folder
    assert sentinel.exists() and "skipping" in caplog.text  # matched world.json: nothing rewritten
    generate_market(tmp_path, cfg, force=True)
    assert not sentinel.exists() and (folder / WORLD_FILE).exists()
    sentinel.write_text("x")
    generate_market(tmp_path, small_cfg(market_train_ids=4, market_test_ids=3))  # config changed
    assert not sentinel.exists()
    assert read_world_info(folder)["config"]["market_train_ids"] == 4
    (folder / WORLD_FILE).unlink()  # as if interrupted before the end
    sentinel.write_text("x")
    generate_market(tmp_path, cfg)
    assert not sentinel.exists() and read_world_info(folder) is not None


def test_refuses_to_overwrite_foreign_folder(tmp_path):
    (tmp_path / "market1501").mkdir()
    (tmp_path / "market1501" / "mine.txt").write_text("real data")
    with pytest.raises(FileExistsError, match="refusing"):
        generate_market(tmp_path, small_cfg(), force=True)
    assert (tmp_path / "market1501" / "mine.txt").exists()


@pytest.mark.parametrize("overrides, match", [
    (dict(market_cameras=7), "market_cameras=7"),
    (dict(market_train_ids=1000, market_test_ids=600), "1600"),
    (dict(images_per_id=0), "images_per_id"),
])
def test_bad_market_configs(overrides, match):
    with pytest.raises(ValueError, match=match):
        plan_market(small_cfg(**overrides))


def test_generate_worlds_smoke_profile(tmp_path):
    roots = generate_worlds("smoke", tmp_path, progress=False)
    assert roots == {"market1501": tmp_path / "market1501", "msmt17": tmp_path / "MSMT17",
                     "luperson": tmp_path / "LUP"}
    cfg = resolve("data", "smoke")
    for key, folder in roots.items():
        info = json.loads((folder / WORLD_FILE).read_text())
        assert info["config"]["synth_height"] == cfg.synth_height
    assert read_world_info(roots["luperson"])["counts"]["images"] == cfg.pool_size


def test_real_loaders_read_the_worlds(world):
    data = pytest.importorskip("reid_lab.data")
    market = data.build_dataset("market1501", world["root"])
    assert len({s.pid for s in market.train}) == 8 and len(market.query) > 0
    msmt = data.build_dataset("msmt17", world["root"])
    assert len(msmt.train) == sum(1 for _ in (world["msmt"] / "train").rglob("*.jpg"))
    assert len(data.LUPersonPool(world["lup"])) == 90


def test_domains_look_different():
    """Market-like and MSMT-like identities differ in clothing statistics (the UDA notebook relies on it)."""
    def mean_upper(domain):
        rng = np.random.default_rng(0)
        ids = [sample_identity(DOMAINS[domain], rng) for _ in range(300)]
        return np.mean([i.upper_color for i in ids]), np.mean([i.long_sleeves for i in ids])
    market, msmt = mean_upper("market"), mean_upper("msmt")
    assert market[0] > msmt[0] + 0.1  # brighter clothes in summer
    assert msmt[1] > market[1] + 0.4  # long sleeves in winter


# ---------------------------------------------------------------------------------------------------------------
# Person masks
# ---------------------------------------------------------------------------------------------------------------
def test_canvas_mask_person_shapes_raise_it_occluders_cut_it():
    cv = Canvas(np.zeros((8, 8, 3), np.float32))
    cv.draw(cv.box(4, 4, 2, 2), (1.0, 0.0, 0.0))  # the person: pixels 2..5 x 2..5 (edges at 2 and 6)
    assert cv.mask.sum() == 16 and cv.mask[2:6, 2:6].min() == 1
    cv.draw(cv.box(4, 4, 8, 1), (0.0, 0.0, 1.0), person=False)  # a bar in front: rows 3..4 hidden
    np.testing.assert_array_equal(cv.mask[:, 3], [0, 0, 1, 0, 0, 1, 0, 0])
    assert cv.mask.sum() == 8


def test_person_masks_cover_the_drawn_person(world):
    cfg = small_cfg()
    specs = {s.rel_path: s for s in plan_market(cfg)[0]}
    query = sorted((world["market"] / "query").iterdir())
    masks = person_masks(query)
    assert masks.shape == (len(query), 64, 32) and masks.dtype == np.float32
    assert masks.min() >= 0 and masks.max() <= 1
    np.testing.assert_array_equal(masks, person_masks([str(p) for p in query]))  # deterministic, str or Path
    area = masks.mean(axis=(1, 2))
    assert np.all((area > 0.1) & (area < 0.8)), area  # a person fills a good part of the crop, never all of it
    for path, mask in zip(query[:6], masks):
        spec = specs[f"query/{path.name}"]
        with_person = _compose(spec, 64, 32, cfg.synth_seed)[0].img
        without = _compose(replace(spec, kind="background"), 64, 32, cfg.synth_seed)[0].img
        changed = np.abs(with_person - without).max(-1) > 1e-6
        assert changed[mask > 0.99].mean() > 0.95  # the person's pixels are the ones that changed
        assert (~changed[mask == 0]).mean() > 0.8  # the rest is the same scene (up to an occluder)


def test_person_masks_of_other_worlds_and_errors(world, tmp_path):
    msmt = sorted((world["msmt"] / "test").rglob("*.jpg"))[:3]
    assert person_masks(msmt).mean() > 0.1
    background = [s for s in worlds_mod.plan_pool(small_cfg())[0] if s.kind == "background"][0]
    assert not person_mask(background, 64, 32, 0).any()
    with pytest.raises(ValueError, match="not inside a synthetic world"):
        person_masks([tmp_path / "x.jpg"])
    with pytest.raises(ValueError, match="not an image of the world"):
        person_masks([world["market"] / "query" / "9999_c1s1_000000_01.jpg"])


# ---------------------------------------------------------------------------------------------------------------
# Baselines
# ---------------------------------------------------------------------------------------------------------------
def test_color_histogram_hand_computed():
    # 6 rows, one per stripe, each a uniform colour; RGB with 2 bins per channel -> one bin per stripe
    colors = [(200, 10, 130), (0, 0, 0), (255, 255, 255), (10, 200, 10), (130, 127, 128), (127, 128, 200)]
    img = np.array([[c, c] for c in colors], dtype=np.uint8)[None]  # (1, 6, 2, 3)
    f = color_histogram_features(img, bins=2, stripes=6, space="rgb")
    assert f.shape == (1, 6 * 8)
    expected = np.zeros((6, 8))
    for s, (r, g, b) in enumerate(colors):
        expected[s, (r // 128) * 4 + (g // 128) * 2 + (b // 128)] = 1 / np.sqrt(6)
    np.testing.assert_allclose(f[0].reshape(6, 8), expected, atol=1e-6)


def test_raw_pixel_features(tmp_path):
    a = np.zeros((1, 4, 2, 3), np.uint8)
    b = np.full((1, 4, 2, 3), 255, np.uint8)
    f = raw_pixel_features(np.concatenate([a, b]), size=(4, 2), center="dataset")
    assert f.shape == (2, 24)
    np.testing.assert_allclose(np.linalg.norm(f, axis=1), 1.0, atol=1e-6)
    assert f[0] @ f[1] == pytest.approx(-1.0)  # centred on the set mean: opposite directions
    # paths are read and resized to (height, width)
    paths = []
    for i, color in enumerate([(255, 0, 0), (0, 0, 255)]):
        paths.append(tmp_path / f"{i}.png")
        Image.new("RGB", (20, 40), color).save(paths[-1])
    g = raw_pixel_features(paths, size=(8, 4), center="none")
    assert g.shape == (2, 8 * 4 * 3)
    np.testing.assert_allclose(g[0].reshape(8, 4, 3)[..., 0], 1 / np.sqrt(32), atol=1e-6)
    assert load_images(paths, size=(8, 4)).shape == (2, 8, 4, 3)
    # per-image centring removes a uniform colour: a red image and a dimmer red image become identical
    half = np.full((1, 4, 2, 3), (120, 0, 0), np.uint8)
    mixed = np.concatenate([half, half.copy()])
    mixed[1, :2] = (200, 0, 0)  # top half brighter in the second image
    h = raw_pixel_features(mixed, size=(4, 2))
    np.testing.assert_allclose(h[0], 0.0)  # uniform image -> zero vector (not NaN)
    assert np.linalg.norm(h[1]) == pytest.approx(1.0) and h[1].reshape(4, 2, 3)[0, 0, 0] > 0
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        raw_pixel_features([tmp_path / "missing.jpg"])
    with pytest.raises(ValueError, match="center"):
        raw_pixel_features(np.concatenate([a, b]), center="median")


def test_raw_pixels_rank_identities_above_chance(world):
    """On the generated world, raw pixels retrieve the same identity more often than chance (well posed)."""
    folder = world["market"]
    q = market_records(folder, "query")
    g = [r for r in market_records(folder, "bounding_box_test") if r[0] > 0]
    paths = [folder / "query" / n for _, _, n in q] + [folder / "bounding_box_test" / n for _, _, n in g]
    f = raw_pixel_features(paths)
    sim = f[: len(q)] @ f[len(q):].T
    hits, chance = [], []
    for i, (pid, cam, _) in enumerate(q):
        keep = [j for j, (gp, gc, _) in enumerate(g) if not (gp == pid and gc == cam)]
        best = keep[int(np.argmax(sim[i, keep]))]
        hits.append(g[best][0] == pid)
        chance.append(np.mean([g[j][0] == pid for j in keep]))  # top-1 hit rate of a random ranking
    assert np.mean(hits) > 2 * np.mean(chance)
