"""The `keras-vs measure MODEL --data=NAME` command."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from keras import layers


def _run(*args, timeout=240):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    return subprocess.run(
        [sys.executable, "-m", "keras_vs.cli", *args], capture_output=True, text=True, timeout=timeout, env=env
    )


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    x = keras.Input((8, 8, 1))
    h = layers.Conv2D(4, 3, use_bias=False)(x)
    h = layers.Dropout(0.5)(h)
    h = layers.ReLU()(layers.BatchNormalization(name="bn1")(h))
    h = layers.GlobalAveragePooling2D()(h)
    model = keras.Model(x, layers.Dense(10)(layers.BatchNormalization(name="bn2")(h)))
    path = tmp_path_factory.mktemp("m") / "model.keras"
    model.save(path)
    return str(path)


@pytest.mark.slow
def test_measure_prints_table_and_inconsistency_and_plots(digits_model, tmp_path):
    plot = tmp_path / "curve.png"
    result = _run("measure", digits_model, "--data=digits", "--split=test", f"--plot={plot}")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.split()[:2] == ["1", "bn1"] for line in lines)
    assert any(line.split()[:2] == ["2", "bn2"] for line in lines)
    assert "training mode" in result.stdout and "359 examples" in result.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["curve.png"]  # no temp file left


@pytest.mark.slow
def test_measure_json_on_an_npz_file(digits_model, tmp_path):
    npz = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(npz, x=rng.uniform(size=(20, 8, 8, 1)).astype("float32"), y=np.arange(20) % 10)
    result = _run("measure", digits_model, f"--data={npz}", "--json", "--batch_size=8")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert [row["name"] for row in report["layers"]] == ["bn1", "bn2"]
    assert report["num_examples"] == 20 and report["inconsistency"]["num_examples"] == 20
    assert report["max"] == max(row["shift"] for row in report["layers"])


def test_measure_unknown_data_is_one_line(digits_model):
    result = _run("measure", digits_model, "--data=nosuchset")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Received: name='nosuchset'" in result.stderr


def test_measure_wrong_input_shape_is_one_line(tmp_path):
    path = tmp_path / "m.keras"
    keras.Sequential([keras.Input((5,)), layers.BatchNormalization()]).save(path)
    result = _run("measure", str(path), "--data=digits")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "Received: a batch of shape" in result.stderr


def test_measure_missing_model_file_is_named(tmp_path):
    result = _run("measure", str(tmp_path / "nope.keras"), "--data=digits")
    assert result.returncode == 1 and "Received: MODEL=" in result.stderr


def test_measure_needs_data_flag(tmp_path):
    result = _run("measure", str(tmp_path / "m.keras"))
    assert result.returncode == 1 and "--data is required" in result.stderr
