"""tuner.driver: end-to-end searches on the digits set, failures, seeding, resuming."""

import csv
import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import warnings

import keras
import numpy as np
import pytest

import keras_vs as kvs
import tuner
from keras_vs import data
from tuner import project as project_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Builds the same tiny conv -> dropout -> BN network in tests and subprocesses.
TINY_SOURCE = textwrap.dedent(
    """
    import keras

    def tiny(shape=(8, 8, 1)):
        # The same weights every call: a rebuilt tiny() is the same model, whose search resumes.
        keras.utils.set_random_seed(0)
        x = keras.Input(shape, name="x")
        y = keras.layers.Conv2D(8, 3, use_bias=False, name="conv")(x)
        y = keras.layers.Dropout(0.3, name="drop")(y)
        y = keras.layers.BatchNormalization(name="bn")(y)
        y = keras.layers.ReLU(name="relu")(y)
        y = keras.layers.GlobalAveragePooling2D(name="pool")(y)
        y = keras.layers.Dense(10, activation="softmax", name="predictions")(y)
        return keras.Model(x, y, name="tiny")
    """
)
_namespace = {}
exec(TINY_SOURCE, _namespace)  # noqa: S102  (our own constant source)
tiny = _namespace["tiny"]

FAST = dict(take=128, epochs=1, probe_size=64, verbose=0)
# The record each setting below is a field of (field names are unique across them).
_RECORDS = {"space": tuner.SearchSpace, "training": tuner.TrainingConfig, "data": tuner.DataConfig,
            "run": tuner.RunConfig, "project": tuner.ProjectConfig}


def _records(**settings):
    """`tuner.search`'s records, from their fields by name."""
    out = {}
    for keyword, record in _RECORDS.items():
        fields = {f.name for f in dataclasses.fields(record)}
        given = {k: settings.pop(k) for k in list(settings) if k in fields}
        out[keyword] = record(**given) if given else None
    assert not settings, settings
    return out


def _search(tmp_path, model=None, dataset="digits", **settings):
    args = {**FAST, "oracle": "grid", "max_trials": 2, "directory": str(tmp_path), **settings}
    return tuner.search(tiny() if model is None else model, dataset, **_records(**args))


def test_two_trial_search_writes_table_files_and_best_model(tmp_path):
    result = _search(tmp_path, oracle="random")
    assert [r["status"] for r in result.rows] == ["COMPLETED", "COMPLETED"]
    for row in result.rows:
        assert 0.0 <= row["val_accuracy"] <= 1.0
        assert 0.0 <= row["train_mode_accuracy"] <= 1.0 and 0.0 <= row["inference_accuracy"] <= 1.0
    assert sorted(os.path.basename(p) for p in result.files.values()) == sorted(project_lib.RESULT_FILES)
    with open(result.files["csv"]) as f:
        assert [r["trial_id"] for r in csv.DictReader(f)] == ["0", "1"]
    with open(result.files["json"]) as f:
        assert json.load(f)["best"]["trial_id"] == result.best["trial_id"]
    # The exported model is the best trial's trained network.
    best = keras.saving.load_model(result.files["model"])
    x_val, y_val = data.load("digits", "test")
    accuracy = np.mean(np.argmax(best.predict(x_val, verbose=0), axis=-1) == y_val)
    assert accuracy == pytest.approx(result.best["val_accuracy"], abs=1e-6)
    # Its recorded shift is the statistic of that network on the probe (the
    # first probe_size training examples).
    shift = kvs.measure_variance_shift(best, data.load("digits", "train")[0][: FAST["probe_size"]])
    assert result.best["variance_shift_max"] == pytest.approx(shift.max(), rel=1e-5)
    assert result.best["variance_shift_mean"] == pytest.approx(shift.mean(), rel=1e-5)
    assert "max shift" in result.table() and result.best["position"] in result.table()
    # The exported model loads without a word about skipped optimizer variables.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        keras.saving.load_model(result.files["model"])
    assert [str(w.message) for w in caught if "optimizer" in str(w.message)] == []


