"""tuner.distribute: strategy choice; MirroredStrategy trials and keras-tuner chief/workers."""

import json
import os
import socket
import subprocess
import sys
import textwrap
import time

import keras
import pytest

import tuner

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TINY_SOURCE = textwrap.dedent(
    """
    import keras

    def tiny():
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


def test_strategies_need_tensorflow_on_other_backends():
    if keras.backend.backend() == "tensorflow":
        pytest.skip("only meaningful on a non-TensorFlow backend")
    with pytest.raises(ValueError, match="TensorFlow backend"):
        tuner.get_strategy("mirrored")


MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import tensorflow as tf

    # Two logical CPU devices: must be set before TensorFlow initialises.
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import tuner
    """
) + TINY_SOURCE + textwrap.dedent(
    """
    strategy = tuner.get_strategy("mirrored")
    result = tuner.search(
        tiny(), "digits", oracle="grid", max_trials=1, epochs=1, take=128, probe_size=64,
        directory=sys.argv[1], strategy=strategy, verbose=0,
    )
    print("RESULT", json.dumps({"replicas": strategy.num_replicas_in_sync, "rows": result.rows}))
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
    assert row["status"] == "COMPLETED" and row["variance_shift_max"] >= 1.0


CLUSTER_SCRIPT = TINY_SOURCE + textwrap.dedent(
    """
    import json, sys
    import tuner

    result = tuner.search(
        tiny(), "digits", oracle="random", max_trials=4, epochs=1, take=128, probe_size=64,
        directory=sys.argv[1], strategy="none", verbose=0,
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
