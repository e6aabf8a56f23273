"""measure_variance_shift, prediction_inconsistency and recalibrate_bn on real Keras models."""

import math

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from keras import layers

from keras_vs import probe as probe_lib
from keras_vs import shift
from keras_vs.deprecation import KerasVsDeprecationWarning
from keras_vs.recalibrate import recalibrate_bn



def _bn_only(features=3, axis=-1, shape=None):
    return keras.Sequential(
        [keras.Input(shape or (features,)), layers.BatchNormalization(axis=axis, name="bn")]
    )


def _nested():
    inner_in = keras.Input((6,))
    h = layers.Dense(5, name="dense")(inner_in)
    h = layers.BatchNormalization(name="bn")(h)
    inner = keras.Model(inner_in, h, name="inner")
    seq = keras.Sequential(
        [keras.Input((5,)), layers.Dense(4, name="dense"), layers.BatchNormalization(name="bn")],
        name="seq",
    )
    x = keras.Input((6,))
    y = layers.BatchNormalization(name="bn0")(x)
    y = layers.Dropout(0.5)(y)
    y = seq(inner(y))
    y = layers.Dense(3, name="head")(y)
    return keras.Model(x, y), inner, seq


def _weights(model):
    return [np.array(w) for w in model.get_weights()]


def _assert_same_weights(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.dtype == y.dtype and np.array_equal(x, y)


# --- measure_variance_shift -------------------------------------------------


@settings(max_examples=8)
@given(
    n=st.integers(1, 70),
    batch_size=st.integers(1, 32),
    offset=st.sampled_from([0.0, 1e3, -1e4]),
    scale=st.sampled_from([1e-2, 1.0, 30.0]),
)
def test_real_var_is_the_exact_pooled_variance(n, batch_size, offset, scale):
    x = (np.random.default_rng(n).normal(size=(n, 3)) * scale + offset).astype("float32")
    result = shift.measure_variance_shift(_bn_only(), x, batch_size=batch_size)
    expected = np.var(x.astype("float64"), axis=0)
    np.testing.assert_allclose(result.real_var["bn"], expected, rtol=1e-4, atol=1e-6 * scale**2)
    np.testing.assert_allclose(result.real_mean["bn"], x.mean(axis=0, dtype="float64"), rtol=1e-5, atol=1e-5 * scale)
    assert result.num_examples == n


def test_statistic_is_max_ratio_of_channel_means():
    model = _bn_only()
    x = np.random.default_rng(0).normal(size=(64, 3)).astype("float32") * np.array([1.0, 2.0, 3.0], "float32")
    result = shift.measure_variance_shift(model, x)
    real = np.var(x.astype("float64"), axis=0).mean()
    assert result["bn"] == pytest.approx(max(real, 1 / real), rel=1e-5)  # moving var is 1
    np.testing.assert_array_equal(result.moving_var["bn"], np.ones(3))


def test_conv_input_is_pooled_over_batch_and_space():
    model = _bn_only(shape=(5, 4, 2))
    x = np.random.default_rng(1).normal(size=(7, 5, 4, 2)).astype("float32") * [1.0, 4.0]
    result = shift.measure_variance_shift(model, x, batch_size=3)
    np.testing.assert_allclose(result.real_var["bn"], x.reshape(-1, 2).astype("float64").var(axis=0), rtol=1e-5)


def test_channels_first_axis():
    model = _bn_only(shape=(2, 5), axis=1)
    x = np.random.default_rng(2).normal(size=(9, 2, 5)).astype("float32")
    result = shift.measure_variance_shift(model, x)
    expected = x.transpose(0, 2, 1).reshape(-1, 2).astype("float64").var(axis=0)
    np.testing.assert_allclose(result.real_var["bn"], expected, rtol=1e-5)


def test_nested_models_are_measured_shallow_to_deep_with_paths():
    model, inner, _ = _nested()
    x = np.random.default_rng(3).normal(size=(40, 6)).astype("float32")
    result = shift.measure_variance_shift(model, x, batch_size=16)
    assert list(result) == ["bn0", "inner/bn", "seq/bn"]
    # The inner BN's input is the inner Dense output of the (inference-mode) outer BN.
    h = model.get_layer("bn0")(x, training=False)
    dense_out = keras.ops.convert_to_numpy(inner.get_layer("dense")(h)).astype("float64")
    np.testing.assert_allclose(result.real_var["inner/bn"], dense_out.var(axis=0), rtol=1e-4)
    assert all(v >= 1.0 for v in result.values())


def test_measuring_leaves_the_model_untouched():
    model, _, _ = _nested()
    before = _weights(model)
    shift.measure_variance_shift(model, np.ones((8, 6), "float32") * 5)
    _assert_same_weights(before, _weights(model))


def test_model_without_bn_gives_an_explicit_empty_result():
    model = keras.Sequential([keras.Input((3,)), layers.Dense(2)])
    result = shift.measure_variance_shift(model, np.ones((4, 3)))
    assert len(result) == 0 and math.isnan(result.max()) and result.moving_var == {}


def test_empty_data_is_a_clear_error():
    with pytest.raises(ValueError, match="empty"):
        shift.measure_variance_shift(_bn_only(), np.zeros((0, 3), "float32"))


def test_wrong_input_shape_is_a_clear_error():
    with pytest.raises(ValueError, match=r"input of shape \(None, 3\).*Received: a batch of shape \(4, 5\)"):
        shift.measure_variance_shift(_bn_only(), np.zeros((4, 5), "float32"))


def test_unsupported_data_is_named():
    with pytest.raises(ValueError, match="Received: data of type int"):
        shift.measure_variance_shift(_bn_only(), 3)


def test_unbuilt_model_is_a_clear_error():
    model = keras.Sequential([layers.BatchNormalization()])
    with pytest.raises(ValueError, match="not built"):
        shift.measure_variance_shift(model, np.zeros((4, 3), "float32"))


def test_steps_limits_the_batches():
    x = np.arange(30, dtype="float32").reshape(10, 3)
    result = shift.measure_variance_shift(_bn_only(), x, steps=2, batch_size=3)
    assert result.num_examples == 6
    np.testing.assert_allclose(result.real_var["bn"], x[:6].astype("float64").var(axis=0))


def test_pydataset_gives_the_same_result_as_arrays():
    x = np.random.default_rng(4).normal(size=(20, 3)).astype("float32")

    class Data(keras.utils.PyDataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return x[5 * i : 5 * i + 5], np.zeros(5)

    model = _bn_only()
    a = shift.measure_variance_shift(model, Data())
    b = shift.measure_variance_shift(model, (x, np.zeros(20)))
    np.testing.assert_allclose(a.real_var["bn"], b.real_var["bn"], rtol=1e-6)


@pytest.mark.tf_only
def test_tf_dataset_gives_the_same_result_as_arrays():
    import tensorflow as tf

    x = np.random.default_rng(5).normal(size=(20, 3)).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, np.zeros(20))).batch(6)
    model = _bn_only()
    a = shift.measure_variance_shift(model, ds)
    b = shift.measure_variance_shift(model, x)
    np.testing.assert_allclose(a.real_var["bn"], b.real_var["bn"], rtol=1e-6)


