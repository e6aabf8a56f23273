"""zoo._checks: each error names the builder and the argument and echoes the value."""

import math

import pytest

from zoo import _checks


@pytest.mark.parametrize(
    "value, kwargs, interval",
    [
        (1.0, {}, "[0, 1)"),
        (0.0, {"low_open": True}, "(0, 1]"),
        (math.nan, {}, "[0, 1)"),
        (True, {}, "[0, 1)"),
        ("0.5", {}, "[0, 1)"),
    ],
)
def test_check_real_rejects_values_outside_the_interval(value, kwargs, interval):
    kwargs.setdefault("high_open", not kwargs.get("low_open", False))
    with pytest.raises(ValueError, match=rf"`x` of b\. Expected a float in \{interval[0]}0, 1\{interval[-1]}\. "
                                         rf"Received: x={value!r}"):
        _checks.check_real("b", "x", value, 0.0, 1.0, **kwargs)


@pytest.mark.parametrize("value", [0.0, 0.5, 1])
def test_check_real_returns_a_float_inside_a_closed_interval(value):
    result = _checks.check_real("b", "x", value, 0.0, 1.0)
    assert result == value and type(result) is float


def test_check_real_appends_what_the_value_is():
    with pytest.raises(ValueError, match=r"in \[0, 1\] \(Uout's noise\)\. Received: beta=2"):
        _checks.check_real("b", "beta", 2, 0.0, 1.0, what=" (Uout's noise)")


@pytest.mark.parametrize("depth, n", [(8, 1), (20, 3), (110, 18)])
def test_check_depth_returns_blocks_per_stage(depth, n):
    assert _checks.check_depth("b", depth, 6, 2) == n


def test_check_depth_gives_examples_of_valid_depths():
    with pytest.raises(ValueError, match=r"depth = 6n \+ 2 with n >= 1 \(e\.g\. 8, 14, 20\)\. Received: depth=9"):
        _checks.check_depth("b", 9, 6, 2)


@pytest.mark.parametrize("value", [0, 2.0, False, None])
def test_check_int_rejects_non_integers_and_small_values(value):
    with pytest.raises(ValueError, match=rf"an integer >= 1\. Received: n={value!r}"):
        _checks.check_int("b", "n", value)


def test_check_choice_lists_the_choices():
    with pytest.raises(ValueError, match=r"one of \('a', 'b'\)\. Received: c='z'"):
        _checks.check_choice("b", "c", "z", ("a", "b"))
