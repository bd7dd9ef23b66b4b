"""Benchmark: dataset building, build-time image checks, samplers and the LUPerson kept-head check.

Run: ``.venv/bin/python benchmarks/bench_data.py`` (Market-1501 sizes: 12,936 + 3,368 + 15,913 JPEGs of 128×64;
MSMT17 train size 32,621 / 1,041 ids for the sampler; a 200,000-file pool with a 60 % CFS head), ``--quick`` for
a tiny size. Files are written to a temporary folder (or ``--workdir``) and removed afterwards.

Rows (reference = a straightforward loop port of the official code, written here):
* Market build, ``verify="none"``: ours (sorted scandir + anchored regex + relabel) vs the official
  ``glob`` + regex-on-full-path + set relabel; agree = identical (pid, camid) records.
* build-time image check: ``verify="header"`` vs decoding every image (``Image.open().convert("RGB")``);
  agree = both flag exactly the one corrupt file planted among the images.
* ``RandomIdentitySampler`` one epoch (64 = 16 × 4) vs the official list-based loop (``random.sample``,
  ``pop(0)``); agree = both lists are whole P×K batches and the same length range.
* ``RandomMultipleGallerySampler`` one epoch (K = 8, ~1/20 ids as pseudo labels) vs the official loop;
  agree = same length (both exact here) and the other-camera rule holds in both.
* LUPerson with a 60 % ranked head vs the official ``ImageFolder``-style scan of the whole folder + head;
  agree = same kept paths.
"""
from __future__ import annotations

import argparse
import copy
import os
import random
import re
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from glob import glob
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from reid_lab.data import (  # noqa: E402
    DatasetError, LUPersonPool, Market1501, RandomIdentitySampler, RandomMultipleGallerySampler, Sample,
    verify_images, write_ranked_list,
)


# ----------------------------------------------------------------------------------------------------------------------
# Loop ports of the official code (docs/reference.md §4.3, §5.4, §7.1, §1.3)
# ----------------------------------------------------------------------------------------------------------------------
def official_market_split(folder: str, relabel: bool) -> list[tuple[str, int, int]]:
    paths = sorted(glob(os.path.join(folder, "*.jpg")))
    pattern = re.compile(r"([-\d]+)_c(\d)")
    pid_container = set()
    for p in paths:
        pid, _ = map(int, pattern.search(p).groups())
        if pid != -1:
            pid_container.add(pid)
    pid2label = {pid: label for label, pid in enumerate(pid_container)}
    out = []
    for p in paths:
        pid, cam = map(int, pattern.search(p).groups())
        if pid == -1:
            continue
        out.append((p, pid2label[pid] if relabel else pid, cam - 1))
    return out


def official_identity_epoch(records, batch_size: int, k: int) -> list[int]:
    p = batch_size // k
    index_dic = defaultdict(list)
    for i, r in enumerate(records):
        index_dic[r[1]].append(i)
    pids = list(index_dic)
    batch_idxs_dict = defaultdict(list)
    for pid in pids:
        idxs = copy.deepcopy(index_dic[pid])
        if len(idxs) < k:
            idxs = list(np.random.choice(idxs, size=k, replace=True))
        random.shuffle(idxs)
        chunk = []
        for idx in idxs:
            chunk.append(idx)
            if len(chunk) == k:
                batch_idxs_dict[pid].append(chunk)
                chunk = []
    avai = copy.deepcopy(pids)
    final = []
    while len(avai) >= p:
        for pid in random.sample(avai, p):
            final.extend(batch_idxs_dict[pid].pop(0))
            if not batch_idxs_dict[pid]:
                avai.remove(pid)
    return final


def official_gallery_epoch(records, k: int) -> list[int]:
    pid_cam, pid_index = defaultdict(list), defaultdict(list)
    for i, (_, pid, cam) in enumerate(records):
        if pid >= 0:
            pid_cam[pid].append(cam)
            pid_index[pid].append(i)
    pids = list(pid_index)
    ret = []
    for kid in np.random.permutation(len(pids)).tolist():
        index = pid_index[pids[kid]]
        cams = pid_cam[pids[kid]]
        a = random.randrange(len(index))
        ret.append(index[a])
        select = [j for j, c in enumerate(cams) if c != cams[a]]
        if not select:
            select = [j for j in range(len(index)) if j != a]
            if not select:
                continue
        for j in np.random.choice(select, size=k - 1, replace=len(select) < k):
            ret.append(index[j])
    return ret


