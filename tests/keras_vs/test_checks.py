import pytest
from hypothesis import given
from hypothesis import strategies as st

from keras_vs import checks


@given(st.integers(min_value=1, max_value=10**9))
def test_a_positive_integer_comes_back_as_an_int(value):
    assert checks.integer("steps", value) == value


@pytest.mark.parametrize("value", [0, -3, 1.5, "2", True, None])
def test_anything_else_is_refused_naming_what_was_received(value):
    with pytest.raises(ValueError, match=f"Expected steps to be a positive integer. Received: steps={value!r}"):
        checks.integer("steps", value)


def test_none_passes_where_allowed():
    assert checks.integer("steps", None, allow_none=True) is None


def test_a_minimum_other_than_one_is_named():
    assert checks.integer("seed", 0, minimum=0) == 0
    with pytest.raises(ValueError, match=r"an integer >= 0 or None. Received: seed=-1"):
        checks.integer("seed", -1, minimum=0, allow_none=True)


def test_first_line_is_the_first_non_blank_line_after_the_type():
    assert checks.first_line(ValueError("\n  bad shape\n  more")) == "ValueError: bad shape"


def test_first_line_cuts_a_long_line_and_names_an_empty_message_by_type():
    assert checks.first_line(ValueError("x" * 500), limit=20) == "ValueError: " + "x" * 17 + "..."
    assert checks.first_line(RuntimeError()) == "RuntimeError"
