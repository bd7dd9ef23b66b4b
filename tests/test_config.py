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
