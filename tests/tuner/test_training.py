"""tuner.training: which loss, metrics and optimizer each trial is compiled with."""

import warnings

import keras
import keras_tuner
import numpy as np
import pytest

import tuner
from keras_vs import data
from tuner import training


def _model(activation=None, name="mine"):
    x = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, use_bias=False)(x)
    h = keras.layers.BatchNormalization()(keras.layers.Dropout(0.3)(h))
    h = keras.layers.GlobalAveragePooling2D()(h)
    return keras.Model(x, keras.layers.Dense(10, activation=activation)(h), name=name)


def _compiled(model):
    space = tuner.SearchSpace(positions=("original",), types=("bernoulli",), rates=(0.3,))
    hypermodel = tuner.DropoutHyperModel(model, space=space)
    hp = keras_tuner.HyperParameters()
    return hypermodel, hypermodel.build(hp)


def _loss_config(model):
    return model.loss.get_config()


def test_a_compiled_model_keeps_its_loss_metrics_and_optimizer():
    model = _model()
    model.compile(keras.optimizers.RMSprop(0.002),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["sparse_categorical_accuracy"])
    hypermodel, trial = _compiled(model)
    assert isinstance(trial.optimizer, keras.optimizers.RMSprop)
    assert float(trial.optimizer.learning_rate) == pytest.approx(0.002)
    assert trial.optimizer is not model.optimizer  # a fresh optimizer per trial
    assert _loss_config(trial)["from_logits"] is True
    assert hypermodel.training.sources == {"loss": "the model's own compile()",
                                           "optimizer": "the model's own compile()"}
    x, y = data.load("digits", "test")
    logs = trial.fit(x[:32], y[:32], epochs=1, verbose=0, validation_data=(x[:32], y[:32])).history
    # The user's metric is kept, and accuracy (the search's objective) added.
    assert "sparse_categorical_accuracy" in logs and "val_accuracy" in logs


def test_explicit_loss_and_optimizer_override_the_models_own():
    model = _model()
    model.compile("sgd", "sparse_categorical_crossentropy")
    hypermodel = tuner.DropoutHyperModel(
        model, space=tuner.SearchSpace(positions=("original",)),
        training=tuner.TrainingConfig(loss="sparse_categorical_crossentropy", from_logits=True, optimizer="adam",
                                      learning_rate=0.003),
    )
    trial = hypermodel.build(keras_tuner.HyperParameters())
    assert isinstance(trial.optimizer, keras.optimizers.Adam)
    assert float(trial.optimizer.learning_rate) == pytest.approx(0.003)
    assert _loss_config(trial)["from_logits"] is True
    assert hypermodel.training.sources == {"loss": "given", "optimizer": "given"}


def test_an_uncompiled_logits_model_gets_a_logits_loss_and_a_warning():
    with pytest.warns(UserWarning, match=r"not compiled and its output is not a softmax: assuming "
                                         r"SparseCategoricalCrossentropy\(from_logits=True\)"):
        hypermodel, trial = _compiled(_model(activation=None))
    assert _loss_config(trial)["from_logits"] is True
    assert hypermodel.training.sources["loss"] == "assumed"


def test_an_uncompiled_softmax_model_gets_a_probability_loss_silently():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hypermodel, trial = _compiled(_model(activation="softmax"))
    assert _loss_config(trial)["from_logits"] is False
    assert hypermodel.training.optimizer == training.RECIPE  # and the paper's recipe
    assert "softmax" in hypermodel.training.notes[0]


def test_a_zoo_network_keeps_the_papers_recipe():
    hypermodel = tuner.DropoutHyperModel("wrn-10-1", input_shape=(8, 8, 1), steps_per_epoch=1,
                                         training=tuner.TrainingConfig(epochs=1))
    trial = hypermodel.build(keras_tuner.HyperParameters())
    assert hypermodel.training.optimizer == training.RECIPE and hypermodel.training.is_recipe_default()
    assert type(trial.optimizer) is type(hypermodel.optimizer())
    assert _loss_config(trial)["from_logits"] is False


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"optimizer": "adamz"}, "Unknown optimizer. Expected 'recipe'"),
        ({"loss": "hinge_squared_nope"}, "Unknown loss"),
        ({"loss": "mean_squared_error", "from_logits": True}, "from_logits applies to a cross-entropy"),
    ],
)
def test_bad_setups_name_what_was_received(kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        tuner.DropoutHyperModel(_model(), training=tuner.TrainingConfig(**kwargs))
    assert "Received:" in str(info.value)


def test_the_hypermodel_works_inside_keras_tuners_own_tuners(tmp_path):
    model = _model()
    model.compile(keras.optimizers.Adam(0.01),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    hypermodel = tuner.DropoutHyperModel(model, space=tuner.SearchSpace(types=("bernoulli",), rates=(0.2, 0.5)))
    search = keras_tuner.RandomSearch(hypermodel, objective="val_accuracy", max_trials=2, seed=0,
                                      directory=str(tmp_path), project_name="direct", overwrite=True)
    x, y = data.load("digits", "train")
    search.search(x[:128], y[:128], validation_data=data.load("digits", "test"), epochs=1, verbose=0)
    (best,) = search.get_best_models(1)
    assert _loss_config(best)["from_logits"] is True
    assert len(search.oracle.trials) == 2
    assert np.isfinite(search.oracle.get_best_trials(1)[0].score)
