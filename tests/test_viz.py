"""Figures (reid_lab.viz): the 60 %-mass mask, attention maps at any size/stride, rank-list statuses, curves, t-SNE."""
from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from reid_lab import viz  # noqa: E402
from reid_lab.engine import JsonlLog  # noqa: E402
from reid_lab.models import build_backbone  # noqa: E402
from reid_lab.reid import build_reid_model  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _png(path):
    assert path.is_file() and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _images(n, h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, h, w, 3), dtype=np.uint8)


# ------------------------------------------------------------------------------------------------ mass mask
def test_mass_mask_hand_made_vectors():
    # sorted 0.1, 0.2, 0.3, 0.4: the two largest hold 0.7 >= 0.6, the largest alone 0.4 < 0.6
    assert viz.mass_mask(torch.tensor([0.1, 0.4, 0.2, 0.3]), 0.6).tolist() == [False, True, False, True]
    # unnormalised weights: the same decision
    assert viz.mass_mask(np.array([1.0, 4.0, 2.0, 3.0]), 0.6).tolist() == [False, True, False, True]
    # a patch that reaches the threshold exactly suffices on its own (cumsum 0.4 is not > 1 - 0.6)
    assert viz.mass_mask(torch.tensor([0.4, 0.6]), 0.6).tolist() == [False, True]
    # threshold 1 keeps every patch with weight, never a zero one
    assert viz.mass_mask(torch.tensor([0.0, 0.0, 1.0, 2.0]), 1.0).tolist() == [False, False, True, True]
    # rows (heads) are independent
    heads = torch.tensor([[0.7, 0.1, 0.1, 0.1], [0.25, 0.25, 0.3, 0.2]])
    assert viz.mass_mask(heads, 0.5).tolist() == [[True, False, False, False], [False, True, True, False]]


def test_mass_mask_matches_the_official_procedure_and_is_minimal():
    torch.manual_seed(0)
    attn = torch.rand(6, 128) ** 4  # peaked, distinct values (heads, patches)
    # docs/reference.md §6, step by step: sort ascending, normalise, cumsum, > 1 - t, un-sort
    val, idx = torch.sort(attn)
    val = val / val.sum(dim=1, keepdim=True)
    official = torch.cumsum(val, dim=1) > (1 - 0.6)
    for h in range(6):
        official[h] = official[h][torch.argsort(idx[h])]
    ours = viz.mass_mask(attn, 0.6)
    assert torch.equal(ours, official)
    p = (attn / attn.sum(1, keepdim=True)).double()
    for h in range(6):
        kept = p[h][ours[h]]
        assert kept.sum() >= 0.6 - 1e-6 and kept.sum() - kept.min() < 0.6  # reaches t; one fewer does not
        assert kept.min() >= p[h][~ours[h]].max()  # the largest weights


@pytest.mark.parametrize("threshold", [0.0, -0.1, 1.5])
def test_mass_mask_rejects_bad_thresholds(threshold):
    with pytest.raises(ValueError, match="threshold"):
        viz.mass_mask(torch.ones(4), threshold)


def test_mass_mask_rejects_negative_weights():
    with pytest.raises(ValueError, match="non-negative"):
        viz.mass_mask(torch.tensor([0.5, -0.1, 0.6]))


# ------------------------------------------------------------------------------------------------ token grid -> pixels
def test_to_pixels_nearest_for_touching_patches_and_mean_for_overlapping_ones():
    grid = torch.arange(6.0).reshape(1, 1, 3, 2)
    px = viz.to_pixels(grid, (48, 32), patch_size=16, stride=16)
    assert torch.equal(px, grid.repeat_interleave(16, 2).repeat_interleave(16, 3))
    # patch 2, stride 1 over a width-4 image: pixel columns covered by token 0 / both / token 1 / none
    px = viz.to_pixels(torch.tensor([[[[1.0, 3.0]]]]), (2, 4), patch_size=2, stride=1)
    assert px[0, 0].tolist() == [[1.0, 2.0, 3.0, 0.0], [1.0, 2.0, 3.0, 0.0]]
    px = viz.to_pixels(torch.tensor([[[[1.0, 3.0]]]]), (1, 4), patch_size=(1, 2), stride=1, fill=float("nan"))
    assert px[0, 0, 0, :3].tolist() == [1.0, 2.0, 3.0] and math.isnan(px[0, 0, 0, 3])


