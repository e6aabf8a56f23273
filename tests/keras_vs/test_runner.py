"""keras_vs.runner: running helper models on this backend."""

import keras
import numpy as np
import pytest

from keras_vs import runner
from keras_vs.batches import Batches


def _dense():
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="fc")])


@pytest.mark.parametrize("batches,compiled,expected", [
    (2, None, False),  # up to EAGER_BATCHES: eager
    (3, None, True),
    (2, True, True),
    (9, False, False),
])
def test_compiles_decides_from_the_number_of_batches(batches, compiled, expected):
    data = Batches(np.ones((batches * 4, 3), "float32"), None, 4)
    assert runner.compiles(_dense(), data, compiled) is expected


@pytest.mark.parametrize("compiled", [True, False])
def test_run_function_gives_the_model_outputs(compiled):
    model = _dense()
    x = np.random.default_rng(0).normal(size=(4, 3)).astype("float32")
    run = runner.run_function(model, Batches(x, None, 4), compiled)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(run(x)),
                               keras.ops.convert_to_numpy(model(x)), rtol=1e-6)


def test_host_values_reads_many_variables_at_once():
    bn = keras.layers.BatchNormalization()
    bn.build((None, 3))
    bn.moving_mean.assign(np.array([1.0, 2.0, 3.0], "float32"))
    mean, var, gamma = runner.host_values([bn.moving_mean, bn.moving_variance, bn.gamma])
    assert mean.dtype == np.float64 and mean.tolist() == [1.0, 2.0, 3.0]
    assert var.tolist() == [1.0] * 3 and gamma.shape == (3,)
    assert runner.host_values([]) == []


def test_private_names_skip_the_names_the_model_holds():
    last = int(runner.private_names(_dense())("probe").rsplit("_", 1)[1])
    taken = [f"keras_vs_probe_{last + i}" for i in range(1, 4)]  # the next three
    x = keras.Input((3,))
    h = x
    for name in taken:
        h = keras.layers.ReLU(name=name)(h)
    fresh = runner.private_names(keras.Model(x, h))("probe")
    assert fresh.startswith("keras_vs_probe_") and fresh not in taken
    assert int(fresh.rsplit("_", 1)[1]) > last + 3


@pytest.mark.skipif(keras.backend.backend() not in ("tensorflow", "jax"),
                    reason="compiled programs are TensorFlow's and JAX's; other backends predict_on_batch")
def test_a_program_runs_any_number_of_examples():
    x = keras.Input((3,))
    model = keras.Model([x], [keras.layers.Dense(2)(x)])  # stage models take and give lists
    assert runner.programs_supported(model)
    run = runner.program(model).bound()
    place = runner.placer()
    for n in (2, 5):
        x = np.random.default_rng(n).normal(size=(n, 3)).astype("float32")
        out = run([place(model.inputs[0], x)])
        np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.tree.flatten(out)[0]),
                                   keras.ops.convert_to_numpy(keras.tree.flatten(model([x]))[0]), rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(keras.backend.backend() != "jax", reason="state_writer is JAX's")
def test_state_writer_writes_back_only_what_it_is_given():
    keras.utils.set_random_seed(0)
    x = keras.Input((3,))
    bn1, bn2 = keras.layers.BatchNormalization(), keras.layers.BatchNormalization()
    model = keras.Model(x, bn2(bn1(x)))
    data = np.random.default_rng(1).normal(5.0, 2.0, (8, 3)).astype("float32")
    runner.state_writer(model, bn1.non_trainable_variables, training=True)(data)
    assert not np.allclose(keras.ops.convert_to_numpy(bn1.moving_mean), 0.0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(bn2.moving_mean), 0.0)
