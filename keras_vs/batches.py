"""Data for measuring: NumPy arrays, tf.data, PyDataset or any iterable, as NumPy batches.

`Batches` turns what a user passes as calibration or measurement data into
NumPy ``(x, y)`` batches and checks each batch against the model's inputs
(shape, numeric dtype, finite values) before anything is computed from it.
"""

import sys

import keras
import numpy as np

from keras_vs import checks

__all__ = ["DEFAULT_BATCH_SIZE", "Batches", "check_batch", "checked", "empty_error", "num_examples"]

DEFAULT_BATCH_SIZE = 32


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
        bounded: Refuse infinite data without ``steps`` (False when only a
            `head` of it is read).
    """

    def __init__(self, data, steps=None, batch_size=DEFAULT_BATCH_SIZE, bounded=True):
        self.steps = checks.integer("steps", steps, allow_none=True)
        self.batch_size = checks.integer("batch_size", batch_size)
        self.reiterable = True
        self._arrays = None
        if data is None or isinstance(data, (str, bytes)):
            raise ValueError(
                "Expected data as NumPy arrays, (x, y), a tf.data.Dataset or a "
                f"keras.utils.PyDataset. Received: data={data!r}"
            )
        if isinstance(data, keras.utils.PyDataset):
            n = data.num_batches
            if n is None and self.steps is None and bounded:
                raise ValueError(
                    "The PyDataset is infinite (num_batches is None): pass steps. "
                    f"Received: data={data!r}, steps=None"
                )
            self._kind, self._data = "pydataset", data
            self._len = n
        elif _is_tf_dataset(data):
            import tensorflow as tf

            infinite = data.cardinality() == tf.data.INFINITE_CARDINALITY
            if infinite and self.steps is None and bounded:
                raise ValueError(
                    "The tf.data.Dataset is infinite: pass steps. Received: steps=None"
                )
            self._kind, self._data = "tf", data
            spec = data.element_spec
            if isinstance(spec, tuple) and len(spec) > 1 and getattr(spec[1], "shape", None) is not None \
                    and spec[1].shape.rank == 0:
                raise ValueError(_UNBATCHED.format("tf.data.Dataset", "()"))
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

    @property
    def num_batches(self):
        """The number of batches an iteration yields, or None when unknown."""
        known = None
        if self._kind == "arrays":
            known = -(-self._arrays[2] // self.batch_size)
        elif self._kind == "pydataset":
            known = self._len
        elif self._kind == "tf":
            cardinality = int(self._data.cardinality())
            known = cardinality if cardinality >= 0 else None
        if known is None:
            return self.steps
        return known if self.steps is None else min(known, self.steps)

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
            y = None if y is None else np.asarray(y)
            if y is not None and y.ndim == 0:
                raise ValueError(_UNBATCHED.format(self._kind_name(), y.shape))
            yield _to_numpy(x), y

    def _kind_name(self):
        return {"tf": "tf.data.Dataset", "pydataset": "PyDataset"}.get(self._kind, "data")

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
            raise empty_error(self.steps)
        x = keras.tree.map_structure(lambda *a: np.concatenate(a), *xs)
        y = None if any(v is None for v in ys) else np.concatenate(ys)
        return x, y


_UNBATCHED = (
    "The {0} yields single examples, not batches (its labels have shape {1}): batch it "
    "first, e.g. ds.batch(128). Received: labels of shape {1}"
)


def num_examples(x):
    """The common first dimension of the arrays in ``x``."""
    return _num_examples(x)


def empty_error(steps=None):
    """The one error for data in which no example reached the model.

    Args:
        steps: The number of batches asked for (None: all of them).
    """
    read = "every batch" if steps is None else f"{steps} step(s)"
    return ValueError(
        f"The data set is empty: no examples reached the model. Received: no examples in {read}"
    )


def checked(batches, inputs):
    """``(x, y, size)`` for every non-empty batch, each checked against `inputs`.

    Args:
        batches: A `Batches`.
        inputs: The model's symbolic inputs (what `check_batch` takes).

    Raises:
        ValueError: A batch does not fit `inputs` (`check_batch`, naming
            it), or no batch holds an example (`empty_error`, raised once
            the data is exhausted).

    Example:

    >>> x = keras.Input((2,))
    >>> [size for _, _, size in checked(Batches(np.ones((5, 2)), None, 2), [x])]
    [2, 2, 1]
    """
    seen = False
    for index, (x, y) in enumerate(batches):
        check_batch(inputs, x, index)
        size = _num_examples(x)
        if size:
            seen = True
            yield x, y, size
    if not seen:
        raise empty_error(batches.steps)


def check_batch(inputs, x, index=None):
    """Raises a clear `ValueError` when a batch does not fit the model's inputs.

    Args:
        inputs: The model's symbolic inputs (flat list or structure).
        x: One batch of NumPy inputs.
        index: The batch's position in the data, for the message.
    """
    where = "" if index is None else f"batch {index}: "
    specs = keras.tree.flatten(inputs)
    arrays = keras.tree.flatten(x)
    if len(specs) != len(arrays):
        raise ValueError(
            f"{where}the model takes {len(specs)} input(s) but the batch holds "
            f"{len(arrays)}. Received: batch shapes {[np.shape(a) for a in arrays]}"
        )
    for spec, a in zip(specs, arrays):
        a = np.asarray(a)
        shape = tuple(spec.shape)
        got = a.shape
        if len(got) != len(shape) or any(
            d is not None and d != g for d, g in zip(shape[1:], got[1:])
        ):
            raise ValueError(
                f"{where}the data does not fit the model's input of shape {shape}. "
                f"Received: a batch of shape {got}"
            )
        numeric = np.issubdtype(a.dtype, np.number) or a.dtype == bool
        if not numeric and not _is_string_input(spec, a):
            raise ValueError(f"{where}expected numeric input data. Received: dtype {a.dtype}")
        if np.issubdtype(a.dtype, np.inexact) and not np.all(np.isfinite(a)):
            bad = int(np.size(a) - np.count_nonzero(np.isfinite(a)))
            raise ValueError(
                f"{where}the data holds {bad} NaN or infinite value(s); measuring or "
                "calibrating on it would write NaN into the statistics. Clean or drop "
                f"that batch. Received: a batch of shape {got} with non-finite values"
            )


def _is_string_input(spec, array):
    # String inputs feed lookup/TextVectorization layers.
    return str(getattr(spec, "dtype", "")) == "string" and array.dtype.kind in "OSU"
