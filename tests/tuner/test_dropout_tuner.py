"""tuner.dropout_tuner: what fails a trial (memory, divergence) and what a trial reports."""

import types

import keras
import numpy as np
import pytest

import keras_vs as kvs
from tuner import dropout_tuner


def test_out_of_memory_errors_are_recognised():
    class ResourceExhaustedError(Exception):
        pass

    assert dropout_tuner._is_out_of_memory(ResourceExhaustedError("OOM when allocating tensor"))
    assert dropout_tuner._is_out_of_memory(RuntimeError("RESOURCE_EXHAUSTED: Out of memory"))
    assert not dropout_tuner._is_out_of_memory(ValueError("shapes do not match"))


def _model(weights):
    return types.SimpleNamespace(get_weights=lambda: weights)


def test_divergence_names_the_epoch():
    fine = _model([np.ones(3)])
    assert dropout_tuner._divergence({"loss": [1.0, 0.5]}, 2, 0, fine) is None
    assert dropout_tuner._divergence({"loss": [1.0, float("nan")]}, 2, 0, fine) == "diverged: loss nan at epoch 2"
    # TerminateOnNaN stopped training early: fewer epochs than asked.
    assert dropout_tuner._divergence({"loss": [1.0]}, 3, 1, fine) == "diverged: loss 1.0 at epoch 2"
    broken = _model([np.array([1.0, np.inf])])
    assert dropout_tuner._divergence({"loss": [1.0]}, 1, 0, broken) == "diverged: non-finite weights after epoch 1"


def test_trial_metrics_are_the_last_epochs_and_the_inconsistency():
    logs = {"val_accuracy": [0.5, 0.75], "val_loss": [1.0, 0.5], "accuracy": [0.6, 0.8], "loss": [0.9, 0.4],
            "variance_shift/max": [1.5, 1.25], "variance_shift/mean": [1.2, 1.1]}
    inconsistency = types.SimpleNamespace(train_mode_accuracy=0.7, inference_accuracy=0.8, gap=-0.1,
                                          disagreement=0.2)
    metrics = dropout_tuner._trial_metrics(logs, inconsistency)
    assert metrics["val_accuracy"] == 0.75 and metrics["variance_shift_max"] == 1.25
    assert metrics["variance_shift_mean"] == 1.1
    assert metrics["inconsistency_gap"] == -0.1 and set(metrics) >= {"loss", "accuracy", "disagreement"}


def _classifier(with_bn=True, epochs=6):
    """A small classifier trained on separable data, and its ``(train, validation)``."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(320, 4)).astype("float32")
    y = np.argmax(x[:, :3], axis=1)
    inputs = keras.Input((4,))
    h = keras.layers.Dense(8, name="dense")(inputs)
    if with_bn:
        h = keras.layers.BatchNormalization(name="bn")(h)
    outputs = keras.layers.Dense(3, activation="softmax", name="predictions")(keras.layers.ReLU()(h))
    model = keras.Model(inputs, outputs)
    model.compile(keras.optimizers.Adam(0.05), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:256], y[:256], batch_size=32, epochs=epochs, verbose=0)
    return model, (x[:256], y[:256]), (x[256:], y[256:])


def test_recalibrated_accuracy_is_the_accuracy_after_precise_bn_reestimation():
    model, train, validation = _classifier()
    bn = model.get_layer("bn")
    bn.moving_mean.assign(bn.moving_mean + 3.0)  # deliberately stale statistics
    raw = model.evaluate(*validation, verbose=0, return_dict=True)["accuracy"]
    by_hand = kvs.recalibrate_bn(model, train, batch_size=32, method="precise")
    expected = by_hand.evaluate(*validation, verbose=0, return_dict=True)["accuracy"]
    assert expected > raw + 0.2  # re-estimation repairs what the stale statistics broke
    tuner = types.SimpleNamespace(batch_size=32)
    logs = {"val_accuracy": [raw]}
    value = dropout_tuner.DropoutTuner._recalibrated_accuracy(tuner, model, train, validation, logs)
    assert value == pytest.approx(expected, abs=1e-6)


def test_a_model_without_bn_records_its_val_accuracy_unchanged():
    model, train, validation = _classifier(with_bn=False, epochs=0)
    tuner = types.SimpleNamespace(batch_size=32)
    logs = {"val_accuracy": [0.5, 0.25]}  # not evaluated again: nothing was re-estimated
    assert dropout_tuner.DropoutTuner._recalibrated_accuracy(tuner, model, train, validation, logs) == 0.25