@pytest.mark.tf_only
def test_infinite_tf_dataset_needs_steps():
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensors(np.zeros((2, 3), "float32")).repeat()
    with pytest.raises(ValueError, match="infinite"):
        shift.measure_variance_shift(_bn_only(), ds)
    assert shift.measure_variance_shift(_bn_only(), ds, steps=2).num_examples == 4


# --- the paper's checks on a trained network ----------------------------------


def _teacher_data(n=2048, d=16, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype("float32")
    y = np.argmax(x @ rng.normal(size=(d, classes)), axis=1)
    return x, y


def _trained(position, rate, seed=0):
    """Dense-[Dropout]-BN-ReLU-Dense-BN-ReLU-[Dropout]-Dense, trained briefly."""
    keras.utils.set_random_seed(seed)
    x_in = keras.Input((16,))
    # No bias and zero-mean inputs: the dropout sees c ~ 0, the paper's case (a).
    h = layers.Dense(32, use_bias=False)(x_in)
    if position == "before_bn":
        h = layers.Dropout(rate)(h)
    h = layers.ReLU()(layers.BatchNormalization(momentum=0.9, name="bn1")(h))
    h = layers.Dense(32, use_bias=False)(h)
    h = layers.ReLU()(layers.BatchNormalization(momentum=0.9, name="bn2")(h))
    if position == "head":
        h = layers.Dropout(rate)(h)
    model = keras.Model(x_in, layers.Dense(4)(h))
    model.compile(
        # Decay to zero so the moving statistics settle on the final weights.
        keras.optimizers.SGD(keras.optimizers.schedules.CosineDecay(0.05, 4 * 32), momentum=0.9),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    x, y = _teacher_data()
    model.fit(x, y, batch_size=64, epochs=4, verbose=0)
    return model, x, y


@pytest.mark.slow
@pytest.mark.parametrize("rate", [0.3, 0.5])
def test_dropout_before_bn_matches_the_theory(rate):
    model, x, _ = _trained("before_bn", rate)
    result = shift.measure_variance_shift(model, x, batch_size=256)
    assert result["bn1"] == pytest.approx(1.0 / (1.0 - rate), rel=0.1)


@pytest.mark.slow
def test_dropout_after_the_last_bn_shows_no_shift_and_recalibration_is_exact():
    model, x, y = _trained("head", 0.5)
    result = shift.measure_variance_shift(model, x, batch_size=256)
    assert max(result.values()) <= 1.1
    fixed = recalibrate_bn(model, x, batch_size=256)
    assert max(shift.measure_variance_shift(fixed, x, batch_size=256).values()) <= 1.05


@pytest.mark.slow
@pytest.mark.parametrize("method", ["precise", "exact"])
def test_recalibration_removes_the_shift_without_losing_accuracy(method):
    model, x, y = _trained("before_bn", 0.5)
    before = shift.measure_variance_shift(model, x, batch_size=256)
    assert before.max() > 1.5
    fixed = recalibrate_bn(model, x, batch_size=256, method=method)
    after = shift.measure_variance_shift(fixed, x, batch_size=256)
    assert after.max() <= 1.05
    acc = lambda m: float(np.mean(np.argmax(m.predict(x, verbose=0), axis=1) == y))  # noqa: E731
    assert acc(fixed) >= acc(model)
    gap = shift.prediction_inconsistency(model, (x, y), batch_size=128)
    assert gap.disagreement > 0.0 and gap.num_examples == len(x)


# --- recalibrate_bn ------------------------------------------------------------


def test_shift_recalibrate_bn_is_deprecated_for_keras_vs_recalibrate_bn():
    with pytest.warns(KerasVsDeprecationWarning, match=r"use keras_vs\.recalibrate_bn"):
        old = shift.recalibrate_bn
    assert old is recalibrate_bn


def test_recalibration_returns_a_copy_with_only_bn_statistics_changed():
    model, _, _ = _nested()
    before = _weights(model)
    x = np.random.default_rng(6).normal(size=(50, 6)).astype("float32") * 3 + 2
    fixed = recalibrate_bn(model, x, batch_size=16)
    assert fixed is not model
    _assert_same_weights(before, _weights(model))
    moving = {id(v) for bn in probe_lib.Probe(fixed).bns.values() for v in (bn.moving_mean, bn.moving_variance)}
    changed = 0
    for old, new, var in zip(before, _weights(fixed), fixed.weights):
        if id(var) in moving:
            changed += not np.array_equal(old, new)
        else:
            assert np.array_equal(old, new)
    assert changed == 6


@pytest.mark.parametrize("budget", [None, 0], ids=["cached", "passes"])
def test_exact_statistics_are_the_population_statistics_at_inference(budget):
    model, _, _ = _nested()
    x = np.random.default_rng(7).normal(size=(50, 6)).astype("float32") * 3 + 2
    kwargs = {} if budget is None else {"memory_budget": budget}
    fixed = recalibrate_bn(model, x, batch_size=16, method="exact", **kwargs)
    result = shift.measure_variance_shift(fixed, x)
    for name in result:
        np.testing.assert_allclose(result.moving_var[name], result.real_var[name], rtol=1e-4)
        np.testing.assert_allclose(result.moving_mean[name], result.real_mean[name], rtol=1e-4, atol=1e-5)


def test_recalibration_inplace_updates_and_returns_the_model():
    model = _bn_only()
    x = np.arange(24, dtype="float32").reshape(8, 3)
    assert recalibrate_bn(model, x, inplace=True) is model
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.layers[0].moving_variance), x.var(axis=0), rtol=1e-6)


