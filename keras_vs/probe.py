"""Per-channel moments of every BN input, accumulated on the device in one pass.

A `Probe` is the user's model inlined by `keras_vs.graph.inline` (the
original layers are called, nothing is re-instantiated) that computes, next
to every BN call, one row of per-batch moments
``[count, shift_1..C, offset_1..C, M2_1..C]``. One recorder writes the rows of
all BNs, side by side, as one row of a device buffer inside the compiled
function (one small write per batch, whatever the depth); the host reads the
buffer once per `capacity` batches and pools each BN's rows in float64 with
the parallel (Chan et al.) formula, which gives the exact pooled mean and
variance over all batches. The probe is compiled once and reused for every
pass over the data.

Modes (what the BNs do while their inputs are recorded):
    ``"inference"``: the BNs normalise with their moving statistics (measuring).
    ``"precise"``: every BN normalises with the statistics of the current batch,
        as in training, without touching its moving statistics (PreciseBN).
    ``"copies"``: the BNs are copies whose moving statistics can be set (exact
        re-estimation by passes).

The probe's own layers (moments, recorder, training-mode norms) have private
names that no layer of the model holds (`private_names`), compute in float32
whatever the dtype policy, and a pass leaves the model's state as it was
(`keras_vs.graph.snapshot`: stateful RNNs advance only during the pass).
"""

import itertools
import weakref

import keras
import numpy as np
from keras import ops

from keras_vs import batches as batches_lib
from keras_vs import graph as graph_lib
from keras_vs.graph.snapshot import Snapshot
from keras_vs.graph.tree import owned

__all__ = [
    "MODES",
    "Probe",
    "finish",
    "merge",
    "pooled",
    "private_names",
    "probe_for",
    "run_function",
]

MODES = ("inference", "precise", "copies")
DEFAULT_CAPACITY = 256
# ...or fewer, so that the device buffer stays below this many bytes.
BUFFER_BYTES = 16 * 2**20
# Up to this many batches a probe runs eagerly: tracing and compiling a big
# graph costs more than it saves on so little data.
EAGER_BATCHES = 2
# model -> {mode: (graph signature, Probe)}: a probe is built and compiled once
# per model and mode, then reused by every later call on the same graph.
_CACHE = weakref.WeakKeyDictionary()
_UIDS = itertools.count(1)


def private_names(model):
    """``name(kind)``: a new name for a helper layer or model built around `model`.

    Names are ``keras_vs_<kind>_<n>``, unique in the process and held by no
    layer or nested model of `model`: a model loaded from a file keeps its
    layers' names ("multiply", ...) while Keras' automatic names restart at
    zero, so helpers never take automatic names next to the user's layers.
    """
    taken = set()
    for view in graph_lib.ModelGraph(model).views:
        taken.add(view.model.name)
        taken.update(node.operation.name for node in view.nodes)

    def name(kind):
        while True:
            candidate = f"keras_vs_{kind}_{next(_UIDS)}"
            if candidate not in taken:
                return candidate

    return name


def probe_for(model, mode="inference"):
    """The cached `Probe` of `model` in `mode`, built on first use.

    A Functional graph never changes; a Sequential one can (``add``/``pop``),
    so the cache entry is keyed by the identity of every node of the tree.
    """
    signature = graph_lib.signature(model)
    try:
        entry = _CACHE.setdefault(model, {})
    except TypeError:  # not weak-referenceable: no caching
        return Probe(model, mode)
    cached = entry.get(mode)
    if cached is not None and cached[0] == signature:
        return cached[1]  # mode "copies": the caller resyncs what it reads
    probe = Probe(model, mode)
    entry[mode] = (signature, probe)
    return probe


