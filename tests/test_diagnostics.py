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


@pytest.fixture(scope="module")
def smoke_market(tmp_path_factory):
    from reid_lab.data import Market1501
    from reid_lab.data.synthetic import generate_worlds

    roots = generate_worlds("smoke", tmp_path_factory.mktemp("worlds"), progress=False)
    return Market1501(roots["market1501"])


def test_region_views_blend_the_removed_part_into_grey(smoke_market):
    from reid_lab.data.synthetic import person_masks
    from reid_lab.retrieval.diagnostics import region_views

    samples = smoke_market.query[:3]
    views = region_views(samples, (64, 32), mean=(0.5,) * 3, std=(0.5,) * 3)
    assert set(views) == {"image", "person only", "background only"} and views["image"].shape == (3, 3, 64, 32)
    masks = person_masks([s.path for s in samples])  # smoke worlds are drawn at 64x32
    grey = (128 / 255 - 0.5) / 0.5
    person, image = views["person only"], views["image"]
    outside, inside = masks == 0, masks == 1
    assert outside.any() and inside.any()
    np.testing.assert_allclose(person.permute(0, 2, 3, 1).numpy()[outside], grey, atol=1 / 255 / 0.5 + 1e-6)
    np.testing.assert_allclose(person.permute(0, 2, 3, 1).numpy()[inside],
                               image.permute(0, 2, 3, 1).numpy()[inside], atol=1 / 255 / 0.5 + 1e-6)
    assert masks.shape == (3, 64, 32)


def test_knn_by_region_image_view_equals_the_frozen_evaluation(smoke_market):
    import torch

    from reid_lab.models import build_backbone
    from reid_lab.retrieval.diagnostics import knn_by_region, region_views
    from reid_lab.ssl import IMAGENET_MEAN, IMAGENET_STD, evaluate_retrieval

    torch.manual_seed(0)
    backbone = build_backbone("vit_tiny_ics", img_size=(64, 32))
    views = [region_views(split, (64, 32), IMAGENET_MEAN, IMAGENET_STD)
             for split in (smoke_market.query, smoke_market.gallery)]
    result = knn_by_region(backbone.train(), smoke_market, *views)
    assert result["image"] == pytest.approx(evaluate_retrieval(backbone, smoke_market, (64, 32), "cpu").mAP)
    assert all(0 <= result[k] <= 1 for k in ("person only", "background only", "same_camera_top1"))
    assert backbone.training  # mode restored
