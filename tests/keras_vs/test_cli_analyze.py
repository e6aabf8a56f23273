"""The `keras-vs analyze MODEL` command, and the model loading it shares with
`rewrite` and `measure` (safe mode, one-line errors)."""

import json
import zipfile

import h5py
import keras
import numpy as np
import pytest
from keras import layers as L

from keras_vs import cli


@pytest.fixture
def run_cli(keras_vs_cli, files, unchanged_files):
    """``keras-vs ARGS``; every model file of the folder must be left byte for byte as it was."""
    unchanged_files(*(p for p in files.iterdir() if p.is_file()))
    return keras_vs_cli


def _model():
    x = L.Input((6, 6, 2), name="x")
    y = L.Conv2D(3, 3, name="conv")(x)
    y = L.Dropout(0.4, name="drop")(y)
    y = L.BatchNormalization(name="bn")(y)
    y = L.GlobalAveragePooling2D(name="gap")(y)
    y = L.Dropout(0.2, name="d2")(y)
    y = L.Dense(4, name="fc")(y)
    y = L.BatchNormalization(name="bn2")(y)
    model = keras.Model(x, L.Dense(2, name="out")(y), name="small")
    # All-ones kernel: cos²θ = 1, so d·cos²θ = d = 3 (the GAP's channels).
    model.get_layer("fc").kernel.assign(np.ones((3, 4), "float32"))
    return model


# The paper's closed forms by hand, in measure's units (Var_train / Var_test),
# zero-mean unit-variance inputs, p = 1 - rate:
DIRECT = 1 / 0.6  # case (a): 1/p
THROUGH = (1 / 0.8 + 0.3 * (3 - 1)) / (1 + 0.3 * (3 - 1))  # case (b), d·cos²θ = 3, rho = 0.3


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
    seq = L.Input((5, 3))
    lstm = L.LSTM(4, dropout=0.2, recurrent_dropout=0.3, name="lstm")(seq)
    keras.Model(seq, L.BatchNormalization(name="bn")(lstm)).save(folder / "lstm.keras")
    return folder


def _sections(out):
    """{section title: [row cells]} of the analyze table."""
    sections, current, columns = {}, None, 0
    for line in out.splitlines():
        if line.startswith("  ") and not line.startswith("    ") and line.rstrip().endswith(":"):
            current = sections.setdefault(line.strip()[:-1], [])
        elif current is not None and line.split()[:1] == ["#"]:
            columns = len(line.split())  # the last column, the path, has spaces
        elif current is not None and line.startswith("    ") and line.split()[0].isdigit():
            current.append(line.split(None, columns - 1))
    return sections


def test_direct_pairs_are_listed_apart_from_pairs_through_a_layer(files, run_cli):
    code, out, _ = run_cli("analyze", str(files / "m.keras"))
    assert code == 0
    sections = _sections(out)
    (direct_title,) = [t for t in sections if t.startswith("direct")]
    (linear_title,) = [t for t in sections if t.startswith("through a conv/dense layer")]
    (direct,) = sections[direct_title]
    (linear,) = sections[linear_title]
    assert direct[:4] == ["1", "drop", "bn", "0.4"] and direct[-1] == "drop -> bn"
    assert linear[:4] == ["2", "d2", "bn2", "0.2"] and linear[-1] == "d2 -> fc -> bn2"
    assert "2 dropout -> BN pair(s)" in out and "1 direct, 1 through_linear" in out


def test_each_pair_shows_the_shift_the_theory_predicts(files, run_cli):
    code, out, _ = run_cli("analyze", str(files / "m.keras"))
    assert code == 0
    header = next(line.split() for line in out.splitlines() if line.split()[:2] == ["#", "dropout"])
    assert "predicted" in header
    sections = _sections(out)
    (direct,) = next(v for k, v in sections.items() if k.startswith("direct"))
    (linear,) = next(v for k, v in sections.items() if k.startswith("through"))
    assert float(direct[4]) == pytest.approx(DIRECT, abs=1e-3)
    assert float(linear[4]) == pytest.approx(3.0, abs=1e-2)  # the d·cos²θ column
    assert float(linear[5]) == pytest.approx(THROUGH, abs=1e-3)
    assert "recalibrate" in out and "rewrite" in out  # both fixes are offered


