"""keras_vs, zoo and tuner on JAX without TensorFlow (issue 12).

Each check runs in a fresh interpreter on ``KERAS_BACKEND=jax`` with
TensorFlow, TFDS, TensorBoard and keras-hub made unimportable, so it holds
in the TensorFlow venv too: an import of one of them on a common path fails
here before it reaches a JAX user.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from keras_vs import optional

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BLOCKED = ("tensorflow", "tensorflow_datasets", "tensorboard", "keras_hub", "tf_keras")

# Prepended to every script: any import of a BLOCKED package fails as if it
# were not installed.
BLOCKER = textwrap.dedent(
    f"""
    import sys

    class _Blocker:
        blocked = {BLOCKED!r}

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in self.blocked:
                raise ModuleNotFoundError(f"No module named {{name!r}} (blocked)", name=name)
            return None

    sys.meta_path.insert(0, _Blocker())
    """
)


def _run(script, *args, timeout=240):
    pytest.importorskip("jax")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KERASTUNER_")}
    env.update(KERAS_BACKEND="jax", PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-c", BLOCKER + textwrap.dedent(script), *map(str, args)],
        env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-4000:]
    return json.loads(done.stdout.split("RESULT ")[-1])


def test_packages_commands_and_tools_run_without_tensorflow():
    result = _run(
        """
        import importlib, json, pkgutil
        import keras, numpy as np
        import keras_vs as kvs, keras_vs.commands, zoo, tuner
        from keras_vs import cli, data

        modules = ["tuner.cli", "tuner.driver", "tuner.hypermodel", "tuner.distribute",
                   "tuner.recipe"] + [
            f"keras_vs.commands.{m.name}" for m in pkgutil.iter_modules(keras_vs.commands.__path__)]
        for name in modules:
            importlib.import_module(name)
        x, y = data.load("digits", "train")
        x, y = x[:64], y[:64]
        model = zoo.get("wrn-10-1", input_shape=x.shape[1:], num_classes=10,
                        dropout=zoo.DropoutPlan(rate=0.3, position="before_bn"))
        findings = kvs.find_disharmony(model)
        fixed = kvs.rewrite(model, "head")
        shift = kvs.measure_variance_shift(model, (x, y))
        # The first BN by hand: channel-mean variance of its input (the stem
        # conv's output) against its stored moving variance.
        stem = keras.Model(model.input, model.get_layer("stem_conv").output).predict(x, verbose=0)
        real = float(np.mean(np.var(stem, axis=(0, 1, 2))))
        moving = float(np.mean(keras.ops.convert_to_numpy(
            model.get_layer("stage1_block1_bn1").moving_variance)))
        code = cli.run(["keras-vs", "theory", "--samples=2000", "--json"])
        print("RESULT", json.dumps({
            "backend": keras.backend.backend(), "findings": len(findings),
            "fixed": len(kvs.find_disharmony(fixed)), "shift": shift["stage1_block1_bn1"],
            "by_hand": max(real / moving, moving / real), "cli": code,
            "loaded": sorted(m for m in sys.modules if m.split(".")[0] in _Blocker.blocked),
        }))
        """
    )
    assert result["backend"] == "jax"
    assert result["findings"] > 0 and result["fixed"] == 0
    assert result["shift"] == pytest.approx(result["by_hand"], rel=1e-4)
    assert result["cli"] == 0
    assert result["loaded"] == []


def test_tfds_data_set_without_tensorflow_says_what_to_install():
    result = _run(
        """
        import contextlib, io, json
        from keras_vs import cli, data, optional

        try:
            data.pipeline("cifar10")
        except optional.MissingDependencyError as e:
            error = {"message": str(e), "import": isinstance(e, ImportError), "name": e.name}
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):  # the data loads before the model
            code = cli.run(["keras-vs", "measure", "missing.keras", "--data=cifar10"])
        print("RESULT", json.dumps({"error": error, "cli": code, "stderr": stderr.getvalue()}))
        """
    )
    error = result["error"]
    assert error["import"] and error["name"] == "tensorflow"
    assert "pip install tensorflow" in error["message"]
    assert "Received: name='cifar10'" in error["message"]
    assert result["cli"] != 0
    (line,) = result["stderr"].strip().splitlines()  # one line, no traceback
    assert "pip install tensorflow tensorflow-datasets" in line or "pip install tensorflow`" in line


def test_tensorboard_scalars_without_tensorflow_fail_when_asked_for():
    result = _run(
        """
        import json
        import numpy as np
        import keras_vs as kvs
        from keras_vs import optional

        kvs.VarianceShiftCallback(np.zeros((8, 4)), probe_size=8)  # no log_dir: fine
        try:
            kvs.VarianceShiftCallback(np.zeros((8, 4)), probe_size=8, log_dir="logs")
            message = None
        except optional.MissingDependencyError as e:
            message = str(e)
        print("RESULT", json.dumps({"message": message}))
        """
    )
    assert "pip install tensorflow" in result["message"]
    assert "log_dir='logs'" in result["message"]


@pytest.mark.slow
def test_tune_on_digits_without_tensorflow(tmp_path):
    result = _run(
        """
        import json, sys
        from keras_vs import cli

        code = cli.run(["keras-vs", "tune", "--model=wrn-10-1", "--max_trials=1", "--epochs=1",
                        "--take=128", f"--directory={sys.argv[1]}", "--json"])
        print("RESULT", json.dumps({"cli": code}))
        """,
        tmp_path,
        timeout=400,
    )
    assert result["cli"] == 0
    project = tmp_path / "wrn-10-1-digits-grid"
    rows = json.loads((project / "results.json").read_text())["trials"]
    assert [r["status"] for r in rows] == ["COMPLETED"]
    assert (project / "best_model.keras").stat().st_size > 0


# -- keras_vs.optional ----------------------------------------------------------


def test_require_returns_the_module():
    assert optional.require("json", "Reading JSON", "path='a.json'").__name__ == "json"


def test_require_names_the_feature_the_install_and_what_was_received(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # import fails
    with pytest.raises(optional.MissingDependencyError) as info:
        optional.require("tensorflow_datasets", "The TFDS data set 'cifar10'", "name='cifar10'")
    message = str(info.value)
    assert message.startswith("The TFDS data set 'cifar10' needs tensorflow_datasets")
    assert "`pip install tensorflow tensorflow-datasets`" in message
    assert message.endswith("Received: name='cifar10'")
    assert info.value.name == "tensorflow_datasets"


def test_missing_dependency_is_an_import_error_and_a_value_error():
    # ImportError for Python callers; ValueError so the CLIs report a bad flag.
    assert issubclass(optional.MissingDependencyError, ImportError)
    assert issubclass(optional.MissingDependencyError, ValueError)


def test_unknown_module_gets_a_pip_name_from_its_import_name(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras_hub", None)
    with pytest.raises(ImportError, match="`pip install keras-hub`"):
        optional.require("keras_hub", "Backbones", "model='vit'")


def test_available_checks_without_importing():
    assert optional.available("json")
    assert not optional.available("no_such_module_kvs")
    assert not optional.available("no_such_package_kvs.sub")
