"""Measure the variance shift of a trained model and compare train/inference predictions.

The paper's procedure: with the weights frozen and the model in inference
mode, pass data through it, estimate the real variance of the tensor
entering every BatchNormalization layer and compare it with the layer's
moving variance. The BN inputs are tapped by `keras_vs.probe.Probe` on the
user's own layers (nothing is copied or re-instantiated), in one compiled
pass; the user's model is only read. Re-estimation lives in
`keras_vs.recalibrate`.
"""

import contextlib
import collections.abc
import dataclasses
import math
import random
import warnings
import weakref

import keras
import numpy as np
from keras import ops

from keras_vs import batches as batches_lib
from keras_vs import graph as graph_lib
from keras_vs import runner
from keras_vs.batches import DEFAULT_BATCH_SIZE, Batches
from keras_vs.deprecation import KerasVsDeprecationWarning
from keras_vs.graph.snapshot import Snapshot
from keras_vs.probe import probe_for
from keras_vs.reach import no_bn_error, warn_hidden, warn_not_called

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Inconsistency",
    "VarianceShift",
    "measure_variance_shift",
    "label_classes",
    "prediction_inconsistency",
    "predicted_classes",
    "statistic",
]


def __getattr__(name):
    # The old home of recalibrate_bn, imported lazily: recalibrate never imports shift.
    if name == "recalibrate_bn":
        warnings.warn(
            "keras_vs.shift.recalibrate_bn is deprecated: use keras_vs.recalibrate_bn "
            "(keras_vs.recalibrate.recalibrate_bn).",
            KerasVsDeprecationWarning,
            stacklevel=2,
        )
        from keras_vs.recalibrate import recalibrate_bn

        return recalibrate_bn
    raise AttributeError(f"module 'keras_vs.shift' has no attribute {name!r}")


@contextlib.contextmanager
def _rng_preserved():
    # Layer copies draw default seeds from Python's global RNG; restoring it
    # keeps measuring from perturbing anything the user seeded.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def statistic(moving_var, real_var):
    """The paper's per-BN statistic from per-channel variances.

    Args:
        moving_var: Per-channel moving variances of one BN.
        real_var: Per-channel real variances of its input.

    Returns:
        ``max(r / m, m / r)`` of the channel means ``m`` and ``r``: 1.0 means no
        shift.
    """
    m, r = float(np.mean(moving_var)), float(np.mean(real_var))
    if m == r:
        return 1.0
    if min(m, r) <= 0.0:
        return math.inf
    return max(r / m, m / r)


# ---------------------------------------------------------------------------
# Public API.


class VarianceShift(collections.abc.Mapping):
    """Per-BN variance shift, shallow to deep: ``name -> statistic``.

    Behaves as a read-only ordered mapping. The raw per-channel arrays are in
    ``moving_var``, ``real_var``, ``moving_mean`` and ``real_mean``
    (``name -> np.ndarray``); ``num_examples`` is the number of examples seen;
    ``hidden`` maps custom layers to the BNs inside them that could not be
    reached (``{}`` when every BN was measured); ``not_called`` names the BNs
    that a layer owns but never called on the data (no input, so no
    statistic: they are not in the mapping).
    """

    def __init__(self, moving_var, real_var, moving_mean, real_mean, num_examples, hidden=None,
                 not_called=()):
        self.moving_var = dict(moving_var)
        self.real_var = dict(real_var)
        self.moving_mean = dict(moving_mean)
        self.real_mean = dict(real_mean)
        self.num_examples = num_examples
        self.hidden = dict(hidden or {})
        self.not_called = tuple(not_called)
        self._values = {k: statistic(self.moving_var[k], self.real_var[k]) for k in self.moving_var}

    def __getitem__(self, name):
        return self._values[name]

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def max(self):
        """The largest statistic (nan when there is no BN)."""
        return max(self._values.values()) if self._values else math.nan

    def mean(self):
        """The mean statistic over BN layers (nan when there is no BN)."""
        return float(np.mean(list(self._values.values()))) if self._values else math.nan

    def __repr__(self):
        body = ", ".join(f"{k!r}: {v:.4f}" for k, v in self._values.items())
        rest = f", not_called={list(self.not_called)!r}" if self.not_called else ""
        return f"VarianceShift({{{body}}}{rest})"


def measure(probe, batches, compiled=None):
    """Measures with a built `Probe` (method "inference") on `Batches`."""
    if probe.model is None:
        return VarianceShift({}, {}, {}, {}, 0, probe.hidden, probe.names)
    moments = probe.moments(batches, compiled)
    moving_var, real_var, moving_mean, real_mean = {}, {}, {}, {}
    names = [name for name in probe.names if name in moments]
    bns = [graph_lib.unwrap(probe.bns[name]) for name in names]
    values = runner.host_values([v for bn in bns for v in (bn.moving_variance, bn.moving_mean)])
    for i, name in enumerate(names):
        moving_var[name], moving_mean[name] = values[2 * i], values[2 * i + 1]
        count, real_mean[name], real_var[name] = moments[name]
    return VarianceShift(
        moving_var, real_var, moving_mean, real_mean, probe.num_examples, probe.hidden,
        probe.not_called,
    )