# ------------------------------------------------------------------------------------------------ attention maps
@pytest.mark.parametrize("arch, build_size, image_size, stride, grid", [
    ("vit_tiny", (128, 64), None, 16, (8, 4)),
    ("vit_tiny_ics", (128, 64), None, 16, (8, 4)),
    ("vit_tiny", (128, 64), (384, 128), 16, (24, 8)),  # another size: interpolated position embeddings
    ("vit_small", (256, 128), None, 12, (21, 10)),  # overlapping patches (TransReID stride 12)
])
def test_attention_maps_shapes(arch, build_size, image_size, stride, grid):
    torch.manual_seed(0)
    model = build_backbone(arch, img_size=build_size, stride_size=stride)
    heads = model.blocks[-1].attn.num_heads
    h, w = image_size or build_size
    maps = viz.attention_maps(model, _images(2, 100, 50), size=image_size)
    assert maps.images.shape == (2, h, w, 3)
    assert maps.heads.shape == maps.head_masks.shape == (2, heads, *grid)
    assert maps.mean.shape == maps.mean_mask.shape == maps.rollout.shape == (2, *grid)
    assert maps.entropy.shape == maps.peak.shape == maps.mask_area.shape == (2, heads)
    assert np.all(maps.heads.sum((2, 3)) < 1) and np.all(maps.heads > 0)  # CLS->CLS takes the rest
    np.testing.assert_allclose(maps.rollout.sum((1, 2)), 1, rtol=1e-5)
    assert np.all((maps.entropy > 0) & (maps.entropy <= 1 + 1e-6)) and np.all(maps.peak >= 1)
    # the top-k patches of any distribution hold at least k/N of the mass: never more area than uniform needs
    assert np.all((maps.mask_area > 0) & (maps.mask_area <= 0.6 + 1 / (grid[0] * grid[1]) + 1e-6))
    px = maps.pixels(maps.mean)
    assert px.shape == (2, h, w)
    one = maps.subset([1])
    assert one.heads.shape == (1, heads, *grid) and np.array_equal(one.rollout[0], maps.rollout[1])
    assert one.entropy.shape == (1, heads) and one.stride == maps.stride
    if stride == 12:  # columns 124..127 are covered by no 16-px patch placed every 12 px (16 + 9 * 12 = 124)
        assert np.all(px[:, :, 124:] == 0) and np.all(px[:, :, :124] > 0)
    assert model.training  # mode restored


def test_uniform_attention_gives_entropy_one_and_the_expected_mask():
    """Zero q/k projections in the last block -> every token attends uniformly to the 33 tokens."""
    torch.manual_seed(0)
    model = build_reid_model("vit_tiny", num_classes=5)  # a ReIDModel: the backbone is found under .base
    with torch.no_grad():
        model.base.blocks[-1].attn.qkv.weight[:384].zero_()
        model.base.blocks[-1].attn.qkv.bias[:384].zero_()
    maps = viz.attention_maps(model, _images(1, 128, 64), rollout=False, blocks=True)
    np.testing.assert_allclose(maps.heads, 1 / 33, rtol=1e-5)
    assert maps.block_entropy.shape == (len(model.base.blocks), 2) and maps.block_entropy[-1] == pytest.approx([1, 1])
    np.testing.assert_allclose(maps.entropy, 1, rtol=1e-5)
    np.testing.assert_allclose(maps.peak, 1, rtol=1e-5)
    # cumsum of 32 equal shares is k/32; > 0.4 from k = 13 on -> 20 of 32 patches kept
    np.testing.assert_allclose(maps.mask_area, 20 / 32)
    assert maps.rollout is None


