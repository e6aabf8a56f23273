"""attribute_shift: each BN's real/moving split into statistics, dropout and upstream parts."""


import keras
import numpy as np
import pytest
from keras import layers

from keras_vs import attribution, shift


@pytest.fixture(scope="module")
def under(trained):
    model = trained.under_trained()
    return model, attribution.attribute_shift(model, trained.digits()[0], batch_size=64)


def test_parts_multiply_to_real_over_moving(under):
    _, result = under
    for a in result.values():
        assert a.statistics * a.dropout * a.upstream == pytest.approx(a.real / a.moving, rel=1e-4)


def test_shift_and_variances_are_measure_variance_shift(under, trained):
    model, result = under
    measured = shift.measure_variance_shift(model, trained.digits()[0], batch_size=64)
    assert list(result) == list(measured)
    for name, a in result.items():
        assert a.shift == pytest.approx(measured[name], rel=1e-6)
        assert a.real == pytest.approx(float(np.mean(measured.real_var[name])), rel=1e-6)


def test_statistics_part_dominates_at_the_first_bn_of_an_under_trained_model(under):
    _, result = under
    assert result["bn1"].dominant == "statistics"
    assert result["bn1"].part("statistics") > 5 * result["bn1"].part("dropout")


def test_upstream_part_dominates_at_the_second_bn(under):
    _, result = under
    assert result["bn2"].dominant == "upstream"
    assert result["bn2"].part("dropout") < 1.5


def test_first_bn_inherits_nothing(under):
    _, result = under
    assert result["bn1"].part("upstream") == pytest.approx(1.0, abs=1e-4)


def test_stale_statistics_sentence_names_momentum_and_steps(under):
    _, result = under
    sentence = result["bn1"].explain()
    assert "momentum 0.99 over 69 steps" in sentence and "0.99^69 = 50%" in sentence


def test_dropout_part_dominates_once_the_averages_have_converged(trained):
    result = attribution.attribute_shift(trained.converged(), trained.digits()[0], batch_size=64)
    assert result["bn1"].dominant == "dropout"
    assert result["bn1"].part("statistics") < 1.3  # weights still move: a little drift


def test_uout_leaves_a_small_dropout_part(trained):
    result = attribution.attribute_shift(trained.uout(), trained.digits()[0], batch_size=64)
    assert result["bn1"].part("dropout") < 1.05


def test_dropout_after_every_bn_leaves_no_dropout_part(trained):
    result = attribution.attribute_shift(trained.after_bn(), trained.digits()[0], batch_size=64)
    assert max(a.part("dropout") for a in result.values()) < 1.02


def test_model_without_bn_has_no_attribution(trained):
    assert len(attribution.attribute_shift(trained.no_bn(), trained.digits()[0])) == 0


def _two_bn_model():
    x = keras.Input((3,))
    h = layers.BatchNormalization(momentum=0.5, name="bn1")(layers.Dense(4, name="d1")(x))
    h = layers.BatchNormalization(name="bn2")(layers.Dense(2, name="d2")(h))
    model = keras.Model(x, h)
    rng = np.random.default_rng(0)
    model.get_layer("bn1").moving_mean.assign(rng.normal(size=4).astype("float32"))
    model.get_layer("bn1").moving_variance.assign(rng.uniform(0.5, 3, size=4).astype("float32"))
    return model


def _bn(h, mean, var, bn):
    gamma, beta = (np.asarray(v, np.float64) for v in (bn.gamma, bn.beta))
    return (h - mean) / np.sqrt(var + bn.epsilon) * gamma + beta


def test_parts_match_variances_computed_by_hand():
    model = _two_bn_model()
    x = np.random.default_rng(1).normal(2.0, 3.0, size=(96, 3)).astype("float32")
    d1, d2, bn1 = (model.get_layer(n) for n in ("d1", "d2", "bn1"))
    w1, b1, w2, b2 = (np.asarray(v, np.float64) for v in (d1.kernel, d1.bias, d2.kernel, d2.bias))
    h1 = x.astype(np.float64) @ w1 + b1
    stored = _bn(h1, np.asarray(bn1.moving_mean), np.asarray(bn1.moving_variance), bn1)
    exact = _bn(h1, h1.mean(0), h1.var(0), bn1)
    train = np.concatenate([_bn(b, b.mean(0), b.var(0), bn1) for b in np.split(h1, 3)])
    result = attribution.attribute_shift(model, x, batch_size=32)["bn2"]
    assert result.real == pytest.approx(np.var(stored @ w2 + b2, axis=0).mean(), rel=1e-4)
    assert result.real_star == pytest.approx(np.var(exact @ w2 + b2, axis=0).mean(), rel=1e-4)
    assert result.train == pytest.approx(np.var(train @ w2 + b2, axis=0).mean(), rel=1e-4)
    assert result.moving == 1.0


def test_dropout_part_is_the_theory_for_dropout_right_before_bn():
    model = keras.Sequential([keras.Input((8,)), layers.Dropout(0.5, seed=3),
                              layers.BatchNormalization(name="bn")])
    x = np.random.default_rng(2).normal(size=(4096, 8)).astype("float32")
    result = attribution.attribute_shift(model, x, batch_size=256)["bn"]
    assert result.dropout == pytest.approx(0.5, rel=0.05)  # Var_test / Var_train = p


def test_one_shot_iterator_is_refused():
    model = keras.Sequential([keras.Input((2,)), layers.BatchNormalization()])
    with pytest.raises(ValueError, match="one-shot iterator of type generator"):
        attribution.attribute_shift(model, (np.ones((4, 2), "float32") for _ in range(2)))


def test_json_form_has_the_three_parts(under):
    _, result = under
    row = result["bn1"].as_dict()
    assert {"bn", "shift", "statistics_part", "dropout_part", "upstream_part"} <= set(row)
