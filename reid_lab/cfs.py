"""Catastrophic Forgetting Score (CFS): rank an unlabeled pool by closeness to the ReID domain (docs/reference.md §1).

Definition used here (docs/reference.md §1, header and §1.2): with a *source proxy* θ_s (a short self-supervised pre-training on
the pool) and a *target proxy* θ_t (θ_s fine-tuned on the labelled ReID data — the paper's "mm" set, Market +
MSMT17, docs/reference.md §7.4), every pool image x gets

    CFS(x) = cos( f_θs(x), f_θt(x) )

where f is the CLS feature after the final LayerNorm and **before** the BNNeck, both models in eval mode, input
resized to the fine-tuning size with the TransReID test transform (bilinear, mean = std = 0.5; docs/reference.md §1.2). A high
score means fine-tuning on ReID data barely changed ("did not forget") the image's representation: the image is
close to the ReID domain. The pool is sorted by **descending** score and the head of the list is kept (the official
pre-training keeps the first ``keep_num`` entries, docs/reference.md §1.3).

* :func:`proxy_features` — both proxies' features of a list of images, in batches with a progress bar;
  :func:`cosine` turns them into scores (``centre=True``: a diagnostic without the direction all images share);
  :func:`cfs_scores` does both;
* :func:`rank_by_score` — names sorted by descending score (ties: input order);
* :func:`score_pool` — both, plus the ranked list written as plain text (one file name per line,
  :func:`reid_lab.data.write_ranked_list`) and optionally in the official pickle layout (``CFS_list.pkl``, a pickled
  list of str, :func:`reid_lab.data.write_cfs_pickle`), which :class:`reid_lab.data.LUPersonPool` and
  :func:`reid_lab.ssl.pretrain` read back;
* :func:`select` — the kept head of a ranked list for a keep ratio (round half up, as the released ``--keep_num``);
* analysis on SynthLUP, whose ``membership.csv`` says which images are off-domain: :func:`read_membership`,
  :func:`domain_report`, :func:`auc`, :func:`separation`, :func:`shared_direction`; its figures are
  :func:`reid_lab.viz.cfs.plot_score_histogram` and :func:`reid_lab.viz.cfs.plot_image_grid`.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset

from . import engine
from .data import read_image, write_cfs_pickle, write_ranked_list
from .data.luperson import keep_count

logger = logging.getLogger(__name__)

__all__ = ["CFSResult", "auc", "cfs_scores", "cosine", "domain_report", "plot_image_grid", "plot_score_histogram",
           "proxy_features", "rank_by_score", "read_membership", "score_pool", "select", "separation",
           "shared_direction", "RANKED_NAME", "PICKLE_NAME"]

RANKED_NAME = "cfs_ranked.txt"
PICKLE_NAME = "CFS_list.pkl"


class _Images(Dataset):
    def __init__(self, paths: Sequence[str | os.PathLike], transform: Callable[[Image.Image], torch.Tensor]):
        self.paths, self.transform = list(paths), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(read_image(self.paths[i]))


def _feature(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    if not isinstance(out, torch.Tensor) or out.ndim != 2:
        raise TypeError(f"{type(model).__name__} must return (batch, dim) pre-BN features in eval mode")
    return out.float()


@torch.inference_mode()
def proxy_features(source: nn.Module, target: nn.Module, paths: Sequence[str | os.PathLike],
                   device: str | torch.device, *, image_size: tuple[int, int] = (256, 128), batch_size: int = 128,
                   num_workers: int = 0, transform: Callable[[Image.Image], torch.Tensor] | None = None,
                   amp: bool | None = None, progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The two proxies' pre-BN CLS features of every image, ``(source (N, D), target (N, D))`` float32 (docs/reference.md §1.2).

    Both models are used in eval mode (their previous modes restored): a backbone returns its CLS feature, a
    :class:`~reid_lab.reid.ReIDModel` its pre-BN feature. ``image_size`` is (height, width) for the default test
    transform; ``amp`` = bf16 autocast (default on CUDA).
    """
    if len(paths) == 0:
        raise ValueError("no images to score")
    device = engine.resolve_device(device)
    amp = device.type == "cuda" if amp is None else amp
    if transform is None:
        from .data import build_reid_transforms

        transform = build_reid_transforms(int(image_size[0]), int(image_size[1]), train=False)
    loader = DataLoader(_Images(paths, transform), batch_size=batch_size, num_workers=num_workers,
                        pin_memory=device.type == "cuda")
    modes = (source.training, target.training)
    source.to(device).eval()
    target.to(device).eval()
    feats: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
    try:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            for x in engine.progress(loader, desc="CFS features", total=len(loader), enabled=progress):
                x = x.to(device, non_blocking=True)
                fs, ft = _feature(source, x), _feature(target, x)
                if fs.shape != ft.shape:
                    raise ValueError(f"source features {tuple(fs.shape)} and target features {tuple(ft.shape)} "
                                     "differ: the proxies must share the architecture")
                feats[0].append(fs.cpu())
                feats[1].append(ft.cpu())
    finally:
        source.train(modes[0])
        target.train(modes[1])
    return torch.cat(feats[0]).numpy(), torch.cat(feats[1]).numpy()


