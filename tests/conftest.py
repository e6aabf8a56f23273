"""Shared test set-up: quiet TensorFlow, backend-dependent skips, hypothesis profiles."""

import os
import re

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# JAX runs Keras' eager code op by op and compiles every (op, shape) it meets:
# ~0.1 s each on a 2-core CPU, ~30 s for one MobileNet built and called once.
# A persistent compilation cache shares those programs between xdist workers,
# test steps and the subprocesses tests start (they inherit the environment);
# the cache is keyed by program and JAX version, so it never changes a result.
# `.ci/run` starts with it empty, so CI times are cold-start times.
_JAX_CACHE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), ".jax-cache")
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _JAX_CACHE)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
# LLVM's optimisation level is most of each XLA CPU compile: level 0 builds a
# MobileNet on JAX in 30 s instead of 47 s. XLA CPU keeps strict IEEE
# semantics at every level (no fast-math), so eager outputs are bit-identical
# (checked on MobileNetV3Small); only test runs compile this way.
_XLA_FAST_COMPILE = "--xla_backend_optimization_level=0"
if _XLA_FAST_COMPILE not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {_XLA_FAST_COMPILE}".strip()

import keras  # noqa: E402
import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# Keras ops are slow next to plain Python: no per-example deadline, and a
# smaller example budget by default; CI and nightly runs can ask for more.
settings.register_profile(
    "default",
    deadline=None,
    max_examples=30,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "ci", deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def pytest_collection_modifyitems(config, items):
    # `@pytest.mark.requires("keras_hub", ...)`: skipped where a module is
    # missing (e.g. the JAX venv without TensorFlow). Whole test modules use
    # `pytest.importorskip` instead.
    from keras_vs import optional

    for item in items:
        for marker in item.iter_markers("requires"):
            missing = [m for m in marker.args if not optional.available(m)]
            if missing:
                item.add_marker(pytest.mark.skip(reason=f"needs {', '.join(missing)} (not installed)"))
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return
    reason = f"needs the TensorFlow backend; KERAS_BACKEND is {backend!r}"
    for item in items:
        if "tf_only" in item.keywords:
            item.add_marker(pytest.mark.skip(reason=reason))



# The corpus tests of one model share the model, built once per worker
# (tests/keras_vs/test_corpus.py caches it): under xdist they go to one worker
# as a group, the way `--dist loadgroup` would (its grouping does not work
# with pytest 9: it renames `item._nodeid`, which pytest 9 no longer reads).
_CORPUS_TEST = re.compile(r"test_corpus\.py::test_tool\[([^-\]]+)-")  # [model-tool]
# Modules whose tests share a module-scoped fixture that takes seconds (a
# trained CNN, a simulation, a study): one worker each, so the fixture is
# made once rather than once per worker.
_ONE_WORKER_MODULES = (
    "tests/keras_vs/test_attribution.py",
    "tests/keras_vs/test_doctor.py",
    "tests/keras_vs/test_cli_doctor.py",
    "tests/keras_vs/test_cli_recalibrate.py",
    "tests/experiments/test_theory.py",
    "tests/experiments/test_study.py",
)


@pytest.hookimpl(optionalhook=True)  # pytest-xdist's hook: absent without it
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class OneWorkerPerCorpusModel(LoadScopeScheduling):
        """Every test its own unit of work, except one unit per corpus model
        and one per module of `_ONE_WORKER_MODULES`."""

        def _split_scope(self, nodeid):
            match = _CORPUS_TEST.search(nodeid)
            if match:
                return f"corpus:{match.group(1)}"
            module = nodeid.split("::", 1)[0]
            return module if module in _ONE_WORKER_MODULES else nodeid

    return OneWorkerPerCorpusModel(config, log)


@pytest.fixture
def keras_vs_cli(capsys):
    """Runs ``keras-vs ARGS`` in this process; returns ``(exit status, stdout, stderr)``."""
    from keras_vs import cli

    def run(*args):
        code = cli.run(["keras-vs", *(str(a) for a in args)])
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def unchanged_files():
    """``unchanged_files(*paths)`` records each file's sha256; the test fails if one changes."""
    import hashlib

    def digest(path):
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    recorded = {}

    def record(*paths):
        for path in paths:
            recorded[str(path)] = digest(path)

    yield record
    changed = [p for p, d in recorded.items() if digest(p) != d]
    assert not changed, f"input file(s) modified: {changed}"
