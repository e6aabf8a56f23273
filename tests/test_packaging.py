"""The JAX install without TensorFlow: requirements-jax.txt, README and CI agree with setup.py."""

import ast
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
TF_ONLY = {"tensorflow", "tensorflow-datasets", "tensorboard"}
JAX_ADDED = {"jax", "six"}


def _name(requirement):
    return re.match(r"[A-Za-z0-9_.-]+", requirement).group(0).lower().replace("_", "-")


def _install_requires():
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "install_requires":
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no install_requires")


def _jax_requirements():
    lines = (ROOT / "requirements-jax.txt").read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]


def test_jax_requirements_are_setup_py_less_tensorflow():
    setup = {_name(r): r for r in _install_requires()}
    jax = {_name(r): r for r in _jax_requirements()}
    assert TF_ONLY <= set(setup)  # `pip install .` still brings TensorFlow
    assert set(jax) == (set(setup) - TF_ONLY) | JAX_ADDED
    for name in set(setup) - TF_ONLY:  # same version bounds
        assert jax[name] == setup[name], (jax[name], setup[name])


def _readme_jax_commands():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## JAX without TensorFlow", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section, re.S)[0].splitlines()


def test_readme_jax_install_is_the_one_ci_runs():
    install = _readme_jax_commands()[0]
    assert "pip install --no-deps ." in install and "-r requirements-jax.txt" in install
    ci = (ROOT / ".ci" / "run").read_text()
    assert install in ci.splitlines()


def test_ci_checks_tensorflow_is_absent_before_the_jax_tests():
    ci = (ROOT / ".ci" / "run").read_text()
    step = ci.split('step "JAX without TensorFlow', 1)[1].split('\nstep "', 1)[0]
    assert "find_spec" in step and "'tensorflow'" in step and "KERAS_BACKEND=jax" in step
    assert step.index("find_spec") < step.index('pytest -n auto -m "not tf_only')


@pytest.mark.parametrize("group", ["keras_vs.commands", "keras_vs.datasets"])
def test_the_installed_entry_points_are_setup_pys(group):
    # `pip install .` (CI) and `pip install -e .` write setup.py's groups into the
    # metadata the keras-vs script and keras_vs.data read; a stale install would not.
    from importlib import metadata

    from keras_vs import entry_points

    try:
        dist = metadata.distribution("keras-vs")
    except metadata.PackageNotFoundError:
        pytest.skip("keras-vs is not installed (a source tree: setup.py is read instead)")
    installed = {ep.name: ep.value for ep in dist.entry_points.select(group=group)}
    assert installed == entry_points.source_tree(group, str(ROOT)) != {}


@pytest.mark.parametrize("package", ["keras_vs", "zoo", "tuner"])
def test_the_imported_package_has_every_subpackage_of_the_source_tree(package):
    # Under CI the tests import the installed copy (pip install .): a subpackage
    # that setup.py does not ship is missing there, not in the checkout.
    import importlib

    installed = pathlib.Path(importlib.import_module(package).__file__).parent
    source = ROOT / package
    subpackages = sorted(p.parent.relative_to(source) for p in source.rglob("__init__.py"))
    assert len(subpackages) >= 1
    missing = [str(s) for s in subpackages if not (installed / s / "__init__.py").is_file()]
    assert not missing, f"{package} at {installed} lacks {missing}"
