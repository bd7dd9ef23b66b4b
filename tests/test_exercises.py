"""The notebooks' "Try next" knobs and SEED (reid_lab.tutorial.exercises): each knob changes the config the notebook
resolves once AND the config its trainer records in the run's checkpoint; shipped course runs answer only for their
own settings. Smoke-profile trainers on a hand-made 8-identity world keep every run to seconds; no notebook runs.
"""
from __future__ import annotations

import json
import logging
from types import SimpleNamespace

import pytest
import torch

from reid_lab import engine
from reid_lab.config import resolve, to_dict
from reid_lab.data import ReIDDataset
from reid_lab.tutorial import exercises, zoo
from reid_lab.tutorial.notebook import NOTEBOOK_DIR

from fixtures_data import toy_reid_image, toy_reid_world

IDS = 8


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors on a shared 2-core machine
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> ReIDDataset:
    root = tmp_path_factory.mktemp("exercise_world")
    return toy_reid_world(root, IDS, stripes=False)


def _recorded(folder) -> dict:
    """The config a trainer recorded in the run's checkpoint."""
    return engine.load_checkpoint(folder / "checkpoint.pth")["config"]


# ----------------------------------------------------------------------------------------------- defaults
def test_defaults_are_the_shipped_course_runs():
    """SEED = 0 and no knob: notebook 03 asks exactly for the shipped seed-0 models, 04/05 for the shipped record."""
    configs = exercises.finetune_configs("tiny", seed=0)
    for label, name in (("random", "random"), ("random+ICS", "random_ics"), ("DINO+ICS", "dino_ics")):
        record = zoo.finetuned_provenance("tiny", name)
        if record is None:
            pytest.skip("no course models shipped")
        assert exercises.same_config(record["config"], configs[label]), name
        assert not exercises.same_config(record["config"], exercises.finetune_configs("tiny", seed=1)[label])
    from reid_lab.usl import course

    shipped = course.load_course("tiny")
    assert shipped is not None
    assert course._not_in_record(shipped, "tiny", ["usl_dino_ics", "usl_oracle_dino_ics"], [0], {}) is None
    assert course._not_in_record(shipped, "tiny", ["uda_market_to_msmt"], [0], None) is None
    # the short runs of notebooks 02 and 05 as they were before the knobs: only the seed is new (0 for every trainer)
    short, dino = exercises.dino_configs("tiny")
    assert short["images"] == 768 and dino["ICS"] == resolve("pretrain", "tiny", arch="vit_tiny_ics", epochs=3,
                                                              warmup_epochs=1, seed=0)
    plan = exercises.uda_plan("tiny")
    assert plan.directions == [("market1501", "msmt17")] and plan.recipe == dict(epochs=1, eval_step=1)
    assert plan.runs["market1501", "msmt17", "ViT+ICS"] == resolve(
        "uda", "tiny", arch="vit_tiny_ics", dataset="msmt17", source_dataset="market1501", epochs=1, seed=0)


# ----------------------------------------------------------------------------------------------- resume
def test_config_comparison_ignores_evaluation_settings_only():
    cfg = resolve("supervised", "smoke", seed=3)
    saved = {**to_dict(cfg), "rerank": True, "eval_period": 7}
    assert exercises.same_config(saved, cfg)
    assert exercises.config_changes({**saved, "seed": 4}, cfg) == {"seed": (4, 3)}
    assert not exercises.same_config(None, cfg)  # nothing recorded: not this run
    tupled = resolve("pretrain", "smoke")
    assert exercises.same_config(json.loads(json.dumps(to_dict(tupled))), tupled)  # tuples saved as lists


# ----------------------------------------------------------------------------------------------- 02 · DINO
@pytest.mark.parametrize("recipe", [dict(teacher_temp=0.04, warmup_teacher_temp=0.04, out_dim=4096),
                                    dict(jitter_strength=0.25, grayscale_p=0.0),
                                    dict(crop_ratio=(3 / 8, 2 / 3))], ids=["temperature_head", "colour", "crops"])
def test_02_recipe_reaches_both_stems(recipe):
    _, default = exercises.dino_configs("tiny")
    short, configs = exercises.dino_configs("tiny", seed=2, recipe=recipe)
    assert short == exercises.DINO_SHORT["tiny"] and set(configs) == {"patchify", "ICS"}
    for name, cfg in configs.items():
        assert cfg.seed == 2 and cfg.epochs == 3 and cfg.arch == default[name].arch
        assert {k: getattr(cfg, k) for k in recipe} == {k: tuple(v) if isinstance(v, tuple) else v
                                                        for k, v in recipe.items()}
        assert set(exercises.config_changes(to_dict(default[name]), cfg)) == set(recipe) | {"seed"}


