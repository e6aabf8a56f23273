"""Measure the variance shift of a trained model and repair it by BN re-estimation.

The paper's procedure (PAPER.md section 2): with the weights frozen and the
model in inference mode, pass data through it, estimate the real variance of
the tensor entering every BatchNormalization layer and compare it with the
layer's moving variance. Its cheapest remedy (section 3) overwrites each BN's
moving statistics with those population statistics.

How the BN inputs are reached without Keras internals: the model is rebuilt
with the public `keras.models.clone_model` on copies of its layers, and next
to every BN a small layer computes per-batch channel moments of the BN's
input. Nested Functional/Sequential models are rebuilt the same way and
return their moments as extra outputs, so one flat "probe" model yields the
moments of every BN, shallow to deep. Per-batch moments are merged on the host
in float64 with the parallel (Chan et al.) formula, which gives the exact
pooled variance over all batches. The user's model is only read.
"""

import collections.abc
import contextlib
import dataclasses
import math
import numbers
import random
import sys

import keras
import numpy as np
from keras import ops

_BN = keras.layers.BatchNormalization
DEFAULT_BATCH_SIZE = 32
# Relative change below which a recalibration pass counts as a fixed point.
_RTOL = 1e-5


# ---------------------------------------------------------------------------
# Data: NumPy arrays, tf.data.Dataset, keras.utils.PyDataset, other iterables.


def _is_tf_dataset(data):
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(data, tf.data.Dataset)


def _split_element(element):
    # Keras' convention: a tuple is (x,), (x, y) or (x, y, sample_weight);
    # anything else (array, list of arrays, dict) is x alone.
    if isinstance(element, tuple):
        if not 1 <= len(element) <= 3:
            raise ValueError(
                "Expected each batch to be x, (x,), (x, y) or (x, y, sample_weight). "
                f"Received: a tuple of {len(element)} elements"
            )
        return element[0], (element[1] if len(element) > 1 else None)
    return element, None


def _to_numpy(structure):
    return keras.tree.map_structure(np.asarray, structure)


def _num_examples(x):
    flat = keras.tree.flatten(x)
    if not flat:
        raise ValueError(f"Expected input arrays. Received: x={x!r}")
    lengths = {int(np.shape(a)[0]) if np.ndim(a) else -1 for a in flat}
    if len(lengths) != 1 or -1 in lengths:
        raise ValueError(
            "Expected input arrays with one common first (batch) dimension. "
            f"Received shapes {[np.shape(a) for a in flat]}"
        )
    return lengths.pop()