def test_result_loads_the_trained_model_of_a_trial(tmp_path):
    result = _search(tmp_path, max_trials=1)
    model = result.load_model(result.rows[0]["trial_id"])
    x_val, y_val = data.load("digits", "test")
    accuracy = np.mean(np.argmax(model.predict(x_val, verbose=0), axis=-1) == y_val)
    assert accuracy == pytest.approx(result.rows[0]["val_accuracy"], abs=1e-6)
    with pytest.raises(ValueError, match="Received: trial_id='99'"):
        result.load_model("99")
    # keras-tuner's ids are strings; the same number as an int names the same trial.
    by_int = result.load_model(int(result.rows[0]["trial_id"]))
    np.testing.assert_allclose(by_int.predict(x_val[:8], verbose=0), model.predict(x_val[:8], verbose=0))


def test_each_trial_records_shift_history_next_to_accuracy(tmp_path):
    result = _search(tmp_path, max_trials=1, epochs=2)
    record = project_lib.read_trial_file(os.path.join(result.project_dir, "trial_0"))
    assert record["status"] == "COMPLETED" and record["tuner_id"] == "tuner0"
    assert len(record["history"]["variance_shift/max"]) == 2
    assert len(record["history"]["val_accuracy"]) == 2
    assert record["metrics"]["variance_shift_max"] == record["history"]["variance_shift/max"][-1]
    assert record["metrics"]["inconsistency_gap"] == pytest.approx(
        record["metrics"]["train_mode_accuracy"] - record["metrics"]["inference_accuracy"]
    )


class _PoisonFirstTrial(keras.callbacks.Callback):
    """Breaks the first trial it is copied into: NaN weights or an out-of-memory error."""

    calls = {"n": 0}

    def __init__(self, how):
        super().__init__()
        self.how = how

    def on_train_begin(self, logs=None):
        self.calls["n"] += 1
        if self.calls["n"] == 1 and self.how == "oom":
            raise MemoryError("simulated: out of memory")

    def on_epoch_begin(self, epoch, logs=None):
        if self.calls["n"] == 1 and self.how == "nan":
            kernel = self.model.get_layer("conv").kernel
            kernel.assign(np.full(kernel.shape, np.nan, "float32"))


@pytest.mark.parametrize("how,reason", [("nan", "diverged"), ("oom", "out of memory")])
def test_failed_trial_is_marked_and_the_search_continues(tmp_path, how, reason):
    _PoisonFirstTrial.calls["n"] = 0
    result = _search(tmp_path, callbacks=[_PoisonFirstTrial(how)])
    assert [r["status"] for r in result.rows] == ["FAILED", "COMPLETED"]
    assert reason in result.rows[0]["message"]
    assert result.best["trial_id"] == result.rows[1]["trial_id"]


