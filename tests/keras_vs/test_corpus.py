"""Every keras-vs tool on every model of the corpus (tests/keras_vs/corpus.py).

For each (model, tool) the tool either works or raises a ValueError
(`keras_vs.GraphError` is one) whose message names a layer of the model.
Anything else fails: AttributeError/TypeError/KeyError, a silently empty
result, an input model that changed, a rewrite whose inference outputs differ
from the original (relative 1e-5) or whose `.keras` file does not load back.

The copy contract (DESIGN.md): a model a tool returns (rewrite, the
recalibrated copy) and its `.keras` file are of the input model's own class,
compiled as it was, with its layers' dtype policies; the input model is
bit-identical afterwards in its weights, in what Keras' saving contract saves
of each layer besides them (`save_own_variables`, `save_assets`) and its
config, its stateful RNNs' states, its dtype policies and its compile state.

One test function, parametrized model-major (all tools of one model, then the
next model) so that the small per-module cache builds each model once.
"""

import collections
import copy
import gc
import importlib.util
import json
import math
import os
import pathlib
import re
import sys
import tempfile

import keras
import numpy as np
import pytest

import keras_vs as kvs
from keras_vs import vocab


def _load_corpus():
    name = "keras_vs_tests_corpus"
    if name not in sys.modules:
        path = pathlib.Path(__file__).resolve().parent / "corpus.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


corpus = _load_corpus()

N = 16  # examples per batch: small, and one batch for every tool
RTOL = 1e-5
POLICIES = vocab.POLICIES
TOOLS = (
    ("find",)
    + tuple(f"plan:{p}" for p in POLICIES)
    + tuple(f"rewrite:{p}" for p in POLICIES)
    + tuple(f"save:{p}" for p in ("original",) + POLICIES)
    + ("measure", "inconsistency", "recalibrate", "fit", "doctor")
)


# ---------------------------------------------------------------------------
# The module cache: the corpus model, its input batch and a snapshot of it.


class Built:
    def __init__(self, name):
        self.entry = corpus.REGISTRY[name]
        self.model = corpus.build(name, seed=0)
        self.x = self.entry.sample(N, seed=0)
        self.weights = _weights(self.model)
        self.layer_names = [layer.name for layer in self.model.layers]
        self.outputs = _infer(self.model, self.x)
        self.state = _state(self.model)
        self.rewrites = {}  # policy -> model, or the ValueError it raised
        self.rewrite_outputs = {}  # policy -> _infer of that model (the save check reuses it)
        self.findings = None


_CACHE = collections.OrderedDict()
_KEEP = 2  # models are visited one after another: keep the last two only


def _built(name):
    if name not in _CACHE:
        while len(_CACHE) >= _KEEP:
            _CACHE.popitem(last=False)
            gc.collect()
        _CACHE[name] = Built(name)
    _CACHE.move_to_end(name)
    return _CACHE[name]


# ---------------------------------------------------------------------------
# Helpers.


def _weights(model):
    return [np.array(keras.ops.convert_to_numpy(v)) for v in model.weights]


def _infer(model, x, training=False):
    """The flat outputs of ``model(x)``. Stateful RNNs run from reset (zero)
    states, the states a `.keras` file gives (Keras saves none), so that a
    returned or loaded model compares with the input; their states are as they
    were afterwards (the test's own calls must not advance them)."""
    states = _rnn_states(model)
    for _, variable, value in states:
        variable.assign(np.zeros_like(value))
    try:
        return [np.array(keras.ops.convert_to_numpy(t))
                for t in keras.tree.flatten(model(x, training=training))]
    finally:
        for _, variable, value in states:
            variable.assign(value)


def _rnn_states(model):
    """``(layer name, variable, value)`` of every stateful RNN's states (not
    variables of the model: Keras neither tracks nor saves them)."""
    found = []
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if getattr(layer, "stateful", False) and getattr(layer, "states", None) is not None:
            for v in keras.tree.flatten(layer.states):
                found.append((layer.name, v, np.array(keras.ops.convert_to_numpy(v))))
    return found


def _canonical(value):
    try:
        a = np.asarray(keras.ops.convert_to_numpy(value))
    except Exception:  # strings, Python objects
        a = np.asarray(value)
    if a.dtype == object:
        return (str(a.shape), repr(a.tolist()))
    return (str(a.dtype), str(a.shape), a.tobytes())


