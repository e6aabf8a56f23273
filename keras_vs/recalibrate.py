"""BN re-estimation: replace every BN's moving statistics by population statistics.

Two methods (`keras_vs.vocab.RECALIBRATION_METHODS`):

``"precise"`` (PreciseBN, Wu & Johnson 2021; `torch.optim.swa_utils.update_bn`):
    one pass over the data with dropout off and every BN normalising with the
    statistics of the current batch, as in training; each BN's population
    mean and variance are pooled exactly (Chan et al.) from the per-batch
    moments of its input. Cost: one forward pass, whatever the depth.
``"exact"``: each BN's statistics are those of its input when every BN
    upstream of it already uses its re-estimated statistics, i.e. exactly what
    the BN sees at inference after the fix. Computed stage by stage (one
    stage per level of BN depth, each compiled once and run over the data in
    a few large chunks, its BN moments pooled per chunk) on activations
    cached while they fit `memory_budget`; beyond it a stage's inputs are
    recomputed from the data by the same compiled stages on the same chunks,
    so the statistics are bit-identical whatever the budget, and only the
    time changes (about one pass in all when cached, one per stage when
    not). A BN called at two depths (its statistics are then a fixed point)
    or hidden in a custom layer is calibrated by repeated passes of the whole
    probe instead (one per level of BN depth, plus one to confirm, moments
    pooled per batch), which agree with the stages to float32 rounding.

They differ only in what the upstream BNs do: per-batch statistics
(precise) or the final population statistics (exact). With large, i.i.d.
batches the two agree closely; with small batches exact matches inference
better.
"""

import dataclasses

import keras
import numpy as np

from keras_vs import batches as batches_lib
from keras_vs import graph as graph_lib
from keras_vs import probe as probe_lib
from keras_vs import vocab
from keras_vs.batches import DEFAULT_BATCH_SIZE, Batches

__all__ = ["DEFAULT_MEMORY_BUDGET", "recalibrate_bn"]

#: Bytes of cached activations the "exact" method may hold (on the host; on
#: JAX on the device that runs it).
DEFAULT_MEMORY_BUDGET = 2 * 1024**3
# Relative change below which a recalibration pass counts as a fixed point.
_RTOL = 1e-5


def recalibrate_bn(
    model,
    data,
    steps=None,
    *,
    batch_size=DEFAULT_BATCH_SIZE,
    inplace=False,
    method="precise",
    memory_budget=DEFAULT_MEMORY_BUDGET,
):
    """Re-estimates every BN's moving mean and variance on ``data``.

    Dropout is off and every weight frozen; gamma, beta and all other
    weights stay bit-identical. The default, ``"precise"``, costs one forward
    pass and is what PreciseBN and `torch.optim.swa_utils.update_bn` do, so
    it scales to big models and big calibration sets and also accepts
    one-shot iterators; ``"exact"`` reproduces the layer-by-layer result
    (each BN calibrated on what it sees at inference) at about one pass when
    the cached activations fit ``memory_budget``. See the module docstring for
    how they differ.

    Args:
        model: A built Functional or Sequential model (nested models,
            shared models and `TimeDistributed` BNs included).
        data: NumPy inputs ``x`` or ``(x, y)``, a `tf.data.Dataset`, a
            `keras.utils.PyDataset` or an iterable of batches; it should not
            be randomly augmented. NaN or infinite inputs raise a
            `ValueError` naming the batch, before anything is written.
        steps: Optional number of batches to use (all if None).
        batch_size: Batch size for NumPy inputs.
        inplace: If False (default) the model is left untouched and a
            recalibrated copy is returned, compiled like the original (with a
            fresh optimizer state). If True the model's own BN statistics are
            overwritten and the model is returned.
        method: ``"precise"`` (default) or ``"exact"``.
        memory_budget: Bytes of activations ``"exact"`` may cache (in host
            memory; on JAX in the device's, where it runs its stages); above
            it, what does not fit is recomputed (one pass over the data per
            BN level from there on) and the result is the same to the bit.

    Returns:
        The recalibrated model. A BN that its layer owns but never calls on
        the data keeps its statistics (a warning names it). The input model is
        left as it was, stateful RNNs' states included; a stateful model reads
        the data in batches of `batch_size` with either method.

    Example:

    >>> model = keras.Sequential([keras.Input((4,)), keras.layers.BatchNormalization()])
    >>> fixed = recalibrate_bn(model, np.arange(32.0).reshape(8, 4))
    >>> fixed is model, round(float(fixed.layers[0].moving_mean[0]), 2)
    (False, 14.0)
    """
    _check_arguments(method, memory_budget)
    from keras_vs import shift  # the shared error messages

    batches = Batches(data, steps, batch_size)
    probe = probe_lib.probe_for(model, "precise" if method == "precise" else "copies")
    if probe.model is None:
        raise shift.no_bn_error(model, probe)
    shift.warn_hidden(probe)
    if method == "precise":
        moments = probe.moments(batches)
        stats = {n: (moments[n][1], moments[n][2]) for n in probe.names if n in moments}
    else:
        stats = _exact(probe, batches, memory_budget, data)
    shift.warn_not_called([n for n in probe.names if n not in stats], "left unchanged")
    return _write(model, probe, stats, inplace)