def cosine(source_features: np.ndarray, target_features: np.ndarray, *, centre: bool = False) -> np.ndarray:
    """Row-wise cosine of the two feature matrices: the CFS of each image (docs/reference.md §1.1), float32.

    ``centre=True`` first subtracts each model's mean feature over the rows (a diagnostic, not the official score):
    it removes the direction that all images share, so what is left compares what is specific to each image.
    """
    fs, ft = (torch.as_tensor(np.asarray(f, dtype=np.float32)) for f in (source_features, target_features))
    if fs.shape != ft.shape or fs.ndim != 2:
        raise ValueError(f"need two (N, D) matrices of the same shape, got {tuple(fs.shape)} and {tuple(ft.shape)}")
    if centre:
        fs, ft = fs - fs.mean(0), ft - ft.mean(0)
    return F.cosine_similarity(fs, ft, dim=1).numpy().astype(np.float32)


def cfs_scores(source: nn.Module, target: nn.Module, paths: Sequence[str | os.PathLike], device: str | torch.device,
               **kwargs) -> np.ndarray:
    """CFS of every image: cosine similarity of the two proxies' pre-BN CLS features (float32, length N).

    ``kwargs`` go to :func:`proxy_features` (image size, batch size, transform, amp, progress).
    """
    return cosine(*proxy_features(source, target, paths, device, **kwargs))