@pytest.mark.tf_only
def test_tfds_data_set_runs_through_the_tf_data_pipeline(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    with tfds.testing.mock_data(num_examples=48):
        result = tuner.search(tiny((32, 32, 3)), "cifar10", **_records(
            oracle="grid", max_trials=1, epochs=1, batch_size=16, probe_size=32, directory=str(tmp_path), verbose=0,
        ))
    (row,) = result.rows
    assert row["status"] == "COMPLETED" and row["variance_shift_max"] is not None
    record = project_lib.read_trial_file(os.path.join(result.project_dir, "trial_0"))
    assert record["history"]["loss"] and 0.0 <= row["val_accuracy"] <= 1.0


@pytest.mark.parametrize("oracle", ["bayesian", "hyperband"])
def test_model_based_oracles_drive_the_same_trials(tmp_path, oracle):
    result = _search(tmp_path, oracle=oracle, epochs=2, max_trials=2)
    assert result.rows and all(r["status"] == "COMPLETED" for r in result.rows)
    assert all(r["variance_shift_max"] is not None for r in result.rows)
    if oracle == "hyperband":
        epochs = [
            len(project_lib.read_trial_file(os.path.join(result.project_dir, f"trial_{r['trial_id']}"))["history"]["loss"])
            for r in result.rows
        ]
        assert set(epochs) <= {1, 2}  # Hyperband sets each trial's budget


def test_same_seed_reproduces_the_search(tmp_path):
    model = tiny()  # a user's model: every trial starts from its weights
    runs = [
        tuner.search(model, "digits", **_records(oracle="random", max_trials=2, seed=3, directory=str(tmp_path / d),
                                                 **FAST))
        for d in ("a", "b")
    ]
    keys = ("position", "type", "rate", "val_accuracy", "variance_shift_max", "train_mode_accuracy")
    first, second = ([{k: r[k] for k in keys} for r in run.rows] for run in runs)
    assert [r["position"] for r in first] == [r["position"] for r in second]
    for a, b in zip(first, second):
        for k in keys:
            assert a[k] == pytest.approx(b[k], abs=1e-6), k


def test_refuses_a_folder_it_did_not_write(tmp_path):
    project = tmp_path / "mine"
    project.mkdir()
    (project / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="did not write"):
        _search(tmp_path, name="mine", overwrite=True)
    assert (project / "notes.txt").read_text() == "keep me"


def test_other_arrays_never_resume_a_search_of_arrays(tmp_path):
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 8, 8, 1)).astype("float32"), np.arange(40) % 10
    model = tiny()
    _search(tmp_path, model, dataset=((x[:32], y[:32]), (x[32:], y[32:])), max_trials=1,
            name="p")
    x[0, 0, 0, 0] += 1.0  # one value changed, same shapes
    with pytest.raises(ValueError, match=r"is of other data: 'arrays' \(shapes 32x8x8x1, 32, 8x8x8x1, 8;"):
        _search(tmp_path, model, dataset=((x[:32], y[:32]), (x[32:], y[32:])), max_trials=1,
                name="p")


def test_trials_record_and_can_rank_by_the_accuracy_after_bn_reestimation(tmp_path):
    result = _search(tmp_path, objective="val_accuracy_recalibrated")
    assert result.tuner.oracle.objective.name == result.objective == "val_accuracy_recalibrated"
    (x_train, y_train), (x_val, y_val) = data.load("digits", "train"), data.load("digits", "test")
    calibration = (x_train[: FAST["take"]], y_train[: FAST["take"]])  # the trial's training data
    for row in result.rows:
        # One step of training: the moving averages (momentum 0.99) are stale, re-estimation differs.
        trained = result.load_model(row["trial_id"])  # the saved weights are as trained
        fixed = kvs.recalibrate_bn(trained, calibration, batch_size=128, method="precise")
        expected = fixed.evaluate(x_val, y_val, verbose=0, return_dict=True)["accuracy"]
        assert row["val_accuracy_recalibrated"] == pytest.approx(expected, abs=1e-6)
        assert row["val_accuracy_recalibrated"] != pytest.approx(row["val_accuracy"], abs=1e-6)
    best = max(result.rows, key=lambda r: (r["val_accuracy_recalibrated"], -int(r["trial_id"])))
    assert result.best == best
    assert result.tuner.oracle.get_best_trials(1)[0].score == best["val_accuracy_recalibrated"]
    with open(result.files["csv"]) as f:
        assert [float(r["val_accuracy_recalibrated"]) for r in csv.DictReader(f)] == [
            r["val_accuracy_recalibrated"] for r in result.rows]
    with open(result.files["json"]) as f:
        written = json.load(f)
    assert written["config"]["objective"] == "val_accuracy_recalibrated"
    assert written["best"]["val_accuracy_recalibrated"] == best["val_accuracy_recalibrated"]
    assert "recal. BN" in result.table()
    # The objective is a setting of the search: another one does not resume it.
    with pytest.raises(ValueError, match="objective: 'val_accuracy_recalibrated' -> None"):
        _search(tmp_path)


