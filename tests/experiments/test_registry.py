"""The EXPERIMENTS table drives the scripts, their docs and these tests."""

import importlib
import pathlib

import pytest

import experiments

ROOT = pathlib.Path(experiments.__file__).parent


def test_every_script_is_in_the_table():
    scripts = {p.stem for p in ROOT.glob("*.py")} - {"__init__", "common"}
    assert scripts == set(experiments.EXPERIMENTS)


@pytest.mark.parametrize("name", sorted(experiments.EXPERIMENTS))
def test_script_documents_its_command_and_runs_from_main(name):
    module = importlib.import_module(f"experiments.{name}")
    assert f"python -m experiments.{name}" in module.__doc__
    assert callable(module.main) and callable(module.run)


@pytest.mark.parametrize("name", sorted(experiments.EXPERIMENTS))
def test_results_md_shows_each_experiment(name):
    results = (ROOT.parent / "RESULTS.md").read_text()
    assert f"python -m experiments.{name}" in results
