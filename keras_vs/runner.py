"""Running a model over checked batches on this backend, as fast as the backend allows.

What every tool that passes data through a helper model (a probe, a stage,
the two-mode model of `prediction_inconsistency`) shares:

- `run_function`: ``run(x)`` for a model, compiled (``predict_on_batch``) or
  eager for little data, with NumPy strings fed as TF strings.
- `state_writer` (JAX): one call of a model as one jitted program that
  writes back only the variables it changes and leaves its outputs on the
  device, so batches queue without a sync.
- `program`: a stage model as one compiled program of its own (a jitted
  `stateless_call` on JAX, a `tf.function` on TF) and `placer`, data as
  such programs take it.
- `host_values`: many variables read from the device in one transfer.
- `private_names`: names for helper layers and models that no layer of the
  user's model holds.

Example:

>>> import keras, numpy as np
>>> from keras_vs.batches import Batches
>>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
>>> run = run_function(model, Batches(np.ones((4, 2)), None, 2))
>>> tuple(run(np.ones((2, 2))).shape)
(2, 1)
"""

import functools
import itertools

import keras
import numpy as np
from keras import ops

from keras_vs import graph as graph_lib

__all__ = [
    "EAGER_BATCHES",
    "compiles",
    "host_values",
    "placer",
    "private_names",
    "program",
    "programs_supported",
    "run_function",
    "state_writer",
]

# Up to this many batches a model runs eagerly: tracing and compiling a big
# graph costs more than it saves on so little data.
EAGER_BATCHES = 2
_UIDS = itertools.count(1)


def private_names(model):
    """``name(kind)``: a new name for a helper layer or model built around `model`.

    Names are ``keras_vs_<kind>_<n>``, unique in the process and held by no
    layer or nested model of `model`: a model loaded from a file keeps its
    layers' names ("multiply", ...) while Keras' automatic names restart at
    zero, so helpers never take automatic names next to the user's layers.
    """
    taken = graph_lib.ModelGraph(model).taken_names()

    def name(kind):
        while True:
            candidate = f"keras_vs_{kind}_{next(_UIDS)}"
            if candidate not in taken:
                return candidate

    return name


def run_function(model, batches, compiled=None):
    """``run(x) -> outputs`` for `model`: compiled, or eager for little data.

    Args:
        model: A Functional model.
        batches: The `keras_vs.batches.Batches` it will run on.
        compiled: True, False, or None to decide from the number of batches.
    """
    if _has_strings(model):
        # NumPy string arrays (dtype object) reach lookup layers as tf.string
        # tensors only; strings exist on the TensorFlow backend alone.
        return functools.partial(_call_with_strings, model)
    if compiles(model, batches, compiled):
        return model.predict_on_batch
    return lambda x: model(x, training=False)


def _call_with_strings(model, x):
    import tensorflow as tf

    def as_tensor(a):
        a = np.asarray(a)
        return tf.convert_to_tensor(a.astype(str)) if a.dtype.kind in "OSU" else a

    return model(keras.tree.map_structure(as_tensor, x), training=False)


def _has_strings(model):
    return any(str(t.dtype) == "string" for t in model.inputs)


def compiles(model, batches, compiled):
    """Whether `run_function` runs `model` compiled."""
    if _has_strings(model):
        return False
    if compiled is None:
        n = batches.num_batches
        return n is None or n > EAGER_BATCHES
    return bool(compiled)


class _StateWriter:
    """`state_writer`'s ``run``: one jitted step per set of `trainable` flags."""

    def __init__(self, model, written, training):
        self.model, self.training = model, training
        self.ids = {id(v) for v in written}
        # A built model's state is fixed; walking its layers for it took ~1 ms a
        # batch (twice: trainable and not), as much as a GPU pass of a few batches.
        self.state = model.variables
        self.programs = {}  # trainable flags -> (trainable, others, kept, jitted step)

    def program(self):
        # What Keras' `trainable_variables` reads, without the walk.
        flags = tuple(self.model.trainable and v.trainable for v in self.state)
        if flags not in self.programs:  # rebuilt only if the user changes `trainable` flags
            import jax

            trainable = [v for v, f in zip(self.state, flags) if f]
            non_trainable = [v for v, f in zip(self.state, flags) if not f]
            slots = tuple(i for i, v in enumerate(non_trainable) if id(v) in self.ids)
            step = functools.partial(_step, self.model, slots, self.training)
            self.programs[flags] = (
                trainable,
                [v for v in non_trainable if id(v) not in self.ids],
                [non_trainable[i] for i in slots],
                jax.jit(step, donate_argnums=2),
            )
        return self.programs[flags]

    def bound(self):
        """``run(x)`` reading every variable outside `written` once, now: for
        a pass over many batches in which nothing else assigns them (reading
        ~250 values a batch cost ~1 ms)."""
        trainable, others, kept, step = self.program()
        fixed = [v.value for v in trainable], [v.value for v in others]
        return functools.partial(_run_step, step, fixed, kept)

    def __call__(self, x):
        return self.bound()(x)


