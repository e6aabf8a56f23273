"""tuner.identity: fingerprints of a user's model and of a search's arrays."""

import keras
import numpy as np

from tuner import identity


def _model(units=4, seed=0):
    keras.utils.set_random_seed(seed)
    x = keras.Input((3,))
    return keras.Model(x, keras.layers.Dense(units, name="fc")(x), name="mine")


def test_a_model_and_its_saved_copy_have_one_identity(tmp_path):
    model = _model()
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert identity.model_identity(loaded) == identity.model_identity(model)


def test_a_rebuild_whose_layers_keras_named_anew_is_the_same_model():
    def build():
        keras.utils.set_random_seed(0)
        x = keras.Input((3,))
        return keras.Model(x, keras.layers.Dense(2)(keras.layers.Dense(4)(x)), name="mine")

    first, second = build(), build()
    assert [l.name for l in first.layers] != [l.name for l in second.layers]  # dense vs dense_2
    assert identity.model_identity(first) == identity.model_identity(second)


def test_other_weights_change_only_the_weights_fingerprint():
    a, b = identity.model_identity(_model(seed=0)), identity.model_identity(_model(seed=1))
    assert a["architecture"] == b["architecture"] and a["weights"] != b["weights"]


def test_another_architecture_of_the_same_name_changes_the_architecture():
    a, b = identity.model_identity(_model(units=4)), identity.model_identity(_model(units=5))
    assert (a["name"], a["architecture"] != b["architecture"]) == ("mine", True)


def test_one_changed_value_changes_the_data_fingerprint():
    x, y = np.zeros((4, 2), "float32"), np.zeros(4, "int64")
    changed = x.copy()
    changed[3, 1] = 1.0
    first = identity.data_identity(((x, y), (x, y)))
    assert first["shapes"] == [[4, 2], [4], [4, 2], [4]]
    assert identity.data_identity(((changed, y), (x, y)))["sha256"] != first["sha256"]
