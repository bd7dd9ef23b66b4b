"""Where retrieval errors come from: is the camera a shortcut (docs/reference.md §11.2: 54–65 % same-camera top-1)? Does the
background alone carry identity (:func:`keep_region`)? Do a backbone's frozen features key on the person or on the
background (:func:`knn_by_region`, issue 17)?"""
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


def keep_region(images: np.ndarray, masks: np.ndarray, keep: str = "person", *, grow: int = 0,
                fill: float = 128.0) -> np.ndarray:
    """Images with only the person (``keep="person"``) or only the background (``"background"``) left.

    ``images`` (N, H, W, 3) uint8 and person ``masks`` (N, H, W) in [0, 1] of the same size
    (:func:`reid_lab.data.synthetic.person_masks`); the removed part is blended into the constant grey ``fill``
    (a constant: a per-image colour would leak the removed part). ``grow`` > 0 widens the person's mask by that
    many pixels first (a max filter), so that its blurred edge does not leak into a background-only image.
    Used to ask whether the background alone carries identity (notebook 06).
    """
    import torch
    import torch.nn.functional as F

    if keep not in ("person", "background"):
        raise ValueError(f"keep must be 'person' or 'background', got {keep!r}")
    images, masks = np.asarray(images), np.asarray(masks, dtype=np.float32)
    if images.ndim != 4 or masks.shape != images.shape[:3]:
        raise ValueError(f"images (N, H, W, 3) and masks (N, H, W) must match, got {images.shape} and {masks.shape}")
    if grow > 0:
        m = torch.from_numpy(masks)[:, None]
        masks = F.max_pool2d(m, 2 * grow + 1, stride=1, padding=grow)[:, 0].numpy()
    alpha = (masks if keep == "person" else 1.0 - masks)[..., None]
    out = alpha * images.astype(np.float32) + (1.0 - alpha) * np.float32(fill)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def region_views(samples, image_size, mean, std) -> dict[str, "torch.Tensor"]:
    """The images of ``samples`` (a synthetic world's split) as normalised tensors at ``image_size``, three ways:
    ``"image"`` as they are, ``"person only"`` (background blended into grey with the renderer's own person masks)
    and ``"background only"`` (person removed, mask grown by 2 px). Raises ``ValueError`` outside a synthetic
    world (no masks)."""
    import torch
    from PIL import Image

    from ..data import build_reid_transforms, read_image
    from ..data.synthetic import person_masks

    images = np.stack([np.asarray(read_image(s.path)) for s in samples])
    masks = person_masks([s.path for s in samples])
    transform = build_reid_transforms(*image_size, train=False, mean=mean, std=std)
    views = {"image": images, "person only": keep_region(images, masks, "person"),
             "background only": keep_region(images, masks, "background", grow=2)}
    return {name: torch.stack([transform(Image.fromarray(a)) for a in arrays]) for name, arrays in views.items()}


def knn_by_region(backbone, dataset, query_views, gallery_views, device="cpu", batch_size: int = 256) -> dict[str, float]:
    """Frozen-feature retrieval of ``backbone`` (eval mode, L2-normalised CLS, Market protocol) on each view of
    :func:`region_views`: ``{"image": mAP, "person only": mAP, "background only": mAP, "same_camera_top1",
    "same_camera_chance"}`` as fractions. Features that key on the person score about as well on "person only" as
    on "image"; features that key on the scene lose most of their mAP once the background is gone."""
    import torch
    import torch.nn.functional as F

    from .evaluation import euclidean_distance, evaluate_rank

    def embed(images):
        with torch.no_grad():
            return F.normalize(torch.cat([backbone(images[i:i + batch_size].to(device)).float().cpu()
                                          for i in range(0, len(images), batch_size)]), dim=1)

    was_training = backbone.training
    backbone.eval()
    q_pids, g_pids = [s.pid for s in dataset.query], [s.pid for s in dataset.gallery]
    q_cams, g_cams = [s.camid for s in dataset.query], [s.camid for s in dataset.gallery]
    out: dict[str, float] = {}
    try:
        for name in query_views:
            dist = euclidean_distance(embed(query_views[name]), embed(gallery_views[name]))
            out[name] = float(evaluate_rank(dist, q_pids, g_pids, q_cams, g_cams).mAP)
            if name == "image":
                report = camera_shortcut_report(np.asarray(dist), q_pids, g_pids, q_cams, g_cams)
                out.update(same_camera_top1=report["same_camera_top1"], same_camera_chance=report["same_camera_chance"])
    finally:
        backbone.train(was_training)
    return out
