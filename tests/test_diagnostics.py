import numpy as np
import pytest

from reid_lab.retrieval.diagnostics import camera_shortcut_report


def test_camera_shortcut_report_on_a_hand_made_case():
    # query 0: id 1 cam 0; query 1: id 2 cam 1
    # gallery: (id 1, cam 0) removed for q0, (id 3, cam 0), (id 1, cam 1), (id 2, cam 0)
    q_pids, q_cams = np.array([1, 2]), np.array([0, 1])
    g_pids, g_cams = np.array([1, 3, 1, 2]), np.array([0, 0, 1, 0])
    dist = np.array([[0.0, 0.1, 0.2, 0.9],   # q0: g0 removed -> top1 g1 (wrong id, same cam 0)
                     [0.5, 0.6, 0.1, 0.3]])  # q1: top1 g2 (wrong id 1, cam 1 = own camera)
    r = camera_shortcut_report(dist, q_pids, g_pids, q_cams, g_cams)
    assert r["same_camera_top1"] == pytest.approx(1.0)
    assert r["top1_error"] == pytest.approx(1.0)
    assert r["errors_same_camera"] == pytest.approx(1.0)
    # own-camera share of the kept gallery: q0 keeps g1,g2,g3 -> cams 0,1,0 -> 2/3; q1 keeps all 4 -> cam 1 once -> 1/4
    assert r["same_camera_chance"] == pytest.approx((2 / 3 + 1 / 4) / 2)


def test_keep_region_hand_computed():
    from reid_lab.retrieval.diagnostics import keep_region

    images = np.full((1, 1, 5, 3), 200, np.uint8)
    masks = np.array([[[0.0, 0.0, 1.0, 0.5, 0.0]]], np.float32)
    person = keep_region(images, masks, "person", fill=100)
    np.testing.assert_array_equal(person[0, 0, :, 0], [100, 100, 200, 150, 100])
    background = keep_region(images, masks, "background", fill=100)
    np.testing.assert_array_equal(background[0, 0, :, 0], [200, 200, 100, 150, 200])
    grown = keep_region(images, masks, "background", grow=1, fill=100)  # mask after a 3-wide max filter: 0 1 1 1 .5
    np.testing.assert_array_equal(grown[0, 0, :, 0], [200, 100, 100, 100, 150])
    with pytest.raises(ValueError, match="keep must be"):
        keep_region(images, masks, "head")
