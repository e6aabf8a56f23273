"""experiments.study: the dropout study and the closed form it compares with."""

import re

import numpy as np
import pytest

import tuner
from experiments import study
from keras_vs import theory


@pytest.mark.parametrize("dropout_type, value", [("bernoulli", 0.3), ("uout", 0.5)])
def test_expected_statistic_inverts_the_closed_form(dropout_type, value):
    shift = theory.dropout_shift(value) if dropout_type == "bernoulli" else theory.uout_shift(value)
    assert study.expected_statistic(dropout_type, value) == pytest.approx(1 / shift)


def test_expected_statistic_with_a_mean_averages_variances_over_channels():
    mean, var = np.array([0.0, 1.0]), np.array([1.0, 3.0])
    # Training variances (c² + v) / p - c² are [2, 7]: statistic (2 + 7) / (1 + 3).
    assert study.expected_statistic("bernoulli", 0.5, mean, var) == pytest.approx(9 / 4)


def test_study_data_of_digits_takes_the_first_training_examples():
    (x, y), (x_test, _) = study.study_data("digits", tuner.DataConfig(take=10))
    assert x.shape == (10, 8, 8, 1) and len(y) == 10 and len(x_test) == 359


def test_accuracy_agrees_on_arrays_and_batches():
    import keras

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    x = np.random.default_rng(0).standard_normal((20, 3)).astype("float32")
    y = np.argmax(model.predict(x, verbose=0), axis=-1)
    y[:5] = 1 - y[:5]
    batches = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 20, 8)]
    assert study.accuracy(model, (x, y)) == study.accuracy(model, batches) == 0.75


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    directory = tmp_path_factory.mktemp("study")
    return study.dropout_study(
        "wrn-10-1", "digits", seeds=(0,),
        space=tuner.SearchSpace(positions=("none", "before_bn"), types=("bernoulli",), rates=(0.5,)),
        training=tuner.TrainingConfig(epochs=1), data=tuner.DataConfig(take=64),
        study=study.StudyConfig(directory=str(directory), verbose=0),
    )


@pytest.mark.slow
@pytest.mark.tf_only
def test_dropout_study_measures_each_trained_model(trained):
    rows, _ = trained
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
def test_dropout_study_flags_the_bns_a_dropout_feeds_directly(trained):
    rows, per_bn = trained
    direct = [b for b in per_bn if b["direct"]]
    # wrn-10-1: one block per stage, each with a dropout before its last BN.
    assert {b["position"] for b in direct} == {"before_bn"} and len(direct) == 3
    assert rows[1]["shift_direct"] == pytest.approx(np.mean([b["statistic"] for b in direct]))


def test_grid_size_counts_one_model_per_setting_and_one_without_dropout():
    space = tuner.SearchSpace(positions=("none", "before_bn", "head"), rates=(0.1, 0.5), types=("bernoulli", "uout"),
                              betas=(0.2,))
    assert study.grid_size(space) == 7


def test_old_keywords_of_the_study_warn_and_make_its_records(monkeypatch, tmp_path):
    made = []
    monkeypatch.setattr(study._Study, "seed_rows", lambda self, seed, per_bn: made.append((self, seed)) or [])
    with pytest.warns(DeprecationWarning) as caught:  # one warning per old keyword
        rows, per_bn = study.dropout_study("wrn-10-1", "digits", positions=("none", "head"), rates=(0.5,), seeds=(0, 1),
                                           epochs=1, take=64, directory=str(tmp_path), verbose=0)
    assert any(re.search(r"experiments.study.dropout_study\(directory=...\) is deprecated.*"
                         r"pass study=experiments.study.StudyConfig\(directory=...\) instead", str(w.message))
               for w in caught)
    assert len(caught) == 6  # positions, rates, epochs, take, directory, verbose
    assert rows == per_bn == [] and [seed for _, seed in made] == [0, 1]
    records = made[0][0]
    # The old default types (Bernoulli only) and betas are the study's default space's.
    assert records.space == tuner.SearchSpace(positions=("none", "head"), types=("bernoulli",), rates=(0.5,))
    assert records.training == tuner.TrainingConfig(epochs=1) and records.data == tuner.DataConfig(take=64)
    assert records.study == study.StudyConfig(directory=str(tmp_path), verbose=0)
    with pytest.raises(ValueError, match="pass rates inside space"), pytest.warns(DeprecationWarning):
        study.dropout_study("wrn-10-1", "digits", rates=(0.5,), seeds=(0,), space=tuner.SearchSpace())
