"""Retrieval math: ranking metrics, re-ranking, k-reciprocal neighbours and the pseudo labels built on them.

* :mod:`.evaluation` — features, distances and the Market-1501 protocol (CMC, mAP, mINP) (docs/reference.md §4.6);
* :mod:`.reranking` — k-reciprocal re-ranking as TransReID computes it;
* :mod:`.kreciprocal` — the sparse k-reciprocal encoding shared by re-ranking and pseudo-labelling;
* :mod:`.neighbors` — exact k-nearest neighbours (faiss when available, torch otherwise);
* :mod:`.clustering` — Jaccard distance + DBSCAN pseudo labels, eps sweeps, cluster purity (docs/reference.md §5.2);
* :mod:`.diagnostics` — where retrieval errors come from (camera shortcut, background only).

Importing this package is cheap; import the module you need (``from reid_lab.retrieval.evaluation import
evaluate_rank``). The old flat modules (``reid_lab.evaluation`` …) are aliases for one release.
"""
