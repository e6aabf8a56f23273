"""VarianceShiftCallback: logs, TensorBoard, deep copies, strategies, training unchanged."""

import copy
import csv
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from keras import layers

from keras_vs.callbacks import VarianceShiftCallback


def _model(rate=0.5, seed=0):
    keras.utils.set_random_seed(seed)
    x = keras.Input((8,))
    h = layers.Dense(16, use_bias=False)(x)
    h = layers.Dropout(rate)(h)
    h = layers.ReLU()(layers.BatchNormalization(momentum=0.5, name="bn1")(h))
    h = layers.BatchNormalization(momentum=0.5, name="bn2")(layers.Dense(8)(h))
    model = keras.Model(x, layers.Dense(3)(h))
    model.compile("adam", "sparse_categorical_crossentropy")
    return model


def _data(n=128):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 8)).astype("float32")
    return x, (np.arange(n) % 3)


def test_logs_hold_max_mean_and_per_layer_values():
    x, y = _data()
    cb = VarianceShiftCallback(x, per_layer=True, probe_size=64)
    history = _model().fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[cb])
    for key in ("variance_shift/max", "variance_shift/mean", "variance_shift/bn1", "variance_shift/bn2"):
        assert len(history.history[key]) == 2
    assert history.history["variance_shift/max"][-1] == max(cb.last.values())
    assert history.history["variance_shift/bn1"][-1] > 1.2  # dropout 0.5 right before bn1


def test_attribute_logs_the_three_parts_per_layer():
    x, y = _data()
    cb = VarianceShiftCallback(x, per_layer=True, probe_size=64, attribute=True)
    history = _model().fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[cb])
    part = cb.last_attribution["bn1"]
    assert history.history["variance_shift/bn1/dropout_part"][-1] == part.part("dropout")
    assert history.history["variance_shift/statistics_part"][-1] == max(
        a.part("statistics") for a in cb.last_attribution.values())


def test_logged_mean_is_the_mean_over_bns_not_the_max():
    x, y = _data()
    cb = VarianceShiftCallback(x, probe_size=64)
    history = _model().fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[cb])
    values = list(cb.last.values())
    assert len(values) == 2 and max(values) > min(values)  # so mean and max differ
    assert history.history["variance_shift/mean"][-1] == pytest.approx(np.mean(values), rel=1e-6)


def test_every_measures_the_first_epoch_and_then_every_nth():
    x, y = _data()
    cb = VarianceShiftCallback(x, every=2, probe_size=32)
    measured = []

    class Spy(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            measured.append("variance_shift/max" in logs)

    _model().fit(x, y, epochs=3, batch_size=32, verbose=0, callbacks=[cb, Spy()])
    assert measured == [True, False, True]


def test_csv_logger_records_the_statistic(tmp_path):
    x, y = _data()
    path = tmp_path / "log.csv"
    cb = VarianceShiftCallback(x, probe_size=32)
    _model().fit(x, y, epochs=2, batch_size=32, verbose=0, callbacks=[cb, keras.callbacks.CSVLogger(str(path))])
    rows = list(csv.DictReader(open(path)))
    assert len(rows) == 2
    assert float(rows[1]["variance_shift/max"]) == pytest.approx(cb.last.max(), rel=1e-6)
    assert float(rows[1]["variance_shift/mean"]) == pytest.approx(cb.last.mean(), rel=1e-6)


@pytest.mark.tf_only
def test_tensorboard_gets_per_layer_scalars(tmp_path):
    import tensorflow as tf

    x, y = _data()
    cb = VarianceShiftCallback(x, probe_size=32, log_dir=str(tmp_path))
    _model().fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[cb])
    tags = set()
    for name in os.listdir(tmp_path):
        for event in tf.compat.v1.train.summary_iterator(str(tmp_path / name)):
            tags |= {v.tag for v in event.summary.value}
    assert tags == {"variance_shift/bn1", "variance_shift/bn2"}


@pytest.mark.slow
def test_callback_does_not_change_the_training_result():
    x, y = _data()
    results = []
    for callbacks in ([], [VarianceShiftCallback(x, probe_size=64)]):
        model = _model(seed=3)
        model.fit(x, y, epochs=2, batch_size=16, verbose=0, shuffle=True, callbacks=callbacks)
        results.append(model.get_weights())
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_deep_copy_keeps_settings_and_drops_the_model():
    x, y = _data()
    cb = VarianceShiftCallback(x, every=3, probe_size=16, per_layer=True)
    model = _model()
    model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[cb])
    clone = copy.deepcopy(cb)
    assert clone.every == 3 and clone.per_layer and clone._probe is None
    np.testing.assert_array_equal(clone.probe_x, cb.probe_x)
    assert clone.probe_x is not cb.probe_x
    history = _model().fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[clone])
    assert "variance_shift/max" in history.history


def test_model_without_bn_logs_nothing():
    x, y = _data()
    model = keras.Sequential([keras.Input((8,)), layers.Dense(3)])
    model.compile("sgd", "sparse_categorical_crossentropy")
    history = model.fit(x, y, epochs=1, verbose=0, callbacks=[VarianceShiftCallback(x, probe_size=8)])
    assert not any(k.startswith("variance_shift") for k in history.history)