def test_changed_settings_do_not_resume_silently(tmp_path):
    _search(tmp_path, max_trials=1, name="p")
    with pytest.raises(ValueError, match=r"epochs: 1 -> 2"):
        _search(tmp_path, max_trials=1, name="p", epochs=2)


def test_bad_arguments_name_what_was_received(tmp_path):
    with pytest.raises(ValueError, match="oracle='sobol'"):
        _search(tmp_path, oracle="sobol")
    with pytest.raises(ValueError, match="objective='val_loss'"):
        _search(tmp_path, objective="val_loss")
    with pytest.raises(ValueError, match="max_trials=0"):
        _search(tmp_path, max_trials=0)
    with pytest.raises(ValueError, match="strategy='gpu'"):
        _search(tmp_path, strategy="gpu")


RESUME_SCRIPT = TINY_SOURCE + textwrap.dedent(
    """
    import sys
    import tuner

    result = tuner.search(
        tiny(), "digits",
        space=tuner.SearchSpace(positions=("original", "head", "remove"), rates=(0.2,), betas=(0.5,)),
        training=tuner.TrainingConfig(epochs=4),
        data=tuner.DataConfig(take=512, probe_size=64),
        run=tuner.RunConfig(oracle="grid", max_trials=3, verbose=0),
        project=tuner.ProjectConfig(directory=sys.argv[1]),
    )
    print("RAN", ",".join(result.ran))
    """
)


def _trial_done(project, trial_id):
    record = project_lib.read_trial_file(os.path.join(project, f"trial_{trial_id}"))
    return record is not None and record["status"] == "COMPLETED"


