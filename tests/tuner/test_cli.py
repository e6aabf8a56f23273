"""`keras-vs tune`: the search on the command line (tiny runs; the default run is timed in CI)."""

import hashlib
import json
import os
import subprocess
import sys

import keras
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
def tune(monkeypatch, tmp_path, keras_vs_cli):
    """Runs ``keras-vs tune ARGS`` in this process, in an empty folder."""
    monkeypatch.chdir(tmp_path)
    for name in ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT"):
        monkeypatch.delenv(name, raising=False)
    return lambda *args: keras_vs_cli("tune", *args)


def _save_tiny(path, compiled=False):
    x = keras.Input((8, 8, 1))
    y = keras.layers.Conv2D(4, 3, use_bias=False, name="conv")(x)
    y = keras.layers.Dropout(0.3, name="drop")(y)
    y = keras.layers.BatchNormalization(name="bn")(y)
    y = keras.layers.GlobalAveragePooling2D()(y)
    y = keras.layers.Dense(10, activation=None if compiled else "softmax")(y)
    model = keras.Model(x, y, name="mine")
    if compiled:
        model.compile(keras.optimizers.Adam(0.01),
                      keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.save(path)
    return path


def test_tune_is_found_through_the_entry_point_group():
    command = cli.load_command("tune", cli.command_targets()["tune"])
    assert command.name == "tune" and command.run.__module__ == "tuner.cli"


def test_help_documents_the_search_flags(keras_vs_cli):
    code, text, _ = keras_vs_cli("tune", "--help")
    assert code == 0
    for flag in ("--model", "--data", "--oracle", "--objective", "--max_trials", "--epochs", "--batch_size",
                 "--seed", "--directory", "--strategy", "--loss", "--optimizer", "--fit_verbose",
                 "--[no]restart", "--[no]unsafe", "--[no]from_logits"):
        assert f"  {flag}:" in text, flag
    block = text.split("  --model: ", 1)[1].split("\n  --", 1)[0]
    assert "(default: 'wrn-10-1')" in block
    assert "(default: '')" not in text


@pytest.mark.parametrize(
    "args, message",
    [
        (("--model=missing.keras",), "No such model file. Received: MODEL='missing.keras'"),
        (("--data=svhn",), "svhn"),
        (("--positions=after_bn",), "Expected each of none, before_bn, before_conv"),
        (("--optimizer=adamz",), "Unknown optimizer"),
        pytest.param(("--data=cifar10", "--data_dir=nowhere"), "tfds build cifar10",
                     marks=pytest.mark.requires("tensorflow_datasets")),
    ],
)
def test_bad_input_is_a_one_line_error(tune, tmp_path, args, message):
    code, out, err = tune(*args)
    assert code == 1, err
    (line,) = err.strip().splitlines()
    assert line.startswith("keras-vs tune: error:") and message in line
    assert not (tmp_path / "keras_vs_tune").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (("--model=wrn-99-9",), "Unknown model"),
        (("--rate_choices=0.1,x",), "Received: --rate_choices=0.1,x"),
        (("--types=gaussian",), "Expected each of bernoulli, uout"),
        (("extra",), "'tune' takes no positional arguments. Received: ['extra']"),
        (("--data=digits", "--dataset=cifar10"), "Received: --data=digits --dataset=cifar10"),
    ],
)
def test_bad_command_line_exits_2_in_one_line(tune, tmp_path, args, message):
    code, _, err = tune(*args)
    assert code == 2, err
    (line,) = err.strip().splitlines()
    assert line.startswith("keras-vs tune: error:") and message in line
    assert not (tmp_path / "keras_vs_tune").exists()


def test_old_dataset_flag_still_works_with_a_deprecation_note(tune):
    code, _, err = tune("--dataset=svhn")
    lines = err.strip().splitlines()
    assert code == 1 and "svhn" in lines[-1]
    assert lines[0] == "keras-vs tune: warning: --dataset is deprecated; use --data=svhn"


def test_bad_flag_value_is_a_usage_error(tune):
    code, _, err = tune("--oracle=sobol")
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("keras-vs tune: error: flag --oracle=sobol")