def test_attention_figures_write_pngs(tmp_path):
    torch.manual_seed(0)
    rows = {name: viz.attention_maps(build_backbone(name), _images(3, 128, 64, seed=1))
            for name in ("vit_tiny", "vit_tiny_ics")}
    fig = viz.plot_attention_grid(rows, labels=["a", "b", "c"], save=tmp_path / "grid.png")
    assert isinstance(fig, matplotlib.figure.Figure) and len(fig.axes) >= 6
    _png(tmp_path / "grid.png")
    viz.plot_attention_grid(rows, method="rollout", save=tmp_path / "rollout.png")
    _png(tmp_path / "rollout.png")
    fig = viz.plot_attention_heads(rows["vit_tiny_ics"], 1, title="ICS", save=tmp_path / "heads.png")
    assert len(fig.axes) == 1 + 3 + 1 + 1 + 1 + 1  # input, 3 heads, mean, mask, rollout, the shared colour bar
    _png(tmp_path / "heads.png")
    with pytest.raises(ValueError, match="same number of images"):
        viz.plot_attention_grid({"a": rows["vit_tiny"], "b": viz.attention_maps(build_backbone("vit_tiny"),
                                                                                _images(1, 128, 64))})


def _maps(heads: np.ndarray, image_size: tuple[int, int], patch: int, rollout: np.ndarray | None = None):
    """AttentionMaps around hand-made CLS attention (B, h, gh, gw); only the fields the metric reads are real."""
    b, h = heads.shape[:2]
    zeros = np.zeros((b, h))
    return viz.AttentionMaps(images=np.zeros((b, *image_size, 3), np.uint8), heads=heads, head_masks=heads > 0,
                             mean=heads.mean(1), mean_mask=heads.mean(1) > 0, rollout=rollout, entropy=zeros,
                             peak=zeros, mask_area=zeros, threshold=0.6, patch_size=(patch, patch),
                             stride=(patch, patch))


def test_token_coverage_hand_computed():
    mask = np.zeros((1, 4, 4), np.float32)
    mask[0, :2, :2] = 1  # top-left 2x2 token fully inside
    mask[0, :2, 2] = 1  # top-right token: 2 of its 4 pixels
    np.testing.assert_allclose(viz.token_coverage(mask, (4, 4), 2, 2), [[[1.0, 0.5], [0.0, 0.0]]])
    # a mask at twice the model's size is resized first: same coverage
    big = np.kron(mask, np.ones((2, 2), np.float32))
    np.testing.assert_allclose(viz.token_coverage(big, (4, 4), 2, 2), [[[1.0, 0.5], [0.0, 0.0]]], atol=1e-6)


def test_attention_mass_inside_hand_computed():
    """2x2 tokens of 2x2 pixels; coverage [[1, .5], [0, 0]] -> area 0.375.

    head 1: patch weights [[.4, .2], [.1, .1]] (CLS->CLS took .2) -> renormalised [[.5, .25], [.125, .125]] ->
    mass .5 + .5 * .25 = .625; head 2 uniform -> .25 + .5 * .25 = .375 = the area. Mean .5, concentration 4/3.
    """
    mask = np.zeros((1, 4, 4), np.float32)
    mask[0, :2, :3] = 1
    heads = np.array([[[[0.4, 0.2], [0.1, 0.1]], [[0.2, 0.2], [0.2, 0.2]]]], np.float32)
    rollout = np.array([[[0.0, 0.0], [0.5, 0.5]]], np.float32)  # all on the background
    out = viz.attention_mass_inside(_maps(heads, (4, 4), 2, rollout), mask)
    np.testing.assert_allclose(out.head_mass, [[0.625, 0.375]])
    np.testing.assert_allclose(out.mass, [0.5])
    np.testing.assert_allclose(out.area, [0.375])
    np.testing.assert_allclose(out.concentration, [4 / 3])
    np.testing.assert_allclose(out.rollout_mass, [0.0])
    s = out.summary()
    assert s["mass"] == pytest.approx(0.5) and s["mass_sd"] == 0.0
    assert s["best_head_mass"] == pytest.approx(0.625) and s["worst_head_mass"] == pytest.approx(0.375)
    table = viz.mass_inside_table({"toy": out}).splitlines()
    assert table[1].split() == ["toy", "50.0", "±", "0.0", "37.5", "1.33", "38–62", "0.0"]
    no_rollout = viz.attention_mass_inside(_maps(heads, (4, 4), 2), mask)
    assert "rollout" not in viz.mass_inside_table({"toy": no_rollout}).splitlines()[0]
    with pytest.raises(ValueError, match="2 masks for 1 images"):
        viz.attention_mass_inside(_maps(heads, (4, 4), 2), np.concatenate([mask, mask]))
    with pytest.raises(ValueError, match="covers no token"):
        viz.attention_mass_inside(_maps(heads, (4, 4), 2), np.zeros_like(mask))


