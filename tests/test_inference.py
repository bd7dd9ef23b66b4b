"""The user-facing inference API: extract() from paths / PIL / arrays / tensors, search() against brute force."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from reid_lab.data import build_reid_transforms
from reid_lab.reid import build_reid_model, extract, search


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_reid_model("vit_tiny", num_classes=4, img_size=(64, 32))


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    rng = np.random.default_rng(0)
    root = tmp_path_factory.mktemp("imgs")
    arrays = [rng.integers(0, 256, (80, 40, 3), dtype=np.uint8) for _ in range(5)]
    paths = []
    for i, a in enumerate(arrays):
        Image.fromarray(a).save(root / f"{i}.png")
        paths.append(root / f"{i}.png")
    return arrays, paths


def test_extract_accepts_paths_pil_arrays_and_tensors(model, images):
    arrays, paths = images
    from_paths = extract(model, paths, device="cpu", batch_size=2)
    assert from_paths.shape == (5, 192) and from_paths.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(from_paths, axis=1), 1.0, rtol=1e-5)
    np.testing.assert_allclose(extract(model, [str(p) for p in paths], device="cpu"), from_paths, atol=1e-6)
    np.testing.assert_allclose(extract(model, [Image.fromarray(a) for a in arrays], device="cpu"), from_paths, atol=1e-6)
    np.testing.assert_allclose(extract(model, arrays, device="cpu", batch_size=3), from_paths, atol=1e-6)
    # the default transform is the TransReID test transform at the model's size; a tensor skips it
    t = build_reid_transforms(64, 32, train=False)
    batch = torch.stack([t(Image.fromarray(a)) for a in arrays])
    np.testing.assert_allclose(extract(model, batch, device="cpu"), from_paths, atol=1e-6)
    # the embedding is the eval-mode (pre-BN) feature, normalised
    model.eval()
    with torch.no_grad():
        raw = model(batch).numpy()
    np.testing.assert_allclose(extract(model, batch, device="cpu", normalize=False), raw, atol=1e-5)
    assert model.training is False


def test_extract_restores_training_mode_and_reports_bad_inputs(model, images, tmp_path):
    model.train()
    extract(model, images[1][:1], device="cpu")
    assert model.training
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        extract(model, [tmp_path / "missing.jpg"], device="cpu")
    with pytest.raises(TypeError, match="image 0"):
        extract(model, [42], device="cpu")
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        extract(model, torch.zeros(2, 64, 32), device="cpu")


def test_search_matches_brute_force():
    rng = np.random.default_rng(1)
    q, g = rng.normal(size=(7, 16)).astype(np.float32), rng.normal(size=(30, 16)).astype(np.float32)
    d, i = search(q, g, k=5)
    full = ((q[:, None, :] - g[None, :, :]) ** 2).sum(-1)
    expected = np.argsort(full, axis=1, kind="stable")[:, :5]
    np.testing.assert_array_equal(i, expected)
    np.testing.assert_allclose(d, np.take_along_axis(full, expected, 1), rtol=1e-4, atol=1e-4)
    assert d.dtype == np.float32 and i.dtype == np.int64
    # torch inputs work too, and a single query row
    d1, i1 = search(torch.from_numpy(q[:1]), torch.from_numpy(g), k=1)
    assert i1[0, 0] == expected[0, 0]


def test_search_rejects_bad_inputs():
    g = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match="k must be"):
        search(g, g, k=4)
    with pytest.raises(ValueError, match="dim"):
        search(np.zeros((1, 5)), g, k=1)
    with pytest.raises(ValueError, match="NaN"):
        search(np.full((1, 4), np.nan), g, k=1)
