"""reid_lab.tutorial.zoo: which DINO backbone downstream notebooks get, and shipping one as float16 with provenance."""
from __future__ import annotations

import json

import pytest
import torch

from reid_lab.tutorial import zoo
from reid_lab.models import build_backbone, load_pretrained, make_checkpoint


@pytest.fixture
def assets(tmp_path, monkeypatch):
    folder = tmp_path / "assets"
    monkeypatch.setattr(zoo, "ASSETS", folder)
    return folder


def test_missing_backbone_names_the_notebook_that_makes_it(assets, tmp_path):
    with pytest.raises(FileNotFoundError, match="02_dino_ics_pretraining"):
        zoo.dino_backbone("smoke", "vit_tiny", tmp_path / "runs")


def test_shipped_checkpoint_wins_over_the_notebook_output_and_loads_back(assets, tmp_path):
    torch.manual_seed(0)
    model = build_backbone("vit_tiny", img_size=(64, 32))
    source = tmp_path / "teacher_backbone.pth"
    torch.save(make_checkpoint(model), source)
    produced = zoo.notebook_backbone("smoke", "vit_tiny", tmp_path / "runs")
    produced.parent.mkdir(parents=True)
    torch.save(make_checkpoint(model), produced)
    assert zoo.dino_backbone("smoke", "vit_tiny", tmp_path / "runs") == produced

    shipped = zoo.ship_backbone(source, "smoke", "vit_tiny", {"command": "reid-lab pretrain ...", "seed": 0})
    assert zoo.dino_backbone("smoke", "vit_tiny", tmp_path / "runs") == shipped
    assert zoo.dino_backbone("smoke", "vit_tiny", tmp_path / "runs", prefer_shipped=False) == produced
    record = zoo.provenance("smoke", "vit_tiny")
    assert record["seed"] == 0 and len(record["sha256"]) == 64
    assert shipped.stat().st_size < 0.6 * source.stat().st_size          # float16 storage

    restored = build_backbone("vit_tiny", img_size=(64, 32))
    load_pretrained(restored, shipped)
    for (name, a), b in zip(model.state_dict().items(), restored.state_dict().values()):
        assert b.dtype == a.dtype, name
        torch.testing.assert_close(b, a.half().float(), rtol=0, atol=0)   # exactly the float16 rounding


def test_ship_refuses_a_file_of_another_arch(assets, tmp_path):
    source = tmp_path / "b.pth"
    torch.save(make_checkpoint(build_backbone("vit_tiny", img_size=(64, 32))), source)
    with pytest.raises(ValueError, match="vit_tiny"):
        zoo.ship_backbone(source, "smoke", "vit_small", {})
    with pytest.raises(ValueError, match="not a reid_lab checkpoint"):
        torch.save({"weights": 1}, source)
        zoo.ship_backbone(source, "smoke", "vit_tiny", {})


def test_finetuned_course_model_ships_as_float16_without_training_state_and_loads(assets, tmp_path):
    from reid_lab.reid import build_reid_model, load_reid_model, reid_checkpoint

    torch.manual_seed(0)
    model = build_reid_model("vit_tiny_ics", 5, (64, 32))
    source = tmp_path / "model.pth"
    torch.save({**reid_checkpoint(model), "optimizer": {"state": {}}}, source)
    assert zoo.shipped_finetuned("smoke", "dino_ics") is None
    shipped = zoo.ship_finetuned(source, "smoke", "dino_ics", "vit_tiny_ics", {"command": "make course", "seed": 0})
    assert zoo.shipped_finetuned("smoke", "dino_ics") == shipped
    record = zoo.finetuned_provenance("smoke", "dino_ics")
    assert record["seed"] == 0 and record["file"] == shipped.name and record["bytes"] == shipped.stat().st_size
    assert "optimizer" not in torch.load(shipped, weights_only=True)
    restored = load_reid_model(shipped)
    for (name, a), b in zip(model.state_dict().items(), restored.state_dict().values()):
        if a.is_floating_point():
            torch.testing.assert_close(b, a.half().float(), rtol=0, atol=0, msg=name)
    with pytest.raises(ValueError, match="unknown fine-tuned model"):
        zoo.shipped_finetuned("smoke", "imagenet")
    with pytest.raises(ValueError, match="not 'vit_tiny'"):
        zoo.ship_finetuned(source, "smoke", "dino", "vit_tiny", {})


def test_finetuned_run_loads_the_shipped_model_where_the_notebooks_look_or_trains(assets, tmp_path):
    from reid_lab.reid import build_reid_model, reid_checkpoint

    class Split:  # enough query and gallery images for re-ranking's k1 = 20
        def __init__(self, images):
            from reid_lab.data.base import Sample
            self.query = [Sample(str(p), i % 4, 0) for i, p in enumerate(images[:8])]
            self.gallery = [Sample(str(p), i % 4, 1) for i, p in enumerate(images[8:])]

    from PIL import Image
    images = []
    for i in range(24):
        images.append(tmp_path / f"{i}.jpg")
        Image.new("RGB", (32, 64), (10 * i, 80, 240 - 10 * i)).save(images[-1])
    torch.manual_seed(0)
    source = tmp_path / "model.pth"
    torch.save(reid_checkpoint(build_reid_model("vit_tiny", 4, (64, 32))), source)
    zoo.ship_finetuned(source, "smoke", "random", "vit_tiny", {"log": [{"epoch": 0, "loss": 1.5}], "seed": 0})
    trained = []
    run = zoo.finetuned_run("smoke", "random", tmp_path / "nb03" / "random", Split(images), "cpu",
                            train=lambda: trained.append(1) or {"model": None})
    assert run["source"] == "shipped" and not trained
    assert (tmp_path / "nb03" / "random" / "model.pth").is_file()
    assert json.loads((tmp_path / "nb03" / "random" / "log.jsonl").read_text()) == {"epoch": 0, "loss": 1.5}
    assert 0 <= run["metrics"]["mAP"] <= 1 and "rerank_mAP" in run["metrics"]
    again = zoo.finetuned_run("smoke", "random", tmp_path / "x", Split(images), "cpu", force_retrain=True,
                              train=lambda: {"model": "live"})
    assert again == {"model": "live", "source": "trained"}


def test_finetuned_model_prefers_the_shipped_file_then_notebook_03s_output(assets, tmp_path):
    runs = tmp_path / "runs"
    assert zoo.finetuned_model("smoke", "dino_ics", runs) is None
    produced = runs / "smoke" / "03_supervised_reid" / "dino_ics" / "model.pth"
    produced.parent.mkdir(parents=True)
    produced.write_bytes(b"x")
    assert zoo.finetuned_model("smoke", "dino_ics", runs) == produced
    shipped = assets / "reid_dino_ics_smoke.pth"
    assets.mkdir()
    shipped.write_bytes(b"y")
    assert zoo.finetuned_model("smoke", "dino_ics", runs) == shipped
