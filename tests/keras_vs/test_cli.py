"""The `keras-vs` launcher: discovery, help, versions, error format, and `theory`."""

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest
from absl import flags

from keras_vs import cli, entry_points

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(os.path.dirname(sys.executable), "keras-vs")
# Makes every import of these packages fail, as on a machine without them.
BLOCK_IMPORTS = textwrap.dedent(
    """
    import sys

    BLOCKED = ("tensorflow", "keras", "tf_keras", "jax", "torch", "keras_tuner")

    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"blocked by the test: {name}")
            return None

    sys.meta_path.insert(0, _Block())
    """
)


def _script(*args, env=None, timeout=120):
    if not os.path.exists(SCRIPT):
        pytest.skip("needs the installed keras-vs console script (pip install .)")
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def without_keras(tmp_path):
    """An environment whose Python cannot import TensorFlow, Keras, JAX, torch or keras-tuner."""
    (tmp_path / "sitecustomize.py").write_text(BLOCK_IMPORTS)
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), ROOT])}
    check = subprocess.run([sys.executable, "-c", "import keras"], capture_output=True, text=True,
                           env={**os.environ, **env}, timeout=60)
    assert check.returncode != 0 and "blocked by the test" in check.stderr  # the shim works
    return env


def test_help_needs_neither_tensorflow_nor_keras(without_keras):
    result = _script("--help", env=without_keras)
    assert result.returncode == 0, result.stderr
    listed = re.findall(r"^  (\S+) +(.+)$", result.stdout, re.M)
    names = [name for name, _ in listed]
    assert names == ["analyze", "doctor", "measure", "recalibrate", "rewrite", "theory", "tune"]
    assert not any("unavailable" in summary for _, summary in listed)
    assert "TensorFlow binary is optimized" not in result.stderr and result.stderr == ""


@pytest.mark.parametrize("command", ["analyze", "measure", "recalibrate", "rewrite", "theory", "tune"])
def test_command_help_needs_neither_tensorflow_nor_keras(without_keras, command):
    result = _script(command, "--help", env=without_keras)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: keras-vs {command} ")


def test_version_needs_no_keras(without_keras):
    from keras_vs import __version__

    result = _script("--version", env=without_keras)
    assert result.returncode == 0 and result.stdout.strip() == f"keras-vs {__version__}"


def test_no_command_prints_usage_and_exits_2(keras_vs_cli):
    code, out, err = keras_vs_cli()
    assert code == 2 and out == "" and err.startswith("usage: keras-vs COMMAND")


def test_unknown_command_is_one_line_naming_the_commands(keras_vs_cli):
    code, out, err = keras_vs_cli("frobnicate")
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith("keras-vs: error: unknown command 'frobnicate'.")
    for name in ("analyze", "recalibrate", "tune"):
        assert name in line


def test_commands_come_from_the_plugin_and_the_entry_point_group():
    targets = cli.command_targets()
    assert targets["tune"] == "tuner.cli:COMMAND"
    assert targets["analyze"].startswith("keras_vs.commands.")
    assert set(cli.commands()) == set(targets)


def test_source_tree_declares_the_group_in_setup_py():
    # Without installed metadata the launcher reads the group from setup.py
    # (read from the checkout: an installed package has no setup.py beside it).
    assert entry_points.source_tree(cli.GROUP, ROOT) == {"tune": "tuner.cli:COMMAND"}


def test_an_installed_package_without_setup_py_reads_no_source_tree(tmp_path):
    assert entry_points.source_tree(cli.GROUP, str(tmp_path)) == {}


def test_plugin_modules_do_not_import_the_tuner_or_the_zoo():
    code = "import sys, keras_vs.cli, keras_vs.commands.analyze; " \
           "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tuner', 'zoo')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_command_help_is_absl_style(keras_vs_cli):
    code, out, _ = keras_vs_cli("rewrite", "--help")
    assert code == 0
    assert "(default: '')" not in out
    assert "  --[no]json: " in out and "  --[no]dry_run: " in out and "  -o,--output: " in out
    block = out.split("  --policy: ", 1)[1].split("\n  -", 1)[0]
    assert "<after_bn|head|uout|remove>" in block and "(default:" not in block  # no default


def test_every_flag_of_every_command_is_in_its_help(keras_vs_cli):
    for name, cmd in cli.commands().items():
        code, out, _ = keras_vs_cli(name, "--help")
        assert code == 0
        fv = cmd.flag_values()
        for flag_name in {fv[n].name for n in fv}:
            prefix = "--[no]" if fv[flag_name].boolean else "--"
            assert f"{prefix}{flag_name}:" in out, (name, flag_name)