def test_recalibration_without_bn_is_a_clear_error():
    model = keras.Sequential([keras.Input((3,)), layers.Dense(2)])
    with pytest.raises(ValueError, match="no BatchNormalization"):
        recalibrate_bn(model, np.ones((4, 3)))


def test_exact_beyond_the_memory_budget_rejects_one_shot_iterators():
    data = (np.ones((2, 3), "float32") for _ in range(2))
    with pytest.raises(ValueError, match="one-shot iterator of type generator"):
        recalibrate_bn(_bn_only(), data, method="exact", memory_budget=0)


def test_precise_reads_a_one_shot_iterator_once():
    data = (np.full((2, 3), i, "float32") for i in range(2))
    fixed = recalibrate_bn(_bn_only(), data)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fixed.layers[0].moving_mean), 0.5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(fixed.layers[0].moving_variance), 0.25)


# --- prediction_inconsistency --------------------------------------------------


def test_inconsistency_without_dropout_or_bn_is_zero():
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3)])
    x = np.random.default_rng(8).normal(size=(20, 4)).astype("float32")
    y = np.argmax(keras.ops.convert_to_numpy(model(x)), axis=1)
    result = shift.prediction_inconsistency(model, (x, y))
    assert result.disagreement == 0.0 and result.train_mode_accuracy == result.inference_accuracy == 1.0
    assert result.gap == 0.0


