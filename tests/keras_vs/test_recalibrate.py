"""recalibrate_bn's two methods checked against NumPy, and its guarantees."""

import warnings

import keras
import numpy as np
import pytest
from keras import layers

from keras_vs import exact
from keras_vs import probe as probe_lib
from keras_vs import recalibrate
from keras_vs.batches import Batches



def _mlp(seed=0, widths=(6, 4)):
    """Dense-BN-ReLU-...-Dense-BN with non-trivial weights and statistics."""
    keras.utils.set_random_seed(seed)
    x = keras.Input((5,))
    h = x
    for i, width in enumerate(widths, 1):
        if i > 1:
            h = layers.ReLU()(h)
        h = layers.Dense(width, name=f"d{i}")(h)
        h = layers.BatchNormalization(epsilon=1e-3, name=f"bn{i}")(h)
    model = keras.Model(x, h)
    rng = np.random.default_rng(seed)
    for i in range(1, len(widths) + 1):
        layer = model.get_layer(f"bn{i}")
        c = layer.gamma.shape[0]
        layer.gamma.assign(rng.uniform(0.5, 2.0, c).astype("float32"))
        layer.beta.assign(rng.normal(size=c).astype("float32"))
        layer.moving_mean.assign(rng.normal(size=c).astype("float32"))
        layer.moving_variance.assign(rng.uniform(0.5, 3.0, c).astype("float32"))
    return model


def _np(model, name):
    layer = model.get_layer(name)
    return [np.asarray(keras.ops.convert_to_numpy(w), np.float64) for w in layer.weights]


def _numpy_stats(model, x, batch_size, method):
    """Population statistics of each BN input, as the method defines them."""
    w1, b1 = _np(model, "d1")
    g1, be1, _, _ = _np(model, "bn1")
    w2, b2 = _np(model, "d2")
    x = x.astype(np.float64)
    h1 = x @ w1 + b1
    m1, v1 = h1.mean(0), h1.var(0)
    outs = []
    for start in range(0, len(x), batch_size):
        hb = h1[start : start + batch_size]
        if method == "precise":  # the batch's own statistics
            mean, var = hb.mean(0), hb.var(0)
        else:  # the population statistics bn1 ends up with
            mean, var = m1, v1
        a = np.maximum((hb - mean) / np.sqrt(var + 1e-3) * g1 + be1, 0.0)
        outs.append(a @ w2 + b2)
    h2 = np.concatenate(outs)
    return {"bn1": (m1, v1), "bn2": (h2.mean(0), h2.var(0))}


@pytest.mark.parametrize("method", ["precise", "exact"])
@pytest.mark.parametrize("batch_size", [7, 64])
def test_statistics_match_numpy(method, batch_size):
    model = _mlp()
    x = (np.random.default_rng(1).normal(size=(50, 5)) * 2 + 1).astype("float32")
    fixed = recalibrate.recalibrate_bn(model, x, batch_size=batch_size, method=method)
    for name, (mean, var) in _numpy_stats(model, x, batch_size, method).items():
        bn = fixed.get_layer(name)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_mean), mean, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(bn.moving_variance), var, rtol=1e-4, atol=1e-5)


def test_precise_and_exact_agree_on_the_first_bn_and_differ_after_it():
    model = _mlp()
    x = np.random.default_rng(2).normal(size=(40, 5)).astype("float32")
    precise = recalibrate.recalibrate_bn(model, x, batch_size=8)
    exact = recalibrate.recalibrate_bn(model, x, batch_size=8, method="exact")
    var = lambda m, n: keras.ops.convert_to_numpy(m.get_layer(n).moving_variance)  # noqa: E731
    np.testing.assert_allclose(var(precise, "bn1"), var(exact, "bn1"), rtol=1e-6)
    assert not np.allclose(var(precise, "bn2"), var(exact, "bn2"), rtol=1e-3)


def _bn_arrays(model, names=("bn1", "bn2")):
    return [keras.ops.convert_to_numpy(getattr(model.get_layer(n), a))
            for n in names for a in ("moving_mean", "moving_variance")]


