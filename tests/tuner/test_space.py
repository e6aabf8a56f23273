"""tuner.space: the search space's checks, its grid order and its keras-tuner hyperparameters."""

import keras_tuner
import pytest

from keras_vs import vocab
from tuner import space as space_lib
from tuner.space import SearchSpace


def test_each_dropout_type_has_its_own_amount():
    assert space_lib.AMOUNT == {"bernoulli": "dropout_rate", "uout": "uout_beta"}
    assert set(space_lib.AMOUNT) == set(vocab.DROPOUT_TYPES)


def test_values_are_normalised_to_float_tuples():
    space = SearchSpace(positions=["head"], types=["uout"], rates=[0.5], betas=[1])
    assert space.positions == ("head",) and space.types == ("uout",)
    assert space.rates == (0.5,) and space.betas == (1.0,)  # a beta may be 1, a rate may not
    assert type(space.betas[0]) is float


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"rates": (0.0,)}, r"Invalid value 0.0 in rates"),
        ({"rates": (1.0,)}, r"numbers in \(0, 1\)"),
        ({"betas": ()}, "Expected a non-empty sequence for betas"),
        ({"betas": (1.5,)}, r"numbers in \(0, 1\]"),
        ({"types": ("gaussian",)}, "Received: types=\\('gaussian',\\)"),
        ({"rates": (0.2, 0.2)}, "Duplicate values in rates"),
        ({"positions": ("sideways",)}, "Invalid value 'sideways' in positions"),
        ({"rates": (True,)}, "rates"),
    ],
)
def test_bad_values_name_what_was_received(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SearchSpace(**kwargs)


def test_positions_are_checked_against_the_model_kind():
    assert SearchSpace().for_model(vocab.MODEL_POSITIONS).positions == vocab.MODEL_POSITIONS
    with pytest.raises(ValueError, match="Invalid value 'before_bn' in positions. Expected each of original"):
        SearchSpace(positions=("before_bn",)).for_model(vocab.MODEL_POSITIONS)


def test_the_space_is_frozen():
    with pytest.raises(AttributeError):
        SearchSpace().rates = (0.1,)


def test_grid_visits_every_position_before_a_second_amount():
    space = SearchSpace(types=("bernoulli", "uout"), rates=(0.2, 0.5), betas=(0.5,)).for_model(("none", "head"))
    assert space.grid_points() == [
        {"dropout_position": "none"},
        {"dropout_position": "head", "dropout_type": "bernoulli", "dropout_rate": 0.2},
        {"dropout_position": "head", "dropout_type": "bernoulli", "dropout_rate": 0.5},
        {"dropout_position": "head", "dropout_type": "uout", "uout_beta": 0.5},
    ]


def test_hyperparameters_are_declared_in_vocabulary_order():
    # The order an oracle samples in does not depend on the order of `types`.
    names = []
    for types in (("bernoulli", "uout"), ("uout", "bernoulli")):
        hp = keras_tuner.HyperParameters()
        SearchSpace(types=types).for_model(("none", "head")).declare(hp)
        names.append([p.name for p in hp.space])
    assert names[0] == names[1] == ["dropout_position", "dropout_type", "dropout_rate", "uout_beta"]


def test_declare_returns_the_chosen_amount():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("dropout_position", "head")
    hp.Fixed("dropout_type", "uout")
    hp.Fixed("uout_beta", 0.5)
    assert SearchSpace().for_model(("none", "head")).declare(hp) == ("head", "uout", 0.5)


@pytest.mark.parametrize(
    "values,expected,text",
    [
        ({"dropout_position": "none", "dropout_type": "uout"}, ("none", None, None), "none"),
        ({"dropout_position": "remove"}, ("remove", None, None), "remove"),
        ({"dropout_position": "head", "dropout_type": "bernoulli", "dropout_rate": 0.2,
          "uout_beta": 0.5}, ("head", "bernoulli", 0.2), "head bernoulli 0.2"),
        ({"dropout_position": "after_bn", "dropout_type": "uout", "uout_beta": 0.5},
         ("after_bn", "uout", 0.5), "after_bn uout 0.5"),
    ],
)
def test_point_reads_the_active_values(values, expected, text):
    assert space_lib.point(values) == expected
    assert space_lib.point_text(values) == text