def rank_by_score(names: Sequence[str], scores: Sequence[float] | np.ndarray) -> list[str]:
    """``names`` sorted by descending score; equal scores keep their input order (stable)."""
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 1 or len(scores) != len(names):
        raise ValueError(f"need one score per name: {len(names)} names, scores of shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError(f"{int((~np.isfinite(scores)).sum())} scores are NaN/inf: check the proxies")
    order = np.argsort(-scores, kind="stable")
    return [names[i] for i in order]


def select(ranked: Sequence[str], ratio: float) -> list[str]:
    """The kept head of a ranked list: its first ``round(len · ratio)`` entries (half up; docs/reference.md §1.4)."""
    return list(ranked[: keep_count(len(ranked), keep_ratio=ratio)])


@dataclass
class CFSResult:
    """What :func:`score_pool` computed and wrote."""

    names: list[str]  # pool file names (relative to the images folder), pool order
    scores: np.ndarray  # CFS per name, pool order
    ranked: list[str]  # names by descending CFS
    ranked_path: Path | None = None  # plain text, one name per line
    pickle_path: Path | None = None  # official CFS_list.pkl layout
    source_features: np.ndarray | None = None  # (N, D) pre-BN features of the source proxy, pool order
    target_features: np.ndarray | None = None  # (N, D) the same for the target proxy

    def score_of(self) -> dict[str, float]:
        """name → score."""
        return dict(zip(self.names, self.scores.tolist()))


def score_pool(source: nn.Module, target: nn.Module, pool, device: str | torch.device, *,
               output_dir: str | os.PathLike | None = None, write_pickle: bool = False,
               image_size: tuple[int, int] = (256, 128), batch_size: int = 128, num_workers: int = 0,
               progress: bool = True) -> CFSResult:
    """Score a :class:`~reid_lab.data.LUPersonPool` (``.names`` relative to ``.images_dir``) and rank it.

    With ``output_dir`` the ranking is written to ``cfs_ranked.txt`` and, with ``write_pickle``, ``CFS_list.pkl``.
    The result keeps both proxies' features for diagnostics (:func:`cosine` with ``centre=True``,
    :func:`shared_direction`).
    """
    names = list(getattr(pool, "names", []))
    images_dir = getattr(pool, "images_dir", None)
    if not names or images_dir is None:
        raise TypeError("pool must be a LUPersonPool-like object with .names and .images_dir")
    paths = [os.path.join(images_dir, n) for n in names]
    fs, ft = proxy_features(source, target, paths, device, image_size=image_size, batch_size=batch_size,
                            num_workers=num_workers, progress=progress)
    scores = cosine(fs, ft)
    result = CFSResult(names, scores, rank_by_score(names, scores), source_features=fs, target_features=ft)
    if output_dir is not None:
        out = Path(output_dir)
        result.ranked_path = write_ranked_list(result.ranked, out / RANKED_NAME)
        if write_pickle:
            result.pickle_path = write_cfs_pickle(result.ranked, out / PICKLE_NAME)
    logger.info("CFS over %d images: min %.4f, median %.4f, max %.4f", len(names), float(scores.min()),
                float(np.median(scores)), float(scores.max()))
    return result


# ----------------------------------------------------------------------------------------------- analysis
def read_membership(path: str | os.PathLike) -> dict[str, str]:
    """SynthLUP's ``membership.csv`` (``filename,kind,identity``) as ``{filename: kind}``; kind "person" = in-domain."""
    import csv

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"membership file {path} does not exist (only synthetic pools have one)")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows or not {"filename", "kind"} <= set(rows[0]):
        raise ValueError(f"{path}: expected a CSV with columns filename,kind,identity")
    return {r["filename"]: r["kind"] for r in rows}


def domain_report(ranked: Sequence[str], kinds: dict[str, str], ratios: Sequence[float] = (0.5, 0.6),
                  in_domain: str = "person") -> dict[str, dict[str, float]]:
    """For each keep ratio: how many off-domain images the kept head holds and rejects, against a random keep.

    Returns ``{"keep_50": {"kept", "off_domain_total", "off_domain_kept", "off_domain_rejected",
    "rejected_fraction", "random_rejected_fraction", "random_rejected_sd"}, ...}``: a random keep of n of the N
    images rejects 1 − n/N of the K off-domain ones in expectation, with the hypergeometric standard deviation
    sqrt(n·(K/N)·(1 − K/N)·(N − n)/(N − 1)) / K across random draws.
    """
    missing = [n for n in ranked if n not in kinds]
    if missing:
        raise KeyError(f"{len(missing)} ranked names have no membership entry, e.g. {missing[:3]}")
    off_total, total = sum(kinds[n] != in_domain for n in ranked), len(ranked)
    report = {}
    for ratio in ratios:
        kept = select(ranked, ratio)
        off_kept, n = sum(kinds[n] != in_domain for n in kept), len(kept)
        share = off_total / total if total else 0.0
        var = n * share * (1 - share) * (total - n) / (total - 1) if total > 1 else 0.0
        report[f"keep_{round(100 * ratio)}"] = {
            "kept": len(kept), "off_domain_total": off_total, "off_domain_kept": off_kept,
            "off_domain_rejected": off_total - off_kept,
            "rejected_fraction": (off_total - off_kept) / off_total if off_total else float("nan"),
            "random_rejected_fraction": 1.0 - n / total,
            "random_rejected_sd": float(np.sqrt(var)) / off_total if off_total else float("nan"),
        }
    return report


