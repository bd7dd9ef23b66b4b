"""The command line reports expected failures as one ``error:`` line plus a hint (issue 13, fix 6)."""
from pathlib import Path

import pytest

from reid_lab import cli
from reid_lab.config import ConfigError


@pytest.fixture(autouse=True)
def _no_repo_writes(tmp_path, monkeypatch):
    """Nothing a CLI test does may land in the checkout's data/ or runs/."""
    monkeypatch.setenv("REID_LAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("REID_LAB_RUNS", str(tmp_path / "runs"))


def _errors(capsys) -> list[str]:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith(("error:", "hint:"))]
    assert "Traceback" not in err
    return lines


@pytest.mark.parametrize("command", [
    ["pretrain", "--data", "."], ["train"], ["usl"], ["uda", "--source-checkpoint", "x.pth"],
])
def test_config_errors_are_one_line_for_every_trainer(command, capsys):
    assert cli.main([*command, "--profile", "smoke", "--set", "epochs='ten'"]) == 2
    error, hint = _errors(capsys)
    assert error.startswith("error: invalid ") and "epochs='ten' (str): expected a positive int" in error
    assert hint.startswith("hint: ") and "--debug" in hint


def test_debug_shows_the_exception_and_unknown_keys_are_config_errors(capsys):
    with pytest.raises(ConfigError, match="base_lr='fast'"):
        cli.main(["train", "--profile", "smoke", "--set", "base_lr='fast'", "--debug"])
    assert cli.main(["usl", "--profile", "smoke", "--set", "epss=0.5"]) == 2
    assert _errors(capsys)[0].startswith("error: unknown usl config key(s) ['epss']; valid keys:")


def test_checkpoint_error_names_the_path(tmp_path, capsys):
    bad = tmp_path / "model.pth"
    bad.write_bytes(b"\x00garbage" * 20)
    assert cli.main(["evaluate", "--profile", "smoke", "--checkpoint", str(bad)]) == 2
    error, hint = _errors(capsys)
    assert error == f"error: checkpoint {bad} is not a PyTorch checkpoint (it starts with bytes b'\\x00gar', " \
                    "expected a zip archive b'PK\\x03\\x04'); corrupt or another format"
    assert "checkpoint path" in hint


def test_ctrl_c_in_a_trainer_is_one_line(tmp_path, monkeypatch, capsys):
    import reid_lab.ssl.train

    seen = []

    def interrupted(cfg, *args, **kwargs):
        seen.append(cfg)
        raise KeyboardInterrupt

    monkeypatch.setattr(reid_lab.ssl.train, "pretrain", interrupted)
    assert cli.main(["pretrain", "--profile", "smoke", "--data", str(tmp_path), "--jitter-strength", "0.5",
                     "--keep-num", "7"]) == 130
    assert (seen[0].jitter_strength, seen[0].keep_num) == (0.5, 7)  # flags reach the config the checkpoint records
    assert _errors(capsys) == ["error: interrupted (Ctrl-C)",
                               "hint: the last finished epoch's checkpoint is intact: continue with --resume "
                               "(--debug shows the traceback)"]


def test_info_and_trainers_take_msmt_version(tmp_path: Path, make_msmt, capsys):
    root = tmp_path / "MSMT17"
    make_msmt(root, "V1")
    make_msmt(root, "V2")
    assert cli.main(["info", "--dataset", "msmt17", "--root", str(root)]) == 2
    assert "--msmt-version v1|v2" in _errors(capsys)[0]
    assert cli.main(["info", "--dataset", "msmt17", "--root", str(root), "--msmt-version", "v2"]) == 0
    assert "MSMT17 V2" in capsys.readouterr().out
    parser = cli.build_parser()
    for command in ("train", "evaluate", "usl", "uda"):
        extra = ["--checkpoint", "m.pth"] if command == "evaluate" else ["--source-checkpoint", "m.pth"] * (
            command == "uda")
        assert parser.parse_args([command, *extra, "--msmt-version", "v1"]).msmt_version == "v1"


def test_worker_tracebacks_shrink_to_the_original_message():
    wrapped = ValueError("Caught DatasetError in DataLoader worker process 0.\nOriginal Traceback (most recent call "
                         "last):\n  File \"x.py\", line 1, in f\nreid_lab.data.base.DatasetError: cannot read image "
                         "'a.jpg': broken data stream\n")
    assert cli._one_line(wrapped) == "reid_lab.data.base.DatasetError: cannot read image 'a.jpg': broken data stream"


def test_pretrain_probe_flags_build_a_probe_on_a_market_folder(tmp_path, monkeypatch, market_parent):
    import reid_lab.ssl.train

    seen = {}

    def fake_pretrain(cfg, *args, probe=None, probe_every=None, **kwargs):
        seen.update(probe=probe, every=probe_every, size=cfg.global_size)
        raise KeyboardInterrupt

    monkeypatch.setattr(reid_lab.ssl.train, "pretrain", fake_pretrain)
    market = market_parent / "market1501"
    assert cli.main(["pretrain", "--profile", "smoke", "--data", str(tmp_path), "--probe", str(market),
                     "--probe-every", "7", "--probe-ids", "2"]) == 130
    assert seen["every"] == 7 and seen["probe"].num_ids == 2 and seen["probe"].image_size == tuple(seen["size"])
