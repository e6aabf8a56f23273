"""The `keras-vs` command skeleton: help, errors and the `theory` demonstration."""

import json
import os
import subprocess
import sys

import pytest
from absl import flags

from keras_vs import cli


def _run(*args, timeout=120):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-m", "keras_vs.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )


def test_help_lists_every_registered_command():
    result = _run("--help")
    assert result.returncode == 0
    for name, cmd in cli.commands().items():
        assert f"  {name}" in result.stdout and cmd.summary in result.stdout


def test_no_command_prints_usage_and_fails():
    result = _run()
    assert result.returncode == 2 and "usage: keras-vs COMMAND" in result.stderr


def test_unknown_command_is_named_in_one_line():
    result = _run("frobnicate")
    assert result.returncode == 2
    # TensorFlow's C++ start-up lines may precede it; ours is the last line.
    assert result.stderr.strip().splitlines()[-1] == (
        f"keras-vs: unknown command 'frobnicate'. Commands: "
        f"{', '.join(sorted(cli.commands()))}. Run 'keras-vs --help'."
    )


def test_command_help_lists_its_flags_only():
    result = _run("theory", "--help")
    assert result.returncode == 0
    assert "--rates" in result.stdout and "--betas" in result.stdout
    assert "--helpfull" not in result.stdout


def test_bad_flag_value_gives_one_line_error_without_traceback():
    result = _run("theory", "--rates=0.1,abc")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Received: --rates=0.1,abc" in result.stderr


def test_out_of_range_rate_is_echoed():
    result = _run("theory", "--rates=1.5")
    assert result.returncode == 1 and "Received: rate=[1.5]" in result.stderr


def test_theory_json_reports_agreement_on_real_layers():
    result = _run("theory", "--json", "--samples=20000", "--rates=0.5", "--betas=0.3")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [r["layers"] for r in rows] == ["Dropout", "Uout", "Dropout->Dense(d=16)"]
    for row in rows:
        assert abs(row["relative_error"]) < 0.03, row


def test_theory_table_names_backend_and_layers():
    result = _run("theory", "--samples=5000", "--rates=0.3", "--betas=0.1")
    assert result.returncode == 0, result.stderr
    assert "backend " in result.stdout and "Uout" in result.stdout and "rate=0.3" in result.stdout


@pytest.fixture
def probe_command():
    """Registers a throwaway command that reads only --seed."""
    seen = []
    cli.command("probe-cmd", "test probe", ("seed",))(lambda args: seen.append(args))
    yield seen
    cli._COMMANDS.pop("probe-cmd")
    flags.FLAGS.unparse_flags()


def test_flag_of_another_command_is_rejected(probe_command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["keras-vs", "probe-cmd", "--rates=0.2"])
    assert exit_info.value.code == 1
    assert "--rates do not apply to 'probe-cmd'" in capsys.readouterr().err
    assert probe_command == []


def test_positional_arguments_reach_the_command(probe_command):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["keras-vs", "probe-cmd", "--seed=3", "model.keras"])
    assert exit_info.value.code == 0
    assert probe_command == [["model.keras"]]
