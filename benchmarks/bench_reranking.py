"""Benchmark: k-reciprocal re-ranking (reid_lab.retrieval.reranking) vs a loop port of TransReID's utils/reranking.py.

The reference below follows the official algorithm line by line (dense N x N matrices, float16 V and Jaccard,
full ``np.argsort``, Python loops over points and inverted-index entries; docs/reference.md §4.6). Ours never builds an N x N
array: it streams the distances in row blocks (row max + top-(k1+1)) and keeps the (nq, ng) query block.
Each side runs in its own subprocess so peak RSS is measured separately (``resource.getrusage``, minus the RSS
before the call).

    .venv/bin/python benchmarks/bench_reranking.py            # 800 queries x 3,200 gallery, 384-d
    .venv/bin/python benchmarks/bench_reranking.py --quick    # 100 x 400
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_features(nq: int, ng: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Person-like L2-normalised features: identities with ~8 images each, a camera offset, noise."""
    rng = np.random.default_rng(seed)
    n = nq + ng
    n_ids = max(2, n // 8)
    ids = rng.integers(0, n_ids, n)
    cams = rng.integers(0, 6, n)
    x = rng.normal(size=(n_ids, dim))[ids] + 0.5 * rng.normal(size=(6, dim))[cams] + 1.5 * rng.normal(size=(n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    x = x.astype(np.float32)
    return x[:nq], x[nq:]


def reference_re_ranking(
    qf: np.ndarray, gf: np.ndarray, k1: int = 20, k2: int = 6, lambda_value: float = 0.3, dtype: type = np.float16
) -> np.ndarray:
    """Straightforward loop port of the official re_ranking (float16 V and Jaccard as the official; ``dtype``
    float32 gives the same algorithm without the float16 rounding)."""
    import torch

    query_num = qf.shape[0]
    all_num = query_num + gf.shape[0]
    feat = torch.cat([torch.from_numpy(qf), torch.from_numpy(gf)])
    distmat = torch.pow(feat, 2).sum(dim=1, keepdim=True).expand(all_num, all_num) + torch.pow(feat, 2).sum(
        dim=1, keepdim=True
    ).expand(all_num, all_num).t()
    distmat.addmm_(feat, feat.t(), beta=1, alpha=-2)
    original_dist = distmat.numpy()
    gallery_num = original_dist.shape[0]
    original_dist = np.transpose(original_dist / np.max(original_dist, axis=0))
    V = np.zeros_like(original_dist).astype(dtype)
    initial_rank = np.argsort(original_dist).astype(np.int32)
    for i in range(all_num):
        forward_k_neigh_index = initial_rank[i, : k1 + 1]
        backward_k_neigh_index = initial_rank[forward_k_neigh_index, : k1 + 1]
        fi = np.where(backward_k_neigh_index == i)[0]
        k_reciprocal_index = forward_k_neigh_index[fi]
        k_reciprocal_expansion_index = k_reciprocal_index
        for j in range(len(k_reciprocal_index)):
            candidate = k_reciprocal_index[j]
            half = int(np.around(k1 / 2)) + 1
            candidate_forward = initial_rank[candidate, :half]
            candidate_backward = initial_rank[candidate_forward, :half]
            fi_candidate = np.where(candidate_backward == candidate)[0]
            candidate_k_reciprocal_index = candidate_forward[fi_candidate]
            if len(np.intersect1d(candidate_k_reciprocal_index, k_reciprocal_index)) > 2 / 3 * len(
                candidate_k_reciprocal_index
            ):
                k_reciprocal_expansion_index = np.append(k_reciprocal_expansion_index, candidate_k_reciprocal_index)
        k_reciprocal_expansion_index = np.unique(k_reciprocal_expansion_index)
        weight = np.exp(-original_dist[i, k_reciprocal_expansion_index])
        V[i, k_reciprocal_expansion_index] = weight / np.sum(weight)
    original_dist = original_dist[:query_num,]
    if k2 != 1:
        V_qe = np.zeros_like(V, dtype=dtype)
        for i in range(all_num):
            V_qe[i, :] = np.mean(V[initial_rank[i, :k2], :], axis=0)
        V = V_qe
        del V_qe
    del initial_rank
    invIndex = []
    for i in range(gallery_num):
        invIndex.append(np.where(V[:, i] != 0)[0])
    jaccard_dist = np.zeros_like(original_dist, dtype=dtype)
    for i in range(query_num):
        temp_min = np.zeros(shape=[1, gallery_num], dtype=dtype)
        indNonZero = np.where(V[i, :] != 0)[0]
        indImages = [invIndex[ind] for ind in indNonZero]
        for j in range(len(indNonZero)):
            temp_min[0, indImages[j]] = temp_min[0, indImages[j]] + np.minimum(
                V[i, indNonZero[j]], V[indImages[j], indNonZero[j]]
            )
        jaccard_dist[i] = 1 - temp_min / (2 - temp_min)
    final_dist = jaccard_dist * (1 - lambda_value) + original_dist * lambda_value
    return final_dist[:query_num, query_num:]


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def worker(args: argparse.Namespace) -> None:
    qf, gf = make_features(args.nq, args.ng, args.dim, args.seed)
    if args.worker == "ours":
        from reid_lab.retrieval.reranking import re_ranking as fn
    elif args.worker == "ref32":
        fn = functools.partial(reference_re_ranking, dtype=np.float32)
    else:
        fn = reference_re_ranking
    fn(qf[:20], gf[:80], k1=20, k2=6, lambda_value=0.3)  # warm-up (imports, torch init)
    before = _rss_mb()
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        out = fn(qf, gf, k1=20, k2=6, lambda_value=0.3)
        times.append(time.perf_counter() - t)
    seconds = min(times)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    dist_seconds = None
    if args.worker == "ours":  # our streamed pass over the N x N distances (addmm + row max + top-k1+1)
        from reid_lab.retrieval.reranking import scan_normalized_distance

        t = time.perf_counter()
        scan_normalized_distance(qf, gf, 21)
        dist_seconds = time.perf_counter() - t
    np.save(args.out, np.asarray(out, dtype=np.float32))
    print(json.dumps({"seconds": seconds, "peak_mb": peak, "delta_mb": max(0.0, peak - before),
                      "dist_seconds": dist_seconds}))


def run_side(side: str, args: argparse.Namespace, out: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", side, "--out", out, "--nq", str(args.nq), "--ng", str(args.ng)]
    cmd += ["--dim", str(args.dim), "--seed", str(args.seed), "--repeat", "1"]
    res = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(res.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nq", type=int, default=800)
    p.add_argument("--ng", type=int, default=3200)
    p.add_argument("--dim", type=int, default=384)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", type=int, default=3,
                   help="interleaved rounds (one subprocess per side per round); the best time is reported")
    p.add_argument("--quick", action="store_true", help="100 x 400 instead of the issue size")
    p.add_argument("--worker", choices=["ours", "ref", "ref32"], help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args)
        return
    if args.quick:
        args.nq, args.ng = 100, 400
    with tempfile.TemporaryDirectory() as tmp:
        # sides interleaved, one timed run per subprocess, best of --repeat rounds (the machine is shared)
        runs: dict[str, list[dict]] = {"ours": [], "ref": [], "ref32": []}
        for _ in range(args.repeat):
            for side in runs:
                runs[side].append(run_side(side, args, f"{tmp}/{side}.npy"))
        ours, ref, ref32 = (min(runs[side], key=lambda r: r["seconds"]) for side in ("ours", "ref", "ref32"))
        a, b, c = np.load(f"{tmp}/ours.npy"), np.load(f"{tmp}/ref.npy"), np.load(f"{tmp}/ref32.npy")
    load = os.getloadavg()[0]
    print(f"\nre_ranking {args.nq} x {args.ng}, {args.dim}-d, k1=20 k2=6 lambda=0.3 "
          f"(load average {load:.1f}, {os.cpu_count()} CPUs)\n")
    print("| what | ours s | reference s | ratio | agree | ours peak MB (Δ) | reference peak MB (Δ) |")
    print("|---|---|---|---|---|---|---|")
    floor = min(r["dist_seconds"] for r in runs["ours"])
    for name, r, other in [("official port, float16 V", ref, b), ("same port, float32 V", ref32, c)]:
        diff = float(np.abs(a - other).max())
        same_top1 = float((a.argmin(1) == other.argmin(1)).mean())
        print(
            f"| re_ranking {args.nq}x{args.ng} vs {name} | {ours['seconds']:.2f} | {r['seconds']:.2f} | "
            f"{r['seconds'] / ours['seconds']:.1f}x | max abs diff {diff:.1e}, same top-1 {same_top1:.1%} | "
            f"{ours['peak_mb']:.0f} ({ours['delta_mb']:+.0f}) | {r['peak_mb']:.0f} ({r['delta_mb']:+.0f}) |"
        )
    n = args.nq + args.ng
    print(
        f"\nThe reference builds the dense N x N normalised distance matrix (N = {n}) and argsorts it; ours streams "
        f"the same float32 addmm in row blocks, keeping only each row's max and top-21 plus the {args.nq} x "
        f"{args.ng} query block. That pass (all N^2 distances, the speed floor) is {floor:.2f} s of ours; the rest "
        f"(sparse sets, V, Jaccard) {ours['seconds'] - floor:.2f} s. Memory: ours O(nq ng + N k1), the reference "
        f"~5 dense N x N arrays."
    )


if __name__ == "__main__":
    main()
