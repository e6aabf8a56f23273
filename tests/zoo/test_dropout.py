"""zoo.DropoutPlan: the dropout plan, `rate` (Bernoulli) kept apart from
`beta` (Uout), and the deprecated flat keywords that map to it."""

import dataclasses
import warnings

import keras
import pytest
from hypothesis import given
from hypothesis import strategies as st

import keras_vs
import zoo
from zoo import DropoutPlan

POSITIONS = zoo.POSITIONS[1:]  # every position that builds a layer


@given(rate=st.floats(0.0, 0.99), position=st.sampled_from(POSITIONS))
def test_plan_accepts_bernoulli_rates_in_unit_interval(rate, position):
    p = DropoutPlan(rate, position)
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
    with pytest.raises(ValueError, match="Received: rate="):
        DropoutPlan(rate, "head")


def test_plan_accepts_uout_beta_one():
    p = DropoutPlan(position="before_conv", type="uout", beta=1.0)
    assert (p.beta, p.rate, p.amount, p.active) == (1.0, 0.0, 1.0, True)


@pytest.mark.parametrize("beta", [True, "0.1", None, 1.01, -0.1])
def test_plan_rejects_non_numeric_or_large_uout_beta(beta):
    with pytest.raises(ValueError, match=r"Received: beta="):
        DropoutPlan(position="head", type="uout", beta=beta)


@pytest.mark.parametrize(
    "field, value", [("position", "after_bn"), ("position", None), ("type", "gaussian")]
)
def test_plan_rejects_unknown_position_or_type(field, value):
    with pytest.raises(ValueError, match=f"Received: {field}={value!r}"):
        DropoutPlan(0.1, **{"position": "head", field: value})


def test_plan_is_frozen_and_compares_by_value():
    plan = DropoutPlan(0.3, "head")
    assert plan == DropoutPlan(rate=0.3, position="head", type="bernoulli", beta=0)
    assert type(DropoutPlan(0, "head").rate) is float  # numbers normalised, for repr and equality
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.rate = 0.5


def test_apply_rejects_an_unknown_place():
    with pytest.raises(ValueError, match="Received: position='none'"):
        DropoutPlan(0.1, "head").apply(keras.Input((4,)), "none", "x")


def test_positive_beta_with_position_none_is_rejected():
    with pytest.raises(ValueError, match="position='none'.*Received: beta=0.2"):
        DropoutPlan(type="uout", beta=0.2)


def test_beta_with_bernoulli_dropout_is_rejected():
    with pytest.raises(ValueError, match="Received: beta=0.2, type='bernoulli'"):
        DropoutPlan(position="head", beta=0.2)


def test_uout_rejects_a_rate():
    with pytest.raises(ValueError, match="takes `beta`.*Received: rate=0.3, type='uout'"):
        DropoutPlan(0.3, "head", "uout")


def test_uout_beta_builds_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        plan = DropoutPlan(position="before_conv", type="uout", beta=0.3)
        model = zoo.get("wrn-10-1", dropout=plan)
    betas = {layer.beta for layer in model.layers if isinstance(layer, keras_vs.Uout)}
    assert betas == {0.3}


@pytest.mark.parametrize("dropout", [0.3, "head", {"rate": 0.3}])
def test_builders_take_only_a_plan_as_dropout(dropout):
    with pytest.raises(ValueError, match=rf"DropoutPlan or None. Received: dropout={dropout!r}"):
        zoo.wide_resnet(10, 1, dropout=dropout)


# -- the deprecated flat keywords ------------------------------------------------

BUILD = pytest.mark.parametrize("build", [
    lambda **kw: zoo.wide_resnet(10, 1, **kw),
    lambda **kw: zoo.get("wrn-10-1", **kw),
], ids=["builder", "registry"])


@BUILD
def test_flat_dropout_keywords_are_deprecated_for_a_plan(build):
    with pytest.warns(DeprecationWarning, match=r"pass dropout=zoo\.DropoutPlan\(rate=0.3, "
                      r"position='before_bn'\)") as record:
        old = build(dropout_rate=0.3, dropout_position="before_bn")
    # The warning points at the caller's line, not into the zoo.
    assert {w.filename for w in record} == {__file__}
    new = build(dropout=DropoutPlan(0.3, "before_bn"))
    assert old.get_config() == new.get_config()


@BUILD
def test_uout_dropout_rate_is_deprecated_and_read_as_beta(build):
    with pytest.warns(DeprecationWarning, match=r"DropoutPlan\(position='before_bn', type='uout', "
                      r"beta=0.3\)"):
        old = build(dropout_type="uout", dropout_rate=0.3, dropout_position="before_bn")
    new = build(dropout=DropoutPlan(position="before_bn", type="uout", beta=0.3))
    assert old.get_config() == new.get_config()


def test_a_plan_and_flat_keywords_together_are_rejected():
    plan = DropoutPlan(0.3, "head")
    with pytest.raises(ValueError, match=r"not both\. Received: dropout=DropoutPlan\(rate=0.3, "
                       r"position='head', type='bernoulli', beta=0.0\), dropout_rate=0.5"):
        zoo.get("wrn-10-1", dropout=plan, dropout_rate=0.5)


def test_flat_keywords_keep_their_checks():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        with pytest.raises(ValueError, match="Received: rate=0.3, position='none'"):
            zoo.wide_resnet(10, 1, dropout_rate=0.3)
        with pytest.raises(ValueError, match="Received: rate=0.3, type='uout'"):
            zoo.wide_resnet(10, 1, dropout_type="uout", dropout_rate=0.3, beta=0.2,
                            dropout_position="head")
