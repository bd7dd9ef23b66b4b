"""Figures and small analyses for notebooks 04/05 (reid_lab.viz.usl, reid_lab.retrieval.clustering), on hand-made
inputs."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.sparse as sp  # noqa: E402

from reid_lab.retrieval import clustering  # noqa: E402
from reid_lab.viz import usl as viz_usl  # noqa: E402

GREY = matplotlib.colors.to_rgba("#b0b0b0")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _two_groups_distance() -> np.ndarray:
    """8 points: {0..3} and {4..7} at distance 0.1 inside a group, 0.9 across (a hand-made Jaccard matrix)."""
    d = np.full((8, 8), 0.9)
    d[:4, :4] = d[4:, 4:] = 0.1
    np.fill_diagonal(d, 0.0)
    return d


# ----------------------------------------------------------------------------------------------- purity / sweep
def test_cluster_purity_by_hand():
    # cluster 0 = ids (5, 5, 6) -> 2 majority; cluster 1 = ids (7, 7) -> 2; the outlier does not count: 4 / 5
    assert clustering.cluster_purity([0, 0, 0, 1, 1, -1], [5, 5, 6, 7, 7, 9]) == pytest.approx(0.8)
    # one cluster per identity but an identity split over two clusters is still pure
    assert clustering.cluster_purity([0, 0, 1, 1], [3, 3, 3, 3]) == 1.0
    assert clustering.cluster_purity([-1, -1], [1, 2]) is None


def test_cluster_purity_rejects_bad_input():
    with pytest.raises(ValueError, match="one entry per point"):
        clustering.cluster_purity([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="integer"):
        clustering.cluster_purity([0.0, 1.0], [0, 1])


def test_eps_sweep_on_two_groups():
    true_ids = np.array([0, 0, 0, 0, 1, 1, 1, 2])  # the last point belongs to group 2 but has id 2
    rows = clustering.eps_sweep(_two_groups_distance(), [0.05, 0.2, 0.95], true_ids, min_samples=4)
    assert [r["eps"] for r in rows] == [0.05, 0.2, 0.95]
    tight, right, loose = rows
    # eps below every distance: no point has 4 neighbours -> everything is an outlier
    assert (tight["num_clusters"], tight["num_outliers"], tight["purity"]) == (0, 8, None)
    # eps between the two scales: the two groups
    assert (right["num_clusters"], right["num_outliers"], right["largest_cluster"]) == (2, 0, 4)
    assert right["purity"] == pytest.approx(7 / 8) and right["outlier_fraction"] == 0.0
    assert loose["num_clusters"] == 1 and loose["largest_cluster"] == 8
    assert loose["purity"] == pytest.approx(4 / 8) and loose["ari"] < right["ari"]


def test_eps_sweep_without_truth_and_sparse_input():
    dense = _two_groups_distance()
    rows, cols = np.nonzero(dense < 0.5)  # within-group pairs and the diagonal (explicit zeros)
    sparse = sp.csr_matrix((dense[rows, cols], (rows, cols)), shape=dense.shape)
    assert sparse.nnz == 32
    rows = clustering.eps_sweep(sparse, [0.2], min_samples=4)
    # absent sparse entries mean distance 1: same two clusters as the dense matrix
    assert rows[0]["num_clusters"] == 2 and "ari" not in rows[0] and "purity" not in rows[0]
    with pytest.raises(ValueError, match="empty"):
        clustering.eps_sweep(dense, [])


# ----------------------------------------------------------------------------------------------- figures
def test_plot_kreciprocal_draws_pairs_and_matrix(tmp_path):
    angles = np.deg2rad([0, 20, 40, 180])
    points = np.stack([np.cos(angles), np.sin(angles)], 1)
    neighbours = np.array([[0, 1, 2], [1, 0, 2], [2, 1, 0], [3, 2, 1]])
    reciprocal = np.array([[1, 1, 1, 0], [1, 1, 1, 0], [1, 1, 1, 0], [0, 0, 0, 1]])
    distance = np.where(reciprocal > 0, 0.3, 1.0) - np.eye(4) * 0.3
    fig = viz_usl.plot_kreciprocal(points, neighbours, sp.csr_matrix(reciprocal), distance,
                                     save=tmp_path / "k.png")
    assert (tmp_path / "k.png").stat().st_size > 0
    ax, mx = fig.axes[:2]
    assert np.array_equal(mx.images[0].get_array(), distance)
    # three reciprocal pairs (0-1, 0-2, 1-2) drawn as lines, point 3's two one-way arrows
    red = [ln for ln in ax.lines if ln.get_color() == "#c44e52" and len(ln.get_xdata()) == 2]
    assert len(red) == 3
    assert sum(1 for t in ax.texts if getattr(t, "arrow_patch", None) is not None) == 2


def test_plot_kreciprocal_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        viz_usl.plot_kreciprocal(np.zeros((3, 3)), np.zeros((3, 2), int), np.eye(3), np.eye(3))
    with pytest.raises(ValueError, match="square"):
        viz_usl.plot_kreciprocal(np.zeros((3, 2)), np.zeros((3, 2), int), np.eye(3), np.zeros((3, 2)))


def test_plot_eps_sweep(tmp_path):
    rows = clustering.eps_sweep(_two_groups_distance(), [0.05, 0.2, 0.95], np.repeat([0, 1], 4))
    fig = viz_usl.plot_eps_sweep(rows, num_ids=2, chosen_eps=0.2, save=tmp_path / "eps.png")
    assert (tmp_path / "eps.png").is_file()
    clusters = fig.axes[0].lines[0]
    assert list(clusters.get_xdata()) == [0.05, 0.2, 0.95] and list(clusters.get_ydata()) == [0, 2, 1]
    assert len(fig.axes) == 3  # clusters (+ outlier twin axis) and the truth panel
    no_truth = viz_usl.plot_eps_sweep(clustering.eps_sweep(_two_groups_distance(), [0.2]))
    assert len(no_truth.axes) == 2
    with pytest.raises(ValueError, match="empty"):
        viz_usl.plot_eps_sweep([])


def _history(maps):
    return [dict(epoch=e + 1, num_clusters=10 + e, num_outliers=5, outlier_fraction=0.05 * (e + 1),
                 ari=0.1 * e, nmi=None, **({} if m is None else {"mAP": m})) for e, m in enumerate(maps)]


def test_plot_usl_history_single_run_with_initial(tmp_path):
    fig = viz_usl.plot_usl_history(_history([None, 0.2, 0.3]), initial={"mAP": 0.05}, num_ids=12,
                                     save=tmp_path / "h.png")
    assert (tmp_path / "h.png").is_file()
    clusters, outliers, maps, quality = fig.axes
    assert list(clusters.lines[0].get_ydata()) == [10, 11, 12]
    assert np.allclose(outliers.lines[0].get_ydata(), [5, 10, 15])
    # the starting model at epoch 0, then only the evaluated epochs
    assert list(maps.lines[0].get_xdata()) == [0, 2, 3]
    assert np.allclose(maps.lines[0].get_ydata(), [5, 20, 30])
    assert np.isnan(quality.lines[1].get_ydata()).all()  # NMI unknown -> nothing drawn


def test_plot_usl_history_several_runs(tmp_path):
    fig = viz_usl.plot_usl_history({"ViT": _history([0.1]), "ICS": _history([0.2, 0.4])},
                                     initial={"ViT": {"mAP": 0.0}, "ICS": {"mAP": 0.1}})
    maps = fig.axes[2]
    assert [list(ln.get_xdata()) for ln in maps.lines] == [[0, 1], [0, 1, 2]]
    assert {t.get_text() for t in fig.legends[0].get_texts()} == {"ViT", "ICS"}  # one legend under the panels
    with pytest.raises(ValueError, match="empty"):
        viz_usl.plot_usl_history({"a": []})


def test_plot_tsne_colours_outliers_grey(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 5
    true_ids = np.repeat([0, 1, 2], 10)
    features = centres[true_ids] + rng.normal(size=(30, 16)) * 0.1
    pseudo = true_ids.copy()
    pseudo[[0, 15]] = -1
    fig = viz_usl.plot_tsne(features, pseudo, true_ids, save=tmp_path / "t.png")
    assert (tmp_path / "t.png").is_file()
    assert list(fig.indices) == list(range(30))  # all points embedded, in order
    by_pseudo, by_truth = (ax.collections[0].get_facecolors() for ax in fig.axes[:2])
    assert len(by_pseudo) == 30
    assert np.allclose(by_pseudo[[0, 15]], GREY) and not np.allclose(by_truth[[0, 15]], GREY)
    # one colour per pseudo-label, different for different labels; none of the clustered points is grey
    assert np.allclose(by_pseudo[1], by_pseudo[9]) and not np.allclose(by_pseudo[1], by_pseudo[20])
    assert not any(np.allclose(c, GREY) for c in np.delete(by_pseudo, [0, 15], axis=0))
    assert "2 outliers" in fig.axes[0].get_title() and fig.axes[0].get_legend() is None
    small = viz_usl.plot_tsne(features, pseudo, true_ids, max_points=12)
    assert len(small.axes[0].collections[0].get_offsets()) == 12
    shown = pseudo[small.indices]
    assert np.allclose(small.axes[0].collections[0].get_facecolors()[shown < 0], GREY)
    with pytest.raises(ValueError, match="one entry per point"):
        viz_usl.plot_tsne(features, pseudo, true_ids[:-1])


def test_plot_uda_results_bars(tmp_path):
    results = {"A→B ViT": {"source": 0.5, "direct transfer": 0.1, "after UDA": 0.2},
               "A→B ICS": {"source": 0.6, "direct transfer": 0.15, "after UDA": None}}
    fig = viz_usl.plot_uda_results(results, save=tmp_path / "u.png")
    assert (tmp_path / "u.png").is_file()
    ax = fig.axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert np.allclose(heights[:4], [50, 60, 10, 15]) and heights[4] == pytest.approx(20) and np.isnan(heights[5])
    assert "" in [t.get_text() for t in ax.texts]  # the missing value has no label
    with pytest.raises(ValueError, match="empty"):
        viz_usl.plot_uda_results({})