# _mlp(widths=(6, 12, 3)) on 45 examples caches the input (900 bytes), then
# d1's output (1,080; the input is freed after stage 0), then d2's (2,160).
_BUDGETS = {  # memory_budget -> passes over the data (the first one caches)
    0: 4,  # nothing fits: the first read stops, then one pass per stage
    1_000: 4,  # the input fits, stage 0's output does not
    2_000: 3,  # stages 0 and 1 cached, stage 2 recomputed
    recalibrate.DEFAULT_MEMORY_BUDGET: 1,
}


@pytest.mark.parametrize("budget", sorted(_BUDGETS))
def test_exact_is_bit_identical_whatever_the_memory_budget(budget):
    model = _mlp(widths=(6, 12, 3))
    x = np.random.default_rng(3).normal(size=(45, 5)).astype("float32")
    loose = recalibrate.recalibrate_bn(model, x, batch_size=10, method="exact", memory_budget=2**40)
    tight = recalibrate.recalibrate_bn(model, x, batch_size=10, method="exact", memory_budget=budget)
    names = ("bn1", "bn2", "bn3")
    for a, b in zip(_bn_arrays(loose, names), _bn_arrays(tight, names), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("budget", sorted(_BUDGETS))
def test_exact_recomputes_from_the_stage_where_the_budget_runs_out(budget, monkeypatch):
    model = _mlp(widths=(6, 12, 3))
    x = np.random.default_rng(3).normal(size=(45, 5)).astype("float32")
    reads, read = [], exact._read_chunks
    monkeypatch.setattr(exact, "_read_chunks", lambda *a: reads.append(1) or read(*a))
    monkeypatch.setattr(exact, "by_passes", None)  # never the whole-probe passes
    recalibrate.recalibrate_bn(model, x, batch_size=10, method="exact", memory_budget=budget)
    assert len(reads) == _BUDGETS[budget]


def test_exact_by_stages_and_by_whole_probe_passes_agree_to_rounding():
    model = _mlp()
    x = np.random.default_rng(3).normal(size=(45, 5)).astype("float32")
    staged = recalibrate.recalibrate_bn(model, x, batch_size=10, method="exact", memory_budget=0)
    probe = probe_lib.probe_for(model, "exact")
    stats = exact.by_passes(probe, probe.method, Batches(x, None, 10))
    for name in ("bn1", "bn2"):
        for a, b in zip(_bn_arrays(staged, [name]), stats[name], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_a_bn_called_at_two_depths_gets_the_fixed_point_of_passes():
    # Stages would keep only the deeper call's moments; exact falls back to passes.
    keras.utils.set_random_seed(0)
    x = keras.Input((4,))
    bn = layers.BatchNormalization(name="bn")
    model = keras.Model(x, bn(layers.Dense(4, name="d")(bn(x))))
    data = np.random.default_rng(0).normal(3.0, 2.0, (64, 4)).astype("float32")
    cached = recalibrate.recalibrate_bn(model, data, batch_size=16, method="exact")
    passes = recalibrate.recalibrate_bn(model, data, batch_size=16, method="exact", memory_budget=0)
    for attr in ("moving_mean", "moving_variance"):
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(getattr(cached.get_layer("bn"), attr)),
            keras.ops.convert_to_numpy(getattr(passes.get_layer("bn"), attr)),
        )


@pytest.mark.parametrize(
    "method, memory_budget",
    [("precise", recalibrate.DEFAULT_MEMORY_BUDGET), ("exact", recalibrate.DEFAULT_MEMORY_BUDGET),
     ("exact", 0)],
)
def test_a_second_call_sees_weights_changed_since_the_first(method, memory_budget):
    model = _mlp()
    x = np.random.default_rng(8).normal(size=(30, 5)).astype("float32")
    kwargs = dict(method=method, memory_budget=memory_budget)
    recalibrate.recalibrate_bn(model, x, **kwargs)
    model.get_layer("bn1").gamma.assign(np.full(6, 3.0, "float32"))  # upstream of bn2
    model.get_layer("bn1").moving_mean.assign(np.full(6, 7.0, "float32"))
    # On JAX, predict donates (deletes) the buffers the variables held before.
    model.predict(x, verbose=0)
    again = recalibrate.recalibrate_bn(model, x, **kwargs)
    fresh = keras.models.clone_model(model)
    fresh.set_weights(model.get_weights())
    expected = recalibrate.recalibrate_bn(fresh, x, **kwargs)
    for attr in ("moving_mean", "moving_variance"):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(getattr(again.get_layer("bn2"), attr)),
            keras.ops.convert_to_numpy(getattr(expected.get_layer("bn2"), attr)),
            rtol=1e-6, atol=1e-7,
        )


