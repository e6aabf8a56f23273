"""tuner.distribute: strategy choice; MirroredStrategy trials and keras-tuner chief/workers."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import types

import keras
import pytest

import tuner

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TINY_SOURCE = textwrap.dedent(
    """
    import keras

    def tiny():
        # The same weights in every process: chief and workers search the same model.
        keras.utils.set_random_seed(0)
        x = keras.Input((8, 8, 1), name="x")
        y = keras.layers.Conv2D(8, 3, use_bias=False, name="conv")(x)
        y = keras.layers.Dropout(0.3, name="drop")(y)
        y = keras.layers.BatchNormalization(name="bn")(y)
        y = keras.layers.ReLU(name="relu")(y)
        y = keras.layers.GlobalAveragePooling2D(name="pool")(y)
        y = keras.layers.Dense(10, activation="softmax", name="predictions")(y)
        return keras.Model(x, y, name="tiny")
    """
)


# The statistic of a search's exported best model on its probe (the first 64
# training examples), measured without any distribution.
SHIFT_SOURCE = textwrap.dedent(
    """
    def shift_of_best(result):
        import keras, keras_vs
        from keras_vs import data

        best = keras.saving.load_model(result.files["model"])
        shift = keras_vs.measure_variance_shift(best, data.load("digits", "train")[0][:64])
        return [shift.max(), shift.mean()]

    def recalibrated_of_best(result, validation_size=None):
        # Its accuracy after precise BN re-estimation on its training data (the first 128).
        import keras, keras_vs
        from keras_vs import data

        best = keras.saving.load_model(result.files["model"])
        (x, y), (x_val, y_val) = data.load("digits", "train"), data.load("digits", "test")
        fixed = keras_vs.recalibrate_bn(best, (x[:128], y[:128]), batch_size=128)
        scores = fixed.evaluate(x_val[:validation_size], y_val[:validation_size], verbose=0, return_dict=True)
        return scores["accuracy"]
    """
)


def _env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")}
    return {**env, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3", **extra}


def test_none_gives_the_default_strategy():
    assert tuner.get_strategy("none") is None


def test_auto_on_a_cpu_only_machine_gives_the_default_strategy():
    assert tuner.get_strategy("auto") is None


def test_unknown_strategy_names_what_was_received():
    with pytest.raises(ValueError, match="strategy='gpus'"):
        tuner.get_strategy("gpus")


@pytest.mark.tf_only
def test_multi_worker_without_tf_config_says_what_is_missing(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ValueError, match="TF_CONFIG"):
        tuner.get_strategy("multi_worker")


def test_strategies_need_tensorflow_or_jax_on_other_backends():
    if keras.backend.backend() in ("tensorflow", "jax"):
        pytest.skip("only meaningful on a backend without strategies (torch, numpy)")
    with pytest.raises(ValueError, match="strategy='mirrored'"):
        tuner.get_strategy("mirrored")


# -- JAX: keras.distribution.DataParallel over the local devices -------------

# Two host devices for JAX: XLA_FLAGS must be set before jax is imported, so
# these checks run in a fresh interpreter (keeping the flags conftest set).
_TWO_HOST_DEVICES = f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2".strip()
JAX_DEVICES_SCRIPT = textwrap.dedent(
    """
    import json
    import keras
    from tuner import distribute

    def error(name, **kwargs):
        try:
            distribute.get_strategy(name, **kwargs)
        except ValueError as e:
            return str(e)
        return None

    mirrored = distribute.get_strategy("mirrored")
    with distribute.distributed(mirrored):
        inside = keras.distribution.distribution() is mirrored
    facts = {
        "devices": keras.distribution.list_devices(),
        "mirrored_type": type(mirrored).__name__,
        "mirrored_devices": [str(d) for d in mirrored.device_mesh.devices.flat],
        "mirrored_batch_axis": mirrored.batch_dim_name,
        "describe": distribute.describe(mirrored),
        "tuner_strategy_is_none": distribute.tuner_strategy(mirrored) is None,
        "inside": inside,
        "after": repr(keras.distribution.distribution()),
        "auto_on_cpus": repr(distribute.get_strategy("auto")),
        "tpu_error": error("tpu"),
        "tpu_name_error": error("tpu", tpu="grpc://10.0.0.1:8470"),
        "multi_worker_error": error("multi_worker"),
        "split": distribute.data_parallel_size(mirrored),
    }
    print("FACTS", json.dumps(facts))
    """
)


@pytest.fixture(scope="module")
def jax_two_devices():
    """What `get_strategy` gives on JAX with two forced host (CPU) devices."""
    pytest.importorskip("jax")
    done = subprocess.run(
        [sys.executable, "-c", JAX_DEVICES_SCRIPT],
        env=_env(KERAS_BACKEND="jax", XLA_FLAGS=_TWO_HOST_DEVICES),
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.split("FACTS ")[-1])


def test_jax_mirrored_is_data_parallel_over_both_devices(jax_two_devices):
    facts = jax_two_devices
    assert facts["devices"] == ["cpu:0", "cpu:1"]
    assert facts["mirrored_type"] == "DataParallel"
    assert facts["mirrored_devices"] == ["cpu:0", "cpu:1"]
    assert facts["mirrored_batch_axis"] == "batch"
    assert facts["describe"] == "DataParallel (2 devices: cpu:0, cpu:1)"


def test_jax_data_parallel_splits_each_batch_in_two(jax_two_devices):
    assert jax_two_devices["split"] == 2


def test_jax_distribution_is_set_inside_and_restored_after(jax_two_devices):
    assert jax_two_devices["inside"] is True
    assert jax_two_devices["after"] == "None"


def test_jax_distribution_is_not_handed_to_keras_tuner(jax_two_devices):
    # keras-tuner reads `strategy.extended`, which only tf.distribute has.
    assert jax_two_devices["tuner_strategy_is_none"] is True


def test_jax_auto_keeps_cpus_on_one_device(jax_two_devices):
    # As on TensorFlow: auto distributes over accelerators only.
    assert jax_two_devices["auto_on_cpus"] == "None"


def test_jax_tpu_without_tpus_names_the_devices_found(jax_two_devices):
    assert "found no TPU device" in jax_two_devices["tpu_error"]
    assert "cpu:0" in jax_two_devices["tpu_error"]
    assert "strategy='tpu'" in jax_two_devices["tpu_error"]


def test_jax_tpu_address_is_a_tensorflow_option(jax_two_devices):
    assert "tpu='grpc://10.0.0.1:8470'" in jax_two_devices["tpu_name_error"]


def test_jax_multi_worker_says_how_to_run_multi_host(jax_two_devices):
    assert "keras.distribution.initialize" in jax_two_devices["multi_worker_error"]
    assert "strategy='multi_worker'" in jax_two_devices["multi_worker_error"]


def test_distributed_restores_the_previous_distribution_after_an_error():
    if keras.backend.backend() != "jax":
        pytest.skip("keras.distribution is used on the JAX backend")
    from tuner import distribute

    outer = keras.distribution.DataParallel(devices=keras.distribution.list_devices()[:1])
    inner = keras.distribution.DataParallel(devices=keras.distribution.list_devices()[:1])
    keras.distribution.set_distribution(outer)
    try:
        with pytest.raises(RuntimeError, match="boom"):
            with distribute.distributed(inner):
                assert keras.distribution.distribution() is inner
                raise RuntimeError("boom")
        assert keras.distribution.distribution() is outer
    finally:
        keras.distribution.set_distribution(None)


def test_clear_session_keeps_the_distribution_of_the_search():
    # Each trial clears the session before building; its model must still be distributed.
    if keras.backend.backend() != "jax":
        pytest.skip("keras.distribution is used on the JAX backend")
    from tuner import distribute

    dist = keras.distribution.DataParallel(devices=keras.distribution.list_devices()[:1])
    with distribute.distributed(dist):
        keras.layers.Dense(2, name="before_clear")
        distribute.clear_session()
        assert keras.distribution.distribution() is dist
        assert keras.layers.Dense(2).name == "dense"  # the rest of the session was cleared
    assert keras.distribution.distribution() is None


def test_distributed_leaves_none_and_tf_strategies_alone():
    from tuner import distribute

    before = keras.distribution.distribution()
    with distribute.distributed(None):
        assert keras.distribution.distribution() is before
    assert distribute.tuner_strategy(None) is None
    strategy = object()  # stands for a tf.distribute.Strategy
    assert distribute.tuner_strategy(strategy) is strategy


class _FakeDataParallel:
    """Duck-types a keras.distribution.DataParallel over ``n`` devices."""

    def __init__(self, n):
        import numpy as np

        self.batch_dim_name = "batch"
        self.device_mesh = types.SimpleNamespace(
            axis_names=["batch"], shape=(n,), devices=np.array([f"gpu:{i}" for i in range(n)])
        )

    def get_data_layout(self, shape):
        return None

    def get_variable_layout(self, variable):
        return None


def _arrays(n):
    import numpy as np

    return np.arange(n * 2.0).reshape(n, 2), np.arange(n)


def test_even_batches_trims_numpy_sets_to_a_multiple_of_the_devices():
    from tuner import distribute

    with pytest.warns(UserWarning, match="last 1 of 359 validation examples"):
        train, val, steps = distribute.even_batches(
            _FakeDataParallel(2), _arrays(128), _arrays(359), batch_size=64, steps=2)
    assert len(train[0]) == len(train[1]) == 128
    assert len(val[0]) == len(val[1]) == 358
    assert val[1][-1] == 357  # the first examples are kept, in order
    assert steps == 2


def test_even_batches_recounts_the_steps_of_a_trimmed_training_set():
    from tuner import distribute

    with pytest.warns(UserWarning, match="last 2 of 130 training examples"):
        train, _, steps = distribute.even_batches(
            _FakeDataParallel(4), _arrays(130), _arrays(8), batch_size=64, steps=3)
    assert len(train[0]) == 128 and steps == 2


def test_even_batches_needs_a_batch_size_the_devices_divide():
    from tuner import distribute

    with pytest.raises(ValueError, match="multiple of 4. Received: batch_size=30"):
        distribute.even_batches(_FakeDataParallel(4), _arrays(64), _arrays(64), 30, 3)


def test_even_batches_rejects_a_set_smaller_than_the_devices():
    from tuner import distribute

    with pytest.raises(ValueError, match="Received: 3 validation examples"):
        distribute.even_batches(_FakeDataParallel(4), _arrays(64), _arrays(3), 32, 2)


def test_even_batches_leaves_other_strategies_and_pipelines_alone():
    from tuner import distribute

    train, val = _arrays(129), _arrays(7)
    assert distribute.even_batches(None, train, val, 10, 13) == (train, val, 13)
    pipeline = object()  # stands for a tf.data.Dataset
    assert distribute.even_batches(_FakeDataParallel(2), pipeline, pipeline, 8, 5) == (
        pipeline, pipeline, 5)


DATA_PARALLEL_SCRIPT = TINY_SOURCE + SHIFT_SOURCE + textwrap.dedent(
    """
    import json, sys
    import keras
    import tuner

    seen = []

    class Where(keras.callbacks.Callback):
        # Deep-copied per trial by keras-tuner; `seen` is this module's list.
        def on_train_begin(self, logs=None):
            dist = keras.distribution.distribution()
            seen.append({
                "distribution": type(dist).__name__,
                "variable_devices": sorted(
                    {len(v.value.sharding.device_set) for v in self.model.trainable_variables}),
            })

    result = tuner.search(
        tiny(), "digits", training=tuner.TrainingConfig(epochs=1), data=tuner.DataConfig(take=128, probe_size=64),
        run=tuner.RunConfig(oracle="grid", max_trials=1, strategy="mirrored", callbacks=[Where()], verbose=0),
        project=tuner.ProjectConfig(directory=sys.argv[1]),
    )
    print("RESULT", json.dumps({
        "seen": seen, "rows": result.rows, "files": sorted(result.files),
        "after": repr(keras.distribution.distribution()), "shift": shift_of_best(result),
        "recalibrated": recalibrated_of_best(result, validation_size=358),
    }))
    """
)


@pytest.mark.slow
def test_trials_train_data_parallel_on_two_jax_host_devices(tmp_path):
    pytest.importorskip("jax")
    if keras.backend.backend() != "jax":
        pytest.skip("runs in the KERAS_BACKEND=jax steps (the search itself is always on JAX)")
    done = subprocess.run(
        [sys.executable, "-c", DATA_PARALLEL_SCRIPT, str(tmp_path)],
        env=_env(KERAS_BACKEND="jax", XLA_FLAGS=_TWO_HOST_DEVICES),
        capture_output=True, text=True, timeout=400,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT ")[-1])
    # fit ran under the DataParallel, every weight replicated on both devices
    assert result["seen"] == [{"distribution": "DataParallel", "variable_devices": [2]}]
    (row,) = result["rows"]
    assert row["status"] == "COMPLETED" and 0.0 <= row["val_accuracy"] <= 1.0
    # the shift measured under the distribution is the trained network's, measured on one device
    assert [row["variance_shift_max"], row["variance_shift_mean"]] == pytest.approx(result["shift"], rel=1e-4)
    # and so is its accuracy after BN re-estimation (on the 358 validation examples it kept)
    assert row["val_accuracy_recalibrated"] == pytest.approx(result["recalibrated"], abs=1e-6)
    assert result["files"] == ["csv", "json", "model", "png"]
    assert result["after"] == "None"  # the global distribution is restored
    # digits' 359 validation examples: the last one is left out, with a warning
    assert "last 1 of 359 validation examples" in done.stderr


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf

    # Two logical CPU devices: must be set before TensorFlow initialises.
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import tuner
    """
) + TINY_SOURCE + SHIFT_SOURCE + textwrap.dedent(
    """
    strategy = tuner.get_strategy("mirrored")
    result = tuner.search(
        tiny(), "digits", training=tuner.TrainingConfig(epochs=1), data=tuner.DataConfig(take=128, probe_size=64),
        run=tuner.RunConfig(oracle="grid", max_trials=1, strategy=strategy, verbose=0),
        project=tuner.ProjectConfig(directory=sys.argv[1]),
    )
    print("RESULT", json.dumps({
        "replicas": strategy.num_replicas_in_sync, "rows": result.rows, "shift": shift_of_best(result),
        "recalibrated": recalibrated_of_best(result),
    }))
    """
)


