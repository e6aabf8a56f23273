"""keras_vs.methods: the one table of what the BNs do while tapped."""

import keras
import numpy as np
import pytest

from keras_vs import methods, probe, vocab
from keras_vs.batches import Batches


def test_every_recalibration_method_is_in_the_table_next_to_measuring():
    assert set(methods.METHODS) == {"inference", *vocab.RECALIBRATION_METHODS}
    assert all(methods.get(name).name == name for name in methods.METHODS)


def test_an_unknown_method_is_named():
    with pytest.raises(ValueError, match=r"Expected method in .*Received: method='copies'"):
        methods.get("copies")


def _model():
    keras.utils.set_random_seed(0)
    x = keras.Input((3,))
    h = keras.layers.BatchNormalization(name="bn1")(keras.layers.Dense(3, name="d")(x))
    return keras.Model(x, keras.layers.BatchNormalization(name="bn2")(keras.layers.Dense(2)(h)))


def test_exact_owns_a_copy_of_every_bn_and_sets_only_the_copies():
    model = _model()
    tap = probe.Probe(model, "exact")
    assert sorted(tap.method.copies) == ["bn1", "bn2"]
    tap.method.set_statistics({"bn1": (np.full(3, 5.0), np.full(3, 2.0))})
    copy, bn = tap.method.copies["bn1"], model.get_layer("bn1")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(copy.moving_mean), 5.0)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(bn.moving_mean), 0.0)
    tap.method.resync()
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(copy.moving_mean), 0.0)


@pytest.mark.parametrize("name", ["inference", "precise"])
def test_one_pass_methods_give_the_pooled_moments_of_their_pass(name):
    model = _model()
    tap = probe.Probe(model, name)
    x = np.random.default_rng(0).normal(1.0, 2.0, (12, 3)).astype("float32")
    stats = tap.method.statistics(tap, Batches(x, None, 4), None)
    d = keras.ops.convert_to_numpy(model.get_layer("d")(x)).astype(np.float64)
    np.testing.assert_allclose(stats["bn1"][0], d.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats["bn1"][1], d.var(0), rtol=1e-4)
    assert sorted(stats) == ["bn1", "bn2"]
