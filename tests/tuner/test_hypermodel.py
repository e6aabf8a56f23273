"""tuner.hypermodel: the conditional search space, the zoo and user-model builds, the recipe."""

import warnings

import keras
import keras_tuner
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import keras_vs
from keras_vs import vocab
from tuner import hypermodel as hm
from tuner.config import TrainingConfig
from tuner.space import SearchSpace


def _tiny(rate=0.3):
    x = keras.Input((8, 8, 1), name="x")
    y = keras.layers.Conv2D(4, 3, use_bias=False, name="conv")(x)
    y = keras.layers.Dropout(rate, name="drop")(y)
    y = keras.layers.BatchNormalization(name="bn")(y)
    y = keras.layers.ReLU(name="relu")(y)
    y = keras.layers.GlobalAveragePooling2D(name="pool")(y)
    y = keras.layers.Dense(10, activation="softmax", name="predictions")(y)
    return keras.Model(x, y, name="tiny")


def _noise_layers(model):
    return [layer for layer in model.layers if isinstance(layer, (keras.layers.Dropout, keras_vs.Uout))]


def _zoo_model(space=None, batch_size=128):
    return hm.DropoutHyperModel("wrn-10-1", input_shape=(8, 8, 1), steps_per_epoch=3, space=space,
                                training=TrainingConfig(epochs=2, batch_size=batch_size))


def test_no_dropout_position_declares_no_type_or_rate():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("dropout_position", "none")
    assert _zoo_model().declare_hyperparameters(hp) == ("none", None, None)
    assert not hp.is_active("dropout_type") and not hp.is_active("dropout_rate")


def test_uout_activates_beta_not_rate():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("dropout_position", "head")
    hp.Fixed("dropout_type", "uout")
    hp.Fixed("uout_beta", 0.3)
    assert _zoo_model().declare_hyperparameters(hp) == ("head", "uout", 0.3)
    assert hp.is_active("uout_beta") and not hp.is_active("dropout_rate")


def test_space_lists_the_choices_given():
    hp = keras_tuner.HyperParameters()
    _zoo_model(SearchSpace(positions=("before_bn", "head"), rates=(0.2, 0.4), betas=(0.1,))).declare_hyperparameters(hp)
    by_name = {p.name: p for p in hp.space}
    assert by_name["dropout_position"].values == ["before_bn", "head"]
    assert by_name["dropout_rate"].values == [0.2, 0.4]
    assert by_name["uout_beta"].values == [0.1]


@pytest.mark.parametrize(
    "position,dropout_type,value,layer_type,count",
    [
        ("none", None, None, None, 0),
        ("head", "bernoulli", 0.5, keras.layers.Dropout, 1),
        ("before_conv", "uout", 0.2, keras_vs.Uout, 3),  # one per WRN-10-1 block
    ],
)
def test_zoo_build_places_the_chosen_dropout(position, dropout_type, value, layer_type, count):
    hp = keras_tuner.HyperParameters()
    hp.Fixed("dropout_position", position)
    if dropout_type:
        hp.Fixed("dropout_type", dropout_type)
        hp.Fixed("dropout_rate" if dropout_type == "bernoulli" else "uout_beta", value)
    model = _zoo_model().build(hp)
    layers = _noise_layers(model)
    assert len(layers) == count
    for layer in layers:
        assert isinstance(layer, layer_type)
        assert (layer.rate if layer_type is keras.layers.Dropout else layer.beta) == value
    assert model.optimizer is not None and model.input_shape == (None, 8, 8, 1)


def test_zoo_uout_gets_its_beta_as_beta():
    hp = keras_tuner.HyperParameters()
    hp.Fixed("dropout_position", "head")
    hp.Fixed("dropout_type", "uout")
    hp.Fixed("uout_beta", 0.3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)  # not as the zoo's Bernoulli dropout_rate
        model = _zoo_model(SearchSpace(betas=(0.3,))).build(hp)
    assert [layer.beta for layer in _noise_layers(model)] == [0.3]


def test_optimizer_follows_the_family_recipe_scaled_to_the_run():
    # WRN: lr x0.2 at 30%, 60%, 80% of training; lr scales with batch size.
    model = _zoo_model(batch_size=64)
    opt = model.optimizer()
    # torch's coupled decay; Keras' decoupled one is off (tests/tuner/test_recipe.py).
    assert opt.momentum == 0.9 and opt.coupled_weight_decay == 5e-4 and opt.weight_decay is None
    schedule = model.learning_rate_schedule()
    lrs = [float(schedule(step)) for step in range(6)]
    np.testing.assert_allclose(lrs, [0.05, 0.05, 0.01, 0.01, 0.002, 0.0004], rtol=1e-6)


