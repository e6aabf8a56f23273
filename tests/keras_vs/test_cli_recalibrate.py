"""`keras-vs recalibrate MODEL --data=... -o OUT`: the paper's BN re-estimation on the command line."""

import json
import os

import keras
import numpy as np
import pytest
from keras import layers as L

import keras_vs as kvs
from keras_vs import data, vocab


def _cnn():
    """The issue's model: Dropout(0.5) before each of three BNs, the third through a Dense."""
    x = L.Input((8, 8, 1))
    h = L.Conv2D(16, 3, padding="same", use_bias=False, name="c1")(x)
    h = L.ReLU()(L.BatchNormalization(name="bn1")(L.Dropout(0.5, name="d1")(h)))
    h = L.Conv2D(32, 3, padding="same", use_bias=False, name="c2")(h)
    h = L.ReLU()(L.BatchNormalization(name="bn2")(L.Dropout(0.5, name="d2")(h)))
    h = L.Dropout(0.5, name="d3")(L.GlobalAveragePooling2D()(h))
    h = L.ReLU()(L.BatchNormalization(name="bn3")(L.Dense(32, name="fc")(h)))
    return keras.Model(x, L.Dense(10, name="logits")(h), name="cnn")


def _accuracy(model, x, y):
    return float(np.mean(np.argmax(model.predict(x, verbose=0), axis=-1) == y))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The CNN trained on digits, saved compiled; its test accuracy at inference."""
    keras.utils.set_random_seed(0)
    x, y = data.load("digits", "train")
    model = _cnn()
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x, y, batch_size=64, epochs=15, verbose=0)
    path = tmp_path_factory.mktemp("cnn") / "cnn.keras"
    model.save(path)
    return path, _accuracy(model, *data.load("digits", "test"))


@pytest.fixture
def run_cli(trained, keras_vs_cli, unchanged_files):
    unchanged_files(trained[0])
    return keras_vs_cli


@pytest.mark.slow
def test_recalibrate_restores_inference_accuracy(trained, run_cli, tmp_path):
    src, before = trained
    out_path = tmp_path / "fixed.keras"
    code, out, err = run_cli("recalibrate", src, "--data=digits", "-o", out_path)
    assert code == 0, err
    x_test, y_test = data.load("digits", "test")
    fixed = keras.saving.load_model(out_path)
    after = _accuracy(fixed, x_test, y_test)
    assert before < 0.5, before  # the shift really hurts this model
    assert after > before + 0.3 and after > 0.6, (before, after)
    (line,) = [line for line in out.splitlines() if line.startswith("max variance shift")]
    shift_before, shift_after = (float(w.rstrip(",")) for w in line.split() if w[0].isdigit())
    assert shift_before > 2.0 and shift_after < 1.05
    assert float(kvs.measure_variance_shift(fixed, data.load("digits", "train")[0]).max()) < 1.05
    # Compiled as the input was: it evaluates as it is, with its own logits loss.
    assert fixed.compiled and fixed.loss.get_config()["from_logits"] is True
    assert fixed.evaluate(x_test, y_test, verbose=0)[1] == pytest.approx(after, abs=1e-6)
    assert sorted(os.listdir(tmp_path)) == ["fixed.keras"]


@pytest.mark.slow
def test_weights_output_loads_into_the_same_architecture(trained, run_cli, tmp_path):
    src, before = trained
    out_path = tmp_path / "fixed.weights.h5"
    code, _, err = run_cli("recalibrate", src, "--data=digits", "--json", "-o", out_path)
    assert code == 0, err
    model = keras.saving.load_model(src)
    model.load_weights(out_path)
    assert _accuracy(model, *data.load("digits", "test")) > before + 0.3


@pytest.mark.slow
@pytest.mark.parametrize("method", vocab.RECALIBRATION_METHODS)
def test_each_method_removes_the_shift(trained, run_cli, tmp_path, method):
    code, out, err = run_cli("recalibrate", trained[0], "--data=digits", f"--method={method}",
                             "--json", "-o", tmp_path / "fixed.keras")
    assert code == 0, err
    report = json.loads(out)
    assert report["method"] == method and report["max_shift_after"] < 1.05


def test_help_lists_the_methods(keras_vs_cli):
    code, out, _ = keras_vs_cli("recalibrate", "--help")
    assert code == 0
    block = out.split("  --method: ", 1)[1].split("\n  --", 1)[0]
    assert f"<{'|'.join(vocab.RECALIBRATION_METHODS)}>" in block


@pytest.fixture
def small(tmp_path):
    x = L.Input((8, 8, 1))
    h = L.BatchNormalization(name="bn")(L.Dropout(0.5)(L.Conv2D(2, 3)(x)))
    keras.Model(x, L.Dense(10)(L.GlobalAveragePooling2D()(h))).save(tmp_path / "m.keras")
    no_bn = keras.Sequential([keras.Input((8, 8, 1)), L.Flatten(), L.Dense(10)])
    no_bn.save(tmp_path / "plain.keras")
    return tmp_path


@pytest.mark.parametrize(
    "args, status, message",
    [  # a flag missing from the command line is a bad command line: exit 2
        (["m.keras", "--data=digits"], 2, "-o/--output is required"),
        (["m.keras", "--data=digits", "-o", "m.keras"], 1, "OUT is the input model"),
        (["m.keras", "-o", "new.keras"], 2, "--data is required"),
        (["plain.keras", "--data=digits", "-o", "new.keras"], 1, "no BatchNormalization layer"),
        (["m.keras", "--data=digits", "-o", "new.onnx"], 1, "OUT must be a .keras"),
    ],
)
def test_bad_arguments_are_one_line_errors(small, keras_vs_cli, unchanged_files, monkeypatch,
                                           args, status, message):
    monkeypatch.chdir(small)
    unchanged_files(small / "m.keras", small / "plain.keras")
    code, out, err = keras_vs_cli("recalibrate", *args)
    assert code == status and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith("keras-vs recalibrate: error: ") and message in line
    assert sorted(os.listdir(small)) == ["m.keras", "plain.keras"]


def test_a_bn_never_called_is_a_note_not_a_traceback(tmp_path, keras_vs_cli, unused_bn):
    x = L.Input((8, 8, 1))
    h = L.BatchNormalization(name="bn")(L.Dropout(0.5)(L.Conv2D(2, 3)(x)))
    keras.Model(x, unused_bn(units=10, name="owner")(L.GlobalAveragePooling2D()(h))).save(tmp_path / "m.keras")
    code, out, err = keras_vs_cli("recalibrate", tmp_path / "m.keras", "--data=digits",
                                  "--split=test", "-o", tmp_path / "new.keras")
    assert code == 0, err
    (note,) = [line for line in out.splitlines() if line.startswith("note: ")]
    assert "left unchanged" in note and "'owner/norm'" in note