@pytest.mark.slow
@pytest.mark.tf_only
def test_rerun_after_sigkill_completes_without_losing_or_duplicating_trials(tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-c", RESUME_SCRIPT, str(tmp_path)]
    project = os.path.join(str(tmp_path), "tiny-digits-grid")
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    try:
        # Kill once trial 0 is finished on disk and trial 1 has started.
        while not (_trial_done(project, "0") and os.path.isfile(os.path.join(project, "trial_1", "trial.json"))):
            assert first.poll() is None, first.stdout.read().decode()[-3000:]
            assert time.monotonic() < deadline, "the search never reached its second trial"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    assert not _trial_done(project, "1")
    with open(os.path.join(project, "trial_1", "trial.json")) as f:
        killed_values = json.load(f)["hyperparameters"]["values"]
    rerun = subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    ran_again = rerun.stdout.split("RAN ")[-1].split()[0].split(",")
    assert ran_again == ["1", "2"]  # the finished trial is kept, the killed one rerun
    with open(os.path.join(project, "results.json")) as f:
        trials = json.load(f)["trials"]
    assert [t["trial_id"] for t in trials] == ["0", "1", "2"]
    assert all(t["status"] == "COMPLETED" for t in trials)
    positions = [(t["position"], t["type"], t["rate"]) for t in trials]
    assert len(set(positions)) == 3  # grid points not repeated
    with open(os.path.join(project, "trial_1", "trial.json")) as f:
        assert json.load(f)["hyperparameters"]["values"] == killed_values
    records = [project_lib.read_trial_file(os.path.join(project, f"trial_{i}")) for i in "012"]
    assert records[0]["pid"] == first.pid and records[1]["pid"] != first.pid


# -- the user's own training setup, grid order, keras-tuner conventions ---------------


def _logits_cnn(rate=0.3):
    x = keras.Input((8, 8, 1), name="x")
    h = keras.layers.Conv2D(32, 3, padding="same", use_bias=False, name="c1")(x)
    h = keras.layers.Dropout(rate, name="d1")(h)
    h = keras.layers.ReLU()(keras.layers.BatchNormalization(name="bn1")(h))
    h = keras.layers.Flatten(name="flat")(h)
    model = keras.Model(x, keras.layers.Dense(10, name="logits")(h), name="logits_cnn")
    model.compile(keras.optimizers.Adam(0.01),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    return model


def _trained_alone(model, epochs, batch_size, seed=0):
    """The user's model trained on its own as a search trial trains it."""
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    copy.compile_from_config(model.get_compile_config())
    x, y = data.load("digits", "train")
    copy.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True, verbose=0)
    x_val, y_val = data.load("digits", "test")
    return float(np.mean(np.argmax(copy.predict(x_val, verbose=0), axis=-1) == y_val))


@pytest.mark.slow
def test_a_compiled_logits_model_keeps_its_loss_and_optimizer(tmp_path):
    model = _logits_cnn()
    alone = _trained_alone(model, epochs=4, batch_size=64)
    result = tuner.search(model, "digits", **_records(
        oracle="grid", max_trials=4, epochs=4, batch_size=64, types=("bernoulli",), rates=(0.3,), probe_size=64,
        verbose=0, directory=str(tmp_path)))
    by_position = {r["position"]: r for r in result.rows}
    assert sorted(by_position) == ["after_bn", "head", "original", "remove"]
    assert alone > 0.85  # the model's own setup trains it well
    assert by_position["original"]["val_accuracy"] == pytest.approx(alone, abs=0.04)
    for row in result.rows:  # chance is 0.1: no trial trains with the wrong loss
        assert row["status"] == "COMPLETED" and row["val_accuracy"] > 0.6, row
    with open(os.path.join(result.project_dir, "search_config.json")) as f:
        training = json.load(f)["training"]
    assert training["optimizer"]["class_name"] == "Adam"
    assert training["loss"]["config"]["from_logits"] is True


@pytest.mark.slow
def test_three_trials_of_a_user_model_visit_several_positions(tmp_path):
    with pytest.warns(UserWarning, match="the grid has 10 points and max_trials=3 runs the first 3"):
        result = tuner.search(_logits_cnn(), "digits", **_records(oracle="grid", max_trials=3,
                                                                  directory=str(tmp_path), **FAST))
    positions = [r["position"] for r in result.rows]
    assert len(positions) == 3 and len(set(positions)) >= 2, positions


def test_grid_visits_every_position_before_a_second_rate():
    hypermodel = tuner.DropoutHyperModel(tiny(), space=tuner.SearchSpace(rates=(0.2, 0.5), types=("bernoulli",)))
    points = hypermodel.grid_points()
    positions = [p["dropout_position"] for p in points]
    assert positions[:4] == ["original", "after_bn", "head", "remove"]
    assert [p.get("dropout_rate") for p in points[:3]] == [0.2, 0.2, 0.2]
    assert len(points) == len({tuple(sorted(p.items())) for p in points}) == 7


def test_trials_are_numbered_as_keras_tuner_numbers_them(tmp_path, capsys):
    result = tuner.search(tiny(), "digits", **_records(oracle="grid", max_trials=2, directory=str(tmp_path),
                                                       take=64, epochs=1, probe_size=32, verbose=1, fit_verbose=0))
    out = capsys.readouterr().out
    for row in result.rows:
        number = int(row["trial_id"]) + 1
        assert row["trial_number"] == number
        assert f"Running Trial #{number}" in out  # keras-tuner's line
        assert f"[keras-vs] Trial #{number} (trial_id {row['trial_id']}:" in out
    assert "[keras-vs] every trial: loss" in out
    table = result.table().splitlines()
    assert table[2].split()[:2] == ["#1", result.rows[0]["trial_id"]]


def test_fit_verbose_reaches_every_trial(tmp_path, capsys):
    _search(tmp_path, max_trials=1, fit_verbose=2)  # one line per epoch
    assert " - val_accuracy: " in capsys.readouterr().out
    _search(tmp_path / "quiet", max_trials=1)  # verbose=0: fit is silent too
    assert " - val_accuracy: " not in capsys.readouterr().out


def test_csv_logger_after_the_shift_callback_records_the_shift(tmp_path):
    result = _search(tmp_path, max_trials=1, callbacks=[keras.callbacks.CSVLogger(str(tmp_path / "log.csv"))])
    with open(tmp_path / f"log_{result.rows[0]['trial_id']}.csv") as f:
        header = next(csv.reader(f))
    assert "variance_shift/max" in header and "val_accuracy" in header


def test_csv_logger_writes_a_file_per_trial(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    result = _search(tmp_path, max_trials=2, callbacks=[keras.callbacks.CSVLogger(str(logs / "log.csv"))])
    assert sorted(os.listdir(logs)) == sorted(f"log_{r['trial_id']}.csv" for r in result.rows)
    for row in result.rows:  # one epoch each: a header and one line, not another trial's
        with open(logs / f"log_{row['trial_id']}.csv") as f:
            assert len(list(csv.reader(f))) == 2


@pytest.mark.tf_only  # keras-tuner sets TensorBoard folders on the TensorFlow backend only
def test_tensorboard_gets_a_folder_per_trial(tmp_path):
    logs = tmp_path / "tb"
    result = _search(tmp_path, max_trials=2, callbacks=[keras.callbacks.TensorBoard(str(logs))])
    assert sorted(os.listdir(logs)) == sorted(r["trial_id"] for r in result.rows)
    for row in result.rows:
        assert os.listdir(logs / row["trial_id"] / "execution0")


def test_results_json_records_the_optimizer_and_loss_the_trials_used(tmp_path):
    model = tiny()
    model.compile(keras.optimizers.AdamW(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    result = _search(tmp_path, model=model, max_trials=1)
    with open(result.files["json"]) as f:
        config = json.load(f)["config"]
    assert "learning_rate" not in config and "weight_decay" not in config  # the recipe's: unused
    optimizer = config["training"]["optimizer"]
    assert optimizer["class_name"].lower() == "adamw" and optimizer["config"]["learning_rate"] == pytest.approx(3e-3)
    assert config["training"]["loss"] == "sparse_categorical_crossentropy"
    assert config["training"]["sources"] == {"loss": "the model's own compile()",
                                          "optimizer": "the model's own compile()"}


def test_results_json_of_the_zoo_recipe_keeps_its_learning_rate(tmp_path):
    result = tuner.search("wrn-10-1", "digits", **_records(oracle="grid", max_trials=1, positions=("none",),
                                                           directory=str(tmp_path), **FAST))
    with open(result.files["json"]) as f:
        config = json.load(f)["config"]
    assert config["learning_rate"] > 0 and config["training"]["optimizer"] == "recipe"


def _npz(path, shape, classes):
    rng = np.random.default_rng(0)
    np.savez(path, x=rng.random((64, *shape), dtype=np.float32), y=np.arange(64) % classes)
    return str(path)


def test_data_of_another_shape_is_refused_before_the_first_trial(tmp_path):
    data_file = _npz(tmp_path / "big.npz", (12, 12, 1), 10)
    with pytest.raises(ValueError, match=r"it takes inputs of shape \(None, 8, 8, 1\), .*big.npz has "
                                         r"examples of shape \(12, 12, 1\)"):
        _search(tmp_path / "s", dataset=data_file)
    assert not os.path.exists(tmp_path / "s")  # no search folder, no failed trials


def test_labels_the_model_cannot_predict_are_refused_before_the_first_trial(tmp_path):
    data_file = _npz(tmp_path / "many.npz", (8, 8, 1), 20)
    with pytest.raises(ValueError, match="it predicts 10 classes, .*many.npz has 20"):
        _search(tmp_path / "s", dataset=data_file)
    assert not os.path.exists(tmp_path / "s")


def test_progress_lines_cover_loading_and_each_trials_build_and_compile(tmp_path, capsys):
    _search(tmp_path, max_trials=1, verbose=1, fit_verbose=0)
    out = capsys.readouterr().out
    loading = out.index("[keras-vs] loading digits")
    building = out.index("[keras-vs] Trial #1: building the model and training 1 epoch(s)")
    assert loading < out.index("Running Trial #1") < building < out.index("[keras-vs] Trial #1 (trial_id")