def _json(config):
    return json.dumps(config, sort_keys=True, default=repr)


def _compile_json(model):
    """`get_compile_config` as JSON, the optimizer's auto-name suffix dropped
    (Keras' own `.keras` round trip names a new ``adam`` ``adam_1``)."""
    config = copy.deepcopy(model.get_compile_config())
    optimizer = config.get("optimizer") if isinstance(config, dict) else None
    if isinstance(optimizer, dict) and isinstance(optimizer.get("config"), dict):
        name = optimizer["config"].get("name")
        if isinstance(name, str):
            optimizer["config"]["name"] = re.sub(r"_\d+$", "", name)
    return _json(config)


def _state(model):
    """What must not change in an input model besides its weights, as a list
    of comparable records: per layer what Keras' saving contract saves
    (`save_own_variables` arrays, `save_assets` files), its dtype policy;
    stateful RNNs' states; the model's config and compile config."""
    records = [("config", _json(model.get_config()))]
    compiled = getattr(model, "compiled", False)
    records.append(("compile", _json(model.get_compile_config()) if compiled else None))
    with tempfile.TemporaryDirectory() as folder:
        for i, layer in enumerate(model._flatten_layers(include_self=True, recursive=True)):
            where = f"layer {i} {layer.name!r}"
            records.append((where, "dtype_policy", layer.dtype_policy.name))
            store = {}
            layer.save_own_variables(store)
            for key in sorted(store):
                records.append((where, "save_own_variables", key, _canonical(store[key])))
            if hasattr(layer, "save_assets"):
                sub = os.path.join(folder, str(i))
                os.makedirs(sub)
                layer.save_assets(sub)
                for root, _, files in sorted(os.walk(sub)):
                    for f in sorted(files):
                        with open(os.path.join(root, f), "rb") as handle:
                            records.append((where, "asset", os.path.relpath(
                                os.path.join(root, f), sub), handle.read()))
    for name, _, value in _rnn_states(model):
        records.append((f"stateful RNN {name!r}", "states", _canonical(value)))
    return records


def _first_difference(old, new):
    for a, b in zip(old, new):
        if a != b:
            a, b = str(a), str(b)
            i = next((k for k, (u, v) in enumerate(zip(a, b)) if u != v), min(len(a), len(b)))
            start = max(0, i - 120)
            return f"...{a[start:i + 120]}... became ...{b[start:i + 120]}..."
    return f"{len(old)} records became {len(new)}"


def _policies(model):
    """Layer name -> the set of dtype policy names of the layers so named."""
    found = collections.defaultdict(set)
    for layer in model._flatten_layers(include_self=False, recursive=True):
        # An InputLayer computes nothing, and Keras' own .keras round trip
        # does not keep its policy (it comes back float32 under mixed_float16).
        if not isinstance(layer, keras.layers.InputLayer):
            found[layer.name].add(layer.dtype_policy.name)
    return found


def _assert_like_input(b, new, what):
    """The copy contract for a returned or loaded model: the input's class,
    its compile state, and each layer the input has by name, its policy."""
    assert type(new) is type(b.model), (
        f"{what} is a {type(new).__module__}.{type(new).__qualname__}, the input a "
        f"{type(b.model).__module__}.{type(b.model).__qualname__}"
    )
    if getattr(b.model, "compiled", False):
        assert getattr(new, "compiled", False), f"{what} is not compiled; the input was"
        assert _compile_json(new) == _compile_json(b.model), (
            f"{what}'s compile config differs from the input's"
        )
    old, now = _policies(b.model), _policies(new)
    changed = {n: (sorted(old[n]), sorted(now[n])) for n in old.keys() & now.keys()
               if old[n] != now[n]}
    assert not changed, f"{what}: dtype policies changed (input, result): {changed}"


def _all_layer_names(model, include_model):
    names = {layer.name for layer in model._flatten_layers(include_self=False, recursive=True)}
    if include_model:
        names.add(model.name)
    return {n for n in names if len(n) >= 3}


def _names_a_layer(message, model, include_model=False):
    return any(re.search(rf"(?<![\w]){re.escape(n)}(?![\w])", message)
               for n in _all_layer_names(model, include_model))


