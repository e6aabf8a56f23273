"""The EXPERIMENTS table lists exactly the experiment scripts, and each runs as one."""

import importlib
import pathlib
import pkgutil
import subprocess
import sys

import pytest

import experiments

ROOT = pathlib.Path(experiments.__file__).resolve().parents[1]


def _module(name):
    return importlib.import_module(f"experiments.{name}")


def test_the_table_lists_exactly_the_modules_with_a_main():
    modules = [m.name for m in pkgutil.iter_modules(experiments.__path__)]
    scripts = {name for name in modules if callable(getattr(_module(name), "main", None))}
    assert scripts == set(experiments.EXPERIMENTS)


@pytest.mark.parametrize("name", sorted(experiments.EXPERIMENTS))
def test_every_script_defines_flags_run_and_main(name):
    module = _module(name)
    assert callable(module.define_flags) and callable(module.run) and callable(module.main)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(experiments.EXPERIMENTS))
def test_every_script_runs_with_python_m_and_parses_its_flags(name):
    # A positional argument is refused after the flags are parsed and before
    # any work: the script's own flags and `common.run_script` are in place.
    result = subprocess.run(
        [sys.executable, "-m", f"experiments.{name}", "--out=unused", "extra"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 1
    assert "Unexpected arguments. Received: ['extra']" in result.stderr
    assert not (ROOT / "unused").exists()
