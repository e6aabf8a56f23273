"""The `keras-vs rewrite MODEL --policy=... -o OUT` command."""

import hashlib
import json
import os
import subprocess
import sys

import h5py
import keras
import numpy as np
import pytest
from keras import layers as L

import keras_vs as kvs
from keras_vs import cli


X = np.random.default_rng(0).normal(size=(3, 6, 6, 2)).astype("float32")


def _model():
    rng = np.random.default_rng(1)
    x = L.Input((6, 6, 2), name="x")
    y = L.Conv2D(3, 3, name="conv")(x)
    y = L.Dropout(0.4, name="drop")(y)
    y = L.BatchNormalization(name="bn")(y)
    y = L.GlobalAveragePooling2D(name="gap")(y)
    y = L.Dense(4, name="fc")(y)
    y = L.BatchNormalization(name="bn2")(y)
    model = keras.Model(x, L.Dense(2, name="out")(y), name="small")
    for v in model.weights:  # BN statistics away from 0/1 so a wrong graph shows
        v.assign(rng.uniform(0.5, 1.5, v.shape).astype(v.dtype))
    return model


@pytest.fixture
def folder(tmp_path):
    model = _model()
    model.save(tmp_path / "m.keras")
    model.save(tmp_path / "m.h5")
    return tmp_path


@pytest.fixture
def run_cli(keras_vs_cli, folder, unchanged_files):
    """``keras-vs ARGS``; the input models must keep their sha256."""
    unchanged_files(folder / "m.keras", folder / "m.h5")
    return keras_vs_cli


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _predict(path):
    return keras.saving.load_model(path)(X, training=False)


def test_dry_run_prints_the_plan_and_writes_nothing(folder, run_cli):
    before = sorted(os.listdir(folder))
    code, out, _ = run_cli("rewrite", str(folder / "m.keras"), "--policy=after_bn",
                           "--dry_run", "-o", str(folder / "new.keras"))
    assert code == 0
    assert "move    drop as 'bn_dropout' after bn (rate=0.4)" in out
    assert "dry run: nothing written" in out
    assert sorted(os.listdir(folder)) == before


@pytest.mark.parametrize("policy", ["remove", "head"])
def test_output_has_no_disharmony_and_same_predictions(folder, run_cli, policy):
    src, out_path = folder / "m.keras", folder / "new.keras"
    digest = _digest(src)
    code, out, _ = run_cli("rewrite", str(src), f"--policy={policy}", "-o", str(out_path))
    assert code == 0
    assert f"wrote {out_path} (not compiled)" in out.splitlines()
    assert _digest(src) == digest  # the input file is byte for byte the same
    new = keras.saving.load_model(out_path)
    assert kvs.find_disharmony(new) == []
    np.testing.assert_allclose(new(X, training=False), _predict(src), atol=1e-5)
    assert sorted(os.listdir(folder)) == ["m.h5", "m.keras", "new.keras"]  # no temp file left


def test_after_bn_rate_option_reaches_the_moved_dropout(folder, run_cli):
    out_path = folder / "new.keras"
    code, _, _ = run_cli("rewrite", str(folder / "m.keras"), "--policy=after_bn",
                         "--rate=0.1", "-o", str(out_path))
    assert code == 0
    assert keras.saving.load_model(out_path).get_layer("bn_dropout").rate == pytest.approx(0.1)


def test_uout_beta_option_and_json_report(folder, run_cli):
    out_path = folder / "new.keras"
    code, out, _ = run_cli("rewrite", str(folder / "m.keras"), "--policy=uout",
                           "--beta=0.3", "--json", "-o", str(out_path))
    assert code == 0
    report = json.loads(out)
    assert report["output"] == str(out_path) and report["policy"] == "uout"
    assert [(c["action"], c["layer"], c["new_layer"]) for c in report["changes"]] == [
        ("replace", "drop", "drop_uout")
    ]
    layer = keras.saving.load_model(out_path).get_layer("drop_uout")
    assert isinstance(layer, kvs.Uout) and layer.beta == pytest.approx(0.3)


def test_legacy_h5_round_trip(folder, run_cli):
    src, out_path = folder / "m.h5", folder / "new.h5"
    digest = _digest(src)
    code, _, _ = run_cli("rewrite", str(src), "--policy=remove", "-o", str(out_path))
    assert code == 0 and _digest(src) == digest
    new = keras.saving.load_model(out_path)
    assert kvs.find_disharmony(new) == []
    np.testing.assert_allclose(new(X, training=False), _predict(src), atol=1e-5)


