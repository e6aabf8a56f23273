"""keras_vs.probe: the tap, compiled or eager, on each method, leaving the model as it was."""

import keras
import numpy as np
import pytest

from keras_vs import methods, probe
from keras_vs.batches import Batches


def _two_bn_model():
    x = keras.Input((4, 4, 3))
    h = keras.layers.BatchNormalization(name="bn1")(keras.layers.Conv2D(5, 3, padding="same")(x))
    h = keras.layers.Dense(6)(keras.layers.Flatten()(keras.layers.Dropout(0.5)(h)))
    return keras.Model(x, keras.layers.BatchNormalization(name="bn2")(h))


@pytest.mark.parametrize("method", list(methods.METHODS))
def test_compiled_pass_gives_the_eager_moments_and_writes_no_model_variable(method):
    # Compiled, a probe runs as Keras' predict_on_batch, or on JAX as its own
    # jitted program writing back the recorder alone (runner.state_writer).
    keras.utils.set_random_seed(0)
    model = _two_bn_model()
    before = [np.array(keras.ops.convert_to_numpy(v)) for v in model.variables]
    tap = probe.Probe(model, method, capacity=2)  # 4 batches: two buffer reads
    x = np.random.default_rng(2).normal(1.0, 2.0, (10, 4, 4, 3)).astype("float32")
    compiled = tap.moments(Batches(x, None, 3), compiled=True)
    eager = tap.moments(Batches(x, None, 3), compiled=False)
    assert list(compiled) == ["bn1", "bn2"] and tap.num_examples == 10
    for name, (n, mean, var) in eager.items():
        assert compiled[name][0] == n
        np.testing.assert_allclose(compiled[name][1], mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(compiled[name][2], var, rtol=1e-5)
    for old, new in zip(before, model.variables):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(new), old)


@pytest.mark.parametrize("method", list(methods.METHODS))
def test_a_compiled_pass_reads_the_weights_as_they_are_when_it_starts(method):
    # The jitted pass on JAX reads the model's variables once per pass.
    keras.utils.set_random_seed(0)
    model = _two_bn_model()
    tap = probe.Probe(model, method)
    x = np.random.default_rng(3).normal(1.0, 2.0, (10, 4, 4, 3)).astype("float32")
    tap.moments(Batches(x, None, 3), compiled=True)
    conv = model.layers[1]
    conv.kernel.assign(keras.ops.convert_to_numpy(conv.kernel) * 3.0)
    model.get_layer("bn1").gamma.assign(np.full(5, 2.0, "float32"))
    compiled = tap.moments(Batches(x, None, 3), compiled=True)
    eager = tap.moments(Batches(x, None, 3), compiled=False)
    for name, (_, mean, var) in eager.items():
        np.testing.assert_allclose(compiled[name][1], mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(compiled[name][2], var, rtol=1e-5)


def _loaded_se_block(tmp_path):
    """A squeeze-and-excitation block with unnamed Multiply and Add layers,
    saved and loaded after `clear_session`, as in a fresh process: its layers
    keep the names "multiply" and "add" while Keras' automatic names restart."""
    x = keras.Input((4, 4, 3))
    h = keras.layers.BatchNormalization()(keras.layers.Conv2D(4, 3, padding="same")(x))
    s = keras.layers.Dense(4, activation="sigmoid")(keras.layers.GlobalAveragePooling2D(keepdims=True)(h))
    h = keras.layers.Add()([keras.layers.Multiply()([h, s]), h])
    h = keras.layers.BatchNormalization()(keras.layers.Dropout(0.5)(h))
    path = str(tmp_path / "se.keras")
    keras.Model(x, h).save(path)
    keras.backend.clear_session()
    return keras.models.load_model(path)


@pytest.mark.parametrize("method", list(methods.METHODS))
def test_the_probe_of_a_loaded_model_names_its_own_layers_privately(method, tmp_path):
    model = _loaded_se_block(tmp_path)
    tap = probe.Probe(model, method)  # Keras refused a second "multiply" here
    own = {layer.name for layer in model.layers}
    helpers = [layer.name for layer in tap.model.layers if layer.name not in own]
    assert helpers and all(name.startswith("keras_vs_") for name in helpers)


def test_a_pass_leaves_a_stateful_rnn_state_as_it_was():
    keras.utils.set_random_seed(0)
    x = keras.Input(batch_shape=(4, 3, 2))
    lstm = keras.layers.LSTM(3, stateful=True)
    model = keras.Model(x, keras.layers.BatchNormalization()(lstm(x)))
    data = np.random.default_rng(4).normal(size=(12, 3, 2)).astype("float32")
    model(data[:4])  # a state that is not the initial zeros
    before = [keras.ops.convert_to_numpy(s) for s in lstm.states]
    probe.Probe(model).moments(Batches(data, None, 4), compiled=False)  # eager: advances it
    for old, new in zip(before, lstm.states):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(new), old)


@pytest.mark.parametrize("old,new", [
    ("state_writer", "keras_vs.runner.state_writer"),
    ("run_function", "keras_vs.runner.run_function"),
    ("host_values", "keras_vs.runner.host_values"),
    ("private_names", "keras_vs.runner.private_names"),
    ("moments_row", "keras_vs.moments.moments_row"),
    ("batch_norm_train", "keras_vs.moments.batch_norm_train"),
    ("pooled", "keras_vs.moments.pooled"),
    ("merge", "keras_vs.moments.merge"),
    ("finish", "keras_vs.moments.finish"),
])
def test_the_moved_names_still_work_with_a_deprecation_warning(old, new):
    import importlib

    module, name = new.rsplit(".", 1)
    with pytest.warns(DeprecationWarning, match=f"use {new}"):
        assert getattr(probe, old) is getattr(importlib.import_module(module), name)


def test_modes_are_the_methods_now():
    with pytest.warns(DeprecationWarning, match="keras_vs.methods.METHODS"):
        assert probe.MODES == tuple(methods.METHODS)