def auc(scores: Sequence[float] | np.ndarray, positive: Sequence[bool] | np.ndarray) -> float:
    """Area under the ROC curve: the chance that a random positive outscores a random negative (ties count ½).

    Computed from average ranks (Mann–Whitney U); 0.5 = no separation, 1 = every positive above every negative.
    """
    from scipy.stats import rankdata

    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive, dtype=bool)
    if scores.shape != positive.shape or scores.ndim != 1:
        raise ValueError(f"need one label per score: {scores.shape} scores, {positive.shape} labels")
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def separation(scores: Sequence[float] | np.ndarray, groups: Sequence[str], in_domain: str = "person"
               ) -> dict[str, float | dict[str, float]]:
    """How well ``scores`` put in-domain images above the others: ``{"auc", "auc_by_kind", "mean_in_domain",
    "mean_off_domain"}``; ``auc_by_kind[k]`` compares the in-domain images with the images of kind ``k`` only."""
    scores, groups = np.asarray(scores, dtype=np.float64), np.asarray(groups)
    inside = groups == in_domain
    by_kind = {}
    for kind in sorted(set(groups[~inside].tolist())):
        mask = inside | (groups == kind)
        by_kind[kind] = auc(scores[mask], inside[mask])
    return {"auc": auc(scores, inside), "auc_by_kind": by_kind,
            "mean_in_domain": float(scores[inside].mean()) if inside.any() else float("nan"),
            "mean_off_domain": float(scores[~inside].mean()) if (~inside).any() else float("nan")}


def known_answer_control(source: nn.Module, target: nn.Module, in_domain: Sequence[str | os.PathLike],
                         off_domain: Sequence[str | os.PathLike], device: str | torch.device, *,
                         image_size: tuple[int, int] = (256, 128), progress: bool = False) -> dict[str, Any]:
    """CFS on a pool whose answer is known (a positive control): ``in_domain`` = images of the target proxy's own
    domain that it never trained on (e.g. SynthMarket's test split), ``off_domain`` = images that are clearly not
    person crops. If the score cannot put these in-domain images above those off-domain ones, it will not sort a
    real pool either, whatever the data; if it can, a weak result on the real pool is about that pool.

    Returns :func:`separation` of the scores (``in_domain`` labelled "person"), ``centred_auc`` (the same with
    each model's mean feature removed first, :func:`cosine` ``centre=True``) and ``n_in`` / ``n_off``.
    """
    paths = [*in_domain, *off_domain]
    if not in_domain or not off_domain:
        raise ValueError("the control needs both in-domain and off-domain images")
    fs, ft = proxy_features(source, target, paths, device, image_size=image_size, progress=progress)
    groups = ["person"] * len(in_domain) + ["off-domain"] * len(off_domain)
    return {**separation(cosine(fs, ft), groups), "centred_auc": separation(cosine(fs, ft, centre=True), groups)["auc"],
            "n_in": len(in_domain), "n_off": len(off_domain)}


def shared_direction(features: np.ndarray) -> float:
    """Mean cosine of each row to the mean row: near 1 when all images share one feature direction."""
    f = torch.as_tensor(np.asarray(features, dtype=np.float32))
    return float(F.cosine_similarity(f, f.mean(0, keepdim=True), dim=1).mean())


# the figures moved to reid_lab.viz.cfs; these aliases will be removed in the next release
from .viz.cfs import plot_image_grid, plot_score_histogram  # noqa: E402,F401