def _check_arguments(method, memory_budget):
    if method not in vocab.RECALIBRATION_METHODS:
        raise ValueError(
            f"Unknown method. Expected one of {', '.join(vocab.RECALIBRATION_METHODS)}. "
            f"Received: method={method!r}"
        )
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, (int, float)) or (
        memory_budget < 0
    ):
        raise ValueError(
            "Expected memory_budget to be a number of bytes >= 0. "
            f"Received: memory_budget={memory_budget!r}"
        )


def _exact(probe, batches, memory_budget, data):
    """Exact statistics: by stages where the probe splits into them, else by passes."""
    plan = _plan_for(probe)
    if plan is None:
        _require_reiterable(batches, data)
        return _exact_passes(probe, batches)
    return _exact_staged(probe, plan, batches, memory_budget, data)


def _require_reiterable(batches, data):
    if not batches.reiterable:
        raise ValueError(
            "recalibrate_bn(method='exact') needs to pass over the data several "
            "times when its activations exceed memory_budget; pass NumPy arrays, "
            "a tf.data.Dataset or a PyDataset, raise memory_budget or use "
            "method='precise'. Received: a one-shot iterator of type "
            f"{type(data).__name__}"
        )


def _write(model, probe, stats, inplace):
    target = model if inplace else graph_lib.copy(model)
    if not inplace:
        graph_lib.compile_like(target, model)
    # By place, not by name: a copy may rename a layer rebuilt from its config.
    pairs = [] if inplace else graph_lib.layer_pairs(model, target)
    counterpart = {id(old): new for old, new in pairs}
    for name, (mean, var) in stats.items():
        bn = graph_lib.unwrap(counterpart.get(id(probe.bns[name]), probe.bns[name]))
        bn.moving_mean.assign(np.asarray(mean).astype(bn.moving_mean.dtype))
        bn.moving_variance.assign(np.asarray(var).astype(bn.moving_variance.dtype))
    return target


def _exact_passes(probe, batches):
    probe.resync()
    bns = {n: graph_lib.unwrap(c) for n, c in probe.copies.items()}
    values = probe_lib.host_values([v for bn in bns.values() for v in (bn.moving_mean, bn.moving_variance)])
    used = {n: (values[2 * i], values[2 * i + 1]) for i, n in enumerate(bns)}
    new = used
    for _ in range(len(probe.names)):
        moments = probe.moments(batches)
        new = {n: (moments[n][1], moments[n][2]) for n in probe.names if n in moments}
        probe.set_statistics(new)
        if all(_close(new[n], used[n], graph_lib.unwrap(probe.copies[n]).epsilon) for n in new):
            break
        used = new
    return new


def _close(a, b, epsilon):
    (mean_a, var_a), (mean_b, var_b) = a, b
    scale = var_b + epsilon
    return bool(
        np.all(np.abs(var_a - var_b) <= _RTOL * scale)
        and np.all(np.abs(mean_a - mean_b) <= _RTOL * np.sqrt(scale))
    )


# ---------------------------------------------------------------------------
# Exact by stages on cached activations.

# Consecutive batches whose largest activation takes at most this many bytes
# go through a stage in one call: a stage is a few layers, and calling each
# of them once per batch cost ~20x its arithmetic in per-call overhead
# (MobileNetV2: 53 stages), while the intermediates of one call stay bounded.
_CHUNK_BYTES = 128 * 2**20


