"""A Uout's noise is its beta: analyze and rewrite say so, and an output with Uout layers says how to load it."""

import json
import subprocess
import sys

import keras
import pytest

import keras_vs as kvs

L = keras.layers


@pytest.fixture
def uout_file(tmp_path):
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    h = L.Conv2D(4, 3, padding="same", name="conv")(inputs)
    h = L.BatchNormalization(name="bn")(kvs.Uout(0.3, name="u")(h))
    model = keras.Model(inputs, L.Dense(10, name="logits")(L.GlobalAveragePooling2D()(h)))
    model.save(tmp_path / "u.keras")
    return tmp_path / "u.keras"


def test_analyze_names_a_uouts_beta(uout_file, keras_vs_cli):
    code, out, _ = keras_vs_cli("analyze", uout_file)
    assert code == 0
    (row,) = [line for line in out.splitlines() if "u -> bn" in line]
    assert "beta=0.3" in row.split()


def test_analyze_json_names_the_parameter(uout_file, keras_vs_cli):
    code, out, _ = keras_vs_cli("analyze", uout_file, "--json")
    (finding,) = json.loads(out)["findings"]
    assert code == 0 and (finding["parameter"], finding["rate"]) == ("beta", pytest.approx(0.3))


def test_after_bn_beta_sets_the_moved_uouts_beta(uout_file, keras_vs_cli):
    out_path = uout_file.parent / "o.keras"
    code, out, err = keras_vs_cli("rewrite", uout_file, "--policy=after_bn", "--beta=0.2", "-o", out_path)
    assert code == 0, err
    assert "(beta=0.2)" in out and "rate=" not in out
    moved = kvs.rewrite(keras.saving.load_model(uout_file), "after_bn", beta=0.2).get_layer("bn_dropout")
    assert isinstance(moved, kvs.Uout) and moved.beta == pytest.approx(0.2)


def test_after_bn_rate_leaves_a_uouts_beta_alone(uout_file):
    new = kvs.rewrite(keras.saving.load_model(uout_file), "after_bn", rate=0.2)
    assert new.get_layer("bn_dropout").beta == pytest.approx(0.3)


def test_head_names_the_removed_uouts_beta(uout_file, keras_vs_cli):
    code, out, _ = keras_vs_cli("rewrite", uout_file, "--policy=head", "--dry_run")
    assert code == 0
    assert "remove  u (beta=0.3)" in out and "insert  'head_dropout' before logits (beta=0.3)" in out


def test_output_with_uout_layers_says_how_to_load_it(uout_file, keras_vs_cli):
    out_path = uout_file.parent / "o.keras"
    code, out, _ = keras_vs_cli("rewrite", uout_file, "--policy=after_bn", "-o", out_path)
    (note,) = [line for line in out.splitlines() if line.startswith("note:")]
    assert code == 0 and "import keras_vs" in note
    snippet = note.split("which registers them: ", 1)[1]
    loaded = subprocess.run([sys.executable, "-c", snippet + "; print(type(model).__name__)"],
                            capture_output=True, text=True, timeout=120)
    assert loaded.returncode == 0 and loaded.stdout.strip() == "Functional", loaded.stderr[-500:]


def test_output_without_keras_vs_layers_has_no_load_note(tmp_path, keras_vs_cli):
    inputs = keras.Input((4,))
    h = L.BatchNormalization(name="bn")(L.Dropout(0.5, name="drop")(L.Dense(4)(inputs)))
    keras.Model(inputs, L.Dense(2)(h)).save(tmp_path / "m.keras")
    code, out, _ = keras_vs_cli("rewrite", tmp_path / "m.keras", "--policy=remove", "-o", tmp_path / "o.keras")
    assert code == 0 and not any(line.startswith("note:") for line in out.splitlines())