def test_exact_in_several_chunks_equals_one_chunk(monkeypatch):
    model = _mlp()
    x = np.random.default_rng(4).normal(size=(45, 5)).astype("float32")
    one = recalibrate.recalibrate_bn(model, x, batch_size=10, method="exact")
    # 24 bytes per example (6 float32 channels): 3 examples fit, so each
    # batch of 10 is a chunk of its own.
    monkeypatch.setattr(exact, "_CHUNK_BYTES", 24 * 3)
    seen, chunked = [], exact._chunked
    monkeypatch.setattr(exact, "_chunked", lambda *a: seen.append(list(chunked(*a))) or seen[-1])
    many = recalibrate.recalibrate_bn(model, x, batch_size=10, method="exact")
    assert [len(group) for group in seen[0]] == [1, 1, 1, 1, 1]
    for name in ("bn1", "bn2"):
        for attr in ("moving_mean", "moving_variance"):
            a = keras.ops.convert_to_numpy(getattr(one.get_layer(name), attr))
            b = keras.ops.convert_to_numpy(getattr(many.get_layer(name), attr))
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_only_bn_statistics_change_and_the_input_model_is_untouched():
    model = _mlp()
    before = [np.array(w) for w in model.get_weights()]
    x = np.random.default_rng(4).normal(size=(30, 5)).astype("float32")
    fixed = recalibrate.recalibrate_bn(model, x)
    for old, new in zip(before, model.get_weights()):
        assert np.array_equal(old, new)
    for name in ("d1", "d2"):
        for a, b in zip(model.get_layer(name).get_weights(), fixed.get_layer(name).get_weights()):
            assert np.array_equal(a, b)
    for name in ("bn1", "bn2"):
        old, new = model.get_layer(name).get_weights(), fixed.get_layer(name).get_weights()
        assert np.array_equal(old[0], new[0]) and np.array_equal(old[1], new[1])  # gamma, beta
        assert not np.array_equal(old[3], new[3])


def test_the_copy_is_compiled_like_the_original():
    model = _mlp()
    model.compile(keras.optimizers.Adam(0.01), "mse", metrics=["mae"])
    x = np.random.default_rng(5).normal(size=(16, 5)).astype("float32")
    fixed = recalibrate.recalibrate_bn(model, x)
    assert fixed.compiled and isinstance(fixed.optimizer, keras.optimizers.Adam)
    assert fixed.optimizer is not model.optimizer
    fixed.evaluate(x, np.zeros((16, 4)), verbose=0)


@pytest.mark.parametrize("method", ["precise", "exact"])
@pytest.mark.parametrize("inplace", [False, True])
def test_non_finite_data_names_the_batch_and_writes_nothing(method, inplace):
    model = _mlp()
    before = [np.array(w) for w in model.get_weights()]
    x = np.random.default_rng(6).normal(size=(40, 5)).astype("float32")
    x[25, 2] = np.nan
    with pytest.raises(ValueError, match="batch 2: .*NaN or infinite"):
        recalibrate.recalibrate_bn(model, x, batch_size=10, method=method, inplace=inplace)
    for old, new in zip(before, model.get_weights()):
        assert np.array_equal(old, new)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"method": "fast"}, "method='fast'"),
        ({"memory_budget": -1}, "memory_budget=-1"),
        ({"memory_budget": "1GB"}, "memory_budget='1GB'"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        recalibrate.recalibrate_bn(_mlp(), np.ones((4, 5), "float32"), **kwargs)


def test_repeated_calls_reuse_one_compiled_probe():
    model = _mlp()
    x = np.random.default_rng(7).normal(size=(20, 5)).astype("float32")
    recalibrate.recalibrate_bn(model, x)
    probe = probe_lib.probe_for(model, "precise")
    assert probe_lib.probe_for(model, "precise") is probe
    again = recalibrate.recalibrate_bn(model, x * 2)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(again.get_layer("bn1").moving_mean),
        2 * keras.ops.convert_to_numpy(recalibrate.recalibrate_bn(model, x).get_layer("bn1").moving_mean),
        rtol=1e-4, atol=1e-5,
    )