# Allowed ValueErrors are recorded as the test's user properties
# ("allowed_error"), which --junitxml writes out.
_RECORD = [None]
_REFUSES = [""]  # the running entry's `refuses`


def _attempt(model, fn, model_is_culprit=False):
    """Runs ``fn()``; a ValueError is allowed when it names a layer of ``model``
    and the corpus entry says why it refuses (``refuses``), or names the model
    where the model as a whole is at fault (e.g. several outputs for
    prediction_inconsistency)."""
    try:
        return fn(), None
    except ValueError as e:
        message = str(e)
        assert _names_a_layer(message, model, model_is_culprit), (
            f"{type(e).__name__} names no layer of the model: {message}"
        )
        assert model_is_culprit or _REFUSES[0], (
            f"{type(e).__name__} on a model whose corpus entry declares no refusal: {message}"
        )
        if _RECORD[0] is not None:
            _RECORD[0].append(
                ("allowed_error", f"{type(e).__name__}: {message.splitlines()[0][:200]}"))
        return None, e


def _assert_unchanged(b, outputs=True):
    """The input model: same layers, bit-identical weights and (unless
    ``outputs`` is False, where the tool never ran the model) outputs."""
    assert [layer.name for layer in b.model.layers] == b.layer_names
    after = _weights(b.model)
    assert len(after) == len(b.weights), "the input model's weights changed in number"
    for i, (old, new) in enumerate(zip(b.weights, after)):
        assert np.array_equal(old, new), f"weight {b.model.weights[i].path} of the input changed"
    state = _state(b.model)
    assert state == b.state, (
        f"the input model's state changed: {_first_difference(b.state, state)}"
    )
    if not outputs:
        return
    for old, new in zip(b.outputs, _infer(b.model, b.x)):
        np.testing.assert_array_equal(new, old, err_msg="the input model's outputs changed")


def _assert_close(actual, expected, what):
    assert len(actual) == len(expected), f"{what}: {len(actual)} outputs, expected {len(expected)}"
    for a, e in zip(actual, expected):
        assert a.shape == e.shape, f"{what}: shape {a.shape}, expected {e.shape}"
        scale = max(1.0, float(np.max(np.abs(e)))) if e.size else 1.0
        np.testing.assert_allclose(a, e, rtol=RTOL, atol=RTOL * 0.1 * scale, err_msg=what)


def _is_stochastic(model, x):
    """Two calls with training unset differ (MC dropout stays on).

    Keras 3 quirk: a layer called with ``training=True`` in a Functional graph
    sets the call context's training flag for every layer after it, so such a
    call also updates BN moving statistics: they are restored afterwards.
    """
    state = [keras.ops.convert_to_numpy(v) for v in model.weights]
    try:
        a = _infer(model, x, training=None)
        b = _infer(model, x, training=None)
    finally:
        for v, value in zip(model.weights, state):
            v.assign(value)
    return any(not np.array_equal(u, v) for u, v in zip(a, b))


def _matches(expected, dropout_name):
    parts = dropout_name.split("/")
    return any(alt in parts for alt in expected.split("|"))


def _findings(b):
    if b.findings is None:
        b.findings = kvs.find_disharmony(b.model)
    return b.findings


def _non_mc(findings, entry, kinds=(vocab.DIRECT, vocab.THROUGH_LINEAR)):
    return [f for f in findings if f.kind in kinds
            and not any(_matches(m, f.dropout) for m in entry.mc_layers)]


def _targets(model, x, seed=0):
    rng = np.random.default_rng(seed)
    return keras.tree.map_structure(
        lambda t: rng.normal(0.0, 1.0, tuple(t.shape)).astype("float32"),
        model(x, training=False),
    )


# ---------------------------------------------------------------------------
# The tools.


def check_find(b):
    findings, err = _attempt(b.model, lambda: kvs.find_disharmony(b.model))
    _assert_unchanged(b)
    if err is not None:
        return
    if b.entry.finds:
        assert findings, "find_disharmony found nothing in a model with dropout before BN"
    for f in findings:
        assert isinstance(f.dropout, str) and isinstance(f.bn, str)
        assert f.kind in vocab.FINDING_KINDS, f
        assert math.isfinite(f.rate)
        assert str(f)
    for expected in b.entry.finds:
        assert any(_matches(expected, f.dropout) for f in findings), (
            f"{expected!r} feeds a BN but is not reported; findings: "
            f"{[(f.dropout, f.bn, f.kind) for f in findings]}"
        )


