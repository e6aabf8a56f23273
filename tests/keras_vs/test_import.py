"""`import keras_vs`: public names load on first use, Uout is registered whenever Keras loads."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import keras_vs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _python(code, timeout=180):
    """Runs `code` in a fresh interpreter on the checkout; returns what it printed as JSON."""
    env = {**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                            text=True, timeout=timeout, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def uout_file(tmp_path_factory):
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras_vs.Uout(0.1, name="u")])
    path = tmp_path_factory.mktemp("uout") / "uout.keras"
    model.save(path)
    return str(path), model.predict(np.ones((1, 3), "float32"), verbose=0).tolist()


def test_import_keras_vs_imports_no_backend():
    loaded = _python("""
        import json, sys
        import keras_vs
        print(json.dumps(sorted(m for m in sys.modules
                                if m.split(".")[0] in ("keras", "tensorflow", "jax", "torch"))))
    """)
    assert loaded == []


_ORDERS = {
    "keras_vs first": "import keras_vs\nimport keras",
    "keras first": "import keras\nimport keras_vs",
    # keras-vs' CLI asks whether Keras is there before it imports it.
    "keras probed first": "import importlib.util, keras_vs\nimportlib.util.find_spec('keras')\nimport keras",
    "keras.saving first": "import keras_vs\nimport keras.saving",
}


@pytest.mark.parametrize("order", list(_ORDERS))
def test_a_model_with_uout_loads_after_import_keras_vs(uout_file, order):
    path, expected = uout_file
    imports = _ORDERS[order]
    out = _python(imports + f"""
import json, sys
import numpy as np
from keras_vs import _keras_import
model = keras.saving.load_model({path!r})
print(json.dumps({{
    "layer": type(model.get_layer("u")).__name__,
    "y": model.predict(np.ones((1, 3), "float32"), verbose=0).tolist(),
    "finders_left": [type(f).__name__ for f in sys.meta_path if isinstance(f, _keras_import._Finder)],
    "loader": type(keras.__spec__.loader).__name__ == type(keras.__loader__).__name__ != "_Loader",
}}))
""")
    assert out["layer"] == "Uout" and out["finders_left"] == [] and out["loader"]
    np.testing.assert_allclose(out["y"], expected, rtol=1e-6)


def test_the_command_line_loads_a_model_with_uout(uout_file):
    # The CLI imports keras_vs without Keras, probes for Keras, then imports it.
    env = {**os.environ, "PYTHONPATH": ROOT}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the CLI's quiet start-up path (find_spec, then import)
    result = subprocess.run([sys.executable, "-m", "keras_vs.cli", "analyze", uout_file[0], "--json"],
                            capture_output=True, text=True, timeout=180, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Could not locate class" not in result.stderr


def test_public_names_load_on_first_use_and_keep_their_meaning():
    out = _python("""
        import json, warnings
        import keras_vs as kvs
        import keras_vs.rewrite, keras_vs.doctor  # the submodules share the functions' names
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            resolved = [getattr(kvs, n) for n in kvs.__all__]  # from their homes, none deprecated
        try:
            kvs.no_such_name
            missing = "no error"
        except AttributeError as e:
            missing = str(e)
        print(json.dumps({
            "rewrite": kvs.rewrite.__module__ + "." + kvs.rewrite.__name__,
            "doctor": kvs.doctor.__module__ + "." + kvs.doctor.__name__,
            "theory": kvs.theory.__name__,
            "shift": round(kvs.theory.dropout_shift(0.5), 3),
            "dir": [n for n in kvs.__all__ if n not in dir(kvs)],
            "all": [n for n, v in zip(kvs.__all__, resolved) if v is None],
            "deprecated": [str(w.message) for w in caught if "keras_vs" in str(w.message)],
            "missing": missing,
        }))
    """)
    assert out["rewrite"] == "keras_vs.rewrite.rewrite" and out["doctor"] == "keras_vs.doctor.doctor"
    assert out["theory"] == "keras_vs.theory" and out["shift"] == 0.5
    assert out["dir"] == [] and out["all"] == [] and out["deprecated"] == []
    assert out["missing"] == "module 'keras_vs' has no attribute 'no_such_name'"


def test_every_public_name_is_listed_and_resolves():
    assert set(keras_vs.__all__) <= set(dir(keras_vs))
    for name in keras_vs.__all__:
        assert getattr(keras_vs, name) is not None, name
    assert keras_vs.layers.Uout is keras_vs.Uout


def test_a_failing_registration_warns_and_keras_still_imports():
    out = _python("""
        import json, warnings
        from keras_vs import _keras_import

        def broken():
            raise OSError("disk gone")

        _keras_import.after_keras(broken)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            import keras
        print(json.dumps({"keras": keras.__name__,
                          "warnings": [str(w.message) for w in caught if w.category is RuntimeWarning]}))
    """)
    assert out["keras"] == "keras"
    assert any("could not register its layers with Keras (OSError: disk gone)" in w for w in out["warnings"])
