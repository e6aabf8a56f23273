"""doctor: attribution, candidate fixes scored on held-out data, a recommendation."""

import json

import keras
import numpy as np
import pytest
from keras import layers

from keras_vs.doctor import KEEP, doctor


@pytest.fixture(scope="module")
def under(trained):
    model = trained.under_trained()
    before = trained.weights(model)
    x, y, xt, yt = trained.digits()
    report = doctor(model, (x, y), (xt, yt), batch_size=64, apply=True)
    return model, before, report


def test_under_trained_model_gets_a_fix_at_least_as_good_as_recalibration(under):
    _, _, report = under
    best = report.candidate(report.recommendation)
    assert report.recommendation != KEEP
    assert best.value >= report.candidate("recalibrate_exact").value
    assert best.value >= report.candidate("recalibrate_precise").value


def test_recommendation_beats_keeping_beyond_the_interval(under):
    _, _, report = under
    best = report.candidate(report.recommendation)
    assert best.diff_low > 0 and best.value > report.candidate("keep").high


def test_candidates_without_fine_tuning_are_keep_and_both_recalibrations(under):
    _, _, report = under
    assert [c.fix for c in report.candidates] == ["keep", "recalibrate_precise", "recalibrate_exact"]


def test_keep_is_the_models_own_held_out_accuracy(under, trained):
    model, _, report = under
    _, _, xt, yt = trained.digits()
    accuracy = model.evaluate(xt, yt, verbose=0, return_dict=True)["accuracy"]
    assert report.candidate("keep").value == pytest.approx(accuracy, abs=1e-6)


def test_each_interval_holds_its_value(under):
    _, _, report = under
    for c in report.candidates:
        assert c.low <= c.value <= c.high and c.low < c.high


def test_apply_returns_the_fix_and_verifies_it(under):
    model, _, report = under
    assert report.model is not None and report.model is not model
    assert report.verified == pytest.approx(report.candidate(report.recommendation).value)


def test_input_model_is_unchanged(under, trained):
    model, before, _ = under
    for a, b in zip(before, trained.weights(model)):
        np.testing.assert_array_equal(a, b)


def test_findings_explain_the_first_bn(under):
    _, _, report = under
    assert any(f.startswith("bn1: the statistics part dominates") for f in report.findings)


def test_json_has_layers_candidates_and_recommendation(under):
    _, _, report = under
    out = json.loads(json.dumps(report.as_dict()))
    assert {"bn", "shift", "statistics_part", "dropout_part", "upstream_part"} <= set(out["layers"][0])
    assert {"fix", "metric", "value", "low", "high"} <= set(out["candidates"][0])
    assert out["recommendation"] == report.recommendation


def test_without_validation_data_the_last_part_of_data_is_held_out(trained):
    x, y, _, _ = trained.digits()
    report = doctor(trained.converged(), (x, y), validation_split=0.25, batch_size=64)
    assert report.split.startswith(f"held-out data: the last 360 of {len(x)} examples")


def test_recommendation_never_lowers_held_out_accuracy(trained):
    x, y, xt, yt = trained.digits()
    report = doctor(trained.uout(), (x, y), (xt, yt), batch_size=64)
    assert report.candidate(report.recommendation).value >= report.candidate("keep").value


def test_model_without_bn_is_kept(trained):
    x, y, xt, yt = trained.digits()
    report = doctor(trained.no_bn(), (x, y), (xt, yt), batch_size=64)
    assert report.recommendation == "keep" and [c.fix for c in report.candidates] == ["keep"]
    assert any("no BatchNormalization" in f for f in report.findings)


def test_dropout_after_bn_gets_no_rewrite_candidate_even_when_fine_tuning(trained):
    x, y, xt, yt = trained.digits()
    report = doctor(trained.after_bn(), (x[:256], y[:256]), (xt, yt), batch_size=64,
                               fine_tune_epochs=1)
    assert not [c.fix for c in report.candidates if c.fix.startswith("rewrite_")]
    assert "No dropout feeds a BN: a rewrite has nothing to change." in report.findings


def test_fine_tuning_tries_each_applicable_policy(trained):
    x, y, xt, yt = trained.digits()
    report = doctor(trained.under_trained(), (x[:256], y[:256]), (xt[:64], yt[:64]),
                               batch_size=64, fine_tune_epochs=1)
    fixes = [c.fix for c in report.candidates]
    assert fixes[3:] == ["fine_tune", "rewrite_after_bn", "rewrite_head", "rewrite_uout", "rewrite_remove"]


def test_a_loss_metric_is_lower_is_better():
    model = keras.Sequential([keras.Input((2,)), layers.BatchNormalization(), layers.Dense(1)])
    model.compile("sgd", "mse", metrics=["mean_absolute_error"])
    x = np.random.default_rng(0).normal(size=(40, 2)).astype("float32")
    report = doctor(model, (x, x[:, :1]), batch_size=8)
    assert report.candidates[0].metric == "mean_absolute_error" and not report.higher_is_better


def test_multi_output_model_is_refused():
    x = keras.Input((2,))
    model = keras.Model(x, [layers.Dense(1)(x), layers.Dense(1)(x)], name="two")
    with pytest.raises(ValueError, match="single-output model. Received: model 'two' with 2 outputs"):
        doctor(model, (np.ones((4, 2)), np.ones(4)))


def test_unlabelled_data_without_validation_data_is_refused():
    model = keras.Sequential([keras.Input((2,)), layers.Dense(2)])
    with pytest.raises(ValueError, match="Received: data of type ndarray"):
        doctor(model, np.ones((8, 2), "float32"))


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_a_mixed_precision_model_gets_the_float32_models_report(policy, trained):
    full = trained.under_trained()
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)  # left set while the doctor runs
    try:
        mixed = trained._cnn(layers.Dropout(0.5, name="drop"))
        mixed.set_weights(full.get_weights())
        mixed.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
        assert mixed.get_layer("bn1").compute_dtype == policy.split("_")[1]
        x, y, xt, yt = trained.digits()
        got = doctor(mixed, (x, y), (xt, yt), batch_size=64)
        expected = doctor(full, (x, y), (xt, yt), batch_size=64)
    finally:
        keras.config.set_dtype_policy(previous)
    assert [c.fix for c in got.candidates] == [c.fix for c in expected.candidates]
    for a, b in zip(got.candidates, expected.candidates):
        assert a.value == pytest.approx(b.value, rel=0.05), a.fix
    assert list(got.attribution) == list(expected.attribution)
    for name, b in expected.attribution.items():
        a = got.attribution[name]
        for field in ("moving", "train", "real", "real_star"):
            assert getattr(a, field) == pytest.approx(getattr(b, field), rel=0.05), (name, field)