@dataclasses.dataclass
class _Plan:
    """What exact by stages derives from a probe once (kept in ``probe.extras``).

    Attributes:
        inputs: The probe's flat symbolic inputs.
        nodes: The nodes the moments rows depend on, in graph order.
        stage: ``id(node) -> stage``.
        sources: ``(name, moments row of the BN input, stage)`` per BN call.
        last: The last stage that records moments (-1: none).
        last_read: ``id(tensor) -> the last stage that reads it``.
        per_example: Bytes per example of the largest activation (None if
            a shape is unknown).
        name: ``name(kind)``: private names for the stage models.
        built: ``stage -> (run or None, its inputs, its outputs)``, filled
            as stages first run (each compiled once, reused by every call).
    """

    inputs: list
    nodes: list
    stage: dict
    sources: list
    last: int
    last_read: dict
    per_example: object
    name: object = None
    built: dict = dataclasses.field(default_factory=dict)

    def rows(self, s):
        """``id(moments row) -> BN name`` for the BNs stage `s` records."""
        return {id(row): name for name, row, at in self.sources if at == s}


def _plan_for(probe):
    """The probe's stage plan, made once per probe; None if it cannot be staged."""
    if not probe.flat or probe.patched:  # BNs the stages cannot see
        return None
    if "stages" not in probe.extras:
        probe.extras["stages"] = _stage_plan(probe)
    return probe.extras["stages"]


def _stages(probe):
    """Splits the probe's flat graph at BN copies into stages.

    Returns:
        ``(view, stage of each node, sources, last stage)``: a BN copy runs one
        stage after its input is computed, every other node in the stage of
        its latest input, so stage ``s`` needs only the statistics of BNs
        whose inputs are computed in stages ``< s``. ``sources`` holds
        ``(name, moments row of the BN input, stage)`` per BN call site.
    """
    view = graph_lib.ModelGraph(probe.model).root
    copies = {id(c) for c in probe.copies.values()}
    level = {id(t): 0 for t in view.inputs}
    stage = {}
    for node in view.nodes:
        ins = node.arguments.keras_tensors
        base = max((level[id(t)] for t in ins), default=0)
        s = base + 1 if id(node.operation) in copies else base
        stage[id(node)] = s
        for t in node.outputs:
            level[id(t)] = s
    sources = [(name, row, level[id(row)]) for name, row in probe.sources]
    last = max((s for *_, s in sources), default=-1)
    return view, stage, sources, last


def _stage_plan(probe):
    view, stage, sources, last = _stages(probe)
    levels = {}
    for name, _, at in sources:
        levels.setdefault(name, set()).add(at)
    if any(len(at) > 1 for at in levels.values()):
        # A BN called at two depths normalises its own later input: only
        # passes (to a fixed point) pool both calls.
        return None
    nodes = _needed_nodes(view, sources)
    # A static batch size (stateful RNNs): a chunk is one batch, never several.
    fixed = any(t.shape and t.shape[0] is not None for t in view.inputs)
    return _Plan(list(view.inputs), nodes, stage, sources, last, _last_reads(nodes, stage),
                 None if fixed else _per_example_bytes(nodes),
                 name=probe.new_name)


def _needed_nodes(view, sources):
    """The nodes the moments rows depend on (not the probe's recorders)."""
    producer = {id(t): n for n in view.nodes for t in n.outputs}
    needed, stack = {}, [row for _, row, _ in sources]
    while stack:
        node = producer.get(id(stack.pop()))
        if node is not None and id(node) not in needed:
            needed[id(node)] = node
            stack.extend(node.arguments.keras_tensors)
    return [n for n in view.nodes if id(n) in needed]


def _stage_model(stage, nodes, sources, last_read, s, name=None):
    """The sub-model computing stage `s` from cached tensors.

    Returns:
        ``(model or None, its inputs, its outputs)``: the outputs are the
        moments rows of the BNs recorded in stage `s` (for the whole chunk the
        model is called on) and the tensors later stages read.
    """
    mine = [n for n in nodes if stage[id(n)] == s]
    outs = {id(row): row for _, row, at in sources if at == s}
    outs.update((id(t), t) for n in mine for t in n.outputs if last_read.get(id(t), -1) > s)
    outs = list(outs.values())
    if not outs:
        return None, [], []
    producer = {id(t): n for n in nodes for t in n.outputs}
    inputs, seen, stack = [], set(), list(outs)
    while stack:  # backwards from the outputs to what earlier stages cached
        t = stack.pop()
        if id(t) in seen:
            continue
        seen.add(id(t))
        node = producer.get(id(t))
        if node is None or stage[id(node)] < s:
            inputs.append(t)
        else:
            stack.extend(node.arguments.keras_tensors)
    return keras.Model(inputs, outs, name=name), inputs, outs