def moments_row(x, axis):
    """``[[count, shift, offset, M2]]`` of one batch along every axis but `axis`.

    The batch mean is ``shift + offset`` (kept apart so the host can add them
    in float64): ``shift`` is the batch mean at the first position of every
    non-batch axis (the full batch mean for 2-D inputs), and the mean and
    ``M2`` (sum of squared deviations) of the data less ``shift`` come from
    `keras.ops.moments`, whose two-pass variance is what BN computes in
    training. Shifting first keeps float32 accurate when the mean is large
    next to the standard deviation (|mean|/std of 1e6 is tested); computing
    the shift reads only a slice of the data, and on TF the variance is one
    fused pass.
    """
    x = ops.cast(x, "float32")
    rank = len(x.shape)
    axis = axis % rank
    reduce = [i for i in range(rank) if i != axis]
    channels = x.shape[axis]
    count = ops.cast(ops.size(x) // channels, "float32")
    corner, corner_axis = x, axis
    for i in reversed(reduce):
        if i > 0 and x.shape[i]:  # a static, non-empty axis: index 0 exists
            corner = ops.take(corner, 0, axis=i)
            corner_axis -= i < axis
    corner_reduce = [i for i in range(len(corner.shape)) if i != corner_axis]
    corner_count = ops.cast(ops.size(corner) // channels, "float32")
    shift = ops.divide_no_nan(ops.sum(corner, axis=corner_reduce), corner_count)
    shape = [1] * rank
    shape[axis] = channels
    offset, var = ops.moments(x - ops.reshape(shift, shape), reduce)
    empty = count <= 0  # ops.moments of nothing is NaN
    offset = ops.where(empty, 0.0, offset)
    m2 = ops.where(empty, 0.0, var * count)
    return ops.expand_dims(ops.concatenate([ops.reshape(count, (1,)), shift, offset, m2]), 0)


class _Moments(keras.layers.Layer):
    """`moments_row` of its input along `axis`, in float32 whatever the dtype policy."""

    def __init__(self, axis, **kwargs):
        super().__init__(dtype="float32", autocast=False, **kwargs)  # inputs as they come
        self.axis = axis
        self.supports_masking = True  # moments over every position, as before

    def call(self, x):
        return moments_row(x, self.axis)

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


def _row_statistics(row, channels):
    """Per-channel ``(mean, var)`` of the batch a moments row describes."""
    count = row[0, 0]
    mean = row[0, 1 : channels + 1] + row[0, channels + 1 : 2 * channels + 1]
    var = ops.divide_no_nan(ops.maximum(row[0, 2 * channels + 1 :], 0.0), count)
    return mean, var


def batch_norm_train(bn, x, row=None):
    """What BN computes in training, without updating its moving statistics.

    Computed in float32 (as BN computes under mixed precision) and returned
    in the BN's compute dtype.

    Args:
        bn: A BN-like layer (possibly wrapped).
        x: Its input.
        row: The batch's `moments_row` when already computed (the statistics
            are then read from it rather than computed again).
    """
    inner = graph_lib.unwrap(bn)
    rank = len(x.shape)
    axis = graph_lib.bn_axis(bn, rank)
    if row is None:
        row = moments_row(x, axis)
    # Moments are taken over every position, masked ones included, as
    # measuring does (BN skips masked steps in training).
    mean, var = _row_statistics(row, x.shape[axis])
    out = ops.batch_normalization(
        ops.cast(x, "float32"), mean, var, axis,
        offset=ops.cast(inner.beta, "float32") if inner.center else None,
        scale=ops.cast(inner.gamma, "float32") if inner.scale else None,
        epsilon=inner.epsilon,
    )
    return ops.cast(out, graph_lib.unwrap(bn).compute_dtype)


class _TrainingNorm(keras.layers.Layer):
    """`batch_norm_train` of a BN as a layer of the probe.

    As a Functional op node, ``batch_norm_train`` would hold gamma and beta
    as the constants they were when the probe was built: stale once the
    model trains on, and on JAX deleted once ``predict`` donates them. As a
    layer owning the BN it reads them at every call.
    """

    def __init__(self, bn, **kwargs):
        # autocast=False: the float32 row and the variables are read as they
        # are, whatever the global dtype policy (a mixed one cast them).
        super().__init__(dtype="float32", autocast=False, **kwargs)
        self.bn = bn
        self.supports_masking = True  # the mask passes on, as through the BN

    def call(self, x, row):
        return batch_norm_train(self.bn, x, row)

    def compute_output_spec(self, x, row):
        return keras.KerasTensor(x.shape, dtype=graph_lib.unwrap(self.bn).compute_dtype)


class Probe:
    """A compiled tap of ``model`` that yields the moments of every BN input.

    Args:
        model: A built Functional or Sequential model (nested models allowed).
        mode: One of `MODES`.
        capacity: Most batches buffered on the device between two host
            reads (fewer for very wide models: see `BUFFER_BYTES`).

    Attributes:
        names: BN names (``outer/inner/bn`` in nested models), shallow to deep.
        bns: ``name -> original BN-like layer``.
        copies: ``name -> BN copy`` (mode ``"copies"`` only).
        hidden: ``custom layer name -> names of BNs inside it`` that cannot be
            reached (kept for callers; BNs inside custom layers are reached
            by patching their call while measuring, which runs eagerly).
        inputs: The model's flat symbolic inputs.
        sources: ``(name, symbolic moments row)`` for every BN call site the
            graph reaches: what its recorder stores.
        new_name: ``new_name(kind)``: a private name for a helper built on
            the probe (`private_names`).
        not_called: BNs that the last `moments` pass never called (owned by
            a layer that does not call them, or by the model outside its
            graph), so have no moments: in `names`, not in the result.
        state: The `keras_vs.graph.snapshot.Snapshot` of what a pass may
            write in the model (stateful RNN states), put back after it.
    """

    def __init__(self, model, mode="inference", capacity=DEFAULT_CAPACITY):
        if mode not in MODES:
            raise ValueError(f"Expected mode in {MODES}. Received: mode={mode!r}")
        if not isinstance(model, keras.Model):
            raise ValueError(
                f"Expected a keras.Model. Received: model of type {type(model).__name__}"
            )
        self.mode = mode
        self.capacity = int(capacity)
        self.bns, self.copies, self.hidden = {}, {}, {}
        self._recorder = None
        self._segments = []  # (name, first column, channels) of each row in the buffer
        self._patches = []  # (name, BN inside a custom layer, its copy or None)
        self.extras = {}  # what callers derive from the probe once (exact's stages)
        self._jitted = None  # JAX: the compiled run, built on first use
        self._pairs = []  # (original, copy) for mode "copies"
        self.sources = []
        self.not_called = ()
        self.new_name = private_names(model)
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
        self.resync()
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

    def resync(self, statistics=True):
        """Copies the original BNs' current state into the copies (mode "copies").

        Args:
            statistics: Also the moving mean and variance; False when the
                caller sets every copy's statistics itself.
        """
        for old, new in self._pairs:
            inner = graph_lib.unwrap(old)
            skip = () if statistics else (inner.moving_mean, inner.moving_variance)
            graph_lib.copy_state(old, new, skip=skip)

    def _hook(self, site, args, kwargs):
        layer = site.layer
        _, hidden_bns = graph_lib.hidden(layer)
        for bn in hidden_bns:
            self._hide(site.name, bn)
        if not graph_lib.is_bn_like(layer):
            return layer(*args, **kwargs)
        x = args[0] if args else kwargs.get("inputs")
        rank = len(x.shape)
        axis = graph_lib.bn_axis(layer, rank)
        name = self._name(site)
        row = _Moments(axis, name=self.new_name("moments"))(x)
        self.sources.append((name, row))
        site.tap(name, row)  # recorded with the others by `_record`
        if self.mode == "precise":  # one set of moments for recording and normalising
            return _TrainingNorm(layer, name=self.new_name("training_norm"))(x, row)
        if self.mode == "copies":
            copy = self.copies.get(name)
            if copy is None:
                copy = graph_lib.clone_layer(layer)
                self.copies[name] = copy
                self._pairs.append((layer, copy))
            return copy(*args, **kwargs)
        return layer(*args, **kwargs)

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
        copy = None
        if not bn.built:  # never called (no statistics): nothing to patch or copy
            return
        if self.mode == "copies":
            copy = graph_lib.clone_layer(bn)
            # Built for the input the BN was built for: BN checks the rank.
            shape = (bn.get_build_config() or {}).get("input_shape")
            if shape is None:
                inner = graph_lib.unwrap(bn)
                axis = inner.axis[0] if isinstance(inner.axis, (list, tuple)) else inner.axis
                channels = int(inner.moving_mean.shape[0])
                shape = [None, channels] if axis == -1 else [None] * axis + [channels]
            copy.build(tuple(shape))
            self.copies[name] = copy
            self._pairs.append((bn, copy))
        self._patches.append((name, bn, copy))

    def _patched(self, acc):
        """Context: hidden BNs record their inputs into `acc` on the host."""
        return graph_lib.calls_replaced(
            [(bn, self._patch(name, bn, copy, acc)) for name, bn, copy in self._patches]
        )

    def _patch(self, name, bn, copy, acc):
        original = graph_lib.own_call(bn)
        mode = self.mode

        def call(inputs, training=None, mask=None, **kwargs):
            row = moments_row(inputs, graph_lib.bn_axis(bn, len(inputs.shape)))
            merge(acc, name, np.asarray(ops.convert_to_numpy(row), np.float64)[0])
            if mode == "precise":
                return batch_norm_train(bn, inputs, row)
            if mode == "copies":
                return copy(inputs, training=False)
            return original(inputs, training=False, mask=mask, **kwargs)

        return call

    def _name(self, site):
        # A BN called at several sites (shared layer or nested model) is one
        # BN: its moments pool over every call.
        for name, bn in self.bns.items():
            if bn is site.layer:
                return name
        self.bns[site.name] = site.layer
        return site.name

    def set_statistics(self, stats):
        """Sets the copies' moving statistics: ``name -> (mean, var)``."""
        for name, (mean, var) in stats.items():
            copy = graph_lib.unwrap(self.copies[name])
            copy.moving_mean.assign(np.asarray(mean).astype(copy.moving_mean.dtype))
            copy.moving_variance.assign(np.asarray(var).astype(copy.moving_variance.dtype))

    def moments(self, batches, compiled=None):
        """Exact per-channel ``(count, mean, variance)`` of every BN input.

        Args:
            batches: A `keras_vs.batches.Batches`.
            compiled: Run the compiled probe (True) or call it eagerly
                (False). None: compile unless the data is known to hold at
                most `EAGER_BATCHES` batches, where compiling costs more
                than it saves.

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
            for index, (x, _) in enumerate(batches):
                batches_lib.check_batch(self.inputs, x, index)
                size = batches_lib.num_examples(x)
                if size == 0:
                    continue
                seen += size
                run(x)
                self.recorded(acc)
        self.flush(acc)
        self.num_examples = seen
        if not seen:
            raise ValueError(
                "The data set is empty: no examples reached the model. "
                f"Received: {batches.steps if batches.steps else 'all'} step(s) of no data"
            )
        self.not_called = tuple(n for n in self.names if n not in acc)
        return finish(acc)

    def runner(self, batches, compiled=None):
        """``run(x)``: one batch through the probe, compiled or eager.

        On JAX the compiled run is one jitted program that writes back only
        the recorder's buffer (`state_writer`): Keras' ``predict_on_batch``
        writes back every variable and copies the outputs to the host after
        each batch, which on a GPU cost more than the pass itself.
        """
        if (keras.backend.backend() != "jax" or not _compiles(self.model, batches, compiled)
                or not graph_lib.supports_jit(self.model)):  # as predict_on_batch decides
            return run_function(self.model, batches, compiled)
        if self._jitted is None:
            self._jitted = state_writer(self.model, self._recorder.variables)
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
                merge(acc, name, pooled(rows[:, start : start + 3 * c + 1]))
        self.reset()


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
        import tensorflow as tf

        def as_tensor(a):
            a = np.asarray(a)
            return tf.convert_to_tensor(a.astype(str)) if a.dtype.kind in "OSU" else a

        return lambda x: model(keras.tree.map_structure(as_tensor, x), training=False)
    if _compiles(model, batches, compiled):
        return model.predict_on_batch
    return lambda x: model(x, training=False)


def _has_strings(model):
    return any(str(t.dtype) == "string" for t in model.inputs)


def _compiles(model, batches, compiled):
    """Whether `run_function` runs `model` compiled."""
    if _has_strings(model):
        return False
    if compiled is None:
        n = batches.num_batches
        return n is None or n > EAGER_BATCHES
    return bool(compiled)


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
    import jax

    ids = {id(v) for v in written}
    # A built model's state is fixed; walking its layers for it took ~1 ms a
    # batch (twice: trainable and not), as much as a GPU pass of a few batches.
    state = model.variables
    programs = {}  # which variables are trainable -> (trainable, others, kept, jitted step)

    def program():
        # What Keras' `trainable_variables` reads, without the walk.
        flags = tuple(model.trainable and v.trainable for v in state)
        if flags not in programs:  # rebuilt only if the user changes `trainable` flags
            trainable = [v for v, f in zip(state, flags) if f]
            non_trainable = [v for v, f in zip(state, flags) if not f]
            slots = [i for i, v in enumerate(non_trainable) if id(v) in ids]

            def step(trainable_values, other_values, kept_values, x):
                values = list(other_values)
                for i, value in zip(slots, kept_values):  # ascending: back in place
                    values.insert(i, value)
                outputs, new = model.stateless_call(trainable_values, values, x, training=training)
                return outputs, [new[i] for i in slots]

            programs[flags] = (
                trainable,
                [v for v in non_trainable if id(v) not in ids],
                [non_trainable[i] for i in slots],
                jax.jit(step, donate_argnums=2),
            )
        return programs[flags]

    def bound():
        """``run(x)`` reading every variable outside `written` once, now: for
        a pass over many batches in which nothing else assigns them (reading
        ~250 values a batch cost ~1 ms)."""
        trainable, others, kept, step = program()
        fixed = [v.value for v in trainable], [v.value for v in others]

        def run(x):
            outputs, new = step(*fixed, [v.value for v in kept], x)
            for variable, value in zip(kept, new):
                variable.assign(value)
            return outputs

        return run

    def run(x):
        return bound()(x)

    run.bound = bound
    return run


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


def finish(acc):
    """``name -> (count, mean, var)`` from merged ``(n, mean, M2)``."""
    return {key: (n, mean, m2 / n) for key, (n, mean, m2) in acc.items()}


def pooled(rows):
    """One moments row for the union of the batches `rows` (2-D) describe."""
    n = rows[:, :1]
    total = n.sum()
    c = (rows.shape[1] - 1) // 3
    if total <= 0:
        return np.zeros(rows.shape[1])
    means = rows[:, 1 : c + 1] + rows[:, c + 1 : 2 * c + 1]
    mean = (n * means).sum(0) / total
    m2 = np.maximum(rows[:, 2 * c + 1 :], 0.0).sum(0) + (n * (means - mean) ** 2).sum(0)
    return np.concatenate([[total], mean, np.zeros(c), m2])


def merge(acc, key, row):
    """Chan et al.'s parallel update: exact pooled mean and M2 of two groups."""
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
