"""The `keras-vs measure MODEL --data=NAME` command and its --plot figure."""

import json
import math
import xml.etree.ElementTree as ET

import keras
import numpy as np
import pytest
from keras import layers

from keras_vs.commands import plot


def _digits_model(path):
    x = keras.Input((8, 8, 1))
    h = layers.Conv2D(4, 3, use_bias=False)(x)
    h = layers.Dropout(0.5)(h)
    h = layers.ReLU()(layers.BatchNormalization(name="bn1")(h))
    h = layers.GlobalAveragePooling2D()(h)
    model = keras.Model(x, layers.Dense(10)(layers.BatchNormalization(name="bn2")(h)), name="tiny")
    model.save(path)
    return path


@pytest.fixture
def model_file(tmp_path, unchanged_files):
    path = _digits_model(tmp_path / "model.keras")
    unchanged_files(path)
    return path


def test_measure_prints_table_inconsistency_and_what_to_do(model_file, keras_vs_cli):
    code, out, err = keras_vs_cli("measure", model_file, "--data=digits", "--split=test")
    assert code == 0, err
    lines = out.splitlines()
    assert any(line.split()[:2] == ["1", "bn1"] for line in lines)
    assert any(line.split()[:2] == ["2", "bn2"] for line in lines)
    assert "training mode" in out and "359 examples" in out
    (advice,) = [line for line in lines if line.startswith("next:")]
    assert f"keras-vs recalibrate {model_file} --data=digits" in advice


def test_measure_json_on_an_npz_file(model_file, keras_vs_cli, tmp_path, unchanged_files):
    npz = tmp_path / "d.npz"
    rng = np.random.default_rng(0)
    np.savez(npz, x=rng.uniform(size=(20, 8, 8, 1)).astype("float32"), y=np.arange(20) % 10)
    unchanged_files(npz)
    code, out, err = keras_vs_cli("measure", model_file, f"--data={npz}", "--json", "--batch_size=8")
    assert code == 0, err
    report = json.loads(out)
    assert [row["name"] for row in report["layers"]] == ["bn1", "bn2"]
    assert report["num_examples"] == 20 and report["inconsistency"]["num_examples"] == 20
    assert report["max"] == max(row["shift"] for row in report["layers"])


def test_measure_json_splits_each_shift_into_its_three_parts(model_file, keras_vs_cli):
    code, out, err = keras_vs_cli("measure", model_file, "--data=digits", "--json", "--steps=2")
    assert code == 0, err
    for row in json.loads(out)["layers"]:
        m, t = row["moving_var"], row["train_var"]
        assert row["statistics_part"] == pytest.approx(max(t / m, m / t), rel=1e-6)
        assert {"dropout_part", "upstream_part", "explanation"} <= set(row)


def test_plot_is_an_svg_with_title_and_bn_names(model_file, keras_vs_cli, tmp_path):
    figure = tmp_path / "shift.svg"
    code, out, err = keras_vs_cli("measure", model_file, "--data=digits", f"--plot={figure}")
    assert code == 0, err
    assert f"wrote {figure}" in out
    texts = ["".join(t.itertext()) for t in ET.parse(figure).iter("{http://www.w3.org/2000/svg}text")]
    assert any("variance shift" in t.lower() and "tiny on digits (train)" in t for t in texts)
    assert any(t.endswith("bn1") for t in texts) and any(t.endswith("bn2") for t in texts)
    assert "no shift (1)" in texts
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras", "shift.svg"]


@pytest.mark.parametrize(
    "data, message",
    [
        ("--data=mnist", "Expected one of digits, cifar10, cifar100, imagenet2012"),
        ("--data=nosuch.npz", "No such .npz file"),
    ],
)
def test_unknown_data_is_one_line_naming_what_exists(model_file, keras_vs_cli, data, message):
    code, _, err = keras_vs_cli("measure", model_file, data)
    assert code == 1
    (line,) = err.strip().splitlines()
    assert line.startswith("keras-vs measure: error: ") and message in line