def measure_variance_shift(model, data, steps=None, *, batch_size=DEFAULT_BATCH_SIZE):
    """Measures the paper's variance-shift statistic at every BN layer.

    In inference mode (dropout off, BN on its moving statistics) the data is
    passed through the model once; for each BN the exact pooled per-channel
    variance of its input over all examples (``real_var``) is compared with
    its moving variance: ``max(real / moving, moving / real)`` of the two
    channel means. BNs in nested models, shared models and `TimeDistributed`
    are measured, and BNs inside custom layers by patching their call; a BN
    that its layer never calls is listed in the result's ``not_called`` (with
    a warning). The model is not modified (stateful RNNs' states included).

    Args:
        model: A built Functional or Sequential model.
        data: NumPy inputs ``x`` or ``(x, y)``, a `tf.data.Dataset`, a
            `keras.utils.PyDataset` or an iterable of batches (labels are
            ignored). NaN or infinite inputs raise a `ValueError` naming the batch.
        steps: Optional number of batches to use (all if None).
        batch_size: Batch size for NumPy inputs.

    Returns:
        A `VarianceShift`: ordered mapping BN name -> statistic of every BN
        called on the data, shallow to deep, with the raw arrays in
        ``.moving_var`` / ``.real_var`` and the BNs never called in
        ``.not_called``; empty when the model has no BatchNormalization layer.

    Raises:
        ValueError: Every BN of the model is hidden in custom layers (the
            message names them), or the data does not fit.

    Example:

    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.BatchNormalization()])
    >>> shift = measure_variance_shift(model, np.array([[1.0], [-1.0]]))
    >>> dict(shift)  # a fresh BN's moving variance is 1, like this input's
    {'batch_normalization': 1.0}
    """
    batches = Batches(data, steps, batch_size)
    probe = probe_for(model)
    if probe.model is None and probe.hidden:
        raise no_bn_error(model, probe)
    warn_hidden(probe)
    result = measure(probe, batches)
    warn_not_called(result.not_called, "not measured")
    return result


@dataclasses.dataclass(frozen=True)
class Inconsistency:
    """Training-mode vs inference-mode predictions of the same weights.

    Attributes:
        train_mode_accuracy: Accuracy with dropout on and BN on batch
            statistics (None without labels).
        inference_accuracy: Accuracy in inference mode (None without labels).
        disagreement: Fraction of predictions whose argmax differs.
        num_examples: Number of examples compared.
        num_predictions: Number of predictions compared: one per example,
            or one per position for an output such as a segmentation map
            (the accuracies and the disagreement are over predictions).
    """

    train_mode_accuracy: object
    inference_accuracy: object
    disagreement: float
    num_examples: int
    num_predictions: int = None

    @property
    def gap(self):
        """``train_mode_accuracy - inference_accuracy`` (None without labels)."""
        if self.train_mode_accuracy is None:
            return None
        return self.train_mode_accuracy - self.inference_accuracy

    def __repr__(self):
        fields = [f"{f.name}={getattr(self, f.name)!r}" for f in dataclasses.fields(self)]
        return f"Inconsistency({', '.join(fields[:2] + [f'gap={self.gap!r}'] + fields[2:])})"


class _TrainingMode(keras.layers.Layer):
    """Calls a model in training mode whatever mode it is called in.

    ``predict`` forces ``training=False`` on a Functional graph, even over a
    ``training=True`` recorded in it; a layer that passes the flag itself is
    the public way to get training-mode outputs from ``predict_on_batch``.
    """

    def __init__(self, model, **kwargs):
        # autocast=False: inputs reach the copy as they come; it casts them itself.
        super().__init__(dtype="float32", autocast=False, **kwargs)
        self.inner = model

    def call(self, x):
        return self.inner(x, training=True)

    def compute_output_spec(self, x):
        # The copy's own output spec, without tracing it: Keras' lookup layers
        # cannot be traced on JAX, though they run eagerly there.
        return keras.tree.map_structure(
            lambda t: keras.KerasTensor(t.shape, dtype=t.dtype), self.inner.outputs
        )


def predicted_classes(pred):
    """Each prediction's class: argmax, or ``> 0.5`` for one sigmoid output."""
    pred = np.asarray(pred)
    if pred.ndim >= 2 and pred.shape[-1] == 1:
        return (pred[..., 0] > 0.5).astype(np.int64)
    return np.argmax(pred, axis=-1)