def test_inconsistency_reads_one_hot_labels_like_integer_labels():
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3)])
    x = np.random.default_rng(9).normal(size=(20, 4)).astype("float32")
    y = np.arange(20) % 3
    a = shift.prediction_inconsistency(model, (x, y))
    b = shift.prediction_inconsistency(model, (x, np.eye(3)[y]))
    assert a == b


def test_inconsistency_counts_examples_apart_from_per_position_predictions():
    # A segmentation-like output: 4 x 3 positions per example, one class map each.
    model = keras.Sequential([keras.Input((4, 3, 2)), layers.Dense(5)])
    x = np.random.default_rng(10).normal(size=(6, 4, 3, 2)).astype("float32")
    y = np.argmax(keras.ops.convert_to_numpy(model(x)), axis=-1)
    result = shift.prediction_inconsistency(model, (x, y))
    assert (result.num_examples, result.num_predictions) == (6, 6 * 4 * 3)
    assert result.inference_accuracy == 1.0


def test_inconsistency_without_labels_has_no_accuracy():
    model = keras.Sequential([keras.Input((4,)), layers.Dense(3)])
    result = shift.prediction_inconsistency(model, np.ones((5, 4), "float32"))
    assert result.train_mode_accuracy is None and result.gap is None and result.num_examples == 5


def test_inconsistency_sees_training_mode_and_leaves_the_model_untouched():
    model, _, _ = _nested()
    before = _weights(model)
    x = np.random.default_rng(10).normal(size=(64, 6)).astype("float32") * 4 + 3
    result = shift.prediction_inconsistency(model, x, batch_size=16)
    assert result.disagreement > 0.0
    _assert_same_weights(before, _weights(model))


def test_inconsistency_called_again_follows_the_models_new_weights():
    # Without dropout or BN both modes agree exactly: any disagreement on the
    # second call would come from a training-mode copy left with old weights.
    model = keras.Sequential([keras.Input((4,)), layers.Dense(8, activation="relu"), layers.Dense(3)])
    rng = np.random.default_rng(12)
    x = rng.normal(size=(64, 4)).astype("float32")
    assert shift.prediction_inconsistency(model, x, batch_size=16).disagreement == 0.0
    model.set_weights([rng.normal(size=w.shape).astype("float32") * 3 for w in model.get_weights()])
    assert shift.prediction_inconsistency(model, x, batch_size=16).disagreement == 0.0