@pytest.mark.tf_only
def test_tfds_names_listed_as_data_are_measured(tmp_path, keras_vs_cli, unchanged_files):
    tfds = pytest.importorskip("tensorflow_datasets")
    x = keras.Input((32, 32, 3))
    h = layers.BatchNormalization(name="bn")(layers.Dropout(0.5)(layers.Conv2D(4, 3)(x)))
    keras.Model(x, layers.Dense(10)(layers.GlobalAveragePooling2D()(h))).save(tmp_path / "c.keras")
    unchanged_files(tmp_path / "c.keras")
    with tfds.testing.mock_data(num_examples=16):
        code, out, err = keras_vs_cli("measure", tmp_path / "c.keras", "--data=cifar10",
                                      "--batch_size=8", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["num_examples"] == 16 and [r["name"] for r in report["layers"]] == ["bn"]


def test_tfds_data_that_is_not_prepared_names_the_flags(model_file, keras_vs_cli, tmp_path):
    pytest.importorskip("tensorflow_datasets")
    code, _, err = keras_vs_cli("measure", model_file, "--data=cifar10", f"--data_dir={tmp_path}")
    assert code == 1
    (line,) = err.strip().splitlines()
    assert "--download" in line and "tfds build cifar10" in line


def test_wrong_input_shape_is_one_line(tmp_path, keras_vs_cli, unchanged_files):
    path = tmp_path / "m.keras"
    keras.Sequential([keras.Input((5,)), layers.BatchNormalization()]).save(path)
    unchanged_files(path)
    code, _, err = keras_vs_cli("measure", path, "--data=digits")
    assert code == 1 and "Traceback" not in err
    assert "Received: a batch of shape" in err


def test_missing_model_file_is_named(tmp_path, keras_vs_cli):
    code, _, err = keras_vs_cli("measure", tmp_path / "nope.keras", "--data=digits")
    assert code == 1 and "Received: MODEL=" in err


def test_data_flag_is_required(tmp_path, keras_vs_cli):
    code, _, err = keras_vs_cli("measure", tmp_path / "m.keras")
    assert code == 2 and "--data is required" in err and "digits" in err


# -- the figure itself ------------------------------------------------------------


def _axes(names, values):
    fig = plot.shift_figure(names, values, "m on digits (train)")
    return fig, fig.axes[0]


def test_figure_title_labels_and_no_shift_line():
    fig, ax = _axes(["bn_a", "bn_b"], [1.3, 2.2])
    assert "variance shift" in ax.get_title().lower() and "m on digits (train)" in ax.get_title()
    assert "variance shift" in ax.get_ylabel()
    assert "BN layer" in ax.get_xlabel()
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "no shift (1)" in legend
    (line,) = [l for l in ax.get_lines() if l.get_label() == "no shift (1)"]
    assert set(np.asarray(line.get_ydata(), float)) == {1.0}
    fig.clf()


def test_ticks_are_the_bn_layers_by_index_and_name():
    fig, ax = _axes(["stem_bn", "block1_bn", "head_bn"], [1.1, 1.5, 1.2])
    assert list(ax.get_xticks()) == [1, 2, 3]
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels == ["1 stem_bn", "2 block1_bn", "3 head_bn"]
    fig.clf()


def test_many_bn_layers_get_integer_ticks():
    names = [f"bn{i}" for i in range(60)]
    fig, ax = _axes(names, np.linspace(1.0, 1.3, 60))
    fig.canvas.draw()
    ticks = [t for t in ax.get_xticks() if 1 <= t <= 60]
    assert ticks and all(float(t).is_integer() for t in ticks)
    fig.clf()


@pytest.mark.parametrize("values, scale", [([1.0, 2.4, 1.7], "linear"), ([1.0, 3.0, 124.0], "log")])
def test_wide_ranges_get_a_log_axis(values, scale):
    fig, ax = _axes(["a", "b", "c"], values)
    assert ax.get_yscale() == scale
    low, high = ax.get_ylim()
    assert low <= 1.0 and high >= max(values) and math.isfinite(high)
    fig.clf()


def test_a_bn_never_called_is_a_row_that_says_so(tmp_path, keras_vs_cli, unused_bn):
    x = keras.Input((8, 8, 1))
    h = layers.BatchNormalization(name="bn")(layers.Dropout(0.5)(layers.Conv2D(2, 3)(x)))
    keras.Model(x, unused_bn(units=10, name="owner")(layers.GlobalAveragePooling2D()(h))).save(tmp_path / "m.keras")
    code, out, err = keras_vs_cli("measure", tmp_path / "m.keras", "--data=digits", "--split=test")
    assert code == 0, err
    (row,) = [line for line in out.splitlines() if "owner/norm" in line]
    assert "not called" in row


def test_a_model_without_bn_is_one_line_without_accuracies(tmp_path, keras_vs_cli):
    keras.Sequential([keras.Input((8, 8, 1)), layers.Flatten(), layers.Dense(10)]).save(tmp_path / "p.keras")
    code, out, _ = keras_vs_cli("measure", tmp_path / "p.keras", "--data=digits")
    assert code == 0
    assert out.splitlines() == [f"{tmp_path / 'p.keras'} has no BatchNormalization layer: no variance "
                                "shift to measure."]


def test_measure_json_reports_the_gap(model_file, keras_vs_cli):
    code, out, _ = keras_vs_cli("measure", model_file, "--data=digits", "--split=test", "--json")
    inconsistency = json.loads(out)["inconsistency"]
    assert code == 0
    assert inconsistency["gap"] == pytest.approx(
        inconsistency["train_mode_accuracy"] - inconsistency["inference_accuracy"])


def test_shift_figure_y_label_fits_inside_the_figure():
    # A long BN name rotated under the axis leaves it short: the label must still fit.
    fig = plot.shift_figure(["batch_normalization"], [17.9], "functional on digits (train)")
    fig.canvas.draw()
    box = fig.axes[0].yaxis.label.get_window_extent()
    width, height = fig.canvas.get_width_height()
    assert box.y0 >= 0 and box.y1 <= height and box.x0 >= 0 and box.x1 <= width
