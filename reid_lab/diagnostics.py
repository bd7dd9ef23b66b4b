"""Where retrieval errors come from: is the camera a shortcut? (FINDINGS.md: 54–65 % same-camera top-1.)"""
from __future__ import annotations

import numpy as np


def camera_shortcut_report(distmat, q_pids, g_pids, q_camids, g_camids) -> dict[str, float]:
    """Top-1 neighbours under the Market protocol (same id AND same camera removed), split by camera.

    Returns fractions over queries:

    * ``same_camera_top1`` — the top-1 gallery image comes from the query's own camera;
    * ``same_camera_chance`` — what that fraction would be if the camera were irrelevant (the share of
      the query's kept gallery that comes from its own camera, averaged over queries);
    * ``top1_error`` — the top-1 is a wrong identity;
    * ``errors_same_camera`` — among wrong top-1s, the share from the query's own camera.
    """
    distmat = np.asarray(distmat, dtype=np.float64)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    keep = ~((q_pids[:, None] == g_pids[None, :]) & (q_camids[:, None] == g_camids[None, :]))
    masked = np.where(keep, distmat, np.inf)
    top1 = masked.argmin(axis=1)
    same_cam = g_camids[top1] == q_camids
    wrong = g_pids[top1] != q_pids
    own_share = ((g_camids[None, :] == q_camids[:, None]) & keep).sum(1) / np.maximum(keep.sum(1), 1)
    return {
        "same_camera_top1": float(same_cam.mean()),
        "same_camera_chance": float(own_share.mean()),
        "top1_error": float(wrong.mean()),
        "errors_same_camera": float(same_cam[wrong].mean()) if wrong.any() else 0.0,
    }
