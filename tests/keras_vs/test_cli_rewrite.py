"""The `keras-vs rewrite MODEL --policy=... -o OUT` command."""

import hashlib
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from absl import flags
from keras import layers as L

import keras_vs as kvs
from keras_vs import cli


def run_cli(capsys, *args):
    """Runs ``keras-vs ARGS`` in-process; returns (exit code, stdout, stderr)."""
    try:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["keras-vs", *args])
    finally:
        flags.FLAGS.unparse_flags()  # absl flags are global: reset for the next run
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


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


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _predict(path):
    return keras.saving.load_model(path)(X, training=False)


def test_dry_run_prints_the_plan_and_writes_nothing(folder, capsys):
    before = sorted(os.listdir(folder))
    code, out, _ = run_cli(capsys, "rewrite", str(folder / "m.keras"), "--policy=after_bn",
                           "--dry_run", "-o", str(folder / "new.keras"))
    assert code == 0
    assert "move    drop as 'bn_dropout' after bn (rate=0.4)" in out
    assert "dry run: nothing written" in out
    assert sorted(os.listdir(folder)) == before


@pytest.mark.parametrize("policy", ["remove", "head"])
def test_output_has_no_disharmony_and_same_predictions(folder, capsys, policy):
    src, out_path = folder / "m.keras", folder / "new.keras"
    digest = _digest(src)
    code, out, _ = run_cli(capsys, "rewrite", str(src), f"--policy={policy}", "-o", str(out_path))
    assert code == 0
    assert out.strip().splitlines()[-1] == f"wrote {out_path}"
    assert _digest(src) == digest  # the input file is byte for byte the same
    new = keras.saving.load_model(out_path)
    assert kvs.find_disharmony(new) == []
    np.testing.assert_allclose(new(X, training=False), _predict(src), atol=1e-5)
    assert sorted(os.listdir(folder)) == ["m.h5", "m.keras", "new.keras"]  # no temp file left


def test_after_bn_rate_option_reaches_the_moved_dropout(folder, capsys):
    out_path = folder / "new.keras"
    code, _, _ = run_cli(capsys, "rewrite", str(folder / "m.keras"), "--policy=after_bn",
                         "--rate=0.1", "-o", str(out_path))
    assert code == 0
    assert keras.saving.load_model(out_path).get_layer("bn_dropout").rate == pytest.approx(0.1)


def test_uout_beta_option_and_json_report(folder, capsys):
    out_path = folder / "new.keras"
    code, out, _ = run_cli(capsys, "rewrite", str(folder / "m.keras"), "--policy=uout",
                           "--beta=0.3", "--json", "-o", str(out_path))
    assert code == 0
    report = json.loads(out)
    assert report["output"] == str(out_path) and report["policy"] == "uout"
    assert [(c["action"], c["layer"], c["new_layer"]) for c in report["changes"]] == [
        ("replace", "drop", "drop_uout")
    ]
    layer = keras.saving.load_model(out_path).get_layer("drop_uout")
    assert isinstance(layer, kvs.Uout) and layer.beta == pytest.approx(0.3)


def test_legacy_h5_round_trip(folder, capsys):
    src, out_path = folder / "m.h5", folder / "new.h5"
    digest = _digest(src)
    code, _, _ = run_cli(capsys, "rewrite", str(src), "--policy=remove", "-o", str(out_path))
    assert code == 0 and _digest(src) == digest
    new = keras.saving.load_model(out_path)
    assert kvs.find_disharmony(new) == []
    np.testing.assert_allclose(new(X, training=False), _predict(src), atol=1e-5)


@pytest.mark.parametrize("spelling", ["same", "dot", "symlink"])
def test_refuses_to_overwrite_the_input(folder, capsys, spelling):
    src = folder / "m.keras"
    out_path = {"same": src, "dot": folder / "." / "m.keras", "symlink": folder / "link.keras"}[spelling]
    if spelling == "symlink":
        os.symlink(src, out_path)
    digest = _digest(src)
    code, _, err = run_cli(capsys, "rewrite", str(src), "--policy=remove", "--overwrite",
                           "-o", str(out_path))
    assert code == 1 and "OUT is the input model" in err
    assert _digest(src) == digest