def test_inconsistency_accuracies_are_training_mode_then_inference():
    # One BN then a sign classifier. Training mode centres each batch on its own
    # mean, so the two small inputs go negative (class 1) and all four are right;
    # inference keeps the stored mean 0, every input stays positive (class 0):
    # half right.
    x_in = keras.Input((1,))
    h = layers.BatchNormalization(name="bn")(x_in)
    model = keras.Model(x_in, layers.Dense(2, name="fc")(h))
    model.get_layer("fc").set_weights([np.array([[1.0, -1.0]], "float32"), np.zeros(2, "float32")])
    x, y = np.array([[10.0], [11.0], [12.0], [13.0]], "float32"), np.array([1, 1, 0, 0])
    result = shift.prediction_inconsistency(model, (x, y), batch_size=4)
    assert (result.train_mode_accuracy, result.inference_accuracy) == (1.0, 0.5)
    assert result.gap == 0.5 and result.disagreement == 0.5


def test_inconsistency_rejects_multi_output_models():
    x = keras.Input((4,))
    model = keras.Model(x, [layers.Dense(2)(x), layers.Dense(2)(x)])
    with pytest.raises(ValueError, match="with 2 outputs"):
        shift.prediction_inconsistency(model, np.ones((3, 4)))


# --- a model we did not write --------------------------------------------------


@pytest.mark.slow
def test_keras_application_is_measured_and_recalibrated():
    model = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=5
    )
    bn_names = [layer.name for layer in model.layers if isinstance(layer, layers.BatchNormalization)]
    x = np.random.default_rng(11).uniform(-1, 1, size=(8, 32, 32, 3)).astype("float32")
    result = shift.measure_variance_shift(model, x, batch_size=8)
    assert list(result) == bn_names
    assert all(math.isfinite(v) and v >= 1.0 for v in result.values())
    fixed = recalibrate_bn(model, x, batch_size=8)
    after = shift.measure_variance_shift(fixed, x, batch_size=8)
    assert after.max() <= 1.001


# --- what a user's model may hold (issue 23) --------------------------------


def _loaded(model, tmp_path):
    """`model` saved and loaded after `clear_session`, as in a fresh process:
    its layers keep their names while Keras' automatic names restart."""
    path = str(tmp_path / "model.keras")
    model.save(path)
    keras.backend.clear_session()
    return keras.models.load_model(path)


def _se_block():
    """Squeeze-and-excitation with unnamed Multiply and Add, then dropout -> BN."""
    x = keras.Input((4, 4, 3))
    h = layers.BatchNormalization()(layers.Conv2D(4, 3, padding="same")(x))
    s = layers.Dense(4, activation="sigmoid")(layers.GlobalAveragePooling2D(keepdims=True)(h))
    h = layers.Add()([layers.Multiply()([h, s]), h])
    h = layers.BatchNormalization()(layers.Dropout(0.5)(h))
    return keras.Model(x, layers.Dense(3)(layers.GlobalAveragePooling2D()(h)))


def test_a_loaded_model_with_unnamed_merge_layers_is_measured(tmp_path):
    model = _loaded(_se_block(), tmp_path)
    x = np.random.default_rng(13).normal(size=(8, 4, 4, 3)).astype("float32")
    result = shift.measure_variance_shift(model, x)  # Keras refused a second "multiply"
    assert list(result) == [l.name for l in model.layers if isinstance(l, layers.BatchNormalization)]


@pytest.mark.slow
@pytest.mark.slow_on_jax
def test_a_loaded_keras_mobilenet_v3_is_measured(tmp_path):
    model = _loaded(keras.applications.MobileNetV3Small(
        input_shape=(32, 32, 3), alpha=0.75, weights=None, classes=4, include_preprocessing=False
    ), tmp_path)
    x = np.random.default_rng(15).uniform(-1, 1, (4, 32, 32, 3)).astype("float32")
    result = shift.measure_variance_shift(model, x)
    assert len(result) == sum(isinstance(l, layers.BatchNormalization) for l in model.layers)


def _with_unused_bn(owner_cls, build_bn=True):
    keras.utils.set_random_seed(0)
    x = keras.Input((5,))
    h = layers.BatchNormalization(name="bn")(layers.Dropout(0.5)(layers.Dense(4)(x)))
    return keras.Model(x, owner_cls(build_bn=build_bn, name="owner")(h))


