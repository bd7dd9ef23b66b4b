import numpy as np
import pytest

from reid_lab.baselines import color_histogram_features


def test_central_fraction_ignores_the_margins():
    # 6x8 images: a red person in the central 4 columns, margins green (a) or blue (b)
    a = np.zeros((1, 6, 8, 3), np.uint8); a[..., 1] = 255; a[:, :, 2:6] = (255, 0, 0)
    b = np.zeros((1, 6, 8, 3), np.uint8); b[..., 2] = 255; b[:, :, 2:6] = (255, 0, 0)
    fa, fb = (color_histogram_features(x, bins=2, stripes=3, space="rgb", central=0.5) for x in (a, b))
    np.testing.assert_allclose(fa, fb)
    # whole crop: half red + half green per stripe -> sqrt(0.5) in two bins of each of 3 stripes
    whole = color_histogram_features(a, bins=2, stripes=3, space="rgb")
    assert not np.allclose(whole, fa)
    assert np.sort(whole[0])[-6:] == pytest.approx(np.full(6, np.sqrt(0.5) / np.sqrt(3)))
    with pytest.raises(ValueError, match="central"):
        color_histogram_features(a, central=0.0)