@pytest.mark.parametrize(
    "args, received",
    [
        (["theory", "--samples=5"], "--samples=5"),
        (["theory", "--samples=many"], "--samples=many"),
        (["rewrite", "m.keras", "--policy=sideways"], "--policy=sideways"),
        (["theory", "--json=3"], "--json=3"),
    ],
)
def test_bad_flag_values_use_the_one_error_format(keras_vs_cli, args, received):
    code, out, err = keras_vs_cli(*args)
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert line.startswith(f"keras-vs {args[0]}: error: ") and received in line
    assert "FATAL" not in err and "Traceback" not in err


def test_flag_of_another_command_is_rejected(keras_vs_cli):
    code, _, err = keras_vs_cli("theory", "--policy=remove")
    assert code == 2
    (line,) = err.strip().splitlines()
    assert line.startswith("keras-vs theory: error: Unknown command line flag 'policy'")
    assert "keras-vs theory --help" in line


def test_flags_are_not_defined_globally(keras_vs_cli):
    keras_vs_cli("theory", "--help")
    assert "rates" not in flags.FLAGS and "policy" not in flags.FLAGS


def test_bad_list_value_is_a_one_line_error(keras_vs_cli):
    code, _, err = keras_vs_cli("theory", "--rates=0.1,abc")
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [
        "keras-vs theory: error: --rates expects a comma-separated list of numbers. "
        "Received: --rates=0.1,abc"
    ]


def test_out_of_range_rate_is_echoed(keras_vs_cli):
    code, _, err = keras_vs_cli("theory", "--rates=1.5")
    assert code == 2 and "Received: rate=[1.5]" in err


def test_theory_json_reports_agreement_on_real_layers(keras_vs_cli):
    code, out, err = keras_vs_cli("theory", "--json", "--samples=20000", "--rates=0.5", "--betas=0.3")
    assert code == 0, err
    rows = json.loads(out)
    assert [r["layers"] for r in rows] == ["Dropout", "Uout", "Dropout->Dense(d=16)"]
    for row in rows:
        assert abs(row["relative_error"]) < 0.03, row


def test_theory_table_names_backend_and_layers(keras_vs_cli):
    code, out, err = keras_vs_cli("theory", "--samples=5000", "--rates=0.3", "--betas=0.1")
    assert code == 0, err
    assert "backend " in out and "Uout" in out and "rate=0.3" in out


@pytest.mark.slow  # a fresh interpreter imports TensorFlow
def test_console_script_runs_a_command():
    result = _script("theory", "--json", "--samples=2000", "--rates=0.5", "--betas=0.1",
                     env={"TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr
    assert [r["layers"] for r in json.loads(result.stdout)][0] == "Dropout"


def test_bazel_binary_depends_on_every_package_that_provides_a_command():
    build = open(os.path.join(ROOT, "BUILD")).read()
    rule = re.search(r'py_binary\(\s*name = "keras-vs",(.*?)\n\)', build, re.S).group(1)
    deps = set(re.findall(r'":([\w-]+)"', re.search(r"deps = \[(.*?)\]", rule, re.S).group(1)))
    providers = {target.split(".")[0] for target in cli.command_targets().values()}
    assert providers <= deps, (providers, deps)
    assert '"setup.py"' in re.search(r"data = \[(.*?)\]", rule, re.S).group(1)  # the entry points


def _pair_model(path):
    import keras

    L = keras.layers
    inputs = keras.Input((8, 8, 1))
    h = L.BatchNormalization(name="bn")(L.Dropout(0.5, name="drop")(L.Conv2D(4, 3, name="conv")(inputs)))
    keras.Model(inputs, L.Dense(10)(L.GlobalAveragePooling2D()(h))).save(path)
    return path


@pytest.mark.slow  # a fresh interpreter imports TensorFlow
@pytest.mark.tf_only
def test_tensorflow_start_up_logs_stay_off_the_output(tmp_path):
    path = _pair_model(tmp_path / "m.keras")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(KERAS_BACKEND="tensorflow", PYTHONPATH=ROOT)
    result = subprocess.run([sys.executable, "-m", "keras_vs.cli", "analyze", str(path)],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    noise = [line for line in (result.stdout + result.stderr).splitlines()
             if re.search(r"cuInit|oneDNN|absl::InitializeLog|cudart_stub", line)]
    assert noise == [] and "drop -> bn" in result.stdout


@pytest.mark.slow  # a fresh interpreter imports TensorFlow
@pytest.mark.tf_only
def test_a_users_tf_cpp_min_log_level_wins(tmp_path):
    path = _pair_model(tmp_path / "m.keras")
    env = {**os.environ, "KERAS_BACKEND": "tensorflow", "PYTHONPATH": ROOT, "TF_CPP_MIN_LOG_LEVEL": "0"}
    result = subprocess.run([sys.executable, "-m", "keras_vs.cli", "analyze", str(path)],
                            capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    # TensorFlow's own lines, as the user asked; imported once: one banner per native library (2).
    assert result.stderr.count("absl::InitializeLog") == 2, result.stderr