def test_bad_arguments_are_echoed():
    with pytest.raises(ValueError, match="Received: every=0"):
        VarianceShiftCallback(np.zeros((4, 8)), every=0)
    with pytest.raises(ValueError, match="empty"):
        VarianceShiftCallback(np.zeros((0, 8)))


@pytest.mark.tf_only
@pytest.mark.slow
def test_works_under_mirrored_strategy():
    # Logical devices must be set before TensorFlow starts: use a fresh process.
    script = textwrap.dedent(
        """
        import numpy as np, tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        import keras
        from keras import layers
        from keras_vs import VarianceShiftCallback, measure_variance_shift
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
        x = np.random.default_rng(0).normal(size=(64, 8)).astype("float32")
        y = np.arange(64) % 3
        with strategy.scope():
            inp = keras.Input((8,))
            h = layers.Dropout(0.5)(layers.Dense(16, use_bias=False)(inp))
            h = layers.BatchNormalization(momentum=0.5, name="bn")(h)
            model = keras.Model(inp, layers.Dense(3)(h))
            model.compile("adam", "sparse_categorical_crossentropy")
            cb = VarianceShiftCallback(x, probe_size=33, batch_size=16)
            history = model.fit(x, y, epochs=2, batch_size=16, verbose=0, callbacks=[cb])
        outside = measure_variance_shift(model, x[:33], batch_size=16)
        assert strategy.num_replicas_in_sync == 2
        assert abs(history.history["variance_shift/max"][-1] - outside["bn"]) < 1e-5, (history.history, dict(outside))
        print("OK", history.history["variance_shift/max"])
        """
    )
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="2")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "OK" in result.stdout


# --- what a user's model may hold (issue 23) --------------------------------


@pytest.mark.filterwarnings("ignore:Gradients do not exist")  # the BN no call reaches
def test_a_bn_its_layer_never_calls_is_left_out_of_the_logs_with_a_warning(unused_bn):
    x, y = _data()
    model = _model()
    model = keras.Model(model.input, unused_bn(name="owner")(model.output))
    model.compile("adam", "sparse_categorical_crossentropy")
    cb = VarianceShiftCallback(x, per_layer=True, probe_size=32)
    with pytest.warns(UserWarning, match=r"never called them.*'owner/norm'"):
        history = model.fit(x, y, epochs=1, batch_size=32, verbose=0, callbacks=[cb])
    assert sorted(k for k in history.history if k.startswith("variance_shift/bn")) == [
        "variance_shift/bn1", "variance_shift/bn2"]
    assert cb.last.not_called == ("owner/norm",)


def test_measuring_leaves_stateful_rnn_states_as_they_were():
    keras.utils.set_random_seed(0)
    inputs = keras.Input(batch_shape=(8, 5, 3))
    lstm = layers.LSTM(4, stateful=True)
    model = keras.Model(inputs, layers.BatchNormalization()(layers.Dropout(0.5)(lstm(inputs))))
    x = np.random.default_rng(1).normal(size=(32, 5, 3)).astype("float32")
    model(x[:8])  # states that are not the initial zeros
    before = [np.array(keras.ops.convert_to_numpy(s)) for s in lstm.states]
    cb = VarianceShiftCallback(x, probe_size=32, batch_size=8)
    cb.set_model(model)
    cb.model.run_eagerly = True  # eager: the layer advances its states
    cb.measure()
    for old, new in zip(before, lstm.states):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(new), old)


def test_a_mixed_precision_model_measures_as_the_float32_model(mixed_policy):
    x, y = _data()
    mixed = _model()
    keras.config.set_dtype_policy("float32")
    full = _model()
    keras.config.set_dtype_policy(mixed_policy)
    full.set_weights(mixed.get_weights())
    got, expected = (VarianceShiftCallback(x, probe_size=64) for _ in range(2))
    got.set_model(mixed)
    expected.set_model(full)
    measured = got.measure()
    for name, value in expected.measure().items():
        assert measured[name] == pytest.approx(value, rel=0.05)


def test_probe_data_of_another_shape_fails_before_the_first_epoch():
    model = _model()
    model.compile("adam", "sparse_categorical_crossentropy")
    x, y = _data()
    wrong = np.zeros((16, 12), "float32")  # the model takes 8 features
    epochs = []
    with pytest.raises(ValueError, match=r"VarianceShiftCallback's data: .*Received: a batch of shape \(16, 12\)"):
        model.fit(x, y, epochs=2, verbose=0, callbacks=[
            VarianceShiftCallback(wrong), keras.callbacks.LambdaCallback(on_epoch_end=lambda e, l: epochs.append(e))])
    assert epochs == []


def test_nan_probe_data_is_refused_when_the_callback_is_made():
    x, _ = _data()
    x[3, 0] = np.nan
    with pytest.raises(ValueError, match="holds 1 NaN or infinite value"):
        VarianceShiftCallback(x)


@pytest.mark.tf_only
def test_an_unbatched_dataset_is_one_clear_error():
    import tensorflow as tf

    x, y = _data()
    with pytest.raises(ValueError, match=r"yields single examples, not batches .*ds.batch\(128\)"):
        VarianceShiftCallback(tf.data.Dataset.from_tensor_slices((x, y)))
