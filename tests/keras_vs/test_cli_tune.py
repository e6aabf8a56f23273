"""`keras-vs tune`: the search on the command line (tiny runs; the default run is timed in the report)."""

import json
import os
import subprocess
import sys

import pytest

from keras_vs import cli

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY = ("--take=64", "--epochs=1", "--max_trials=2", "--oracle=random")


def _run(*args, cwd, timeout=240):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=REPO)
    return subprocess.run(
        [sys.executable, "-m", "keras_vs.cli", "tune", *args],
        capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd,
    )


@pytest.fixture
def tune(monkeypatch, tmp_path):
    """Runs ``keras-vs tune ARGS`` in this process (absl flags parsed, then reset)."""
    monkeypatch.chdir(tmp_path)

    def run(*args):
        cli.FLAGS.unparse_flags()
        cli.FLAGS(["keras-vs tune", *args])
        try:
            return cli._run_command(cli.commands()["tune"], ["keras-vs tune"])
        finally:
            cli.FLAGS.unparse_flags()

    return run


def test_help_documents_the_search_flags():
    text = cli._command_help(cli.commands()["tune"])
    for flag in ("--model", "--dataset", "--oracle", "--max_trials", "--epochs", "--batch_size",
                 "--seed", "--directory", "--strategy"):
        assert f"  {flag}:" in text
    assert "(default: 'wrn-10-1')" in text and "(default: 'grid')" in text


@pytest.mark.slow
@pytest.mark.tf_only  # backend-agnostic, but XLA compiles each zoo trial for about a minute on JAX
def test_tune_prints_the_table_writes_files_and_resumes(tmp_path):
    result = _run(*TINY, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "max shift" in result.stdout and "best: trial" in result.stdout
    project = tmp_path / "keras_vs_tune" / "wrn-10-1-digits-random"
    for name in ("results.csv", "results.json", "results.png", "best_model.keras"):
        assert (project / name).is_file(), name
        assert f"wrote keras_vs_tune/wrn-10-1-digits-random/{name}" in result.stdout
    # The same command again resumes: both trials are kept, none is rerun.
    again = _run(*TINY, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "[keras-vs] trial" not in again.stdout  # no trial ran
    assert "2 trial(s)" in again.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (("--model=wrn-99-9",), "Unknown model"),
        (("--model=missing.keras",), "No such model file. Received: MODEL='missing.keras'"),
        (("--dataset=svhn",), "svhn"),
        (("--rate_choices=0.1,x",), "Received: --rate_choices=0.1,x"),
        (("--positions=after_bn",), "positions"),
        (("--dataset=cifar10", "--data_dir=nowhere"), "tfds build cifar10"),
    ],
)
def test_bad_input_is_a_one_line_error(tune, capsys, tmp_path, args, message):
    assert tune(*args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("keras-vs tune: error:") and message in err[-1]
    assert not (tmp_path / "keras_vs_tune").exists()


def _save_tiny(path):
    import keras

    x = keras.Input((8, 8, 1))
    y = keras.layers.Conv2D(4, 3, use_bias=False, name="conv")(x)
    y = keras.layers.Dropout(0.3, name="drop")(y)
    y = keras.layers.BatchNormalization(name="bn")(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    y = keras.layers.Dense(10, activation="softmax")(y)
    keras.Model(x, y, name="mine").save(path)


def test_tune_searches_a_users_saved_model(tune, capsys, tmp_path):
    path = tmp_path / "mine.keras"
    _save_tiny(path)
    before = path.read_bytes()
    assert tune(f"--model={path}", "--positions=after_bn", "--types=bernoulli", "--take=64",
                "--epochs=1", "--max_trials=1", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    (trial,) = report["trials"]
    assert trial["position"] == "after_bn" and trial["status"] == "COMPLETED"
    assert path.read_bytes() == before  # the user's file is untouched


def test_search_whose_trials_all_diverge_stops_with_a_one_line_error(tune, capsys, tmp_path):
    path = tmp_path / "mine.keras"
    _save_tiny(path)
    status = tune(f"--model={path}", "--learning_rate=1e30", "--take=64", "--epochs=3",
                  "--max_trials=3", "--oracle=grid")
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 1
    assert err[-1].startswith("keras-vs tune: error: the search stopped: Number of consecutive failures")