def test_rho_flag_changes_only_the_through_linear_prediction(files, run_cli):
    code, out, _ = run_cli("analyze", "--json", "--rho=0", str(files / "m.keras"))
    assert code == 0
    direct, linear = json.loads(out)["findings"]
    assert direct["predicted_shift"] == pytest.approx(DIRECT, abs=1e-6)
    assert linear["predicted_shift"] == pytest.approx(1 / 0.8, abs=1e-6)  # rho 0: case (a)


def test_json_parses_and_matches_find_disharmony(files, run_cli):
    code, out, _ = run_cli("analyze", "--json", str(files / "m.keras"))
    assert code == 0
    report = json.loads(out)
    assert report["model"] == str(files / "m.keras")
    assert [{k: f[k] for k in ("dropout", "bn", "kind", "rate", "path")} for f in report["findings"]] == [
        {"dropout": "drop", "bn": "bn", "kind": "direct", "rate": 0.4, "path": ["drop", "bn"]},
        {"dropout": "d2", "bn": "bn2", "kind": "through_linear", "rate": 0.2,
         "path": ["d2", "fc", "bn2"]},
    ]
    assert report["findings"][1]["predicted_shift"] == pytest.approx(THROUGH, abs=1e-6)
    assert report["findings"][1]["d_cos2"] == pytest.approx(3.0, abs=1e-6)


def test_recurrent_layers_have_a_section_with_both_rates(files, run_cli):
    code, out, _ = run_cli("analyze", str(files / "lstm.keras"))
    assert code == 0
    sections = _sections(out)
    (title,) = [t for t in sections if t.startswith("inside a recurrent layer")]
    assert sections[title] == [["1", "lstm", "bn", "0.2", "0.3", "lstm -> bn"]]
    assert "1 recurrent" in out and "every rewrite policy keeps them" in out


def test_recurrent_json_has_the_recurrent_dropout(files, run_cli):
    code, out, _ = run_cli("analyze", "--json", str(files / "lstm.keras"))
    assert code == 0
    (finding,) = json.loads(out)["findings"]
    assert (finding["kind"], finding["rate"], finding["recurrent_dropout"]) == ("recurrent", 0.2, 0.3)
    assert finding["predicted_shift"] is None


def test_legacy_h5_file_gives_the_same_findings(files, run_cli):
    _, from_keras, _ = run_cli("analyze", "--json", str(files / "m.keras"))
    code, from_h5, _ = run_cli("analyze", "--json", str(files / "m.h5"))
    assert code == 0
    assert json.loads(from_h5)["findings"] == json.loads(from_keras)["findings"]


def test_model_without_disharmony_says_so(files, run_cli):
    code, out, _ = run_cli("analyze", str(files / "clean.keras"))
    assert code == 0
    assert "No disharmony" in out and "no dropout feeds a BatchNormalization" in out


def test_model_without_disharmony_json_is_empty(files, run_cli):
    code, out, _ = run_cli("analyze", "--json", str(files / "clean.keras"))
    assert code == 0 and json.loads(out)["findings"] == []


def test_lambda_model_is_refused_in_safe_mode(files, run_cli):
    code, out, err = run_cli("analyze", str(files / "lambda.keras"))
    assert code == 1 and out == ""
    assert err.strip().splitlines() == [
        "keras-vs analyze: error: The model contains a Lambda layer (stored Python code); "
        "refusing to load it in safe mode. Pass --unsafe only if you trust the file. "
        f"Received: MODEL={str(files / 'lambda.keras')!r}"
    ]


def test_lambda_model_loads_with_unsafe(files, run_cli):
    code, out, _ = run_cli("analyze", "--unsafe", "--json", str(files / "lambda.keras"))
    assert code == 0
    assert [(f["dropout"], f["bn"]) for f in json.loads(out)["findings"]] == [("drop", "bn")]


def _bad_files(folder):
    if (folder / "model.txt").exists():  # written once: zip and HDF5 files hold timestamps
        return
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
def test_bad_model_file_is_one_line_error(files, run_cli, name, message):
    _bad_files(files)
    code, out, err = run_cli("analyze", str(files / name))
    assert code == 1 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith("keras-vs analyze: error: ") and message in line


def test_analyze_needs_exactly_one_model(run_cli):
    code, _, err = run_cli("analyze")
    assert code == 2 and "takes one MODEL path" in err
