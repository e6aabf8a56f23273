import keras
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import keras_vs
from keras_vs.layers import Uout


def _np(x):
    return keras.ops.convert_to_numpy(x)


def test_exported_at_top_level():
    assert keras_vs.Uout is Uout


def test_inference_is_identity():
    x = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    np.testing.assert_array_equal(_np(Uout(0.5, seed=0)(x, training=False)), x)


def test_default_call_is_inference():
    x = np.ones((2, 3), "float32")
    np.testing.assert_array_equal(_np(Uout(0.5, seed=0)(x)), x)


@given(
    beta=st.floats(0.01, 1.0),
    shape=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    seed=st.integers(0, 2**16),
)
def test_training_factor_lies_in_one_plus_minus_beta(beta, shape, seed):
    x = np.full(shape, 2.0, "float32")
    factor = _np(Uout(beta, seed=seed)(x, training=True)) / 2.0
    assert factor.shape == x.shape
    assert np.all(factor >= 1 - beta - 1e-6) and np.all(factor <= 1 + beta + 1e-6)


def test_training_noise_is_uniform_with_mean_one():
    beta = 0.4
    factor = _np(Uout(beta, seed=3)(np.ones((200, 500), "float32"), training=True))
    r = factor.ravel() - 1.0
    assert abs(r.mean()) < 0.003
    # Var(U(-b, b)) = b²/3; and a uniform fills its range evenly.
    assert r.var() == pytest.approx(beta**2 / 3, rel=0.01)
    counts, _ = np.histogram(r, bins=10, range=(-beta, beta))
    assert counts.min() / counts.max() > 0.95


def test_noise_drawn_per_activation():
    factor = _np(Uout(0.5, seed=1)(np.ones((8, 16), "float32"), training=True))
    assert len(np.unique(factor)) == factor.size


def test_noise_shape_shares_noise_over_none_axes():
    layer = Uout(0.5, noise_shape=(None, 1, 1, None), seed=2)
    factor = _np(layer(np.ones((3, 4, 5, 6), "float32"), training=True))
    np.testing.assert_allclose(factor, np.broadcast_to(factor[:, :1, :1, :], factor.shape))
    assert len(np.unique(factor[:, 0, 0, :])) == 3 * 6


def test_noise_shape_rank_mismatch_is_rejected():
    with pytest.raises(ValueError, match="noise_shape"):
        Uout(0.5, noise_shape=(None, 1))(np.ones((2, 3, 4), "float32"), training=True)


def test_beta_zero_is_identity_in_training():
    x = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    np.testing.assert_array_equal(_np(Uout(0.0)(x, training=True)), x)


def test_same_seed_gives_same_noise():
    x = np.ones((4, 7), "float32")
    a = _np(Uout(0.3, seed=7)(x, training=True))
    b = _np(Uout(0.3, seed=7)(x, training=True))
    np.testing.assert_array_equal(a, b)


def test_successive_calls_draw_new_noise():
    layer = Uout(0.3, seed=7)
    x = np.ones((4, 7), "float32")
    assert not np.array_equal(_np(layer(x, training=True)), _np(layer(x, training=True)))


def test_follows_mixed_precision_policy():
    layer = Uout(0.2, seed=0, dtype="mixed_float16")
    out = layer(np.ones((2, 3), "float32"), training=True)
    assert keras.backend.standardize_dtype(out.dtype) == "float16"


@pytest.mark.parametrize("beta", [-0.1, 1.5, float("nan"), "0.1", True, None])
def test_invalid_beta_error_echoes_value(beta):
    with pytest.raises(ValueError, match=r"Received: beta=" + repr(beta).replace("(", r"\(")):
        Uout(beta)


@pytest.mark.parametrize("noise_shape", ["abc", (0, 2), (2.5,), 3])
def test_invalid_noise_shape_error_echoes_value(noise_shape):
    with pytest.raises(ValueError, match="Received: noise_shape="):
        Uout(0.1, noise_shape=noise_shape)


def test_invalid_seed_error_echoes_value():
    with pytest.raises(ValueError, match="Received: seed=1.5"):
        Uout(0.1, seed=1.5)


def test_config_round_trip():
    layer = Uout(0.25, noise_shape=(None, 1, 4), seed=5, name="u")
    clone = Uout.from_config(layer.get_config())
    assert (clone.beta, clone.noise_shape, clone.seed, clone.name) == (0.25, (None, 1, 4), 5, "u")


def _model_with_uout():
    inputs = keras.Input((6,))
    x = keras.layers.Dense(8, name="dense")(inputs)
    x = Uout(0.3, noise_shape=(None, 8), seed=11, name="uout")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="head")(x))


def test_keras_file_round_trip_restores_model_exactly(tmp_path):
    model = _model_with_uout()
    x = np.random.default_rng(0).normal(size=(5, 6)).astype("float32")
    model.compile("sgd", "mse")
    model.fit(x, np.zeros((5, 3)), epochs=1, verbose=0)  # non-trivial BN statistics
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    restored = loaded.get_layer("uout")
    assert isinstance(restored, Uout)
    assert restored.get_config() == model.get_layer("uout").get_config()
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(model.predict(x, verbose=0), loaded.predict(x, verbose=0))


def test_trains_inside_fit():
    model = _model_with_uout()
    model.compile("sgd", "mse")
    x = np.random.default_rng(1).normal(size=(16, 6)).astype("float32")
    history = model.fit(x, np.ones((16, 3)), epochs=2, batch_size=8, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
