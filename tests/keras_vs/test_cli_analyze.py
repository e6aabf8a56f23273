"""The `keras-vs analyze MODEL` command, and the model loading it shares with
`rewrite` and `measure` (safe mode, one-line errors)."""

import json
import zipfile

import h5py
import keras
import numpy as np
import pytest
from absl import flags
from keras import layers as L

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


def _model():
    x = L.Input((6, 6, 2), name="x")
    y = L.Conv2D(3, 3, name="conv")(x)
    y = L.Dropout(0.4, name="drop")(y)
    y = L.BatchNormalization(name="bn")(y)
    y = L.GlobalAveragePooling2D(name="gap")(y)
    y = L.Dropout(0.2, name="d2")(y)
    y = L.Dense(4, name="fc")(y)
    y = L.BatchNormalization(name="bn2")(y)
    return keras.Model(x, L.Dense(2, name="out")(y), name="small")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("analyze")
    model = _model()
    model.save(folder / "m.keras")
    model.save(folder / "m.h5")
    x = L.Input((4,))
    clean = keras.Model(x, L.Dense(2)(L.Dropout(0.5)(L.BatchNormalization()(x))))
    clean.save(folder / "clean.keras")
    y = L.Lambda(lambda t: t * 2.0, name="double")(x)
    lam = keras.Model(x, L.BatchNormalization(name="bn")(L.Dropout(0.5, name="drop")(y)))
    lam.save(folder / "lambda.keras")
    return folder


def test_table_lists_each_pair_with_kind_rate_and_path(files, capsys):
    code, out, _ = run_cli(capsys, "analyze", str(files / "m.keras"))
    assert code == 0
    rows = [line.split(None, 5) for line in out.splitlines()]
    assert ["1", "drop", "bn", "direct", "0.4", "drop -> bn"] in rows
    assert ["2", "d2", "bn2", "through_linear", "0.2", "d2 -> fc -> bn2"] in rows
    assert "2 dropout -> BN pair(s)" in out and "1 direct" in out


def test_json_parses_and_matches_find_disharmony(files, capsys):
    code, out, _ = run_cli(capsys, "analyze", "--json", str(files / "m.keras"))
    assert code == 0
    report = json.loads(out)
    assert report["model"] == str(files / "m.keras")
    assert report["findings"] == [
        {"dropout": "drop", "bn": "bn", "kind": "direct", "rate": 0.4, "path": ["drop", "bn"]},
        {"dropout": "d2", "bn": "bn2", "kind": "through_linear", "rate": 0.2,
         "path": ["d2", "fc", "bn2"]},
    ]


def test_legacy_h5_file_gives_the_same_findings(files, capsys):
    _, from_keras, _ = run_cli(capsys, "analyze", "--json", str(files / "m.keras"))
    code, from_h5, _ = run_cli(capsys, "analyze", "--json", str(files / "m.h5"))
    assert code == 0
    assert json.loads(from_h5)["findings"] == json.loads(from_keras)["findings"]


def test_model_without_disharmony_says_so(files, capsys):
    code, out, _ = run_cli(capsys, "analyze", str(files / "clean.keras"))
    assert code == 0
    assert "No disharmony" in out and "no dropout feeds a BatchNormalization" in out


def test_model_without_disharmony_json_is_empty(files, capsys):
    code, out, _ = run_cli(capsys, "analyze", "--json", str(files / "clean.keras"))
    assert code == 0 and json.loads(out)["findings"] == []


def test_lambda_model_is_refused_in_safe_mode(files, capsys):
    code, out, err = run_cli(capsys, "analyze", str(files / "lambda.keras"))
    assert code == 1 and out == ""
    assert err.strip().splitlines() == [
        "keras-vs analyze: error: The model contains a Lambda layer (stored Python code); "
        "refusing to load it in safe mode. Pass --unsafe only if you trust the file. "
        f"Received: MODEL={str(files / 'lambda.keras')!r}"
    ]


def test_lambda_model_loads_with_unsafe(files, capsys):
    code, out, _ = run_cli(capsys, "analyze", "--unsafe", "--json", str(files / "lambda.keras"))
    assert code == 0
    assert [(f["dropout"], f["bn"]) for f in json.loads(out)["findings"]] == [("drop", "bn")]


def _bad_files(folder):
    (folder / "text.keras").write_text("not a model")
    with zipfile.ZipFile(folder / "nozip_config.keras", "w") as z:
        z.writestr("metadata.json", "{}")  # a zip, but no model config inside
    with h5py.File(folder / "weights_only.h5", "w") as f:
        f.create_dataset("w", data=np.zeros(3))
    good = (folder / "m.keras").read_bytes()
    (folder / "truncated.keras").write_bytes(good[: len(good) // 2])
    (folder / "model.txt").write_text("x")


@pytest.mark.parametrize(
    "name, message",
    [
        ("missing.keras", "No such model file. Received: MODEL="),
        ("text.keras", "Not a Keras model file (a .keras file is a zip archive). Received: MODEL="),
        ("truncated.keras", "Not a Keras model file"),
        ("nozip_config.keras", "Could not load"),
        ("weights_only.h5", "Could not load"),
        ("model.txt", "MODEL must be a .keras, .h5, .hdf5 file. Received: MODEL="),
        (".", "MODEL is a folder"),
    ],
)
def test_bad_model_file_is_one_line_error(files, capsys, name, message):
    _bad_files(files)
    code, out, err = run_cli(capsys, "analyze", str(files / name))
    assert code == 1 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith("keras-vs analyze: error: ") and message in line


def test_analyze_needs_exactly_one_model(capsys):
    code, _, err = run_cli(capsys, "analyze")
    assert code == 1 and "takes one MODEL path" in err