def test_attention_grid_with_person_outline(tmp_path):
    torch.manual_seed(0)
    rows = {"ics": viz.attention_maps(build_backbone("vit_tiny_ics"), _images(2, 128, 64, seed=2))}
    person = np.zeros((2, 64, 32), np.float32)  # half the model's size: resized in the figure and the metric
    person[:, 8:56, 8:24] = 1
    fig = viz.plot_attention_grid(rows, person_masks=person, save=tmp_path / "person.png")
    assert "person " in fig.axes[0].get_xlabel() and "area 38%" in fig.axes[0].get_xlabel()  # 48x16 of 64x32
    _png(tmp_path / "person.png")


def test_attention_maps_rejects_a_non_vit():
    with pytest.raises(TypeError, match="backbone"):
        viz.attention_maps(torch.nn.Linear(3, 3), _images(1, 8, 8))


# ------------------------------------------------------------------------------------------------ rank lists
# one query (pid 1, camera 0) and six gallery images, hand-made
Q_PIDS, Q_CAMS = np.array([1, 7]), np.array([0, 0])
G_PIDS = np.array([1, 2, 1, 0, -1, 1])
G_CAMS = np.array([0, 1, 1, 2, 1, 2])
DIST = np.array([[0.10, 0.20, 0.30, 0.40, 0.05, 0.35],   # order: 4 junk, 0 same cam, 1 wrong, 2 match, 5 match, 3 distr.
                 [0.50, 0.40, 0.30, 0.20, 0.10, 0.60]], dtype=np.float32)  # query pid 7 has no match


def test_rank_status_and_rank_list_hand_made():
    assert viz.rank_status(1, 0, G_PIDS, G_CAMS).tolist() == [
        "same_camera", "wrong", "match", "distractor", "junk", "match"]
    rl = viz.rank_list(DIST, 0, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, topk=6)
    assert rl.gallery.tolist() == [4, 0, 1, 2, 5, 3]
    assert rl.status.tolist() == ["junk", "same_camera", "wrong", "match", "match", "distractor"]
    assert rl.rank.tolist() == [0, 0, 1, 2, 3, 4]
    # matches at scored positions 2 and 3: AP = (1/2 + 2/3) / 2, INP = 2 / 3 (junk and same camera ignored)
    assert math.isclose(rl.ap, 7 / 12, rel_tol=1e-9) and math.isclose(rl.inp, 2 / 3, rel_tol=1e-9)
    green, red = viz.STATUS_STYLE["match"][0], viz.STATUS_STYLE["wrong"][0]
    assert rl.colors[2] == red and rl.colors[3] == rl.colors[4] == green
    assert len({rl.colors[0], rl.colors[1], green, red, rl.colors[5]}) == 5  # junk/same cam/distractor distinct
    scored = viz.rank_list(DIST, 0, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, topk=3, show_ignored=False)
    assert scored.gallery.tolist() == [1, 2, 5] and scored.rank.tolist() == [1, 2, 3]
    none = viz.rank_list(DIST, 1, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS, topk=2)
    assert math.isnan(none.ap) and math.isnan(none.inp)


def test_per_query_metrics_ignore_junk_columns():
    ap, inp = viz.per_query_metrics(DIST, Q_PIDS, G_PIDS, Q_CAMS, G_CAMS)
    assert math.isclose(ap[0], 7 / 12, rel_tol=1e-9) and math.isclose(inp[0], 2 / 3, rel_tol=1e-9)
    assert math.isnan(ap[1])


def test_plot_rank_lists_borders_follow_the_statuses(tmp_path):
    def write(name, color):
        path = tmp_path / name
        Image.new("RGB", (32, 64), color).save(path)
        return str(path)

    query = [(write("q0.jpg", "white"), 1, 0), (write("q1.jpg", "gray"), 7, 0)]
    gallery = [(write(f"g{i}.jpg", (40 * i, 0, 0)), int(p), int(c)) for i, (p, c) in enumerate(zip(G_PIDS, G_CAMS))]
    fig = viz.plot_rank_lists(DIST, query, gallery, [0, 1], topk=6, title="hand-made", save=tmp_path / "ranks.png")
    _png(tmp_path / "ranks.png")
    first = fig.rank_lists[0]
    assert first.status.tolist() == ["junk", "same_camera", "wrong", "match", "match", "distractor"]
    axes = np.array(fig.axes[:14]).reshape(2, 7)  # row 0: query + 6 gallery images
    drawn = [mcolors.to_hex(ax.spines["top"].get_edgecolor()) for ax in axes[0, 1:]]
    assert drawn == [mcolors.to_hex(c) for c in first.colors]
    assert "AP 58.3%" in axes[0, 0].get_title() and "INP 66.7%" in axes[0, 0].get_title()  # 7/12 and 2/3
    assert "n/a" in axes[1, 0].get_title()