def test_precise_keeps_the_mask_for_the_layers_after_a_bn():
    # Embedding(mask_zero) -> BN -> LSTM -> BN: the LSTM skips the padded
    # steps, and the probe's batch-statistics normalisation passes the mask on
    # as the BN does (Keras warns when a layer drops one).
    keras.utils.set_random_seed(0)
    tokens = keras.Input((6,), dtype="int32")
    emb = layers.Embedding(9, 4, mask_zero=True, name="emb")
    bn1 = layers.BatchNormalization(name="bn1")
    lstm = layers.LSTM(3, name="lstm")
    model = keras.Model(tokens, layers.BatchNormalization(name="bn2")(lstm(bn1(emb(tokens)))))
    x = np.random.default_rng(0).integers(1, 9, (16, 6)).astype("int32")
    x[:, 4:] = 0  # padding
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*mask.*")
        fixed = recalibrate.recalibrate_bn(model, x, batch_size=16)
    e = emb(x)
    mean, var = keras.ops.moments(e, axes=(0, 1))
    normed = (e - mean) / keras.ops.sqrt(var + bn1.epsilon) * bn1.gamma + bn1.beta
    out = keras.ops.convert_to_numpy(lstm(normed, mask=emb.compute_mask(x)))
    bn2 = fixed.get_layer("bn2")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn2.moving_mean), out.mean(0), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(bn2.moving_variance), out.var(0), rtol=1e-4, atol=1e-5)


class _RenamedBlock(layers.Layer):
    """A custom layer holding a BN on 4-D inputs, renamed when rebuilt from
    its config (keras-hub's DepthwiseConvBlock appends "_0" to its name)."""

    def __init__(self, name=None, **kwargs):
        super().__init__(name=None if name is None else f"{name}_0", **kwargs)
        self.bn = layers.BatchNormalization(name="inner_bn")

    def call(self, x, training=None):
        return self.bn(x, training=training)


@pytest.mark.parametrize("method", ["precise", "exact"])
def test_a_bn_hidden_in_a_custom_layer_that_a_copy_renames_is_recalibrated(method):
    x = keras.Input((4, 4, 3))
    model = keras.Model(x, layers.GlobalAveragePooling2D()(_RenamedBlock(name="blk")(x)))
    data = np.random.default_rng(5).normal(2.0, 3.0, (24, 4, 4, 3)).astype("float32")
    model(data[:2])  # builds the hidden BN on 4-D inputs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # keras-vs warns that the BN is hidden
        new = recalibrate.recalibrate_bn(model, data, batch_size=8, method=method)
    bn = new.layers[1].bn
    assert new.layers[1].name != model.layers[1].name  # the copy renamed the block
    mean, var = (keras.ops.convert_to_numpy(v) for v in (bn.moving_mean, bn.moving_variance))
    np.testing.assert_allclose(mean, data.mean((0, 1, 2)), rtol=1e-5)
    np.testing.assert_allclose(var, data.var((0, 1, 2)), rtol=1e-4)


# --- what a user's model may hold (issue 23) --------------------------------


@pytest.mark.parametrize("method", ["precise", "exact"])
def test_a_model_loaded_in_a_fresh_session_is_recalibrated(method, tmp_path):
    # Loaded after clear_session, as in a fresh process, its unnamed Multiply
    # keeps the name "multiply", which the probe's automatic names also took.
    x = keras.Input((4, 4, 3))
    h = layers.BatchNormalization(name="bn1")(layers.Conv2D(4, 3, padding="same")(x))
    s = layers.Dense(4, activation="sigmoid")(layers.GlobalAveragePooling2D(keepdims=True)(h))
    h = layers.BatchNormalization(name="bn2")(layers.Dropout(0.5)(layers.Multiply()([h, s])))
    path = str(tmp_path / "se.keras")
    keras.Model(x, h).save(path)
    keras.backend.clear_session()
    model = keras.models.load_model(path)
    data = np.random.default_rng(8).normal(2.0, 3.0, (16, 4, 4, 3)).astype("float32")
    fixed = recalibrate.recalibrate_bn(model, data, method=method)
    conv = keras.ops.convert_to_numpy(model.layers[1](data))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fixed.get_layer("bn1").moving_variance),
                               conv.var((0, 1, 2)), rtol=1e-4)