@pytest.mark.parametrize("spelling", ["same", "dot", "symlink"])
def test_refuses_to_overwrite_the_input(folder, run_cli, spelling):
    src = folder / "m.keras"
    out_path = {"same": src, "dot": folder / "." / "m.keras", "symlink": folder / "link.keras"}[spelling]
    if spelling == "symlink":
        os.symlink(src, out_path)
    digest = _digest(src)
    code, _, err = run_cli("rewrite", str(src), "--policy=remove", "--overwrite",
                           "-o", str(out_path))
    assert code == 1 and "OUT is the input model" in err
    assert _digest(src) == digest


def test_refuses_an_existing_output_without_overwrite(folder, run_cli):
    out_path = folder / "new.keras"
    out_path.write_bytes(b"keep me")
    code, _, err = run_cli("rewrite", str(folder / "m.keras"), "--policy=remove",
                           "-o", str(out_path))
    assert code == 1 and "pass --overwrite" in err
    assert out_path.read_bytes() == b"keep me"


def test_overwrite_replaces_an_existing_output(folder, run_cli):
    out_path = folder / "new.keras"
    out_path.write_bytes(b"old")
    code, _, _ = run_cli("rewrite", str(folder / "m.keras"), "--policy=remove",
                         "--overwrite", "-o", str(out_path))
    assert code == 0
    assert kvs.find_disharmony(keras.saving.load_model(out_path)) == []


def test_failed_save_leaves_no_file_behind(folder, run_cli, monkeypatch):
    def broken_save(model, path, **kwargs):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(keras.Model, "save", broken_save)
    code, _, err = run_cli("rewrite", str(folder / "m.keras"), "--policy=remove",
                           "-o", str(folder / "new.keras"))
    assert code == 1
    assert "Could not write the model (OSError: disk full)" in err
    assert sorted(os.listdir(folder)) == ["m.h5", "m.keras"]


def test_weights_output_loads_into_the_rewritten_architecture(folder, run_cli):
    src, out_path = folder / "m.keras", folder / "new.weights.h5"
    code, out, _ = run_cli("rewrite", str(src), "--policy=after_bn", "-o", str(out_path))
    assert code == 0 and "holds weights only" in out
    with h5py.File(out_path, "r") as f:
        assert "model_config" not in f.attrs  # not a (legacy) whole model
    rebuilt = kvs.rewrite(keras.saving.load_model(src), "after_bn")
    for v in rebuilt.weights:  # so that loading has something to prove
        v.assign(np.zeros(v.shape, v.dtype))
    rebuilt.load_weights(out_path)
    np.testing.assert_allclose(rebuilt(X, training=False), _predict(src), atol=1e-5)
    assert sorted(os.listdir(folder)) == ["m.h5", "m.keras", "new.weights.h5"]


def _three_pairs(path):
    """The issue's CNN shape: Dropout(0.5) before each of three BNs, the last through a Dense."""
    x = L.Input((8, 8, 1))
    h = L.Conv2D(4, 3, padding="same", name="c1")(x)
    h = L.BatchNormalization(name="bn1")(L.Dropout(0.5, name="d1")(h))
    h = L.Conv2D(4, 3, padding="same", name="c2")(L.ReLU()(h))
    h = L.BatchNormalization(name="bn2")(L.Dropout(0.5, name="d2")(h))
    h = L.Dropout(0.5, name="d3")(L.GlobalAveragePooling2D()(L.ReLU()(h)))
    h = L.BatchNormalization(name="bn3")(L.Dense(8, name="fc")(h))
    keras.Model(x, L.Dense(10, name="logits")(L.ReLU()(h))).save(path)
    return path


def test_plan_names_the_kept_through_linear_dropout(tmp_path, keras_vs_cli, unchanged_files):
    src = _three_pairs(tmp_path / "cnn.keras")
    unchanged_files(src)
    code, out, _ = keras_vs_cli("rewrite", src, "--policy=after_bn", "--dry_run")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "policy 'after_bn': 2 change(s), 1 kept"
    (keep,) = [line.split() for line in lines if line.split()[:1] == ["keep"]]
    assert keep[1] == "d3" and "bn3 (through_linear)" in " ".join(keep)
    assert any(line.startswith("not changed: d3 ") and "directly" in line for line in lines)