def label_classes(y, pred):
    """Each label's class (sparse or one-hot as wide as ``pred``), shaped as `predicted_classes`."""
    y = np.asarray(y)
    if y.ndim == pred.ndim and y.shape[-1] == pred.shape[-1] and pred.shape[-1] > 1:
        return np.argmax(y, axis=-1)
    return y.reshape(pred.shape[:-1]).astype(np.int64)


def prediction_inconsistency(model, data, steps=None, *, batch_size=DEFAULT_BATCH_SIZE):
    """Compares predictions in training mode and in inference mode (Fig. 5).

    Each batch goes through a copy of the model twice with the same weights:
    once in training mode (dropout active, BN normalising with batch
    statistics) and once in inference mode. The user's model is never
    modified: moving statistics updated by the training-mode pass belong to
    the copy.

    Args:
        model: A built single-output classifier (Functional or Sequential).
        data: ``x`` or ``(x, y)`` NumPy arrays, a `tf.data.Dataset` or a
            `keras.utils.PyDataset`; labels may be integers or one-hot.
        steps: Optional number of batches to use (all if None).
        batch_size: Batch size for NumPy inputs (training-mode BN statistics
            depend on it).

    Returns:
        An `Inconsistency`; its ``gap`` is training-mode minus inference
        accuracy. A single-unit output is read as a probability (> 0.5).

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    >>> prediction_inconsistency(model, np.ones((8, 4))).disagreement
    0.0
    """
    batches = Batches(data, steps, batch_size)
    graph = graph_lib.ModelGraph(model)
    inputs = graph.root.inputs
    if len(graph.root.outputs) != 1:
        raise ValueError(
            "prediction_inconsistency needs a single-output classifier. "
            f"Received: model {model.name!r} with {len(graph.root.outputs)} outputs"
        )
    both, state = _both_modes(model)
    run = runner.run_function(both, batches)
    with state:  # stateful layers as they were after the pass
        return _compare(batches, inputs, run)


# model -> (graph signature, model of both modes, its training-mode copy, the
# model's snapshot): built and compiled once per model, its copy re-synced on
# every call.
_BOTH_MODES = weakref.WeakKeyDictionary()


def _both_modes(model):
    """One model returning ``[inference outputs, training-mode outputs]``, and
    the `Snapshot` of what its passes may write in `model`.

    Inference calls the user's own layers; training mode a copy, whose BN
    moving statistics and dropout seeds may change, the user's must not. The
    copy's stateful layers start from the model's states on every call.
    """
    signature = graph_lib.signature(model)
    try:
        cached = _BOTH_MODES.get(model)
    except TypeError:  # not weak-referenceable: no caching
        cached = None
    if cached is not None and cached[0] == signature:
        _, both, train_copy, state, copy_state = cached
        train_copy.set_weights(model.get_weights())
        _align(state, copy_state)
        return both, state
    name = runner.private_names(model)
    inputs, outputs = graph_lib.inline(model)[:2]
    with _rng_preserved():
        train_copy = graph_lib.copy(model)
        train = _TrainingMode(train_copy, name=name("training_mode"))(inputs)
        both = keras.Model(
            inputs, [keras.tree.flatten(outputs)[0], keras.tree.flatten(train)[0]],
            name=name("both_modes"),
        )
    state, copy_state = Snapshot(model), Snapshot(train_copy)
    _align(state, copy_state)
    try:
        _BOTH_MODES[model] = (signature, both, train_copy, state, copy_state)
    except TypeError:
        pass
    return both, state


def _align(state, copy_state):
    """Sets the copy's stateful variables to the model's (where they pair up by shape)."""
    pairs = list(zip(state.variables, copy_state.variables))
    if len(state.variables) != len(copy_state.variables) or any(
        tuple(a.shape) != tuple(b.shape) for a, b in pairs
    ):
        return
    for a, b in pairs:
        b.assign(keras.ops.copy(a.value))


def _compare(batches, inputs, run):
    """Counts agreement and accuracy of the two modes over `batches`."""
    n = examples = agree = correct_train = correct_inf = 0
    has_labels = True
    for x, y, size in batches_lib.checked(batches, inputs):
        pred_inf, pred_train = (np.asarray(ops.convert_to_numpy(p)) for p in run(x))
        c_inf, c_train = predicted_classes(pred_inf), predicted_classes(pred_train)
        examples += size
        n += c_inf.size  # predictions: one per position for a segmentation output
        agree += int(np.sum(c_inf == c_train))
        if y is None:
            has_labels = False
        elif has_labels:
            labels = label_classes(y, pred_inf)
            correct_inf += int(np.sum(c_inf == labels))
            correct_train += int(np.sum(c_train == labels))
    if n == 0:  # examples, but outputs without a position to compare
        raise batches_lib.empty_error(batches.steps)
    return Inconsistency(
        correct_train / n if has_labels else None,
        correct_inf / n if has_labels else None,
        1.0 - agree / n,
        examples,
        n,
    )
