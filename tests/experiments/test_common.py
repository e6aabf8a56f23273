import math
import os

import numpy as np
import pytest

from experiments import common
from keras_vs import theory


def test_mean_std_uses_sample_std_and_skips_missing():
    mean, std = common.mean_std([1.0, None, 3.0, float("nan")])
    assert mean == 2.0 and std == pytest.approx(math.sqrt(2.0))


def test_mean_std_of_nothing_is_nan():
    assert all(math.isnan(v) for v in common.mean_std([None]))


def test_format_mean_std_shows_one_value_without_spread():
    assert common.format_mean_std([0.5], 2) == "0.50"
    assert common.format_mean_std([0.5, 0.7], 2) == "0.60 ± 0.14"
    assert common.format_mean_std([], 2) == "-"


def test_parse_floats_echoes_the_flag():
    with pytest.raises(ValueError, match=r"Received: --rates=0.1,x"):
        common.parse_floats("rates", ["0.1", "x"])


def test_csv_and_markdown_tables_keep_column_order_and_blank_missing():
    rows = [{"b": 2.0, "a": "x"}, {"a": "y"}]
    assert common.csv_text(rows, ("a", "b")) == "a,b\nx,2\ny,\n"
    assert common.markdown_table(rows, ("a", "b")).splitlines() == ["| a | b |", "|---|---|", "| x | 2 |", "| y | - |"]


def test_write_outputs_writes_every_file_and_no_temporaries(tmp_path):
    plt = common.pyplot()
    fig, _ = plt.subplots()
    paths = common.write_outputs(
        tmp_path / "out", "exp", csv_files=[("exp.csv", [{"a": 1}], ("a",))], markdown="# t\n", figure=fig
    )
    assert sorted(os.path.basename(p) for p in paths) == ["exp.csv", "exp.md", "exp.png"]
    assert sorted(os.listdir(tmp_path / "out")) == ["exp.csv", "exp.md", "exp.png"]
    assert (tmp_path / "out" / "exp.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("dropout_type, value", [("bernoulli", 0.3), ("uout", 0.5)])
def test_expected_statistic_inverts_the_closed_form(dropout_type, value):
    shift = theory.dropout_shift(value) if dropout_type == "bernoulli" else theory.uout_shift(value)
    assert common.expected_statistic(dropout_type, value) == pytest.approx(1 / shift)


def test_expected_statistic_with_a_mean_averages_variances_over_channels():
    mean, var = np.array([0.0, 1.0]), np.array([1.0, 3.0])
    # Training variances (c² + v) / p - c² are [2, 7]: statistic (2 + 7) / (1 + 3).
    assert common.expected_statistic("bernoulli", 0.5, mean, var) == pytest.approx(9 / 4)


def test_study_data_of_digits_takes_the_first_training_examples():
    (x, y), (x_test, _) = common.study_data("digits", take=10)
    assert x.shape == (10, 8, 8, 1) and len(y) == 10 and len(x_test) == 359


def test_accuracy_agrees_on_arrays_and_batches():
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    x = np.random.default_rng(0).standard_normal((20, 3)).astype("float32")
    y = np.argmax(model.predict(x, verbose=0), axis=-1)
    y[:5] = 1 - y[:5]
    batches = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 20, 8)]
    assert common.accuracy(model, (x, y)) == common.accuracy(model, batches) == 0.75


def test_group_rows_keeps_first_seen_order():
    rows = [{"k": 2, "v": 1}, {"k": 1, "v": 2}, {"k": 2, "v": 3}]
    groups = common.group_rows(rows, ("k",))
    assert list(groups) == [(2,), (1,)] and [r["v"] for r in groups[(2,)]] == [1, 3]


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    directory = tmp_path_factory.mktemp("study")
    return common.dropout_study(
        "wrn-10-1", "digits", positions=("none", "before_bn"), rates=(0.5,), seeds=(0,),
        epochs=1, take=64, directory=str(directory), verbose=0,
    )


@pytest.mark.slow
@pytest.mark.tf_only
def test_dropout_study_measures_each_trained_model(study):
    rows, _ = study
    assert [(r["position"], r["rate"]) for r in rows] == [("none", 0.0), ("before_bn", 0.5)]
    none, before_bn = rows
    assert none["shift_direct"] is None and none["expected_direct"] is None
    assert before_bn["expected_direct"] == pytest.approx(2.0)
    assert before_bn["expected_direct_measured_c"] >= 2.0  # a non-zero mean only adds variance
    for row in rows:
        assert 0.0 <= row["test_accuracy"] <= 1.0 and 0.0 <= row["recalibrated_accuracy"] <= 1.0
        # Re-estimated on the same data the statistic is measured on: no shift left.
        assert row["shift_max_recalibrated"] == pytest.approx(1.0, abs=0.01)


@pytest.mark.slow
@pytest.mark.tf_only
def test_dropout_study_flags_the_bns_a_dropout_feeds_directly(study):
    rows, per_bn = study
    direct = [b for b in per_bn if b["direct"]]
    # wrn-10-1: one block per stage, each with a dropout before its last BN.
    assert {b["position"] for b in direct} == {"before_bn"} and len(direct) == 3
    assert rows[1]["shift_direct"] == pytest.approx(np.mean([b["statistic"] for b in direct]))


def test_grid_size_counts_one_model_per_setting_and_one_without_dropout():
    assert common.grid_size(("none", "before_bn", "head"), (0.1, 0.5), ("bernoulli", "uout"), (0.2,)) == 7