def test_rewrite_says_what_is_left_and_what_to_do_next(tmp_path, keras_vs_cli, unchanged_files):
    src, out_path = _three_pairs(tmp_path / "cnn.keras"), tmp_path / "fixed.keras"
    unchanged_files(src)
    code, out, _ = keras_vs_cli("rewrite", src, "--policy=after_bn", "-o", out_path)
    assert code == 0
    (left,) = [line for line in out.splitlines() if "still has" in line]
    # The moved d1 feeds bn2 through c2, the moved d2 feeds bn3 through fc, and
    # the kept d3 still feeds bn3 through fc: three pairs, all of case (b).
    assert f"{out_path} still has 3 dropout -> BN pair(s) (through_linear;" in left
    remaining = kvs.find_disharmony(keras.saving.load_model(out_path))
    assert {f.kind for f in remaining} == {"through_linear"} and len(remaining) == 3
    (advice,) = [line for line in out.splitlines() if line.startswith("next:")]
    assert f"keras-vs recalibrate {out_path}" in advice and "fine-tune" in advice


def test_rewrite_json_lists_changes_and_kept_pairs(tmp_path, keras_vs_cli, unchanged_files):
    src = _three_pairs(tmp_path / "cnn.keras")
    unchanged_files(src)
    code, out, _ = keras_vs_cli("rewrite", src, "--policy=after_bn", "--json", "-o",
                                tmp_path / "fixed.keras")
    assert code == 0
    report = json.loads(out)
    assert [c["layer"] for c in report["changes"]] == ["d1", "d2"]
    assert [(c["action"], c["layer"], c["feeds"]) for c in report["kept"]] == [
        ("keep", "d3", ["bn3 (through_linear)"])
    ]
    assert report["compiled"] is False


@pytest.fixture
def lambda_file(tmp_path):
    x = L.Input((4,))
    y = L.Lambda(lambda t: t * 2.0, name="double")(x)
    model = keras.Model(x, L.BatchNormalization(name="bn")(L.Dropout(0.5, name="drop")(y)))
    model.save(tmp_path / "lambda.keras")
    return tmp_path / "lambda.keras"


def test_lambda_model_is_refused_in_safe_mode(lambda_file, keras_vs_cli, unchanged_files):
    unchanged_files(lambda_file)
    out_path = lambda_file.parent / "new.keras"
    code, _, err = keras_vs_cli("rewrite", str(lambda_file), "--policy=remove", "-o", str(out_path))
    assert code == 1 and "Pass --unsafe only if you trust the file" in err
    assert not out_path.exists()


def test_lambda_model_is_rewritten_with_unsafe(lambda_file, keras_vs_cli, unchanged_files):
    unchanged_files(lambda_file)
    out_path = lambda_file.parent / "new.keras"
    code, _, _ = keras_vs_cli("rewrite", str(lambda_file), "--policy=remove", "--unsafe",
                         "-o", str(out_path))
    assert code == 0
    new = keras.saving.load_model(out_path, safe_mode=False)
    assert [layer.name for layer in new.layers][1:] == ["double", "bn"]
    ones = np.ones((1, 4), "float32")
    original = keras.saving.load_model(lambda_file, safe_mode=False)
    np.testing.assert_allclose(new(ones, training=False), original(ones, training=False), atol=1e-6)


@pytest.mark.parametrize(
    "args, status, message",
    [  # a flag missing from the command line is a bad command line: exit 2
        (["--policy=remove"], 2, "-o/--output is required"),
        (["-o", "x.keras"], 2, "--policy is required"),
        (["--policy=remove", "--rate=0.2", "-o", "x.keras"], 1,
         "Option(s) rate do not apply to policy 'remove'"),
        (["--policy=head", "--rate=1.5", "-o", "x.keras"], 1, "Received: rate=1.5"),
        (["--policy=remove", "-o", "x.onnx"], 1, "OUT must be a .keras, .h5, .hdf5 file"),
        (["--policy=remove", "-o", "no/such/folder/x.keras"], 1, "The folder for OUT does not exist"),
    ],
)
def test_bad_arguments_are_one_line_errors(folder, run_cli, monkeypatch, args, status, message):
    monkeypatch.chdir(folder)
    code, _, err = run_cli("rewrite", "m.keras", *args)
    assert code == status
    (line,) = err.strip().splitlines()
    assert line.startswith("keras-vs rewrite: error: ") and message in line
    assert sorted(os.listdir(folder)) == ["m.h5", "m.keras"]