def test_02_recipe_and_seed_are_recorded_and_a_changed_run_trains_afresh(tmp_path, caplog):
    from reid_lab import ssl

    folder = tmp_path / "LUP" / "images"
    folder.mkdir(parents=True)
    for i in range(16):
        toy_reid_image(i % IDS, i, stripes=False).save(folder / f"{i:03d}.png")
    _, configs = exercises.dino_configs("smoke", seed=5, recipe=dict(teacher_temp=0.05, warmup_teacher_temp=0.05,
                                                                      out_dim=128))
    cfg, out = configs["patchify"], tmp_path / "dino_vit_tiny"
    assert exercises.resumable(out, cfg)  # nothing there yet
    ssl.pretrain(cfg, tmp_path / "LUP", out, device="cpu", progress=False, resume=exercises.resumable(out, cfg))
    saved = _recorded(out)
    assert (saved["teacher_temp"], saved["out_dim"], saved["seed"]) == (0.05, 128, 5)
    assert exercises.resumable(out, cfg) and not exercises.resumable(out, cfg, force_retrain=True)
    _, default = exercises.dino_configs("smoke")
    with caplog.at_level(logging.WARNING, logger="reid_lab.tutorial.exercises"):
        assert not exercises.resumable(out, default["patchify"])  # other settings: a new run, not the stale one
    assert "out_dim 128 -> 256" in caplog.text and "seed 5 -> 0" in caplog.text


# ----------------------------------------------------------------------------------------------- 03 · supervised
@pytest.fixture(scope="module")
def source_run(world, tmp_path_factory):
    """Notebook 03's smoke fine-tune from random weights with SEED = 1, LR = 0.02, EPOCHS = 2 (one epoch of it)."""
    from reid_lab import reid

    cfg = exercises.finetune_configs("smoke", seed=1, lr=0.02, epochs=2)["random"]
    out = tmp_path_factory.mktemp("nb03") / "random"
    run = reid.train(cfg, world, out, device="cpu", progress=False, resume=exercises.resumable(out, cfg), rerank=True,
                     stop_after=1)
    return cfg, out, run


def test_03_seed_lr_epochs_reach_every_init():
    default = exercises.finetune_configs("tiny")
    configs = exercises.finetune_configs("tiny", seed=1, lr=4e-4, epochs=24)
    assert list(configs) == ["random", "DINO", "random+ICS", "DINO+ICS"]
    assert [c.arch for c in configs.values()] == ["vit_tiny", "vit_tiny", "vit_tiny_ics", "vit_tiny_ics"]
    for label, cfg in configs.items():
        assert exercises.config_changes(to_dict(default[label]), cfg) == {
            "seed": (0, 1), "base_lr": (0.008, 4e-4), "epochs": (12, 24)}
    assert exercises.finetune_configs("tiny", lr=None, epochs=None) == default  # None: the profile's


def test_03_knobs_are_recorded_by_the_fine_tune(source_run):
    cfg, out, run = source_run
    saved = _recorded(out)
    assert (saved["seed"], saved["base_lr"], saved["epochs"], saved["rerank"]) == (1, 0.02, 2, True)
    assert exercises.resumable(out, cfg)  # the same settings: resumed (the interrupted run continues)
    assert not exercises.resumable(out, exercises.finetune_configs("smoke", seed=2, lr=0.02, epochs=2)["random"])


def test_03_shipped_model_answers_only_its_own_config(world, tmp_path, monkeypatch, caplog):
    from reid_lab.reid import build_reid_model, reid_checkpoint

    monkeypatch.setattr(zoo, "ASSETS", tmp_path / "assets")
    torch.manual_seed(0)
    source = tmp_path / "model.pth"
    torch.save(reid_checkpoint(build_reid_model("vit_tiny", IDS, (64, 32))), source)
    seed0 = exercises.finetune_configs("smoke", seed=0)["random"]
    zoo.ship_finetuned(source, "smoke", "random", "vit_tiny", {"config": to_dict(seed0), "seed": 0, "log": []})
    trained = []
    train = lambda: trained.append(1) or {"model": "live"}  # noqa: E731
    run = zoo.finetuned_run("smoke", "random", tmp_path / "a", world, "cpu", train=train, rerank=False, config=seed0)
    assert run["source"] == "shipped" and not trained
    for knob in (dict(seed=1), dict(lr=0.01), dict(epochs=3)):
        asked = exercises.finetune_configs("smoke", **knob)["random"]
        with caplog.at_level(logging.WARNING, logger="reid_lab.tutorial.zoo"):
            run = zoo.finetuned_run("smoke", "random", tmp_path / "b", world, "cpu", train=train, rerank=False,
                                    config=asked)
        assert run == {"model": "live", "source": "trained"}, knob
    assert len(trained) == 3 and "seed 0 -> 1" in caplog.text and "base_lr 0.0004 -> 0.01" in caplog.text