def test_select_queries_best_and_worst():
    ap = np.array([0.5, np.nan, 0.9, 0.1, 0.9])
    best, worst = viz.best_and_worst_queries(ap, 2)
    assert best.tolist() == [2, 4] and worst.tolist() == [3, 0]  # ties by index, NaN skipped
    assert viz.select_queries(ap, 10, "worst").tolist() == [3, 0, 2, 4]
    with pytest.raises(ValueError, match="which"):
        viz.select_queries(ap, 1, "median")


# ------------------------------------------------------------------------------------------------ curves, t-SNE, legacy
def test_training_curves_from_jsonl_logs(tmp_path):
    for run, scale in (("a", 1.0), ("b", 2.0)):
        log = JsonlLog(tmp_path / run / "log.jsonl")
        for epoch in range(1, 5):
            record = {"epoch": epoch, "loss": scale / epoch, "seconds": 1.0}
            if epoch % 2 == 0:
                record["mAP"] = 0.1 * epoch
            log.append(record)
    fig = viz.training_curves({"a": tmp_path / "a", "b": tmp_path / "b" / "log.jsonl"}, save=tmp_path / "c.png")
    _png(tmp_path / "c.png")
    assert fig.metrics == ["loss", "mAP"]
    map_lines = fig.axes[1].get_lines()
    assert [line.get_label() for line in map_lines] == ["a", "b"]
    assert map_lines[0].get_xdata().tolist() == [2, 4] and map_lines[0].get_marker() == "o"
    assert fig.axes[0].get_lines()[1].get_ydata().tolist() == [2.0, 1.0, 2 / 3, 0.5]
    with pytest.raises(KeyError, match="rank1"):
        viz.training_curves({"a": tmp_path / "a"}, ["rank1"])
    with pytest.raises(FileNotFoundError, match="log.jsonl"):
        viz.training_curves({"x": tmp_path / "missing"})


def test_tsne_separates_clusters(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16)) * 10
    labels = np.repeat([3, 5, 9], 12)
    feats = centres[np.repeat([0, 1, 2], 12)] + rng.normal(size=(36, 16)) * 0.1
    cams = np.tile([0, 1], 18)
    fig = viz.tsne(feats, labels, second=cams, save=tmp_path / "tsne.png", max_points=30)
    _png(tmp_path / "tsne.png")
    assert fig.embedding.shape == (30, 2) and len(fig.indices) == 30 and len(fig.axes) == 2
    emb, lab = fig.embedding, labels[fig.indices]
    d = np.linalg.norm(emb[:, None] - emb[None], axis=-1) + np.eye(30) * 1e9
    assert np.all(lab[d.argmin(1)] == lab)  # every point's nearest neighbour has its identity
    with pytest.raises(ValueError, match="labels"):
        viz.tsne(feats, labels[:5])


def test_legacy_figures_still_work(tmp_path):
    from reid_lab.viz import _figure, _save  # used by reid_lab.ssl

    fig, ax = _figure()
    assert _save(fig, tmp_path / "x.png") is fig
    _png(tmp_path / "x.png")
    viz.cmc_curves({"m": np.linspace(0.2, 1, 20)}, save=tmp_path / "cmc.png")
    viz.bar_chart({"a": 1.0, "b": 2.0}, reference=1.5, reference_label="chance", save=tmp_path / "bar.png")
    img = tmp_path / "p.jpg"
    Image.new("RGB", (32, 64), "blue").save(img)
    viz.camera_grid([(str(img), 1, 0), (str(img), 2, 1)], per_camera=2, save=tmp_path / "cams.png")
    for name in ("cmc.png", "bar.png", "cams.png"):
        _png(tmp_path / name)