@pytest.mark.slow
@pytest.mark.tf_only
def test_trials_train_under_mirrored_strategy_on_two_logical_cpus(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(tmp_path)],
        env=_env(), capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.split("RESULT ")[-1])
    assert result["replicas"] == 2
    (row,) = result["rows"]
    assert row["status"] == "COMPLETED"
    # the shift measured under the strategy is the trained network's, measured outside it
    assert [row["variance_shift_max"], row["variance_shift_mean"]] == pytest.approx(result["shift"], rel=1e-4)
    # likewise its accuracy after BN re-estimation
    assert row["val_accuracy_recalibrated"] == pytest.approx(result["recalibrated"], abs=1e-6)


CLUSTER_SCRIPT = TINY_SOURCE + textwrap.dedent(
    """
    import json, sys
    import tuner

    result = tuner.search(
        tiny(), "digits", training=tuner.TrainingConfig(epochs=1), data=tuner.DataConfig(take=128, probe_size=64),
        run=tuner.RunConfig(oracle="random", max_trials=4, strategy="none", verbose=0),
        project=tuner.ProjectConfig(directory=sys.argv[1]),
    )
    print("RESULT", json.dumps({"role": result.role, "ran": result.ran, "rows": result.rows}))
    """
)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.tf_only
def test_chief_and_two_workers_split_the_trials_and_lose_none(tmp_path):
    port = str(_free_port())
    procs = {}
    for tuner_id in ("chief", "tuner0", "tuner1"):
        env = _env(
            KERASTUNER_TUNER_ID=tuner_id, KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=port
        )
        procs[tuner_id] = subprocess.Popen(
            [sys.executable, "-c", CLUSTER_SCRIPT, str(tmp_path)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        if tuner_id == "chief":
            time.sleep(1.0)  # let the chief bind the port first
    outputs = {}
    deadline = time.monotonic() + 300
    try:
        for tuner_id, proc in procs.items():
            out, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            assert proc.returncode == 0, f"{tuner_id}:\n{out[-2000:]}\n{err[-3000:]}"
            outputs[tuner_id] = json.loads(out.split("RESULT ")[-1])
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert outputs["chief"]["role"] == "chief" and outputs["chief"]["ran"] == []
    ran = {w: outputs[w]["ran"] for w in ("tuner0", "tuner1")}
    assert all(ran.values()), ran  # both workers got trials
    every = sorted(ran["tuner0"] + ran["tuner1"])
    assert len(every) == len(set(every)) == 4  # none lost, none run twice
    rows = outputs["chief"]["rows"]
    assert sorted(r["trial_id"] for r in rows) == every
    assert all(r["status"] == "COMPLETED" for r in rows)
    assert {r["tuner_id"] for r in rows} == {"tuner0", "tuner1"}
    for name in ("results.csv", "results.json", "best_model.keras"):
        assert os.path.isfile(os.path.join(str(tmp_path), "tiny-digits-random", name))
