"""Figures for slides (issue 19): one colour per initialisation, mAP from 0 with a chance line, a shared attention
scale, capped camera grids, a ~10-identity t-SNE, the seed-study figure, the positional prior and the diagrams."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from reid_lab.retrieval.evaluation import chance_map
from reid_lab.viz import AttentionMaps, attention_mass_inside, camera_grid, plot_attention_heads, tsne
from reid_lab.viz.attention import positional_prior_mass
from reid_lab.viz.diagrams import plot_dino_diagram, plot_stem_diagram
from reid_lab.viz.finetune import plot_finetune_curves, plot_seed_study
from reid_lab.viz.style import INIT_COLORS, init_color, init_key
from reid_lab.viz.usl import plot_usl_history


@pytest.mark.parametrize("label, key", [
    ("random", "random"), ("DINO", "DINO"), ("random+ICS", "random+ICS"), ("DINO+ICS", "DINO+ICS"),
    ("DINO+ICS permuted", "DINO+ICS permuted"), ("fine-tuned DINO+ICS", "DINO+ICS"), ("ICS / DINO", "DINO+ICS"),
    ("random init · patchify", "random"), ("random init · ICS", "random+ICS"), ("DINO · patchify", "DINO"),
    ("the supervised source", None)])
def test_every_label_of_an_initialisation_gets_its_colour(label, key):
    assert init_key(label) == key
    assert init_color(label, "default") == (INIT_COLORS[key] if key else "default")


def test_chance_map_matches_a_hand_computed_case():
    # one query, its match and one non-match in the gallery: a random ranking gives AP 1 or 1/2 -> 0.75 on average
    mean, sd = chance_map([1], [1, 2], [0], [1, 1], seeds=2000)
    assert mean == pytest.approx(0.75, abs=0.02) and sd == pytest.approx(0.25, abs=0.02)


def _study():
    return {"budgets": [5, 10], "seeds": [0, 1, 2],
            "curves": {"random+ICS": [[0.1, 0.20], [0.1, 0.22], [0.1, 0.21]],
                       "DINO+ICS": [[0.2, 0.30], [0.2, 0.33], [0.2, 0.31]]}}


def test_seed_study_figure_shows_seeds_means_and_paired_differences():
    fig = plot_seed_study(_study(), "random+ICS", chance=0.02)
    left, right = fig.axes
    assert left.get_ylim()[0] == 0 and any("chance (2.0 %)" in t.get_text() for t in left.get_legend().get_texts())
    dots = right.collections[0].get_offsets()[:, 1]
    np.testing.assert_allclose(sorted(dots), [10, 10, 11])  # 30-20, 33-22, 31-21 points
    from matplotlib.collections import PathCollection
    from matplotlib.colors import to_hex

    dots_colours = [to_hex(c.get_facecolor()[0]) for c in left.collections if isinstance(c, PathCollection)]
    assert dots_colours == [INIT_COLORS["random+ICS"], INIT_COLORS["DINO+ICS"]]
    with pytest.raises(ValueError, match="reference 'DINO'"):
        plot_seed_study(_study(), "DINO")


def test_usl_history_starts_at_zero_with_a_chance_line():
    hist = [{"epoch": 1, "num_clusters": 5, "outlier_fraction": 0.2, "mAP": 0.033, "ari": 0.1, "purity": 0.5},
            {"epoch": 2, "num_clusters": 6, "outlier_fraction": 0.1, "mAP": 0.034, "ari": 0.2, "purity": 0.6}]
    fig = plot_usl_history({"run": hist}, initial={"run": {"mAP": 0.019}}, chance=0.015)
    m_ax = fig.axes[2]
    assert m_ax.get_ylim()[0] == 0 and m_ax.get_ylim()[1] >= 10  # a 1.9-3.4 % curve is not a steep climb
    assert any(line.get_ydata()[0] == pytest.approx(1.5) for line in m_ax.lines if line.get_linestyle() == ":")


def test_finetune_curves_use_the_initialisation_colours():
    hist = [{"epoch": 1, "loss": 2.0, "accuracy": 0.1, "mAP": 0.1}]
    fig = plot_finetune_curves({"DINO+ICS": hist, "random": hist})
    assert [line.get_color() for line in fig.axes[0].lines] == [INIT_COLORS["DINO+ICS"], INIT_COLORS["random"]]


def _images(tmp_path, n_cams=15):
    samples = []
    for cam in range(n_cams):
        path = tmp_path / f"c{cam}.png"
        Image.new("RGB", (16, 32), (cam * 10, 0, 0)).save(path)
        samples.append((str(path), cam, cam))
    return samples


def test_camera_grid_caps_rows_and_says_so(tmp_path):
    fig = camera_grid(_images(tmp_path), per_camera=2, title="SynthMSMT")
    assert len(fig.axes) == 6 * 2 and fig.get_size_inches()[1] < 12
    assert fig._suptitle.get_text() == "SynthMSMT (6 of 15 cameras)"
    assert len(camera_grid(_images(tmp_path), per_camera=2, max_cameras=None).axes) == 15 * 2


def test_tsne_colours_ten_identities_and_greys_the_rest():
    rng = np.random.default_rng(0)
    ids = np.repeat(np.arange(30), 4)
    fig = tsne(rng.normal(size=(120, 8)) + ids[:, None], ids, max_points=120)
    colours = fig.axes[0].collections[0].get_facecolors()
    grey = np.all(np.isclose(colours[:, :3], 0.82), axis=1)
    assert grey.sum() == 20 * 4 and "10 of 30 values coloured" in fig.axes[0].get_title()


def _maps(heads: np.ndarray) -> AttentionMaps:
    """Attention maps of a tiny ViT on ``len(heads)`` blank 32×32 images (a 2×2 token grid), with ``heads``
    replacing the measured last-block attention."""
    import dataclasses

    import torch

    from reid_lab.models import build_backbone
    from reid_lab.viz import attention_maps

    torch.manual_seed(0)
    images = np.zeros((len(heads), 32, 32, 3), np.uint8)
    maps = attention_maps(build_backbone("vit_tiny", img_size=(32, 32)), images)
    return dataclasses.replace(maps, heads=heads.astype(np.float32)[:, : maps.heads.shape[1]])


def test_positional_prior_is_the_leave_one_out_mean_map():
    heads = np.full((3, 3, 2, 2), 0.25)
    heads[0, :] = [[1.0, 0.0], [0.0, 0.0]]             # image 0 looks at the top-left token only (every head)
    masks = np.zeros((3, 32, 32), np.float32)
    masks[:, :16, :16] = 1.0                           # the person is the top-left token in every image
    prior = positional_prior_mass(_maps(heads), masks)
    np.testing.assert_allclose(prior, [0.25, (1.0 + 0.25) / 2, (1.0 + 0.25) / 2])
    np.testing.assert_allclose(attention_mass_inside(_maps(heads), masks).mass, [1.0, 0.25, 0.25])


def test_attention_figures_share_one_colour_scale():
    heads = np.random.default_rng(0).random((1, 3, 2, 2)).astype(np.float32)
    fig = plot_attention_heads(_maps(heads), 0)
    scales = {(im.norm.vmin, im.norm.vmax) for ax in fig.axes for im in ax.get_images()[1:]}
    assert scales == {(0.0, 3.0)}
    assert any("uniform" in ax.get_ylabel() for ax in fig.axes)  # the colour bar


def test_diagrams_draw(tmp_path):
    for fn in (plot_stem_diagram, plot_dino_diagram):
        path = tmp_path / f"{fn.__name__}.png"
        fn(save=path)
        assert Image.open(path).size[0] > 600