def _step(model, slots, training, trainable_values, other_values, kept_values, x):
    """One jitted call: `model` on `x`, returning its outputs and the `slots`' new values."""
    values = list(other_values)
    for i, value in zip(slots, kept_values):  # ascending: back in place
        values.insert(i, value)
    outputs, new = model.stateless_call(trainable_values, values, x, training=training)
    return outputs, [new[i] for i in slots]


def _run_step(step, fixed, kept, x):
    outputs, new = step(*fixed, [v.value for v in kept], x)
    for variable, value in zip(kept, new):
        variable.assign(value)
    return outputs


def state_writer(model, written, training=False):
    """JAX: ``run(x) -> outputs``, one call of `model` as one jitted program.

    Only the variables in `written` are written back after a batch (their
    buffers donated to the program), and nothing is copied to the host, so
    batches queue on the device without a sync; every other variable is read.
    The outputs stay on the device.

    Args:
        model: A built model whose call updates only `written` (none: a
            jitted forward pass).
        written: The non-trainable variables the call updates.
        training: The call's ``training`` flag.

    Returns:
        ``run(x)``, returning the model's outputs as device arrays; and
        ``run.bound()``, the same for one pass that reads the other
        variables once.

    Example (JAX): ``state_writer(model, model.non_trainable_variables, True)(x)``
    updates every BN's moving statistics from ``x`` as one compiled program.
    """
    return _StateWriter(model, written, training)


def programs_supported(model):
    """Whether `program` can compile `model` here (else run it by ``predict_on_batch``)."""
    backend = keras.backend.backend()
    if backend == "jax":
        return graph_lib.supports_jit(model)
    if backend != "tensorflow":
        return False
    # String, sparse or ragged inputs reach their layers as Keras converts them.
    return not any(
        str(t.dtype) == "string" or getattr(t, "sparse", False) or getattr(t, "ragged", False)
        for t in model.inputs
    )


def program(model):
    """``run(inputs) -> outputs``, `model` as one compiled program; ``run.bound()``.

    JAX: `state_writer` (a jitted `stateless_call`; stateful RNN states
    written back). TF: a `tf.function` traced once for any number of
    examples (the batch dimension left free unless the model fixes it), so
    that every chunk of every call and pass runs the same program.
    """
    if keras.backend.backend() == "jax":
        return state_writer(model, [])
    import tensorflow as tf

    signature = [[tf.TensorSpec(t.shape, t.dtype) for t in model.inputs]]
    function = tf.function(lambda xs: model(xs, training=False), input_signature=signature,
                           autograph=False)
    return _TFProgram(function)


class _TFProgram:
    def __init__(self, function):
        self.function = function

    def __call__(self, xs):
        return self.function(list(xs))

    def bound(self):
        return self


def placer():
    """``place(symbolic input, array) -> tensor``: data as `program`s take it."""
    if keras.backend.backend() == "jax":
        return lambda t, a: ops.convert_to_tensor(a)
    return lambda t, a: ops.convert_to_tensor(a, dtype=t.dtype)


def _flat(xs):
    return ops.concatenate([ops.reshape(x, (-1,)) for x in xs])  # widest dtype


_FLATTEN = []  # JAX: `_flat` jitted, made on first use


def host_values(variables):
    """float64 NumPy copies of many variables, read from the device in one transfer.

    Example: ``mean, var = host_values([bn.moving_mean, bn.moving_variance])``.
    """
    if not variables:
        return []
    parts = [v.value for v in variables]
    # One read per variable cost ~0.4 ms each on TF (a tenth of a pass for 52
    # BNs); on JAX one jitted dispatch instead of one per op (~20 us each on a GPU).
    flatten = _flat
    if keras.backend.backend() == "jax":
        if not _FLATTEN:
            import jax

            _FLATTEN.append(jax.jit(_flat))
        flatten = _FLATTEN[0]
    flat = np.asarray(ops.convert_to_numpy(flatten(parts)), dtype=np.float64)
    ends = np.cumsum([int(np.prod(v.shape)) for v in variables])
    return [part.reshape(v.shape) for part, v in zip(np.split(flat, ends[:-1]), variables)]