@pytest.mark.parametrize("build_bn", [True, False], ids=["built", "unbuilt"])
def test_a_bn_its_layer_never_calls_is_listed_as_not_called(build_bn, unused_bn):
    x = np.random.default_rng(16).normal(size=(16, 5)).astype("float32")
    with pytest.warns(UserWarning, match=r"never called them.*not measured.*'owner/norm'"):
        result = shift.measure_variance_shift(_with_unused_bn(unused_bn, build_bn), x)
    assert list(result) == ["bn"] and result.not_called == ("owner/norm",)


def test_measuring_leaves_stateful_rnn_states_as_they_were(stateful):
    model, x = stateful.stepped(17)
    before = stateful.rnn_states(model)
    shift.measure_variance_shift(model, x, batch_size=8, steps=2)  # eager: the layers advance them
    _assert_same_weights(before, stateful.rnn_states(model))


def test_inconsistency_leaves_stateful_rnn_states_as_they_were(stateful):
    model, x = stateful.stepped(17)
    before = stateful.rnn_states(model)
    shift.prediction_inconsistency(model, x, batch_size=8, steps=2)
    _assert_same_weights(before, stateful.rnn_states(model))


def _conv_net():
    keras.utils.set_random_seed(0)
    x = keras.Input((6, 6, 3))
    h = layers.BatchNormalization(name="bn1")(layers.Conv2D(4, 3, padding="same")(x))
    h = layers.Conv2D(4, 3, padding="same")(layers.Dropout(0.3)(layers.ReLU()(h)))
    h = layers.BatchNormalization(name="bn2")(h)
    return keras.Model(x, layers.Dense(3)(layers.GlobalAveragePooling2D()(h)))


def mixed_and_float32_twins():
    """The same weights as a model under the current (mixed) policy and as a float32 one."""
    mixed = _conv_net()
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy("float32")
    try:
        full = _conv_net()
    finally:
        keras.config.set_dtype_policy(previous)
    full.set_weights(mixed.get_weights())
    for bn in ("bn1", "bn2"):  # statistics that are not the initial ones
        for m in (mixed, full):
            m.get_layer(bn).moving_variance.assign(np.full(4, 0.5, "float32"))
    x = np.random.default_rng(18).normal(1.0, 2.0, (48, 6, 6, 3)).astype("float32")
    return mixed, full, x


def test_measured_shift_of_a_mixed_precision_model_is_the_float32_models(mixed_policy):
    mixed, full, x = mixed_and_float32_twins()
    assert mixed.get_layer("bn2").compute_dtype != "float32"
    got, expected = shift.measure_variance_shift(mixed, x), shift.measure_variance_shift(full, x)
    assert list(got) == list(expected)
    for name in expected:
        assert got[name] == pytest.approx(expected[name], rel=0.05)


class _Task(keras.Model):
    """Keeps its whole backbone but calls only a feature map of it, as
    keras-hub's RetinaNet and DeepLab keep the backbone's ``post_bn``."""

    def __init__(self, backbone, **kwargs):
        features = keras.Model(backbone.input, backbone.get_layer("mid").output)
        x = keras.Input((5,))
        super().__init__(x, layers.BatchNormalization(name="bn")(features(x)), **kwargs)
        self.backbone = backbone


def test_a_bn_the_model_owns_outside_its_graph_is_listed_as_not_called():
    x = keras.Input((5,))
    backbone = keras.Model(x, layers.BatchNormalization(name="post_bn")(layers.Dense(4, name="mid")(x)),
                           name="backbone")
    data = np.random.default_rng(19).normal(size=(16, 5)).astype("float32")
    with pytest.warns(UserWarning, match="never called"):
        result = shift.measure_variance_shift(_Task(backbone), data)
    assert list(result) == ["bn"] and result.not_called == ("backbone/post_bn",)


def test_inconsistency_repr_shows_the_gap():
    from keras_vs.shift import Inconsistency

    text = repr(Inconsistency(0.5, 0.25, 0.1, 4, 4))
    assert "gap=0.25" in text and text.startswith("Inconsistency(train_mode_accuracy=0.5")