def _console_command():
    script = os.path.join(os.path.dirname(sys.executable), "keras-vs")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "keras_vs.cli"]


@pytest.mark.slow  # a fresh interpreter imports TensorFlow: about 10 s
def test_console_entry_reports_a_corrupt_file_in_one_line(tmp_path):
    bad = tmp_path / "broken.keras"
    bad.write_bytes(b"PK\x03\x04 definitely not a whole zip archive")
    before = _digest(bad)
    result = subprocess.run(
        _console_command() + ["rewrite", str(bad), "--policy=remove", "-o", str(tmp_path / "o.keras")],
        capture_output=True, text=True, timeout=120,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    # TensorFlow's absl start-up lines may come first; ours is the last line.
    assert result.stderr.strip().splitlines()[-1] == (
        "keras-vs rewrite: error: Not a Keras model file (a .keras file is a zip archive). "
        f"Received: MODEL={str(bad)!r}"
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.keras"]
    assert _digest(bad) == before


class _Unregistered(L.Layer):
    """A custom layer whose class a `.keras` file cannot name (not registered)."""

    def call(self, x):
        return x * 2.0


def test_a_written_model_that_does_not_load_back_is_refused_and_not_left(tmp_path):
    from keras_vs.commands import common

    x = L.Input((3,))
    model = keras.Model(x, _Unregistered(name="odd")(x))
    out = tmp_path / "new.keras"
    with pytest.raises(cli.CliError, match=r"does not load back .*nothing written\. "
                                           r"Received: OUT="):
        common.save_model_file(model, str(out))
    assert not out.exists() and os.listdir(tmp_path) == []


@keras.saving.register_keras_serializable(package="keras_vs_tests")
class _Forgetful(L.Layer):
    """Loads back, but a `factor` set after construction is in no config:
    the file computes otherwise."""

    def __init__(self, factor=1.0, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor


def test_a_written_model_that_computes_otherwise_is_refused(tmp_path):
    from keras_vs.commands import common

    x = L.Input((3,))
    layer = _Forgetful()
    model = keras.Model(x, layer(x))
    layer.factor = 3.0
    out = tmp_path / "new.keras"
    with pytest.raises(cli.CliError, match=r"loads back but computes other outputs"):
        common.save_model_file(model, str(out))
    assert not out.exists()


_LOAD_AND_PREDICT = """
import sys, numpy as np, keras
model = keras.saving.load_model(sys.argv[1])
x = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
np.save(sys.argv[2], keras.ops.convert_to_numpy(model(x, training=False)))
print(type(model).__name__)
"""


@pytest.mark.slow  # three fresh interpreters import TensorFlow and keras-hub: 30-70 s
@pytest.mark.slow_on_jax  # the corpus runs keras-hub tasks on JAX (hub_task_resnet)
@pytest.mark.requires("keras_hub")
def test_a_rewritten_keras_hub_task_loads_in_a_fresh_process(tmp_path):
    import keras_hub

    backbone = keras_hub.models.EfficientNetBackbone(
        stackwise_width_coefficients=[1.0, 1.0], stackwise_depth_coefficients=[1.0, 1.0],
        stackwise_kernel_sizes=[3, 3], stackwise_num_repeats=[1, 2],
        stackwise_input_filters=[16, 16], stackwise_output_filters=[16, 24],
        stackwise_expansion_ratios=[1, 4], stackwise_squeeze_and_excite_ratios=[0.25, 0.25],
        stackwise_strides=[1, 2], stackwise_block_types=["v1", "v1"], input_shape=(32, 32, 3))
    task = keras_hub.models.ImageClassifier(backbone=backbone, num_classes=3, name="task")
    src, out = tmp_path / "task.keras", tmp_path / "fixed.keras"
    task.save(src)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    run = subprocess.run(_console_command() + ["rewrite", str(src), "--policy=remove", "-o", str(out)],
                         capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr
    results = []
    for path in (src, out):
        name = tmp_path / f"{path.stem}.npy"
        load = subprocess.run([sys.executable, "-c", _LOAD_AND_PREDICT, str(path), str(name)],
                              capture_output=True, text=True, timeout=300, env=env)
        assert load.returncode == 0, load.stderr
        results.append((load.stdout.split()[-1], np.load(name)))
    assert results[0][0] == results[1][0] == "ImageClassifier"
    np.testing.assert_allclose(results[1][1], results[0][1], rtol=1e-5, atol=1e-6)