def _chunked(sized, per_example):
    """Groups consecutive ``(size, item)`` pairs into chunks: lists of items.

    A chunk holds as many examples as fit `_CHUNK_BYTES` of the largest
    activation (a batch over it is a chunk of its own); one batch per chunk
    when the size of an activation is unknown (`per_example` None).
    """
    group, total = [], 0
    for size, item in sized:
        if group and (per_example is None or (total + size) * per_example > _CHUNK_BYTES):
            yield group
            group, total = [], 0
        group.append(item)
        total += size
    if group:
        yield group


def _per_example_bytes(nodes):
    """Bytes per example of the largest activation; None if a shape is unknown."""
    largest = 0
    for node in nodes:
        for t in node.outputs:
            if not t.shape or t.shape[0] is not None:  # not per example (moments rows)
                continue
            dims = tuple(t.shape[1:])
            if any(d is None for d in dims):
                return None
            try:
                itemsize = np.dtype(t.dtype).itemsize
            except TypeError:  # e.g. strings
                return None
            largest = max(largest, int(np.prod(dims)) * itemsize)
    return largest


def _exact_staged(probe, plan, batches, budget, data):
    """Exact statistics stage by stage, on cached activations while they fit `budget`.

    Stage `s` runs on every chunk once the statistics of the BNs it uses are
    set. Activations are cached while they fit; from the stage where they no
    longer do, each stage's inputs are recomputed from the data by the same
    compiled stages on the same chunks, so the result is bit-identical
    whatever the budget, only slower (one pass over the data per stage).
    Every sweep over the data starts from the model's state (stateful RNNs),
    and the model keeps it afterwards.
    """
    with probe.state:
        return _staged(probe, plan, batches, budget, data)


def _staged(probe, plan, batches, budget, data):
    # Each stage one compiled program, its activations kept as tensors between
    # stages: on JAX a jitted `stateless_call` (activations on the device), on
    # TF a `tf.function` (`predict_on_batch` wrote back every variable on JAX
    # and copied every output to the host as NumPy on both).
    jitted = _compiled_stages(probe)
    place = _placer(plan) if jitted else (lambda t, a: a)
    probe.resync(statistics=False)  # every copy's statistics are set below
    stats, s = {}, 0
    cache, used = [], 0
    for chunk in _read_chunks(probe, plan, batches, place):
        cache.append(chunk)
        used += sum(_nbytes(a) for a in chunk.values())
        if used > budget:
            cache = None
            break
    while cache is not None and s <= plan.last:
        call, moments = _bind(plan, s, jitted), []
        for chunk in cache if call else ():
            found, added = _call_stage(plan, s, call, chunk)
            moments += found
            used += added
            if used > budget:
                cache = None
                break
        else:
            stats.update(_set_pooled(probe, moments))
            used -= _drop_spent(cache, plan.last_read, s)
            s += 1
    if s <= plan.last:
        _require_reiterable(batches, data)
    for level in range(s, plan.last + 1):  # recomputed: one pass over the data each
        calls = [_bind(plan, t, jitted) for t in range(level + 1)]
        if not calls[level]:
            continue
        probe.state.restore()
        moments = []
        for chunk in _read_chunks(probe, plan, batches, place):
            for t, call in enumerate(calls[:level]):
                if call:
                    _call_stage(plan, t, call, chunk)
                    _drop_spent([chunk], plan.last_read, t)
            moments += _call_stage(plan, level, calls[level], chunk)[0]
        stats.update(_set_pooled(probe, moments))
    return stats


def _read_chunks(probe, plan, batches, place):
    """Yields the data in chunks of consecutive batches: ``{id(input): array}``."""

    def sized():
        for index, (x, _) in enumerate(batches):
            batches_lib.check_batch(probe.inputs, x, index)
            size = batches_lib.num_examples(x)
            if size:
                yield size, [np.asarray(a) for a in keras.tree.flatten(x)]

    empty = True
    for group in _chunked(sized(), plan.per_example):
        empty = False
        yield {
            id(t): place(t, arrays[0] if len(arrays) == 1 else np.concatenate(arrays))
            for t, arrays in zip(plan.inputs, zip(*group))
        }
    if empty:
        raise ValueError("The data set is empty: no examples reached the model. Received: no examples")