# ----------------------------------------------------------------------------------------------- 04 · USL
@pytest.mark.parametrize("recipe", [dict(memory_features="eval"), dict(k1=30, k2=6), dict(memory_momentum=0.2)],
                         ids=["memory", "k1", "momentum"])
def test_04_recipe_reaches_the_config(recipe):
    default, cfg = exercises.usl_config("tiny"), exercises.usl_config("tiny", seed=2, recipe=recipe)
    assert default.arch == cfg.arch == "vit_tiny_ics" and default.seed == 0
    assert exercises.config_changes(to_dict(default), cfg) == {
        "seed": (0, 2), **{k: (getattr(default, k), v) for k, v in recipe.items()}}


def test_04_recipe_and_seed_are_recorded_by_the_usl_run(world, tmp_path):
    from reid_lab.usl import train_usl

    cfg = exercises.usl_config("smoke", seed=2, recipe=dict(memory_momentum=0.5, k1=6, k2=2, eps=0.5))
    train_usl(cfg, world, tmp_path / "usl", device="cpu", show_progress=False)
    saved = _recorded(tmp_path / "usl")
    assert (saved["memory_momentum"], saved["k1"], saved["seed"], saved["arch"]) == (0.5, 6, 2, "vit_tiny_ics")


def test_04_05_course_record_answers_only_its_own_seeds_and_recipe(tmp_path, monkeypatch, caplog):
    from reid_lab.usl import course

    summary = {"start": {"mAP": 0.1}, "end": {"mAP": 0.2}, "bn_only": {}, "history": [], "config": {}}
    record = {"runs": course.course_record({"usl_dino_ics": {0: summary, 1: summary},
                                            "usl_oracle_dino_ics": {0: summary}}), "recipe": {}}
    calls = []
    monkeypatch.setattr(course, "load_course", lambda profile: record)
    monkeypatch.setattr(course, "run_course_runs", lambda *a, **k: calls.append((a, k)) or {})
    names = ["usl_dino_ics", "usl_oracle_dino_ics"]
    assert course.train_or_load("tiny", tmp_path, "cpu", names=names, seeds=[0], overrides={})["source"] == "shipped"
    assert course.train_or_load("tiny", tmp_path, "cpu", names=names, seeds=[0],
                                overrides=dict(k1=12))["source"] == "shipped"  # the recipe's own value
    assert not calls
    with caplog.at_level(logging.WARNING, logger="reid_lab.usl.course"):
        live = course.train_or_load("tiny", tmp_path, "cpu", names=names, seeds=[0], overrides=dict(k1=30, k2=6))
        course.train_or_load("tiny", tmp_path, "cpu", names=names, seeds=[1], overrides={})
    assert live["source"] == "trained" and live["recipe"]["usl"]["k1"] == 30
    (args0, kw0), (args1, kw1) = calls
    assert args0[7] == dict(k1=30, k2=6) and args0[4] == [0] and kw0["exact_seeds"]
    assert args1[4] == [1] and kw1["exact_seeds"]  # the oracle trains with seed 1 too
    assert "k1=30" in caplog.text and "usl_oracle_dino_ics with seed(s) 1 (shipped seeds: 0)" in caplog.text


# ----------------------------------------------------------------------------------------------- 05 · UDA
def test_05_knobs_reach_every_source_and_uda_config():
    default = exercises.uda_plan("tiny")
    plan = exercises.uda_plan("tiny", seed=3, lr=3.5e-5, adabn=True, all_directions=True)
    assert plan.directions == [("market1501", "msmt17"), ("msmt17", "market1501")] and len(plan.runs) == 4
    assert set(plan.sources) == {(s, label) for s in ("market1501", "msmt17") for label in ("ViT", "ViT+ICS")}
    assert all(c.seed == 3 for c in plan.sources.values())
    for (src, tgt, label), cfg in plan.runs.items():
        assert (cfg.lr, cfg.adabn, cfg.seed, cfg.epochs) == (3.5e-5, True, 3, 1)
        assert (cfg.dataset, cfg.source_dataset, cfg.arch) == (tgt, src, plan.archs[label])
    first = ("market1501", "msmt17", "ViT+ICS")
    assert set(exercises.config_changes(to_dict(default.runs[first]), plan.runs[first])) == {"lr", "adabn", "seed"}
    full = exercises.uda_plan("full")
    assert full.runs["market1501", "msmt17", "ViT"].eps == 0.7 and len(full.runs) == 4  # full: both directions


