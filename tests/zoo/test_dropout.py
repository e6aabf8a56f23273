"""zoo._dropout: the dropout plan, and `rate` (Bernoulli) kept apart from `beta` (Uout)."""

import warnings

import keras
import pytest
from hypothesis import given
from hypothesis import strategies as st

import keras_vs
import zoo
from zoo._dropout import DropoutPlan

POSITIONS = zoo.POSITIONS[1:]  # every position that builds a layer


def plan(dropout_rate=0.0, position="head", dropout_type="bernoulli", beta=0.0):
    return DropoutPlan.from_arguments("b", dropout_rate, position, dropout_type, beta)


@given(rate=st.floats(0.0, 0.99), position=st.sampled_from(POSITIONS))
def test_plan_accepts_bernoulli_rates_in_unit_interval(rate, position):
    p = plan(rate, position)
    assert (p.rate, p.beta, p.amount) == (rate, 0.0, rate)
    assert p.active == (rate > 0)


@given(
    rate=st.one_of(
        st.floats(max_value=-1e-9, allow_nan=False),
        st.floats(min_value=1.0, allow_nan=False),
        st.just(float("nan")),
    )
)
def test_plan_rejects_bernoulli_rates_outside_unit_interval(rate):
    with pytest.raises(ValueError, match="Received: dropout_rate="):
        plan(rate)


def test_plan_accepts_uout_beta_one():
    p = plan(position="before_conv", dropout_type="uout", beta=1.0)
    assert (p.beta, p.rate, p.amount, p.active) == (1.0, 0.0, 1.0, True)


@pytest.mark.parametrize("beta", [True, "0.1", None, 1.01, -0.1])
def test_plan_rejects_non_numeric_or_large_uout_beta(beta):
    with pytest.raises(ValueError, match=r"Received: beta="):
        plan(dropout_type="uout", beta=beta)


@pytest.mark.parametrize("rate", [True, "0.1", None, 1.01])
def test_plan_rejects_a_bad_deprecated_uout_rate(rate):
    with pytest.raises(ValueError, match=r"Received: dropout_rate="):
        plan(rate, dropout_type="uout")


@pytest.mark.parametrize(
    "arg, value",
    [("dropout_position", "after_bn"), ("dropout_position", None), ("dropout_type", "gaussian")],
)
def test_plan_rejects_unknown_position_or_type(arg, value):
    kwargs = {"dropout_position": "head", "dropout_type": "bernoulli", arg: value}
    with pytest.raises(ValueError, match=f"Received: {arg}={value!r}"):
        plan(0.1, kwargs["dropout_position"], kwargs["dropout_type"])


def test_apply_rejects_an_unknown_place():
    with pytest.raises(ValueError, match="Received: position='none'"):
        plan(0.1).apply(keras.Input((4,)), "none", "x")


def test_positive_beta_with_position_none_is_rejected():
    with pytest.raises(ValueError, match="dropout_position='none'.*Received: beta=0.2"):
        zoo.wide_resnet(10, 1, dropout_type="uout", beta=0.2)


def test_beta_with_bernoulli_dropout_is_rejected():
    with pytest.raises(ValueError, match="Received: beta=0.2, dropout_type='bernoulli'"):
        zoo.wide_resnet(10, 1, beta=0.2, dropout_position="head")


def test_uout_rejects_a_rate_and_a_beta_together():
    with pytest.raises(ValueError, match="Received: dropout_rate=0.3, beta=0.2"):
        zoo.wide_resnet(10, 1, dropout_type="uout", dropout_rate=0.3, beta=0.2,
                        dropout_position="head")


def test_uout_beta_builds_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = zoo.get("wrn-10-1", dropout_type="uout", beta=0.3, dropout_position="before_conv")
    betas = {layer.beta for layer in model.layers if isinstance(layer, keras_vs.Uout)}
    assert betas == {0.3}


@pytest.mark.parametrize("build", [
    lambda **kw: zoo.wide_resnet(10, 1, **kw),
    lambda **kw: zoo.get("wrn-10-1", **kw),
], ids=["builder", "registry"])
def test_uout_dropout_rate_is_deprecated_and_read_as_beta(build):
    with pytest.warns(DeprecationWarning, match=r"pass beta=0.3") as record:
        old = build(dropout_type="uout", dropout_rate=0.3, dropout_position="before_bn")
    # The warning points at the caller's line, not into the zoo.
    assert {w.filename for w in record} == {__file__}
    new = build(dropout_type="uout", beta=0.3, dropout_position="before_bn")
    assert old.get_config() == new.get_config()
