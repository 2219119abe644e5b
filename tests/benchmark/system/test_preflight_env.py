"""Values that can be checked before a run starts are checked then (issue 20, class 5): one
line, exit status 2, nothing written anywhere — instead of a failed run, an all-failed
leaderboard and exit status 1."""

from __future__ import annotations

import pytest

from benchmark.cli import main
from tests.benchmark.cli.cli_helpers import BASE, invoke, snapshot


def refused(tmp_path, capsys, argv, message, monkeypatch=None, env=None):
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    before = snapshot(tmp_path)
    capsys.readouterr()
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "method,message",
    [
        ("baseline[backbone=notanet]", "backbone='notanet' is not a timm model"),
        ("moddrop[backbone=resnet]", "backbone='resnet' is not a timm model"),
        ("stars[specific_backbone=resnet999]", "specific_backbone='resnet999'"),
        ("shaspec[backbone=ResNet18]", "backbone='ResNet18'"),
    ],
)
def test_an_unknown_backbone_is_refused_before_any_run(
    data_root, tmp_path, capsys, method, message
):
    out = tmp_path / "results"
    before = snapshot(tmp_path)
    capsys.readouterr()
    assert invoke(["--methods", method, "--missing", "none"], data_root, out) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
    assert snapshot(tmp_path) == before and not out.exists()


@pytest.mark.parametrize("seeds", ["-1", "4294967296", "99999999999", "0,1,-2", "1.5", "a"])
def test_out_of_range_seeds_are_refused(tmp_path, capsys, seeds):
    argv = [*BASE, "--seeds", seeds, "--out", str(tmp_path / "o")]
    refused(tmp_path, capsys, argv, "--seeds")


@pytest.mark.parametrize(
    "name,value,message",
    [
        ("MISSBENCH_PSA_KERNEL", "bogus", "expected auto, numba, numpy"),
        ("MISSBENCH_PSA_KERNEL", "NUMBA", "expected auto"),
        ("MISSBENCH_PROGRESS", "yes", "MISSBENCH_PROGRESS='yes'"),
        ("MISSBENCH_CACHE", "A_FILE", "is a file"),
        ("MISSBENCH_CACHE", "", "empty"),
        ("MISSBENCH_DATA", "A_FILE", "is a file"),
    ],
)
@pytest.mark.parametrize("command", [["run", "--methods", "stars"], ["list"], ["show-data"]])
def test_bad_environment_variables_are_one_line(
    tmp_path, capsys, monkeypatch, name, value, message, command
):
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    value = str(a_file) if value == "A_FILE" else value
    argv = [*command, "--out", str(tmp_path / "o")] if command[0] == "run" else command
    refused(tmp_path, capsys, argv, message, monkeypatch, {name: value})


def test_a_data_root_that_is_a_file_is_one_line(tmp_path, capsys):
    a_file = tmp_path / "data"
    a_file.write_text("x")
    for argv in (
        [*BASE, "--data-root", str(a_file), "--out", str(tmp_path / "o")],
        ["show-data", "--data-root", str(a_file)],
    ):
        refused(tmp_path, capsys, argv, "--data-root")


def test_synthetic_data_go_to_the_user_cache_when_the_data_root_is_read_only(tmp_path, monkeypatch):
    """(Tests run as root here, so read-only is simulated.)"""
    import datasets.synthetic as synthetic

    monkeypatch.setattr(synthetic, "writable", lambda path: False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    root = tmp_path / "readonly"
    options = synthetic.SyntheticOptions(tile_size=64, train_tiles=1, val_tiles=1, test_tiles=1)
    data = synthetic.SyntheticDataset(root, "test", options)
    assert str(data.cache_dir).startswith(str(tmp_path / "cache" / "missbench"))
    assert not root.exists() and len(data) == 1
