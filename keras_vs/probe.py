"""The tap: the user's model inlined with a recorder of every BN input's moments.

A `Probe` is the user's model inlined by `keras_vs.graph.inline` (the
original layers are called, nothing is re-instantiated) that computes, next
to every BN call, one row of per-batch moments (`keras_vs.moments`). One
recorder writes the rows of all BNs, side by side, as one row of a device
buffer inside the compiled function (one small write per batch, whatever the
depth); the host reads the buffer once per `capacity` batches and pools each
BN's rows exactly. The probe is compiled once and reused for every pass over
the data (`probe_for` caches it per model and method).

What the BNs do while their inputs are recorded is the probe's method
(`keras_vs.methods.METHODS`: "inference" for measuring, "precise", "exact").

The probe's own layers (moments, recorder, training-mode norms) have private
names that no layer of the model holds (`keras_vs.runner.private_names`),
compute in float32 whatever the dtype policy, and a pass leaves the model's
state as it was (`keras_vs.graph.snapshot`: stateful RNNs advance only
during the pass).

Example:

>>> import keras, numpy as np
>>> from keras_vs.batches import Batches
>>> model = keras.Sequential([keras.Input((1,)), keras.layers.BatchNormalization(name="bn")])
>>> n, mean, var = Probe(model).moments(Batches(np.array([[1.0], [3.0]])))["bn"]
>>> float(n), float(mean[0]), float(var[0])
(2.0, 2.0, 1.0)
"""

import warnings
import weakref

import keras
import numpy as np
from keras import ops

from keras_vs import batches as batches_lib
from keras_vs import graph as graph_lib
from keras_vs import methods as methods_lib
from keras_vs import moments as moments_lib
from keras_vs import runner
from keras_vs.deprecation import KerasVsDeprecationWarning
from keras_vs.graph.snapshot import Snapshot
from keras_vs.graph.tree import owned

__all__ = ["Probe", "probe_for"]

DEFAULT_CAPACITY = 256
# ...or fewer, so that the device buffer stays below this many bytes.
BUFFER_BYTES = 16 * 2**20
# model -> {method: (graph signature, Probe)}: a probe is built and compiled
# once per model and method, then reused by every later call on the same graph.
_CACHE = weakref.WeakKeyDictionary()


# Old names of this module -> (module, name) of their new homes (deprecated).
_MOVED = {
    "run_function": ("runner", "run_function"),
    "state_writer": ("runner", "state_writer"),
    "host_values": ("runner", "host_values"),
    "private_names": ("runner", "private_names"),
    "moments_row": ("moments", "moments_row"),
    "batch_norm_train": ("moments", "batch_norm_train"),
    "pooled": ("moments", "pooled"),
    "merge": ("moments", "merge"),
    "finish": ("moments", "finish"),
}


def __getattr__(name):
    if name == "MODES":
        warnings.warn("keras_vs.probe.MODES is deprecated: use keras_vs.methods.METHODS "
                      '(mode "copies" is method "exact").', KerasVsDeprecationWarning, stacklevel=2)
        return tuple(methods_lib.METHODS)
    if name in _MOVED:
        module, new = _MOVED[name]
        warnings.warn(f"keras_vs.probe.{name} is deprecated: use keras_vs.{module}.{new}.",
                      KerasVsDeprecationWarning, stacklevel=2)
        return getattr({"runner": runner, "moments": moments_lib}[module], new)
    raise AttributeError(f"module 'keras_vs.probe' has no attribute {name!r}")


def probe_for(model, method="inference"):
    """The cached `Probe` of `model` for `method`, built on first use.

    A Functional graph never changes; a Sequential one can (``add``/``pop``),
    so the cache entry is keyed by the identity of every node of the tree.
    """
    signature = graph_lib.signature(model)
    try:
        entry = _CACHE.setdefault(model, {})
    except TypeError:  # not weak-referenceable: no caching
        return Probe(model, method)
    cached = entry.get(method)
    if cached is not None and cached[0] == signature:
        return cached[1]  # method "exact": the caller resyncs what it reads
    probe = Probe(model, method)
    entry[method] = (signature, probe)
    return probe


class _Moments(keras.layers.Layer):
    """`moments_row` of its input along `axis`, in float32 whatever the dtype policy."""

    def __init__(self, axis, **kwargs):
        super().__init__(dtype="float32", autocast=False, **kwargs)  # inputs as they come
        self.axis = axis
        self.supports_masking = True  # moments over every position, as before

    def call(self, x):
        return moments_lib.moments_row(x, self.axis)

    def compute_mask(self, x, mask=None):
        return None

    def compute_output_spec(self, x):
        return keras.KerasTensor((1, 1 + 3 * x.shape[self.axis]), dtype="float32")