def test_changed_settings_name_the_restart_flag(tune, tmp_path, unchanged_files):
    path = _save_tiny(tmp_path / "mine.keras")
    unchanged_files(path)
    common = (f"--model={path}", "--positions=remove", "--take=32", "--max_trials=1", "--json")
    assert tune(*common, "--epochs=1")[0] == 0
    code, _, err = tune(*common, "--epochs=2")
    assert code == 1
    (line,) = err.strip().splitlines()
    assert "epochs: 1 -> 2" in line and "--restart" in line and "--overwrite" not in line
    assert tune(*common, "--epochs=2", "--restart")[0] == 0


def _digests(folder):
    """sha256 of every file under ``folder``."""
    return {
        os.path.relpath(os.path.join(root, name), folder):
            hashlib.sha256(open(os.path.join(root, name), "rb").read()).hexdigest()
        for root, _, names in os.walk(folder) for name in names
    }


# The smallest search: one trial of one position on 32 examples.
ONE_TRIAL = ("--positions=remove", "--take=32", "--max_trials=1", "--epochs=1", "--json")


def test_another_model_of_the_same_name_never_resumes_its_search(tmp_path):
    a = _save_tiny(tmp_path / "a.keras")
    b = _save_tiny(tmp_path / "b.keras")  # also Keras name "mine"; other weights
    first = _run(f"--model={a}", *ONE_TRIAL, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    project = os.path.join(tmp_path, json.loads(first.stdout)["project_dir"])
    before = _digests(project)
    second = _run(f"--model={b}", *ONE_TRIAL, cwd=tmp_path)
    assert second.returncode == 1 and second.stdout == ""
    line = second.stderr.strip().splitlines()[-1]
    assert line.startswith("keras-vs tune: error: The search in") and "is of another model" in line
    assert f"from {a}" in line and f"from {b}" in line and "--project" in line
    assert _digests(project) == before


def test_restart_never_deletes_another_models_search(tune, tmp_path):
    a = _save_tiny(tmp_path / "a.keras")
    b = _save_tiny(tmp_path / "b.keras")
    code, out, err = tune(f"--model={a}", *ONE_TRIAL)
    assert code == 0, err
    project = json.loads(out)["project_dir"]
    before = _digests(project)
    code, _, err = tune(f"--model={b}", *ONE_TRIAL, "--restart")
    (line,) = err.strip().splitlines()
    assert code == 1 and "is of another model" in line
    assert _digests(project) == before


def test_another_model_searches_in_the_project_it_is_given(tune, tmp_path):
    a = _save_tiny(tmp_path / "a.keras")
    b = _save_tiny(tmp_path / "b.keras")
    code, out, err = tune(f"--model={a}", *ONE_TRIAL)
    assert code == 0, err
    first = json.loads(out)["project_dir"]
    before = _digests(first)
    code, out, err = tune(f"--model={b}", *ONE_TRIAL, "--project=b")
    assert code == 0, err
    report = json.loads(out)
    assert report["project_dir"] != first and [t["status"] for t in report["trials"]] == ["COMPLETED"]
    assert _digests(first) == before


def test_tune_searches_a_users_saved_model_with_its_own_training(tune, tmp_path, unchanged_files):
    path = _save_tiny(tmp_path / "mine.keras", compiled=True)
    unchanged_files(path)
    code, out, err = tune(f"--model={path}", "--positions=after_bn", "--types=bernoulli",
                          "--take=64", "--epochs=1", "--max_trials=1", "--json")
    assert code == 0, err
    report = json.loads(out)
    (trial,) = report["trials"]
    assert trial["position"] == "after_bn" and trial["status"] == "COMPLETED"
    with open(os.path.join(report["project_dir"], "search_config.json")) as f:
        training = json.load(f)["training"]
    assert training["optimizer"]["class_name"] == "Adam"
    assert training["loss"]["config"]["from_logits"] is True


def test_search_whose_trials_all_diverge_stops_with_a_one_line_error(tune, tmp_path):
    path = _save_tiny(tmp_path / "mine.keras")
    code, _, err = tune(f"--model={path}", "--learning_rate=1e30", "--take=64", "--epochs=3",
                        "--max_trials=3", "--oracle=grid")
    assert code == 1
    assert err.strip().splitlines()[-1].startswith(
        "keras-vs tune: error: the search stopped: Number of consecutive failures")


def test_search_without_a_completed_trial_exits_non_zero(tune, tmp_path):
    path = _save_tiny(tmp_path / "mine.keras")
    code, out, err = tune(f"--model={path}", "--learning_rate=1e30", "--take=64", "--epochs=2",
                          "--max_trials=1", "--positions=remove", "--json")
    assert code == 1
    assert [t["status"] for t in json.loads(out)["trials"]] == ["FAILED"]
    # stdout is the JSON alone; keras' divergence notice went to stderr, our error is last.
    assert err.strip().splitlines()[-1].startswith("keras-vs tune: error: no trial completed")


@pytest.mark.slow
@pytest.mark.tf_only  # backend-agnostic, but XLA compiles each zoo trial for about a minute on JAX
def test_tune_prints_the_table_writes_files_and_resumes(tmp_path):
    result = _run(*TINY, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "max shift" in result.stdout and "best: Trial #" in result.stdout
    # keras-tuner and keras-vs number the trials the same way.
    assert "Running Trial #1" in result.stdout and "[keras-vs] Trial #1 (trial_id 0:" in result.stdout
    project = tmp_path / "keras_vs_tune" / "wrn-10-1-digits-random"
    for name in ("results.csv", "results.json", "results.png", "best_model.keras"):
        assert (project / name).is_file(), name
        assert f"wrote keras_vs_tune/wrn-10-1-digits-random/{name}" in result.stdout
    # The same command again resumes: both trials are kept, none is rerun.
    again = _run(*TINY, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "[keras-vs] Trial" not in again.stdout  # no trial ran
    assert "2 trial(s)" in again.stdout


def test_dtype_policy_trains_the_zoo_model_in_mixed_precision(tune, tmp_path):
    code, out, err = tune("--model=wrn-10-1", "--dtype_policy=mixed_bfloat16", "--positions=before_bn",
                          "--types=bernoulli", "--rate_choices=0.2", "--take=32", "--max_trials=1",
                          "--epochs=1", "--json")
    assert code == 0, err
    report = json.loads(out)
    (trial,) = report["trials"]
    assert trial["status"] == "COMPLETED" and trial["variance_shift_max"] > 0
    with open(os.path.join(report["project_dir"], "search_config.json")) as f:
        assert json.load(f)["model_options"] == {"dtype_policy": "mixed_bfloat16"}
    best = keras.saving.load_model(os.path.join(report["project_dir"], "best_model.keras"))
    # The layers keep their policies in the file (Keras reloads a model's own policy as the global one).
    assert best.get_layer("stem_conv").dtype_policy.name == "mixed_bfloat16"
    assert best.get_layer("predictions").compute_dtype == "float32"
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left as it was


def test_dtype_policy_is_refused_for_a_saved_model_and_checked(tune, tmp_path):
    path = _save_tiny(tmp_path / "mine.keras")
    code, _, err = tune(f"--model={path}", "--dtype_policy=mixed_float16")
    (line,) = err.strip().splitlines()
    assert code == 2 and "--dtype_policy applies to zoo models" in line
    assert f"Received: --dtype_policy=mixed_float16 --model={path}" in line
    code, _, err = tune("--dtype_policy=float8")
    (line,) = err.strip().splitlines()
    assert code == 2 and line.startswith("keras-vs tune: error: flag --dtype_policy=float8")
    assert not (tmp_path / "keras_vs_tune").exists()


def test_data_of_another_shape_is_one_line_before_any_trial(tune, tmp_path):
    import numpy as np

    path = _save_tiny(tmp_path / "mine.keras")
    np.savez(tmp_path / "big.npz", x=np.zeros((40, 12, 12, 1), "float32"), y=np.arange(40) % 10)
    code, out, err = tune(f"--model={path}", f"--data={tmp_path / 'big.npz'}", *TINY)
    (line,) = err.strip().splitlines()
    assert code == 1 and line.startswith("keras-vs tune: error: The data does not fit")
    assert out.splitlines() == [f"[keras-vs] loading {tmp_path / 'big.npz'}"]  # no trial ran
    assert not (tmp_path / "keras_vs_tune").exists()
