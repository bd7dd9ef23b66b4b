"""Benchmark: vectorised Market-protocol evaluation vs a per-query loop port of the official ``eval_func``.

Run: ``.venv/bin/python benchmarks/bench_evaluation.py`` (Market-1501 test size: 3,368 queries × 15,913
gallery images, 750 ids + 2,793 distractors, 6 cameras), ``--quick`` for a tiny size.

Rows:
* realistic features (identity centre + camera shift + noise, L2-normalised; mAP printed in the row name);
* random distances (worst case: every ranking must be sorted almost to its end);
* ``euclidean_distance`` vs the textbook numpy float32 formula ‖q‖² + ‖g‖² − 2 q·gᵀ.

The loop port mirrors the official code (docs/reference.md §4.6): argsort the whole matrix, then per query remove the
same-pid-same-camera entries, cumsum, AP, INP — with per-query numpy instead of the official Python list
comprehension for AP (``--literal`` also times that literal version), and a stable argsort so that ties
resolve as in ``evaluate_rank``.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from reid_lab.retrieval.evaluation import euclidean_distance, evaluate_rank  # noqa: E402


def loop_eval(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50, literal=False):
    """Per-query port of the official TransReID(-SSL)/AGW ``eval_func`` (stable sort)."""
    num_q, num_g = distmat.shape
    max_rank = min(max_rank, num_g)
    indices = np.argsort(distmat, axis=1, kind="stable")
    matches = (g_pids[indices] == q_pids[:, np.newaxis]).astype(np.int32)
    all_cmc, all_ap, all_inp = [], [], []
    for q_idx in range(num_q):
        order = indices[q_idx]
        remove = (g_pids[order] == q_pids[q_idx]) & (g_camids[order] == q_camids[q_idx])
        orig_cmc = matches[q_idx][~remove]
        if not np.any(orig_cmc):
            continue
        cmc = orig_cmc.cumsum()
        pos_idx = np.where(orig_cmc == 1)[0]
        max_pos_idx = np.max(pos_idx)
        all_inp.append(cmc[max_pos_idx] / (max_pos_idx + 1.0))
        cmc[cmc > 1] = 1
        all_cmc.append(cmc[:max_rank])
        num_rel = orig_cmc.sum()
        tmp_cmc = orig_cmc.cumsum()
        if literal:
            tmp_cmc = np.asarray([x / (i + 1.0) for i, x in enumerate(tmp_cmc)]) * orig_cmc
        else:
            tmp_cmc = tmp_cmc / np.arange(1.0, len(tmp_cmc) + 1.0) * orig_cmc
        all_ap.append(tmp_cmc.sum() / num_rel)
    assert all_cmc, "Error: all query identities do not appear in gallery"
    cmc = np.asarray(all_cmc, dtype=np.float64).sum(0) / len(all_cmc)
    return cmc, float(np.mean(all_ap)), float(np.mean(all_inp))


def market_like(rng: np.random.Generator, num_q: int, num_g: int, num_ids: int, num_distractors: int,
                num_cams: int = 6, dim: int = 384, noise: float = 1.6):
    """Query/gallery features, pids and camids shaped like the Market-1501 test split."""
    g_pids = np.concatenate([np.zeros(num_distractors, dtype=np.int64),
                             rng.integers(1, num_ids + 1, size=num_g - num_distractors)])
    q_pids = rng.integers(1, num_ids + 1, size=num_q)
    g_cams, q_cams = rng.integers(0, num_cams, size=num_g), rng.integers(0, num_cams, size=num_q)
    centres = rng.standard_normal((num_ids + 1, dim))
    cam_shift = 0.5 * rng.standard_normal((num_cams, dim))

    def feats(pids, cams):
        f = centres[pids] + cam_shift[cams] + noise * rng.standard_normal((len(pids), dim))
        f[pids == 0] = rng.standard_normal((int((pids == 0).sum()), dim)) * 1.5  # distractors: anything
        return torch.from_numpy(f.astype(np.float32))

    qf, gf = feats(q_pids, q_cams), feats(g_pids, g_cams)
    return (torch.nn.functional.normalize(qf, dim=1), torch.nn.functional.normalize(gf, dim=1),
            q_pids, g_pids, q_cams, g_cams)


def timed(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="tiny size (300 × 1,500)")
    ap.add_argument("--noise", type=float, nargs="+", default=[1.6, 2.2],
                    help="feature noise levels (1.6: mAP ≈ 90%%, like a good Market model; 2.2: mAP ≈ 38%%, a weak one)")
    ap.add_argument("--repeat", type=int, default=2, help="best of N timings")
    ap.add_argument("--literal", action="store_true",
                    help="also time the loop port with the official list comprehension for AP (slow)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    num_q, num_g, num_ids, num_distr = (300, 1500, 80, 250) if args.quick else (3368, 15913, 750, 2793)
    rng = np.random.default_rng(args.seed)
    torch.manual_seed(args.seed)

    rows = []

    def compare(name, distmat, q_pids, g_pids, q_cams, g_cams, literal=False):
        t_ours, res = timed(lambda: evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams), args.repeat)
        t_ref, (cmc, m_ap, m_inp) = timed(
            lambda: loop_eval(distmat, q_pids, g_pids, q_cams, g_cams, literal=literal),
            1 if literal else args.repeat)
        err = max(np.abs(res.cmc - cmc).max(), abs(res.mAP - m_ap), abs(res.mINP - m_inp))
        rows.append((f"{name} (mAP {100 * res.mAP:.1f}%)", t_ours, t_ref, err < 1e-12, f"max abs diff {err:.1e}"))

    for i, noise in enumerate(args.noise):
        qf, gf, *labels = market_like(rng, num_q, num_g, num_ids, num_distr, noise=noise)
        if i == 0:
            t_dist, distmat = timed(lambda: euclidean_distance(qf, gf), args.repeat)
            q32, g32 = qf.numpy(), gf.numpy()
            t_np, ref_dist = timed(lambda: ((q32 ** 2).sum(1)[:, None] + (g32 ** 2).sum(1)[None, :]
                                            - 2 * q32 @ g32.T), args.repeat)
            dist_err = float(np.abs(distmat - ref_dist).max())
            del ref_dist
        else:
            distmat = euclidean_distance(qf, gf)
        compare(f"evaluate_rank, features noise {noise}", distmat, *labels)
        if args.literal and i == 0:
            compare(f"evaluate_rank vs literal official loop, noise {noise}", distmat, *labels, literal=True)
        del distmat
    random_dist = rng.random((num_q, num_g), dtype=np.float32)
    compare("evaluate_rank, random distances (worst case)", random_dist, *labels)
    rows.append((f"euclidean_distance {num_q}×{num_g}×{qf.shape[1]} (ref: numpy formula)", t_dist, t_np,
                 dist_err < 1e-5, f"max abs diff {dist_err:.1e}"))

    print(f"\n{num_q} queries × {num_g} gallery, {num_ids} ids + {num_distr} distractors, 6 cameras, "
          f"{torch.get_num_threads()} threads\n")
    print("| what | ours s | reference s | ratio | agree |")
    print("|---|---:|---:|---:|---|")
    for name, t_ours, t_ref, ok, note in rows:
        print(f"| {name} | {t_ours:.3f} | {t_ref:.3f} | {t_ref / t_ours:.2f}× | {'yes' if ok else 'NO'} ({note}) |")


if __name__ == "__main__":
    main()
