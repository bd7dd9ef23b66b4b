"""Profiles and paths (issue: foundation §2)."""
import dataclasses

import pytest

from reid_lab import config, paths


def test_full_profile_holds_the_papers_values():
    sup = config.resolve("supervised", "full")
    assert (sup.base_lr, sup.epochs, sup.warmup_epochs, sup.batch_size, sup.num_instances) == (4e-4, 120, 20, 64, 4)
    usl = config.resolve("usl", "full")
    assert (usl.eps, usl.k1, usl.k2, usl.temperature, usl.memory_momentum, usl.lr) == (0.6, 30, 6, 0.05, 0.2, 3.5e-4)
    pre = config.resolve("pretrain", "full")
    assert (pre.out_dim, pre.teacher_temp, pre.local_crops_number, pre.global_size) == (65536, 0.04, 8, (256, 128))


def test_profiles_differ_and_are_frozen():
    tiny, full = config.resolve("data", "tiny"), config.resolve("data", "full")
    assert tiny.synthetic and not full.synthetic
    assert tiny.market_train_ids < full.market_train_ids
    with pytest.raises(dataclasses.FrozenInstanceError):
        tiny.height = 3


def test_overrides_apply_and_unknown_keys_name_the_valid_ones():
    assert config.resolve("usl", "tiny", eps=0.7).eps == 0.7
    with pytest.raises(KeyError, match="valid keys: .*eps"):
        config.resolve("usl", "tiny", epss=0.7)
    with pytest.raises(KeyError, match="valid stages"):
        config.resolve("pretraining", "tiny")
    with pytest.raises(ValueError, match="valid profiles"):
        config.resolve("usl", "huge")


def test_every_profile_resolves_for_every_stage():
    for stage in config.STAGES:
        for profile in config.PROFILES:
            assert dataclasses.is_dataclass(config.resolve(stage, profile))


def test_paths_default_to_the_repository_not_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.delenv("REID_LAB_DATA", raising=False)
    monkeypatch.delenv("REID_LAB_RUNS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert paths.data_root() == paths.repo_root() / "data"
    assert paths.runs_root() == paths.repo_root() / "runs"
    assert (paths.repo_root() / "pyproject.toml").is_file()


def test_paths_follow_environment_then_explicit(tmp_path, monkeypatch):
    monkeypatch.setenv("REID_LAB_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("REID_LAB_RUNS", str(tmp_path / "r"))
    assert paths.data_root() == tmp_path / "d"
    assert paths.runs_root() == tmp_path / "r"
    assert paths.data_root(tmp_path / "x") == tmp_path / "x"
    assert paths.synthetic_root("tiny") == tmp_path / "d" / "synthetic" / "tiny"
    assert paths.run_dir("smoke", "00", tmp_path / "y").is_dir()


def test_parse_overrides_reads_literals_and_bare_strings():
    assert config.parse_overrides(["base_lr=0.1", "arch=vit_tiny", "global_size=(64, 32)"]) == {
        "base_lr": 0.1, "arch": "vit_tiny", "global_size": (64, 32)}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        config.parse_overrides(["oops"])


@pytest.mark.parametrize("stage, override, expected", [
    ("pretrain", {"epochs": "ten"}, r"epochs='ten' \(str\): expected a positive int"),
    ("pretrain", {"base_lr": "fast"}, r"base_lr='fast' \(str\): expected a finite float"),
    ("supervised", {"epochs": -3}, r"epochs=-3 \(int\): expected a positive int"),
    ("supervised", {"base_lr": -0.1}, r"base_lr=-0.1 \(float\): expected a non-negative float"),
    ("usl", {"eps": 1.5}, r"eps=1.5 \(float\): expected a float in \[0, 1\]"),
    ("usl", {"k1": True}, r"k1=True \(bool\): expected a positive int"),
    ("pretrain", {"global_size": (64,)}, r"global_size=\(64,\) \(tuple\): expected a tuple of 2 \(int, int\)"),
    ("pretrain", {"keep_ratio": "all"}, r"keep_ratio='all' .*expected a finite float or None"),
    ("supervised", {"rerank": "yes"}, r"rerank='yes' \(str\): expected True or False"),
    ("data", {"num_workers": -1}, r"num_workers=-1 \(int\): expected a non-negative int"),
])
def test_resolve_rejects_wrong_types_and_ranges(stage, override, expected):
    with pytest.raises(config.ConfigError, match=expected):
        config.resolve(stage, "tiny", **override)


def test_resolve_accepts_none_ints_for_floats_and_lists_for_tuples():
    cfg = config.resolve("pretrain", "tiny", keep_ratio=None, base_lr=1, global_size=[64, 32], warmup_epochs=0)
    assert cfg.keep_ratio is None and cfg.base_lr == 1.0 and isinstance(cfg.base_lr, float)
    assert cfg.global_size == (64, 32) and cfg.warmup_epochs == 0
    assert config.resolve("supervised", "tiny", triplet_margin=None).triplet_margin is None
    assert config.resolve("supervised", "tiny", triplet_margin=0.3).triplet_margin == 0.3