@pytest.mark.parametrize("method", ["precise", "exact"])
@pytest.mark.parametrize("build_bn", [True, False], ids=["built", "unbuilt"])
def test_a_bn_its_layer_never_calls_is_left_unchanged_with_a_warning(method, build_bn, unused_bn):
    model = _mlp()
    owner = unused_bn(build_bn=build_bn, name="owner")
    model = keras.Model(model.input, owner(model.output))
    data = np.random.default_rng(9).normal(size=(16, 5)).astype("float32")
    with pytest.warns(UserWarning, match=r"never called them.*left unchanged.*'owner/norm'"):
        fixed = recalibrate.recalibrate_bn(model, data, method=method, inplace=True)
    assert [v.shape for v in owner.norm.weights] == ([(4,)] * 4 if build_bn else [])
    for v in owner.norm.weights[2:]:  # the moving statistics: still the initial ones
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(v), 1.0 if "variance" in v.path else 0.0)
    np.testing.assert_allclose(_np(fixed, "bn1")[2], _numpy_stats(_mlp(), data, 32, method)["bn1"][0],
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("method", ["precise", "exact"])
def test_recalibration_leaves_stateful_rnn_states_as_they_were(method, stateful):
    model, data = stateful.stepped(10)
    before = stateful.rnn_states(model)
    recalibrate.recalibrate_bn(model, data, batch_size=8, method=method, inplace=True)
    for old, new in zip(before, stateful.rnn_states(model)):
        np.testing.assert_array_equal(new, old)


@pytest.mark.parametrize("method", ["precise", "exact"])
def test_a_stateful_model_is_recalibrated_in_batches_of_batch_size(method, stateful):
    # Exact concatenated batches into chunks: the LSTM refused 32 examples.
    model, data = stateful.stepped(10)
    lstm1 = model.get_layer("lstm1")
    saved = [keras.ops.copy(s.value) for s in lstm1.states]
    # What bn1 sees in batches of 8 as predict reads them, from the same states.
    seen = keras.Model(model.input, lstm1.output).predict(data, batch_size=8, verbose=0)
    for s, value in zip(lstm1.states, saved):
        s.assign(value)
    fixed = recalibrate.recalibrate_bn(model, data, batch_size=8, method=method)
    np.testing.assert_allclose(_np(fixed, "bn1")[3], seen.var((0, 1)), rtol=1e-4, atol=1e-6)


def _conv_net():
    keras.utils.set_random_seed(0)
    x = keras.Input((6, 6, 3))
    h = layers.BatchNormalization(name="bn1")(layers.Conv2D(4, 3, padding="same")(x))
    h = layers.Conv2D(4, 3, padding="same")(layers.Dropout(0.3)(layers.ReLU()(h)))
    h = layers.BatchNormalization(name="bn2")(h)
    return keras.Model(x, layers.Dense(3)(layers.GlobalAveragePooling2D()(h)))


@pytest.mark.parametrize("method", ["precise", "exact"])
def test_a_mixed_precision_model_gets_the_float32_models_statistics(mixed_policy, method):
    mixed = _conv_net()
    keras.config.set_dtype_policy("float32")
    full = _conv_net()
    keras.config.set_dtype_policy(mixed_policy)
    full.set_weights(mixed.get_weights())
    x = np.random.default_rng(11).normal(1.0, 2.0, (48, 6, 6, 3)).astype("float32")
    got = recalibrate.recalibrate_bn(mixed, x, method=method)
    expected = recalibrate.recalibrate_bn(full, x, method=method)
    for name in ("bn1", "bn2"):
        _, _, mean, var = _np(got, name)
        _, _, mean_32, var_32 = _np(expected, name)
        assert got.get_layer(name).moving_variance.dtype == "float32"
        np.testing.assert_allclose(var, var_32, rtol=0.05)
        np.testing.assert_allclose(mean, mean_32, atol=0.05 * np.sqrt(var_32).max())