def test_refuses_an_existing_output_without_overwrite(folder, capsys):
    out_path = folder / "new.keras"
    out_path.write_bytes(b"keep me")
    code, _, err = run_cli(capsys, "rewrite", str(folder / "m.keras"), "--policy=remove",
                           "-o", str(out_path))
    assert code == 1 and "pass --overwrite" in err
    assert out_path.read_bytes() == b"keep me"


def test_overwrite_replaces_an_existing_output(folder, capsys):
    out_path = folder / "new.keras"
    out_path.write_bytes(b"old")
    code, _, _ = run_cli(capsys, "rewrite", str(folder / "m.keras"), "--policy=remove",
                         "--overwrite", "-o", str(out_path))
    assert code == 0
    assert kvs.find_disharmony(keras.saving.load_model(out_path)) == []


def test_failed_save_leaves_no_file_behind(folder, capsys, monkeypatch):
    def broken_save(model, path, **kwargs):
        with open(path, "wb") as f:
            f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(keras.Model, "save", broken_save)
    code, _, err = run_cli(capsys, "rewrite", str(folder / "m.keras"), "--policy=remove",
                           "-o", str(folder / "new.keras"))
    assert code == 1
    assert "Could not write the model (OSError: disk full)" in err
    assert sorted(os.listdir(folder)) == ["m.h5", "m.keras"]


@pytest.fixture
def lambda_file(tmp_path):
    x = L.Input((4,))
    y = L.Lambda(lambda t: t * 2.0, name="double")(x)
    model = keras.Model(x, L.BatchNormalization(name="bn")(L.Dropout(0.5, name="drop")(y)))
    model.save(tmp_path / "lambda.keras")
    return tmp_path / "lambda.keras"


def test_lambda_model_is_refused_in_safe_mode(lambda_file, capsys):
    out_path = lambda_file.parent / "new.keras"
    code, _, err = run_cli(capsys, "rewrite", str(lambda_file), "--policy=remove", "-o", str(out_path))
    assert code == 1 and "Pass --unsafe only if you trust the file" in err
    assert not out_path.exists()


def test_lambda_model_is_rewritten_with_unsafe(lambda_file, capsys):
    out_path = lambda_file.parent / "new.keras"
    code, _, _ = run_cli(capsys, "rewrite", str(lambda_file), "--policy=remove", "--unsafe",
                         "-o", str(out_path))
    assert code == 0
    new = keras.saving.load_model(out_path, safe_mode=False)
    assert [layer.name for layer in new.layers][1:] == ["double", "bn"]
    ones = np.ones((1, 4), "float32")
    original = keras.saving.load_model(lambda_file, safe_mode=False)
    np.testing.assert_allclose(new(ones, training=False), original(ones, training=False), atol=1e-6)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--policy=remove"], "-o/--output is required"),
        (["-o", "x.keras"], "--policy is required"),
        (["--policy=remove", "--rate=0.2", "-o", "x.keras"],
         "Option(s) rate do not apply to policy 'remove'"),
        (["--policy=head", "--rate=1.5", "-o", "x.keras"], "Received: rate=1.5"),
        (["--policy=remove", "-o", "x.onnx"], "OUT must be a .keras, .h5, .hdf5 file"),
        (["--policy=remove", "-o", "no/such/folder/x.keras"], "The folder for OUT does not exist"),
    ],
)
def test_bad_arguments_are_one_line_errors(folder, capsys, monkeypatch, args, message):
    monkeypatch.chdir(folder)
    code, _, err = run_cli(capsys, "rewrite", "m.keras", *args)
    assert code == 1
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