def check_plan(b, policy):
    changes, err = _attempt(b.model, lambda: kvs.plan(b.model, policy))
    _assert_unchanged(b)
    if err is not None:
        return
    assert isinstance(changes, list)
    for c in changes:
        assert isinstance(c, kvs.Change), c
        assert c.layer is None or isinstance(c.layer, str)
    assert isinstance(str(changes), str)
    findings = _findings(b)
    wanted = [f for f in findings if f.kind == vocab.DIRECT] if policy == vocab.AFTER_BN else findings
    if wanted:
        assert changes, f"plan({policy!r}) is empty although find_disharmony reports {wanted[0]}"


def _rewrite(b, policy):
    if policy not in b.rewrites:
        new, err = _attempt(b.model, lambda: kvs.rewrite(b.model, policy))
        b.rewrites[policy] = new if err is None else err
    return b.rewrites[policy]


def _rewrite_outputs(b, policy, new):
    if policy not in b.rewrite_outputs:
        b.rewrite_outputs[policy] = _infer(new, b.x)
    return b.rewrite_outputs[policy]


def check_rewrite(b, policy):
    b.rewrites.pop(policy, None)
    b.rewrite_outputs.pop(policy, None)
    new = _rewrite(b, policy)
    _assert_unchanged(b)
    if isinstance(new, ValueError):
        return
    assert isinstance(new, keras.Model) and new is not b.model
    _assert_like_input(b, new, f"rewrite({policy!r})")
    _assert_close(_rewrite_outputs(b, policy, new), b.outputs,
                  f"inference outputs after rewrite({policy!r})")
    if b.entry.mc_dropout:
        assert _is_stochastic(b.model, b.x), "the corpus' MC dropout model is deterministic"
        assert _is_stochastic(new, b.x), (
            f"rewrite({policy!r}) turned the MC dropout (training=True) off"
        )
    if policy in (vocab.REMOVE, vocab.HEAD, vocab.AFTER_BN):
        kinds = (vocab.DIRECT,) if policy == vocab.AFTER_BN else (vocab.DIRECT, vocab.THROUGH_LINEAR)
        left = _non_mc(kvs.find_disharmony(new), b.entry, kinds)
        assert not left, f"rewrite({policy!r}) left {[str(f) for f in left]}"


def check_save(b, policy, tmp_path):
    """`.keras` round trip of a rewrite; ``"original"``: of the corpus model
    itself (a control: a failure there is the corpus's or Keras', not keras-vs')."""
    new = b.model if policy == "original" else _rewrite(b, policy)
    if isinstance(new, ValueError):
        pytest.skip(f"rewrite({policy!r}) raised ValueError: {str(new).splitlines()[0]}")
    path = tmp_path / f"{b.entry.name}_{policy}.keras"
    new.save(path)
    loaded = keras.saving.load_model(path, safe_mode=False)
    _assert_like_input(b, loaded, f"the loaded {policy!r} file")
    out = _infer(loaded, b.x)
    before = b.outputs if policy == "original" else _rewrite_outputs(b, policy, new)
    _assert_close(out, before, f".keras round trip of {policy!r}")
    _assert_close(out, b.outputs, f"loaded {policy!r} rewrite vs the original")
    # Saving a rewrite never runs the input model: its weights and layers suffice.
    _assert_unchanged(b, outputs=policy == "original")


def check_measure(b):
    shift, err = _attempt(b.model, lambda: kvs.measure_variance_shift(b.model, b.x))
    _assert_unchanged(b)
    if err is not None:
        return
    if b.entry.has_bn:
        assert len(shift) > 0, "measure_variance_shift is empty on a model with BN"
        # A BN its layer never calls has no input to measure: listed in
        # `not_called`, not in the mapping.
        not_called = tuple(getattr(shift, "not_called", ()))
        for name in b.entry.not_called:
            assert any(name in n for n in not_called), (
                f"{name!r} is never called but not in the result's not_called {not_called}"
            )
        expected = corpus.num_bn_layers(b.model) - len(b.entry.not_called)
        assert len(shift) >= expected, (
            f"{len(shift)} BN(s) measured of {expected}: {list(shift)}"
        )
    for name, value in shift.items():
        assert isinstance(name, str)
        assert math.isfinite(value), f"variance shift of {name} is {value}"


