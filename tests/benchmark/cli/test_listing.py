"""`list` and the top-level help as a new user meets them: every sub-command in `--help`, names
never cut in piped output, and `list METHOD` for a method's hyperparameters."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from benchmark.cli import COMMANDS, main
from benchmark.core.method import COMMON_HPARAMS
from benchmark.core.plugins import METHODS
from benchmark.system.errors import BenchmarkError
from tests.paths import REPO

LONG_METHOD = "toy_plugin_method_with_a_name_longer_than_any_column_of_80"
LONG_HPARAM = "aux_weight_of_the_auxiliary_logits_head"

PLUGIN_SCRIPT = textwrap.dedent(
    f'''
    """A plugin's method with long names, then `list` (as `run_benchmark.py list` is run)."""

    import sys

    from benchmark.api import HParam, Method, Search, register_method
    from benchmark.cli import main


    @register_method("{LONG_METHOD}")
    class LongNames(Method):
        """A method whose names are longer than a narrow table column."""

        SUMMARY = "A stand-in with long names."
        MISSING_MODALITY = "zero-fills it"
        DEVIATIONS = ("A test stand-in, not a method.",)
        HPARAMS = {{
            "{LONG_HPARAM}": HParam(
                0.5, "weight of the auxiliary head", low=0.0, high=10.0,
                search=Search.log_uniform(0.05, 5.0),
            )
        }}

        def update(self, batch, step):
            raise NotImplementedError

        def predict(self, inputs):
            raise NotImplementedError


    if __name__ == "__main__":
        sys.exit(main(sys.argv[1:]))
    '''
)


@pytest.mark.parametrize("flags", [["--help"], ["-h"], ["--debug", "--help"]])
def test_top_level_help_lists_every_sub_command(flags, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(flags)
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith("usage: run_benchmark.py [-h] [--debug] COMMAND")
    listed = {line.split()[0] for line in text.splitlines() if line.startswith("    ")}
    assert set(COMMANDS) <= listed, set(COMMANDS) - listed


def test_run_help_names_every_other_sub_command(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the description
    assert all(f"`{command}`" in text for command in COMMANDS if command != "run")


def test_piped_list_shows_every_name_whole(tmp_path):
    """Rich renders a pipe 80 columns wide and used to cut names (`toy_plugin_…`)."""
    script = tmp_path / "long_names.py"
    script.write_text(PLUGIN_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "FORCE_COLOR", "TERM")}
    env["OMP_NUM_THREADS"] = "1"
    for args, names in (
        (["list"], [LONG_METHOD, LONG_HPARAM, *METHODS.names()]),
        (["list", LONG_METHOD], [LONG_HPARAM, *COMMON_HPARAMS]),
    ):
        result = subprocess.run(
            [sys.executable, str(script), *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        assert "…" not in result.stdout  # no cell cut to an ellipsis, names or not
        for name in names:
            assert f"`{name}`" in result.stdout, (args, name)


def test_list_method_prints_its_hyperparameters_with_defaults_ranges_and_help(capsys):
    space = METHODS.get("stars").hparam_space()
    assert main(["list", "stars", "--markdown"]) == 0
    rows = {
        line.split(" | ")[0].strip("| `"): line.split(" | ")
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("| `")
    }
    assert set(rows) == set(space)  # its own and the common ones, each once
    for name, hparam in space.items():
        _, _, valid, searched, what = (cell.strip(" |") for cell in rows[name])
        assert what == hparam.help and valid == hparam.valid_values()
        assert (searched == "—") == (hparam.search is None)
    cells = {name: [cell.strip(" |") for cell in row] for name, row in rows.items()}
    assert cells["weight_decay"][1:3] == ["0.0001", "a number in [0, 1]"]
    assert cells["crop_size"][2] == "an integer >= 32"
    assert cells["class_weighting"][2] == "one of none, inv_sqrt_freq"
    default, searched = cells["lr"][1], cells["lr"][3]  # a preset sets it: the range is relative
    assert default.startswith("0.001 (") and "paper: 0.0006" in default and "x[0.316" in searched


def test_list_an_unknown_method_names_the_valid_ones(capsys):
    assert main(["list", "no_such_method"]) == 2
    line = capsys.readouterr().err.strip()
    assert "no_such_method" in line and "stars" in line and "\n" not in line


def test_list_method_with_a_rewrite_flag_is_refused(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("unchanged\n")
    with pytest.raises(BenchmarkError, match="drop the method name"):
        main(["list", "stars", "--update-readme", str(readme), "--debug"])
    assert readme.read_text() == "unchanged\n"