class Batches:
    """A re-iterable view of ``data`` as NumPy ``(x, y)`` batches.

    Args:
        data: NumPy inputs ``x`` (array, list or dict of arrays), a tuple
            ``(x, y)`` of them, a `tf.data.Dataset`, a `keras.utils.PyDataset`,
            or any iterable of such batches.
        steps: Optional number of batches to use (all if None).
        batch_size: Batch size for NumPy inputs.
    """

    def __init__(self, data, steps=None, batch_size=DEFAULT_BATCH_SIZE):
        if steps is not None and (
            isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1
        ):
            raise ValueError(f"Expected steps to be a positive integer or None. Received: steps={steps!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or batch_size < 1:
            raise ValueError(f"Expected batch_size to be a positive integer. Received: batch_size={batch_size!r}")
        self.steps = None if steps is None else int(steps)
        self.batch_size = int(batch_size)
        self.reiterable = True
        self._arrays = None
        if data is None or isinstance(data, (str, bytes)):
            raise ValueError(
                "Expected data as NumPy arrays, (x, y), a tf.data.Dataset or a "
                f"keras.utils.PyDataset. Received: data={data!r}"
            )
        if isinstance(data, keras.utils.PyDataset):
            n = data.num_batches
            if n is None and self.steps is None:
                raise ValueError(
                    "The PyDataset is infinite (num_batches is None): pass steps. "
                    f"Received: data={data!r}, steps=None"
                )
            self._kind, self._data = "pydataset", data
            self._len = n
        elif _is_tf_dataset(data):
            import tensorflow as tf

            if data.cardinality() == tf.data.INFINITE_CARDINALITY and self.steps is None:
                raise ValueError(
                    "The tf.data.Dataset is infinite: pass steps. Received: steps=None"
                )
            self._kind, self._data = "tf", data
        elif isinstance(data, (np.ndarray, dict, list)) or (
            isinstance(data, tuple) and data and not hasattr(data[0], "__next__")
        ):
            x, y = _split_element(data) if isinstance(data, tuple) else (data, None)
            x = _to_numpy(x)
            n = _num_examples(x)
            if y is not None:
                y = np.asarray(y)
                if y.ndim == 0 or len(y) != n:
                    raise ValueError(
                        "Expected as many labels as inputs. Received: "
                        f"{n} inputs and y.shape={y.shape}"
                    )
            self._kind, self._arrays = "arrays", (x, y, n)
        elif hasattr(data, "__iter__"):
            self._kind, self._data = "iterable", data
            self.reiterable = iter(data) is not data
        else:
            raise ValueError(
                "Expected data as NumPy arrays, (x, y), a tf.data.Dataset, a "
                "keras.utils.PyDataset or an iterable of batches. "
                f"Received: data of type {type(data).__name__}"
            )

    def _raw(self):
        if self._kind == "arrays":
            x, y, n = self._arrays
            for start in range(0, n, self.batch_size):
                sl = slice(start, start + self.batch_size)
                yield (
                    keras.tree.map_structure(lambda a: a[sl], x),
                    None if y is None else y[sl],
                )
        elif self._kind == "pydataset":
            i = 0
            while self._len is None or i < self._len:
                yield _split_element(self._data[i])
                i += 1
        elif self._kind == "tf":
            for element in self._data.as_numpy_iterator():
                yield _split_element(element)
        else:
            for element in self._data:
                yield _split_element(element)

    def __iter__(self):
        for i, (x, y) in enumerate(self._raw()):
            if self.steps is not None and i >= self.steps:
                return
            yield _to_numpy(x), (None if y is None else np.asarray(y))

    def head(self, max_examples):
        """Returns the first ``max_examples`` examples as NumPy ``(x, y)``."""
        xs, ys = [], []
        total = 0
        for x, y in self:
            n = _num_examples(x)
            take = min(n, max_examples - total)
            xs.append(keras.tree.map_structure(lambda a: a[:take], x))
            ys.append(None if y is None else y[:take])
            total += take
            if total >= max_examples:
                break
        if total == 0:
            raise ValueError("The data set is empty. Received: no examples")
        x = keras.tree.map_structure(lambda *a: np.concatenate(a), *xs)
        y = None if any(v is None for v in ys) else np.concatenate(ys)
        return x, y


def _check_batch(inputs, x):
    """Raises a clear error when a batch does not fit the model's inputs."""
    specs = keras.tree.flatten(inputs)
    arrays = keras.tree.flatten(x)
    if len(specs) != len(arrays):
        raise ValueError(
            f"The model takes {len(specs)} input(s) but a batch holds {len(arrays)}. "
            f"Received: batch shapes {[np.shape(a) for a in arrays]}"
        )
    for spec, a in zip(specs, arrays):
        shape = tuple(spec.shape)
        got = np.shape(a)
        if len(got) != len(shape) or any(
            d is not None and d != g for d, g in zip(shape[1:], got[1:])
        ):
            raise ValueError(
                f"The data does not fit the model's input of shape {shape}. "
                f"Received: a batch of shape {got}"
            )
        if not np.issubdtype(np.asarray(a).dtype, np.number) and np.asarray(a).dtype != bool:
            raise ValueError(
                f"Expected numeric input data. Received: dtype {np.asarray(a).dtype}"
            )


# ---------------------------------------------------------------------------
# Model copies.


@contextlib.contextmanager
def _rng_preserved():
    # Layer copies draw default seeds from Python's global RNG; restoring it
    # keeps measuring from perturbing anything the user seeded (e.g. training
    # run next to a callback).
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def _model_inputs(model, what):
    if not isinstance(model, keras.Model):
        raise ValueError(f"Expected a keras.Model. Received: model of type {type(model).__name__}")
    inputs = _graph_inputs(model)
    if inputs is None:
        raise ValueError(
            f"{what} needs a built Functional or Sequential model with known inputs "
            "(give Sequential models an Input). Received: "
            f"model {model.name!r} of type {type(model).__name__}"
        )
    return inputs


def _walk(model):
    """Yields the leaf layers of ``model``, through nested models, in order."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model) and _is_graph_model(layer):
            yield from _walk(layer)
        else:
            yield layer


def _graph_inputs(model):
    # A Sequential model built from an Input has ``inputs`` but no ``input``
    # until it is called; a Functional model's ``input`` keeps its structure.
    try:
        if isinstance(model, keras.Sequential):
            return model.inputs[0] if model.inputs else None
        return model.input
    except (AttributeError, ValueError, TypeError):
        return None


def _is_graph_model(model):
    if isinstance(model, keras.Sequential):
        return True
    return _graph_inputs(model) is not None and bool(model.layers)


def _copy_layer(layer):
    return layer.__class__.from_config(layer.get_config())


def copy_model(model):
    """Returns an independent copy of ``model`` with bit-identical weights."""
    _model_inputs(model, "Copying")
    with _rng_preserved():
        try:
            copy = keras.models.clone_model(model)
        except ValueError as e:
            raise ValueError(
                "Only Functional and Sequential models can be copied. "
                f"Received: model {model.name!r} of type {type(model).__name__} ({e})"
            ) from None
    for old, new in zip(_walk(model), _walk(copy), strict=True):
        if old.name != new.name:
            raise RuntimeError(f"Layer order changed while copying: {old.name} vs {new.name}")
        if old.weights:
            new.set_weights(old.get_weights())
    return copy


class _ChannelMoments(keras.layers.Layer):
    """Returns ``[[count, shift_1..C, offset_1..C, M2_1..C]]`` of one batch.

    The batch mean is ``shift + offset`` (kept apart so the host can add them
    in float64) and ``M2`` the sum of squared deviations from it, by the
    corrected two-pass formula, which stays accurate in float32 even when the
    mean is large next to the standard deviation.
    """

    def __init__(self, axis, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.axis = axis

    def call(self, x):
        x = ops.cast(x, "float32")
        axis = self.axis % len(x.shape)
        reduce = [i for i in range(len(x.shape)) if i != axis]
        channels = x.shape[axis]
        count = ops.cast(ops.size(x) // channels, "float32")
        shape = [1] * len(x.shape)
        shape[axis] = channels
        first = ops.divide_no_nan(ops.sum(x, axis=reduce), count)
        d = x - ops.reshape(first, shape)
        d_sum = ops.sum(d, axis=reduce)
        offset = ops.divide_no_nan(d_sum, count)
        m2 = ops.sum(ops.square(d), axis=reduce) - offset * d_sum
        row = ops.concatenate([ops.reshape(count, (1,)), first, offset, m2])
        return ops.expand_dims(row, 0)

    def compute_output_shape(self, input_shape):
        return (1, 3 * input_shape[self.axis] + 1)


class _Nested:
    """Marks a nested model for `_Probe` to rebuild with extra outputs."""

    def __init__(self, model):
        self.model = model


class Probe:
    """A flat copy of ``model`` whose outputs are the moments of every BN input.

    Attributes:
        names: BN names (``outer/inner/bn`` for nested models), shallow to deep.
        bns: ``name -> original BN layer``.
        copies: ``name -> BN layer in the probe``.
    """

    def __init__(self, model):
        self._inputs = _model_inputs(model, "Measuring variance shift")
        self._copies = {}
        self._pairs = []
        self._wrapped = {}
        self._keys = {}
        self.bns = {}
        self.copies = {}
        with _rng_preserved():
            inputs, _, records = self._trace(model, "")
        self.names = list(self.bns)
        self._record_keys = [key for key, _ in records]
        self.model = keras.Model(inputs, [t for _, t in records]) if records else None
        self.sync()

    def _copy(self, layer, prefix):
        if isinstance(layer, keras.Model) and _is_graph_model(layer):
            return _Nested(layer)
        if id(layer) not in self._copies:
            copy = _copy_layer(layer)
            self._copies[id(layer)] = copy
            self._pairs.append((layer, copy))
            if isinstance(layer, _BN):
                name = prefix + layer.name
                self._keys[id(copy)] = name
                self.bns[name] = layer
                self.copies[name] = copy
        return self._copies[id(layer)]

    def _trace(self, model, prefix):
        records = []

        def clone_fn(layer):
            return self._copy(layer, prefix)

        def call_fn(layer, *args, **kwargs):
            if isinstance(layer, _Nested):
                wrapped, keys, n_main, structure = self._wrap(
                    layer.model, f"{prefix}{layer.model.name}/"
                )
                outputs = wrapped(*args, **kwargs)
                outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
                records.extend(zip(keys, outputs[n_main:]))
                return keras.tree.pack_sequence_as(structure, list(outputs[:n_main]))
            if isinstance(layer, _BN):
                records.append((self._keys[id(layer)], _ChannelMoments(layer.axis)(args[0])))
            return layer(*args, **kwargs)

        if isinstance(model, keras.Sequential):
            spec = keras.tree.flatten(_model_inputs(model, "Measuring variance shift"))[0]
            inputs = keras.Input(batch_shape=spec.shape, dtype=spec.dtype)
            outputs = inputs
            for layer in model.layers:
                outputs = call_fn(clone_fn(layer), outputs)
            return inputs, outputs, records
        try:
            clone = keras.models.clone_model(model, clone_function=clone_fn, call_function=call_fn)
        except ValueError as e:
            raise ValueError(
                "Measuring variance shift needs a Functional or Sequential model. "
                f"Received: model {model.name!r} of type {type(model).__name__} ({e})"
            ) from None
        return clone.input, clone.output, records

    def _wrap(self, model, prefix):
        if id(model) not in self._wrapped:
            inputs, outputs, records = self._trace(model, prefix)
            main = keras.tree.flatten(outputs)
            wrapped = keras.Model(inputs, main + [t for _, t in records])
            self._wrapped[id(model)] = (wrapped, [k for k, _ in records], len(main), outputs)
        return self._wrapped[id(model)]

    def sync(self):
        """Copies the current weights of the original model into the probe."""
        for layer, copy in self._pairs:
            if layer.weights:
                copy.set_weights(layer.get_weights())

    def moments(self, batches):
        """Exact per-channel ``(count, mean, variance)`` of every BN input.

        Args:
            batches: A `Batches`.

        Returns:
            ``name -> (count, mean, var)`` with float64 arrays.
        """
        acc = {}
        seen = 0
        for x, _ in batches:
            _check_batch(self._inputs, x)
            size = _num_examples(x)
            if size == 0:
                continue
            seen += size
            outputs = self.model.predict_on_batch(x)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            for key, rows in zip(self._record_keys, outputs):
                for row in np.asarray(rows, dtype=np.float64).reshape(-1, rows.shape[-1]):
                    _merge(acc, key, row)
        self.num_examples = seen
        if not seen:
            raise ValueError(
                "The data set is empty: no examples reached the model. "
                f"Received: {batches.steps if batches.steps else 'all'} step(s) of no data"
            )
        return {key: (n, mean, m2 / n) for key, (n, mean, m2) in acc.items()}


def _merge(acc, key, row):
    # Chan et al.'s parallel update: exact pooled mean and M2 of two groups.
    n_b = row[0]
    if n_b <= 0:
        return
    c = (len(row) - 1) // 3
    mean_b = row[1 : c + 1] + row[c + 1 : 2 * c + 1]
    m2_b = np.maximum(row[2 * c + 1 :], 0.0)
    if key not in acc:
        acc[key] = (n_b, mean_b.copy(), m2_b.copy())
        return
    n_a, mean_a, m2_a = acc[key]
    n = n_a + n_b
    delta = mean_b - mean_a
    acc[key] = (n, mean_a + delta * (n_b / n), m2_a + m2_b + delta**2 * (n_a * n_b / n))


def _value(v):
    return np.asarray(ops.convert_to_numpy(v), dtype=np.float64)


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
    (``name -> np.ndarray``); ``num_examples`` is the number of examples seen.
    An empty result means the model has no BatchNormalization layer.
    """

    def __init__(self, moving_var, real_var, moving_mean, real_mean, num_examples):
        self.moving_var = dict(moving_var)
        self.real_var = dict(real_var)
        self.moving_mean = dict(moving_mean)
        self.real_mean = dict(real_mean)
        self.num_examples = num_examples
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
        return f"VarianceShift({{{body}}})"


def _measure(probe, batches):
    if probe.model is None:
        return VarianceShift({}, {}, {}, {}, 0)
    moments = probe.moments(batches)
    moving_var, real_var, moving_mean, real_mean = {}, {}, {}, {}
    for name in probe.names:
        bn = probe.bns[name]
        moving_var[name] = _value(bn.moving_variance)
        moving_mean[name] = _value(bn.moving_mean)
        count, real_mean[name], real_var[name] = moments[name]
    return VarianceShift(moving_var, real_var, moving_mean, real_mean, probe.num_examples)


def measure_variance_shift(model, data, steps=None, *, batch_size=DEFAULT_BATCH_SIZE):
    """Measures the paper's variance-shift statistic at every BN layer.

    In inference mode (dropout off, BN on its moving statistics) the data is
    passed through the model; for each BN the exact pooled per-channel
    variance of its input over all examples (``real_var``) is compared with
    its moving variance: ``max(real / moving, moving / real)`` of the two
    channel means. The model is not modified.

    Args:
        model: A built Functional or Sequential model (nested models allowed).
        data: NumPy inputs ``x`` or ``(x, y)``, a `tf.data.Dataset` or a
            `keras.utils.PyDataset` (labels are ignored).
        steps: Optional number of batches to use (all if None).
        batch_size: Batch size for NumPy inputs.

    Returns:
        A `VarianceShift`: ordered mapping BN name -> statistic, shallow to
        deep, with the raw arrays in ``.moving_var`` / ``.real_var``. Empty
        when the model has no BatchNormalization layer.

    Example:

    >>> model = keras.Sequential([keras.Input((1,)), keras.layers.BatchNormalization()])
    >>> shift = measure_variance_shift(model, np.array([[1.0], [-1.0]]))
    >>> dict(shift)  # a fresh BN's moving variance is 1, like this input's
    {'batch_normalization': 1.0}
    """
    batches = Batches(data, steps, batch_size)
    return _measure(Probe(model), batches)


def recalibrate_bn(model, data, steps=None, *, batch_size=DEFAULT_BATCH_SIZE, inplace=False):
    """Re-estimates every BN's moving mean and variance on ``data`` (BN re-estimation).

    Dropout is off and every weight frozen; each BN's moving statistics are
    replaced by the exact population mean and variance of its input, computed
    with every BN upstream of it already recalibrated. All BNs are measured in
    each pass over the data and passes repeat until the statistics stop
    changing (a BN is exact one pass after everything upstream of it), so a
    model needs at most one pass per BN on its longest chain of BNs (52 for
    MobileNetV2), plus one to confirm; already calibrated models take a
    single pass. gamma, beta and
    every other weight stay bit-identical. ``data`` must be re-iterable and
    should not be randomly augmented, or the passes never agree (then one pass
    per BN is made, which is still exact for the last pass's data).

    Args:
        model: A built Functional or Sequential model (nested models allowed).
        data: NumPy inputs ``x`` or ``(x, y)``, a `tf.data.Dataset` or a
            `keras.utils.PyDataset`.
        steps: Optional number of batches per pass (all if None).
        batch_size: Batch size for NumPy inputs.
        inplace: If False (default) the model is left untouched and a
            recalibrated copy is returned (the copy is compiled like the
            original but has a fresh optimizer state). If True the model's
            own BN statistics are overwritten and the model is returned.

    Returns:
        The recalibrated model.

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization()])
    >>> fixed = recalibrate_bn(model, np.arange(32.0).reshape(8, 4))
    >>> fixed is model, round(float(fixed.layers[0].moving_mean[0]), 2)
    (False, 14.0)
    """
    batches = Batches(data, steps, batch_size)
    if not batches.reiterable:
        raise ValueError(
            "recalibrate_bn passes over the data several times; pass NumPy arrays, "
            "a tf.data.Dataset or a PyDataset. Received: a one-shot iterator of "
            f"type {type(data).__name__}"
        )
    probe = Probe(model)
    if probe.model is None:
        raise ValueError(
            f"There is no BatchNormalization layer to recalibrate. Received: model {model.name!r}"
        )
    used = {n: (_value(c.moving_mean), _value(c.moving_variance)) for n, c in probe.copies.items()}
    for _ in range(len(probe.names)):
        moments = probe.moments(batches)
        new = {n: (moments[n][1], moments[n][2]) for n in probe.names}
        for name, (mean, var) in new.items():
            copy = probe.copies[name]
            copy.moving_mean.assign(mean.astype(copy.moving_mean.dtype))
            copy.moving_variance.assign(var.astype(copy.moving_variance.dtype))
        if all(_close(new[n], used[n], probe.copies[n].epsilon) for n in probe.names):
            break
        used = new
    target = model if inplace else copy_model(model)
    by_id = {id(bn): name for name, bn in probe.bns.items()}
    for old, new_layer in zip(_walk(model), _walk(target), strict=True):
        name = by_id.get(id(old))
        if name is not None:
            src = probe.copies[name]
            new_layer.moving_mean.assign(ops.convert_to_numpy(src.moving_mean))
            new_layer.moving_variance.assign(ops.convert_to_numpy(src.moving_variance))
    return target


def _close(a, b, epsilon):
    (mean_a, var_a), (mean_b, var_b) = a, b
    scale = var_b + epsilon
    return bool(
        np.all(np.abs(var_a - var_b) <= _RTOL * scale)
        and np.all(np.abs(mean_a - mean_b) <= _RTOL * np.sqrt(scale))
    )


@dataclasses.dataclass(frozen=True)
class Inconsistency:
    """Training-mode vs inference-mode predictions of the same weights.

    Attributes:
        train_mode_accuracy: Accuracy with dropout on and BN on batch
            statistics (None without labels).
        inference_accuracy: Accuracy in inference mode (None without labels).
        disagreement: Fraction of examples whose argmax prediction differs.
        num_examples: Number of examples compared.
    """

    train_mode_accuracy: object
    inference_accuracy: object
    disagreement: float
    num_examples: int

    @property
    def gap(self):
        """``train_mode_accuracy - inference_accuracy`` (None without labels)."""
        if self.train_mode_accuracy is None:
            return None
        return self.train_mode_accuracy - self.inference_accuracy


class _TrainingMode(keras.layers.Layer):
    """Calls a model in training mode whatever mode it is called in.

    ``predict`` forces ``training=False`` on a Functional graph, even over a
    ``training=True`` recorded in it; a layer that passes the flag itself is
    the public way to get training-mode outputs from ``predict_on_batch``.
    """

    def __init__(self, model, **kwargs):
        super().__init__(**kwargs)
        self.inner = model

    def call(self, x):
        return self.inner(x, training=True)


def _classes(pred):
    pred = np.asarray(pred)
    if pred.ndim >= 2 and pred.shape[-1] == 1:
        return (pred[..., 0] > 0.5).astype(np.int64)
    return np.argmax(pred, axis=-1)


def _labels(y, pred):
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
    inputs = _model_inputs(model, "prediction_inconsistency")
    outputs = model.outputs
    if len(outputs) != 1:
        raise ValueError(
            "prediction_inconsistency needs a single-output classifier. "
            f"Received: model {model.name!r} with {len(outputs)} outputs"
        )
    inference = copy_model(model)
    # A second copy: training-mode passes update its BN moving statistics.
    train_copy = copy_model(model)
    train_inputs = keras.tree.map_structure(
        lambda t: keras.Input(batch_shape=t.shape, dtype=t.dtype), _graph_inputs(train_copy)
    )
    train_mode = keras.Model(train_inputs, _TrainingMode(train_copy)(train_inputs))
    n = agree = correct_train = correct_inf = 0
    has_labels = True
    for x, y in batches:
        _check_batch(inputs, x)
        if _num_examples(x) == 0:
            continue
        pred_inf = np.asarray(inference.predict_on_batch(x))
        pred_train = np.asarray(train_mode.predict_on_batch(x))
        c_inf, c_train = _classes(pred_inf), _classes(pred_train)
        n += c_inf.size
        agree += int(np.sum(c_inf == c_train))
        if y is None:
            has_labels = False
        elif has_labels:
            labels = _labels(y, pred_inf)
            correct_inf += int(np.sum(c_inf == labels))
            correct_train += int(np.sum(c_train == labels))
    if n == 0:
        raise ValueError("The data set is empty: no examples reached the model. Received: no examples")
    return Inconsistency(
        correct_train / n if has_labels else None,
        correct_inf / n if has_labels else None,
        1.0 - agree / n,
        n,
    )