def check_inconsistency(b):
    """Single-output classifiers get labels; the other models no labels (a
    ValueError naming the model is the documented answer for several outputs)."""
    data = (b.x, b.entry.labels(N)) if b.entry.classifier else b.x
    result, err = _attempt(b.model, lambda: kvs.prediction_inconsistency(b.model, data),
                           model_is_culprit=not b.entry.classifier)
    _assert_unchanged(b)
    if err is not None:
        return
    assert isinstance(result, kvs.Inconsistency)
    assert result.num_examples == N
    assert 0.0 <= result.disagreement <= 1.0
    if b.entry.classifier:
        for acc in (result.train_mode_accuracy, result.inference_accuracy):
            assert acc is not None and 0.0 <= acc <= 1.0


def check_doctor(b):
    """The doctor on one batch, held out as it is (split stated: the corpus checks that
    it runs, not its statistics): no fine-tuning. Labels: those `fit` uses for a class
    with its own compile, the classes for a classifier, else the model's own outputs."""
    y = b.entry.labels(N) if b.entry.classifier else b.outputs[0]
    if b.entry.fit_labels is not None:
        y = b.entry.fit_labels(N, np.random.default_rng(1))
    report, err = _attempt(b.model, lambda: kvs.doctor(b.model, (b.x, y), (b.x, y), batch_size=N),
                           model_is_culprit=len(b.model.outputs) > 1)
    _assert_unchanged(b)
    if err is not None:
        return
    assert [c.fix for c in report.candidates][0] == "keep"
    assert report.recommendation in [c.fix for c in report.candidates]
    for a in report.attribution.values():
        parts = a.statistics * a.dropout * a.upstream
        if math.isfinite(parts) and a.moving > 0:
            assert parts == pytest.approx(a.real / a.moving, rel=1e-4), a


def check_recalibrate(b):
    new, err = _attempt(b.model, lambda: kvs.recalibrate_bn(b.model, b.x))
    _assert_unchanged(b)
    if err is not None:
        return
    assert isinstance(new, keras.Model) and new is not b.model
    _assert_like_input(b, new, "recalibrate_bn's model")
    out = _infer(new, b.x)
    assert all(np.all(np.isfinite(o)) for o in out), "recalibrated outputs not finite"
    old_tw = [np.asarray(keras.ops.convert_to_numpy(v)) for v in b.model.trainable_weights]
    new_tw = [np.asarray(keras.ops.convert_to_numpy(v)) for v in new.trainable_weights]
    assert len(old_tw) == len(new_tw)
    for u, v in zip(old_tw, new_tw):
        np.testing.assert_array_equal(u, v, err_msg="recalibrate_bn changed a trainable weight")
    # Every BN re-estimated (the corpus' statistics come from a training-mode
    # pass on other data): none silently skipped, hidden ones included; a BN
    # that its layer never calls keeps its statistics (nothing to estimate).
    old_var = [v for v in b.model.weights if v.path.endswith("moving_variance")]
    new_var = [v for v in new.weights if v.path.endswith("moving_variance")]
    assert len(new_var) == len(old_var)
    uncalled = [any(n in u.path for n in b.entry.not_called) for u in old_var]
    assert sum(uncalled) == len(b.entry.not_called), (
        f"not_called {b.entry.not_called} match {sum(uncalled)} moving variances"
    )
    called_same = [u.path for u, v, skip in zip(old_var, new_var, uncalled) if not skip
                   and np.array_equal(keras.ops.convert_to_numpy(u), keras.ops.convert_to_numpy(v))]
    assert not called_same, (
        f"{len(called_same)} of {len(old_var)} BN(s) not recalibrated, e.g. {called_same[:3]}"
    )
    for u, v, skip in zip(old_var, new_var, uncalled):
        if skip:
            np.testing.assert_array_equal(
                keras.ops.convert_to_numpy(v), keras.ops.convert_to_numpy(u),
                err_msg=f"{u.path} is never called but recalibrate_bn changed it")