def test_05_knobs_are_recorded_by_the_uda_run(world, source_run, tmp_path):
    from reid_lab.usl import train_uda

    _, source, _ = source_run
    plan = exercises.uda_plan("smoke", seed=4, lr=1e-3, adabn=True)
    cfg = plan.runs["market1501", "msmt17", "ViT"]
    result = train_uda(cfg, world, source / "checkpoint.pth", tmp_path / "uda", device="cpu", show_progress=False,
                       resume=exercises.resumable(tmp_path / "uda", cfg))
    saved = _recorded(tmp_path / "uda")
    assert (saved["lr"], saved["adabn"], saved["seed"]) == (1e-3, True, 4)
    assert result.bn_adapted  # the AdaBN start ran
    assert not exercises.resumable(tmp_path / "uda", exercises.uda_plan("smoke", seed=4).runs["market1501", "msmt17",
                                                                                               "ViT"])


def test_05_takes_notebook_03s_model_only_when_it_is_this_config(source_run):
    cfg03, out, _ = source_run
    saved = _recorded(out)
    plan = exercises.uda_plan("smoke", seed=1)
    asked = plan.sources["market1501", "ViT"]
    assert asked.arch == cfg03.arch and not exercises.same_config(saved, asked)  # notebook 03 ran with LR and EPOCHS
    assert exercises.same_config(to_dict(exercises.finetune_configs("smoke", seed=1)["DINO"]), asked)


# ----------------------------------------------------------------------------------------------- 06 · attention
def test_06_mass_images_and_control_ids_change_what_is_measured():
    query = [SimpleNamespace(pid=i // 3, path=f"{i}.jpg") for i in range(60)]  # 20 identities x 3 images
    assert len(exercises.attention_queries(query, 6)) == 6
    assert {s.pid for s in exercises.attention_queries(query, 6)} == {0, 3, 6, 10, 13, 16}  # spread over the split
    assert exercises.attention_queries(query, 0) == query
    assert exercises.control_ids(query, 5) == [0, 1, 2, 3, 4] and exercises.control_ids(query, 0) == list(range(20))


# ----------------------------------------------------------------------------------------------- the notebooks
KNOBS = {"02_dino_ics_pretraining": ["SEED", "RECIPE"], "03_supervised_reid": ["SEED", "LR", "EPOCHS", "FORCE_RETRAIN"],
         "04_usl_reid": ["SEED", "RECIPE"], "05_uda_reid": ["SEED", "LR", "ADABN", "ALL_DIRECTIONS"],
         "06_attention_visualization": ["MASS_IMAGES", "CONTROL_IDS"]}
CALLS = {"02_dino_ics_pretraining": "exercises.dino_configs(PROFILE, seed=SEED, recipe=RECIPE)",
         "03_supervised_reid": "exercises.finetune_configs(PROFILE, seed=SEED, lr=LR, epochs=EPOCHS)",
         "04_usl_reid": "exercises.usl_config(PROFILE, seed=SEED, recipe=RECIPE)",
         "05_uda_reid": "exercises.uda_plan(PROFILE, seed=SEED, lr=LR, adabn=ADABN, all_directions=ALL_DIRECTIONS)",
         "06_attention_visualization": "exercises.attention_queries(query, MASS_IMAGES)"}


@pytest.mark.parametrize("name", sorted(KNOBS))
def test_notebook_knobs_are_parameters_used_once_and_have_solutions(name):
    import papermill as pm

    path = NOTEBOOK_DIR / f"{name}.ipynb"
    assert set(KNOBS[name]) <= set(pm.inspect_notebook(str(path)))  # papermill can set each one
    cells = json.loads(path.read_text())["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    assert sum(CALLS[name] in c for c in code) == 1  # the configs are built once, from the parameters
    if name != "06_attention_visualization":  # 06 trains nothing; 02-05 resolve no training config again
        again = [c for c in code for stage in ("pretrain", "supervised", "usl", "uda")
                 if f'resolve("{stage}", PROFILE' in c]
        assert not again, again
    tried = next(t for t in ("".join(c["source"]) for c in cells if c["cell_type"] == "markdown") if "Try next" in t)
    tail = tried[tried.index("Try next"):]
    assert tail.count("<details><summary>Solution") >= len([k for k in KNOBS[name] if k not in ("SEED", "FORCE_RETRAIN")])
    assert tail.count("<details>") == tail.count("</details>")