def test_user_model_original_position_rerates_dropout_and_keeps_weights():
    model = _tiny()
    before = [w.copy() for w in model.get_weights()]
    new = hm.with_dropout(model, "original", "bernoulli", 0.1)
    assert [layer.rate for layer in _noise_layers(new)] == [0.1]
    assert model.get_layer("drop").rate == 0.3  # the user's model is untouched
    for a, b, c in zip(before, model.get_weights(), new.get_weights()):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


@pytest.mark.parametrize("position", ["original", "after_bn", "head", "remove"])
def test_user_model_rewrites_keep_inference_outputs(position):
    model = _tiny()
    x = np.random.default_rng(0).normal(size=(4, 8, 8, 1)).astype("float32")
    new = hm.with_dropout(model, position, "uout", 0.4)
    np.testing.assert_allclose(new.predict_on_batch(x), model.predict_on_batch(x), rtol=1e-5, atol=1e-6)
    layers = _noise_layers(new)
    if position == "remove":
        assert layers == []
    else:
        assert layers and all(isinstance(layer, keras_vs.Uout) and layer.beta == 0.4 for layer in layers)


def test_user_model_after_bn_moves_the_dropout_behind_the_bn():
    new = hm.with_dropout(_tiny(), "after_bn", "bernoulli", 0.2)
    names = [layer.name for layer in new.layers]
    assert names.index("bn") < names.index("bn_dropout")
    assert "drop" not in names


@given(
    position=st.sampled_from(vocab.DROPOUT_POSITIONS[1:]),
    dropout_type=st.sampled_from(vocab.DROPOUT_TYPES),
    value=st.sampled_from([0.1, 0.3, 0.5]),
)
def test_every_sampled_zoo_point_builds_its_layers(position, dropout_type, value):
    hp = keras_tuner.HyperParameters()
    hp.Fixed("dropout_position", position)
    hp.Fixed("dropout_type", dropout_type)
    hp.Fixed("dropout_rate" if dropout_type == "bernoulli" else "uout_beta", value)
    space = SearchSpace(rates=(0.1, 0.3, 0.5), betas=(0.1, 0.3, 0.5))
    model = hm.DropoutHyperModel("densenet-bc-22-4", input_shape=(8, 8, 1), space=space).build(hp)
    layers = _noise_layers(model)
    kind = keras_vs.Uout if dropout_type == "uout" else keras.layers.Dropout
    assert layers and all(type(layer) is kind for layer in layers)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: hm.DropoutHyperModel("wrn-99-1"), "Unknown zoo model"),
        (lambda: hm.DropoutHyperModel(3), "Received: model=3"),
        (lambda: hm.DropoutHyperModel("wrn-10-1", space=SearchSpace(positions=("after_bn",))), "positions"),
        (lambda: SearchSpace(rates=(0.0,)), "rates"),
        (lambda: SearchSpace(rates=(1.0,)), "rates"),
        (lambda: SearchSpace(betas=()), "betas"),
        (lambda: SearchSpace(types=("gaussian",)), "types"),
        (lambda: TrainingConfig(epochs=0), "epochs=0"),
        (lambda: TrainingConfig(learning_rate=-1.0), "learning_rate=-1.0"),
        (lambda: hm.DropoutHyperModel("wrn-10-1", model_options={"dropout_rate": 0.1}), "cannot set dropout_rate"),
        (lambda: hm.DropoutHyperModel("wrn-10-1", model_options={"dropout": None}), "cannot set dropout"),
        (lambda: hm.DropoutHyperModel("wrn-10-1", model_options={"beta": 0.1}), "cannot set beta"),
        (lambda: hm.DropoutHyperModel("wrn-10-1", model_options=["width"]), r"Received: model_options=\['width'\]"),
    ],
)
def test_bad_arguments_name_what_was_received(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_user_model_rejects_zoo_positions():
    with pytest.raises(ValueError, match="positions"):
        hm.DropoutHyperModel(_tiny(), space=SearchSpace(positions=("before_bn",)))
    with pytest.raises(ValueError, match="position='before_bn'"):
        hm.with_dropout(_tiny(), "before_bn", "bernoulli", 0.1)


def test_model_options_reach_the_zoo_builder():
    hypermodel = hm.DropoutHyperModel("wrn-10-1", input_shape=(8, 8, 1), model_options={"width": 2})
    model = hypermodel.build(keras_tuner.HyperParameters())
    assert model.name == "wrn-10-2"


def test_model_options_are_refused_for_a_user_model():
    with pytest.raises(ValueError, match="zoo models only"):
        hm.DropoutHyperModel(_tiny(), model_options={"width": 2})