def official_imagefolder_head(root: Path, ranked: list[str], keep: int) -> list[str]:
    scanned = []  # ImageFolder scans everything first (docs/reference.md §9.23)
    for dirpath, _, files in os.walk(root):
        scanned += [os.path.join(dirpath, f) for f in files if f.lower().endswith((".jpg", ".jpeg", ".png"))]
    return [os.path.join(root, "images", n) for n in ranked[:keep]]


# ----------------------------------------------------------------------------------------------------------------------
def timed(fn, repeat: int = 1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def pk_ok(indices, pid_of, batch_size: int, k: int) -> bool:
    if len(indices) % batch_size:
        return False
    for b in range(0, len(indices), batch_size):
        chunks = [indices[c : c + k] for c in range(b, b + batch_size, k)]
        pids = [{pid_of[i] for i in ch} for ch in chunks]
        if any(len(s) != 1 for s in pids) or len({next(iter(s)) for s in pids}) != len(pids):
            return False
    return True


def write_market(base: Path, sizes: dict[str, tuple[int, int]], rng: np.random.Generator) -> None:
    tiles = [Image.fromarray(rng.integers(0, 256, (128, 64, 3), dtype=np.uint8)) for _ in range(16)]
    for split, (n_img, n_ids) in sizes.items():
        folder = base / split
        folder.mkdir(parents=True)
        for i in range(n_img):
            pid = 1 + i % n_ids
            tiles[i % 16].save(folder / f"{pid:04d}_c{1 + i % 6}s1_{i:06d}_00.jpg", quality=90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny sizes (seconds)")
    ap.add_argument("--workdir", type=Path, default=None, help="where to write the temporary files")
    args = ap.parse_args()
    scale = 0.02 if args.quick else 1.0
    rng = np.random.default_rng(0)
    random.seed(0), np.random.seed(0)
    sizes = {"bounding_box_train": (int(12_936 * scale), max(16, int(751 * scale))),
             "query": (int(3_368 * scale), max(16, int(750 * scale))),
             "bounding_box_test": (int(15_913 * scale), max(16, int(751 * scale)))}
    n_files = sum(n for n, _ in sizes.values())
    tmp = Path(tempfile.mkdtemp(dir=args.workdir, prefix="bench_data_"))
    rows = []
    try:
        t = time.perf_counter()
        write_market(tmp / "market1501", sizes, rng)
        print(f"wrote {n_files} JPEGs (128×64) in {time.perf_counter() - t:.1f} s under {tmp}")
        base = tmp / "market1501"

        # ---- Market build -----------------------------------------------------------------------------------
        t_ours, ds = timed(lambda: Market1501(base, verify="none"), 3)
        t_ref, ref = timed(lambda: {s: official_market_split(str(base / d), s == "train")
                                    for s, d in (("train", "bounding_box_train"), ("query", "query"),
                                                 ("gallery", "bounding_box_test"))}, 3)
        same = all([tuple(x) for x in getattr(ds, s)] == ref[s] for s in ref)
        rows.append((f"Market build, verify='none' ({n_files} files)", t_ours, t_ref, same, "same records"))

        # ---- build-time image check ---------------------------------------------------------------------------
        bad = base / "bounding_box_test" / "0001_c1s1_999999_00.jpg"
        bad.write_bytes(b"\x00not a jpeg" * 50)
        paths = [str(p) for p in sorted(base.rglob("*.jpg"))]

        def ours_check():
            try:
                verify_images(paths, "header")
            except DatasetError as err:
                return {ln.split(": ")[0].strip() for ln in str(err).splitlines()[1:-1]}
            return set()

        def ref_check():
            flagged = set()
            for p in paths:
                try:
                    with Image.open(p) as im:
                        im.convert("RGB")
                except OSError:
                    flagged.add(p)
            return flagged

        t_ours, f_ours = timed(ours_check)
        t_ref, f_ref = timed(ref_check)
        rows.append((f"image check: header vs full decode ({len(paths)} files)", t_ours, t_ref,
                     f_ours == f_ref == {str(bad)}, "same 1 bad file flagged"))
        bad.unlink()

        # ---- samplers -------------------------------------------------------------------------------------------
        for label, n_img, n_ids in (("Market", 12_936, 751), ("MSMT17", 32_621, 1_041)):
            n_img, n_ids = max(64, int(n_img * scale)), max(32, int(n_ids * scale))
            pids = np.sort(rng.integers(0, n_ids, n_img))
            records = [Sample(f"{i}.jpg", int(p), int(i % 6)) for i, p in enumerate(pids)]
            pid_of = [r.pid for r in records]
            sampler = RandomIdentitySampler(records, 64, 4, seed=0)

            def ours_epoch(s=sampler):
                s._cache = None
                return s.epoch_indices(0)

            t_ours, ours = timed(ours_epoch, 3)
            t_ref, ref = timed(lambda r=records: official_identity_epoch(r, 64, 4), 3)
            ok = pk_ok(ours.tolist(), pid_of, 64, 4) and pk_ok(ref, pid_of, 64, 4)
            rows.append((f"RandomIdentitySampler epoch, {label} size ({n_img} imgs / {n_ids} ids)", t_ours, t_ref,
                         ok, f"P×K both; len {len(ours)} vs {len(ref)}, official estimate "
                             f"{sampler.official_length()}"))

        n_img = max(64, int(12_936 * scale))
        pseudo = rng.integers(-1, n_img // 20, n_img)  # -1 = outliers
        records = [Sample(f"{i}.jpg", int(p), int(rng.integers(0, 6))) for i, p in enumerate(pseudo)]
        gs = RandomMultipleGallerySampler(records, 8, seed=0)

        def ours_gallery():
            gs._cache = None
            return gs.epoch_indices(0)

        def other_cam_ok(indices):
            i = 0
            while i < len(indices):
                a = records[indices[i]]
                run = [records[j] for j in indices[i + 1 : i + 8]]
                run = [r for r in run if r.pid == a.pid]
                cams = {r.camid for r in records if r.pid == a.pid}
                if len(cams) > 1 and any(r.camid == a.camid for r in run):
                    return False
                i += 1 + len(run)
            return True

        t_ours, ours = timed(ours_gallery, 3)
        t_ref, ref = timed(lambda: official_gallery_epoch(records, 8), 3)
        rows.append((f"RandomMultipleGallerySampler epoch ({n_img} imgs / {len(gs.pids)} pseudo ids)", t_ours, t_ref,
                     len(ours) == len(ref) and other_cam_ok(ours.tolist()) and other_cam_ok(ref),
                     f"len {len(ours)} both"))

        # ---- LUPerson kept head -------------------------------------------------------------------------------
        n_pool = max(1000, int(200_000 * scale))
        images = tmp / "LUP" / "images"
        images.mkdir(parents=True)
        names = [f"34_01_{i // 1000:04d}_{i:08d}.jpg" for i in range(n_pool)]
        for n in names:
            (images / n).touch()
        ranked = [names[i] for i in rng.permutation(n_pool)]
        list_path = write_ranked_list(ranked, tmp / "LUP" / "cfs.txt")
        keep = round(n_pool * 0.6)
        t_ours, pool = timed(lambda: LUPersonPool(tmp / "LUP", ranked_list=list_path, keep_ratio=0.6))
        t_ref, ref = timed(lambda: official_imagefolder_head(tmp / "LUP", ranked, keep))
        rows.append((f"LUPerson 60% head of a ranked list ({n_pool} files)", t_ours, t_ref,
                     [str(p) for p in pool.samples] == ref, "same kept paths"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print("\n| what | ours s | reference s | ratio | agree |")
    print("|---|---:|---:|---:|---|")
    for name, t_ours, t_ref, ok, note in rows:
        print(f"| {name} | {t_ours:.3f} | {t_ref:.3f} | {t_ref / t_ours:.2f}× | {'yes' if ok else 'NO'} ({note}) |")


if __name__ == "__main__":
    main()