def _bind(plan, s, jitted):
    """Stage `s`'s call with the statistics set now (None: the stage computes nothing)."""
    if s not in plan.built:
        model, inputs, outs = _stage_model(plan.stage, plan.nodes, plan.sources, plan.last_read,
                                           s, plan.name("stage"))
        run = None if model is None else (_stage_function(model) if jitted else model.predict_on_batch)
        plan.built[s] = run, inputs, outs
    run = plan.built[s][0]
    return run.bound() if jitted and run is not None else run


def _compiled_stages(probe):
    """Whether the stages run as compiled programs of their own (else `predict_on_batch`)."""
    backend = keras.backend.backend()
    if backend == "jax":
        return graph_lib.supports_jit(probe.model)
    if backend != "tensorflow":
        return False
    # String, sparse or ragged inputs reach their layers as Keras converts them.
    return not any(
        str(t.dtype) == "string" or getattr(t, "sparse", False) or getattr(t, "ragged", False)
        for t in probe.inputs
    )


def _placer(plan):
    """``place(symbolic input, array) -> tensor``: data as the stage programs take it."""
    if keras.backend.backend() == "jax":
        return lambda t, a: keras.ops.convert_to_tensor(a)
    return lambda t, a: keras.ops.convert_to_tensor(a, dtype=t.dtype)


def _stage_function(model):
    """``run(inputs) -> outputs``, one stage model as one compiled program; ``run.bound()``.

    JAX: `probe_lib.state_writer` (a jitted `stateless_call`; stateful RNN
    states written back). TF: a `tf.function` traced once for any number of
    examples (the batch dimension left free unless the model fixes it), so
    that every chunk of every call and pass runs the same program.
    """
    if keras.backend.backend() == "jax":
        return probe_lib.state_writer(model, [])
    import tensorflow as tf

    signature = [[tf.TensorSpec(t.shape, t.dtype) for t in model.inputs]]
    function = tf.function(lambda xs: model(xs, training=False), input_signature=signature,
                           autograph=False)

    def run(xs):
        return function(list(xs))

    run.bound = lambda: run
    return run


def _call_stage(plan, s, call, chunk):
    """Runs stage `s` on one chunk, adding the tensors later stages read to it.

    Returns:
        ``([(BN name, moments row)], bytes added to the chunk)``; the rows
        stay where the stage left them (on JAX, the device) so that calls
        queue without waiting for each other.
    """
    _, inputs, outs = plan.built[s]
    rows = plan.rows(s)
    result = call([chunk[id(t)] for t in inputs])
    found, added = [], 0
    for t, value in zip(outs, keras.tree.flatten(result)):
        if id(t) in rows:
            found.append((rows[id(t)], value[0]))
        else:
            chunk[id(t)] = value
            added += _nbytes(value)
    return found, added


def _set_pooled(probe, moments):
    """Pools ``[(name, moments row)]`` per BN, sets the copies to it and returns it."""
    acc = {}
    for name, row in moments:  # the first read waits for every chunk's call
        probe_lib.merge(acc, name, np.asarray(keras.ops.convert_to_numpy(row), dtype=np.float64))
    new = {n: (m, v) for n, (_, m, v) in probe_lib.finish(acc).items()}
    probe.set_statistics(new)
    return new


def _drop_spent(chunks, last_read, s):
    """Frees the cached tensors no stage after `s` reads; returns bytes freed."""
    freed = 0
    for chunk in chunks:
        for key in [k for k in chunk if last_read.get(k, -1) <= s]:
            freed += _nbytes(chunk.pop(key))
    return freed


def _nbytes(value):
    """Bytes of an array or tensor (a TF tensor has no ``nbytes``)."""
    nbytes = getattr(value, "nbytes", None)
    if nbytes is None:  # tf.Tensor
        nbytes = int(np.prod(value.shape)) * value.dtype.size
    return int(nbytes)


def _last_reads(nodes, stage):
    """``id(tensor) -> the last stage whose nodes read it``."""
    last = {}
    for n in nodes:
        for t in n.arguments.keras_tensors:
            last[id(t)] = max(last.get(id(t), -1), stage[id(n)])
    return last