def check_fit(b):
    keras.utils.set_random_seed(1)
    model = corpus.build(b.entry.name, seed=1)
    y = _targets(model, b.x)
    # The callback is under test, not tracing: the step runs eagerly (tracing
    # costs ~10 s per model on TensorFlow). JAX compiles every eager (op, shape)
    # and a backward pass has many: for big graphs one jitted step is cheaper
    # (MobileNetV3Small: 20 s against 86 s eagerly). Keras' eager fit cannot
    # take NumPy string arrays: string models trace.
    strings = any(str(t.dtype) == "string" for t in model.inputs)
    big = len(list(model._flatten_layers(include_self=False, recursive=True))) > 50
    eager = not strings and not (keras.backend.backend() == "jax" and big)
    if b.entry.fit_labels is not None:  # the class's own compile (loss, metrics) and labels
        y = b.entry.fit_labels(N, np.random.default_rng(1))
        model.compile(optimizer=keras.optimizers.SGD(1e-3), run_eagerly=eager)
    else:
        model.compile(optimizer=keras.optimizers.SGD(1e-3), loss="mse", run_eagerly=eager)
    callback, err = _attempt(model, lambda: kvs.VarianceShiftCallback(b.x, probe_size=N))
    if err is not None:
        return
    x = b.x
    if strings:  # Keras' fit takes strings as tf.string tensors, not NumPy objects
        import tensorflow as tf

        x = keras.tree.map_structure(
            lambda a: tf.constant(np.asarray(a).astype(str)) if np.asarray(a).dtype.kind in "OSU" else a,
            b.x,
        )
    history, err = _attempt(
        model,
        lambda: model.fit(x, y, batch_size=N, epochs=1, verbose=0, callbacks=[callback]),
    )
    if err is not None:
        return
    logs = history.history
    assert "variance_shift/max" in logs, f"no variance_shift/max in the logs: {sorted(logs)}"
    assert all(math.isfinite(v) for v in logs["variance_shift/max"]), logs["variance_shift/max"]


# ---------------------------------------------------------------------------
# Parametrization: model-major.


def _params():
    for name, entry in corpus.REGISTRY.items():
        marks = []
        if entry.slow:
            marks.append(pytest.mark.slow)
        if entry.needs_tf:
            marks.append(pytest.mark.tf_only)
        if entry.slow_on_jax:
            marks.append(pytest.mark.slow_on_jax)
        if entry.requires:
            marks.append(pytest.mark.requires(*entry.requires))
        for tool in TOOLS:
            yield pytest.param(name, tool, marks=marks, id=f"{name}-{tool}")


def test_corpus_table():
    assert len(corpus.REGISTRY) >= 30
    for entry in corpus.REGISTRY.values():
        # Test ids are "model-tool": tests/conftest.py groups them by the part before "-".
        assert entry.name.isidentifier(), entry.name
        assert entry.has_bn or not entry.finds
        assert not entry.mc_dropout or entry.mc_layers
        # keras-hub and TensorFlow are missing in the JAX venv without TF
        if entry.name.startswith("hub_"):
            assert entry.requires == corpus.HUB
        else:
            assert entry.requires in ((), corpus.TF_LAYERS)


@pytest.mark.parametrize("name,tool", list(_params()))
def test_tool(name, tool, tmp_path, request):
    _RECORD[0] = request.node.user_properties
    kind, _, policy = tool.partition(":")
    entry = corpus.REGISTRY[name]
    _REFUSES[0] = entry.refuses
    if keras.backend.backend() == "jax" and kind in entry.keras_fails_on_jax:
        pytest.skip(f"Keras' own {kind} cannot run {name} on JAX")
    b = _built(name)
    keras.utils.set_random_seed(0)
    if kind == "find":
        check_find(b)
    elif kind == "plan":
        check_plan(b, policy)
    elif kind == "rewrite":
        check_rewrite(b, policy)
    elif kind == "save":
        check_save(b, policy, tmp_path)
    elif kind == "measure":
        check_measure(b)
    elif kind == "inconsistency":
        check_inconsistency(b)
    elif kind == "recalibrate":
        check_recalibrate(b)
    elif kind == "fit":
        check_fit(b)
    elif kind == "doctor":
        check_doctor(b)
    else:  # pragma: no cover
        raise AssertionError(tool)