class _Recorder(keras.layers.Layer):
    """Writes one row (every BN's `moments_row`, side by side) at ``index`` of a device buffer."""

    def __init__(self, capacity, **kwargs):
        super().__init__(dtype="float32", **kwargs)
        self.capacity = capacity

    def build(self, input_shape):
        width = sum(int(shape[-1]) for shape in input_shape)
        self.rows = self.add_weight(
            shape=(self.capacity, width), initializer="zeros", trainable=False, name="rows",
        )
        self.index = self.add_weight(
            shape=(), initializer="zeros", dtype="int32", trainable=False, name="index"
        )

    def call(self, rows):
        row = rows[0] if len(rows) == 1 else ops.concatenate(rows, axis=1)
        i = ops.cast(self.index.value, "int32")
        self.rows.assign(ops.slice_update(self.rows.value, ops.stack([i, ops.zeros_like(i)]), row))
        self.index.assign(i + 1)
        return ops.zeros((1, 1), "float32")

    def compute_output_spec(self, rows):
        return keras.KerasTensor((1, 1), dtype="float32")


class Probe:
    """A compiled tap of ``model`` that yields the moments of every BN input.

    Args:
        model: A built Functional or Sequential model (nested models allowed).
        method: A name in `keras_vs.methods.METHODS`: what the BNs do
            while their inputs are recorded.
        capacity: Most batches buffered on the device between two host
            reads (fewer for very wide models: see `BUFFER_BYTES`).

    Attributes:
        method: The `keras_vs.methods.Method` instance (it owns what it
            derives from the probe: copies, stage plan).
        names: BN names (``outer/inner/bn`` in nested models), shallow to deep.
        bns: ``name -> original BN-like layer``.
        hidden: ``custom layer name -> names of BNs inside it`` that cannot be
            reached (kept for callers; BNs inside custom layers are reached
            by patching their call while measuring, which runs eagerly).
        inputs: The model's flat symbolic inputs.
        sources: ``(name, symbolic moments row)`` for every BN call site the
            graph reaches: what its recorder stores.
        new_name: ``new_name(kind)``: a private name for a helper built on
            the probe (`keras_vs.runner.private_names`).
        not_called: BNs that the last `moments` pass never called (owned by
            a layer that does not call them, or by the model outside its
            graph), so have no moments: in `names`, not in the result.
        state: The `keras_vs.graph.snapshot.Snapshot` of what a pass may
            write in the model (stateful RNN states), put back after it.
    """

    def __init__(self, model, method="inference", capacity=DEFAULT_CAPACITY):
        self.method = methods_lib.get(method)
        if not isinstance(model, keras.Model):
            raise ValueError(
                f"Expected a keras.Model. Received: model of type {type(model).__name__}"
            )
        self.capacity = int(capacity)
        self.bns, self.hidden = {}, {}
        self._recorder = None
        self._segments = []  # (name, first column, channels) of each row in the buffer
        self._patches = []  # (name, BN inside a custom layer)
        self._jitted = None  # JAX: the compiled run, built on first use
        self.sources = []
        self.not_called = ()
        self.new_name = runner.private_names(model)
        inputs, outputs, taps, self.flat = graph_lib.inline(model, self._hook)
        self.inputs = keras.tree.flatten(inputs)
        self._add_uncalled(model)
        self.names = list(self.bns)
        self.model = None
        flags = [self._record(taps)] if taps else []
        name = self.new_name("probe")
        if self._patches:  # hidden BNs run inside the model's own outputs
            self.model = keras.Model(inputs, flags + keras.tree.flatten(outputs), name=name)
        elif flags:
            self.model = keras.Model(inputs, flags[0], name=name)
        self.state = Snapshot(model)
        self.method.resync()
        self._pending = 0

    def _record(self, taps):
        """One recorder for every tapped row: a single write per batch."""
        width = 0
        for name, row in taps:  # a BN in a nested model called twice: two rows
            self._segments.append((name, width, (row.shape[-1] - 1) // 3))
            width += row.shape[-1]
        self.capacity = max(1, min(self.capacity, BUFFER_BYTES // (4 * width)))
        self._recorder = _Recorder(self.capacity, name=self.new_name("recorder"))
        return self._recorder([row for _, row in taps])

    @property
    def patched(self):
        """Whether some BNs sit inside custom layers (reached by patching)."""
        return bool(self._patches)

    def _hook(self, site, args, kwargs):
        layer = site.layer
        _, hidden_bns = graph_lib.hidden(layer)
        for bn in hidden_bns:
            self._hide(site.name, bn)
        if not graph_lib.is_bn_like(layer):
            return layer(*args, **kwargs)
        x = args[0] if args else kwargs.get("inputs")
        axis = graph_lib.bn_axis(layer, len(x.shape))
        name = self._name(site)
        row = _Moments(axis, name=self.new_name("moments"))(x)
        self.sources.append((name, row))
        site.tap(name, row)  # recorded with the others by `_record`
        return self.method.graph_call(self, name, layer, methods_lib.GraphCall(args, kwargs, x, row))

    def _add_uncalled(self, model):
        """Registers the BNs `model` owns that neither its graph nor a patch calls
        (a keras-hub task's unused backbone ``post_bn``): always `not_called`."""
        reached = {id(b) for b in self.bns.values()}
        reached |= {id(graph_lib.unwrap(b)) for b in self.bns.values()}
        for path, layer in owned(model):
            if graph_lib.is_bn_like(layer) and id(layer) not in reached:
                self.bns[path] = layer

    def _hide(self, where, bn):
        """Registers a BN inside a custom layer: its call is patched while measuring."""
        if any(b is bn for b in self.bns.values()):
            return
        name = f"{where}/{bn.name}"
        self.bns[name] = bn
        if not bn.built:  # never called (no statistics): nothing to patch or copy
            return
        self.method.hidden(name, bn)
        self._patches.append((name, bn))

    def _patched(self, acc):
        """Context: hidden BNs record their inputs into `acc` on the host."""
        return graph_lib.calls_replaced(
            [(bn, self._patch(name, bn, acc)) for name, bn in self._patches]
        )

    def _patch(self, name, bn, acc):
        original = graph_lib.own_call(bn)
        method = self.method

        def call(inputs, training=None, mask=None, **kwargs):
            row = moments_lib.moments_row(inputs, graph_lib.bn_axis(bn, len(inputs.shape)))
            moments_lib.merge(acc, name, np.asarray(ops.convert_to_numpy(row), np.float64)[0])
            return method.host_call(name, bn, original, methods_lib.HostCall(inputs, row, mask, kwargs))

        return call

    def _name(self, site):
        # A BN called at several sites (shared layer or nested model) is one
        # BN: its moments pool over every call.
        for name, bn in self.bns.items():
            if bn is site.layer:
                return name
        self.bns[site.name] = site.layer
        return site.name

    def moments(self, batches, compiled=None):
        """Exact per-channel ``(count, mean, variance)`` of every BN input.

        Args:
            batches: A `keras_vs.batches.Batches`.
            compiled: Run the compiled probe (True) or call it eagerly
                (False). None: compile unless the data is known to hold at
                most `keras_vs.runner.EAGER_BATCHES` batches, where compiling
                costs more than it saves.

        Returns:
            ``name -> (count, mean, var)`` with float64 arrays for every BN the
            pass called; the number of examples read is kept in
            ``num_examples``, the BNs never called in ``not_called``.
        """
        acc = {}
        seen = 0
        self.reset()
        if self._patches:  # patched calls record on the host: eager only
            compiled = False
        run = self.runner(batches, compiled)
        with self._patched(acc), self.state:  # stateful layers as they were after the pass
            for x, _, size in batches_lib.checked(batches, self.inputs):
                seen += size
                run(x)
                self.recorded(acc)
        self.flush(acc)
        self.num_examples = seen
        self.not_called = tuple(n for n in self.names if n not in acc)
        return moments_lib.finish(acc)

    def runner(self, batches, compiled=None):
        """``run(x)``: one batch through the probe, compiled or eager.

        On JAX the compiled run is one jitted program that writes back only
        the recorder's buffer (`keras_vs.runner.state_writer`): Keras'
        ``predict_on_batch`` writes back every variable and copies the outputs
        to the host after each batch, which on a GPU cost more than the pass
        itself.
        """
        if (keras.backend.backend() != "jax" or not runner.compiles(self.model, batches, compiled)
                or not graph_lib.supports_jit(self.model)):  # as predict_on_batch decides
            return runner.run_function(self.model, batches, compiled)
        if self._jitted is None:
            self._jitted = runner.state_writer(self.model, self._recorder.variables)
        return self._jitted.bound()  # nothing else assigns the model's variables during a pass

    def reset(self):
        """Empties the device buffer."""
        if self._recorder is not None:
            self._recorder.index.assign(0)
        self._pending = 0

    def recorded(self, acc):
        """Counts one recorded batch; reads the buffers into `acc` when full."""
        self._pending += 1
        if self._pending == self.capacity:
            self.flush(acc)

    def flush(self, acc):
        """Merges the buffered rows into `acc` (``name -> (n, mean, M2)``)."""
        if self._pending and self._recorder is not None:
            # Every run writes one row (a failed run raises, and the next
            # `moments` starts with `reset`), so the host knows the count.
            rows = self._recorder.rows.value[: self._pending]
            rows = np.asarray(ops.convert_to_numpy(rows), dtype=np.float64)
            for name, start, c in self._segments:
                moments_lib.merge(acc, name, moments_lib.pooled(rows[:, start : start + 3 * c + 1]))
        self.reset()
