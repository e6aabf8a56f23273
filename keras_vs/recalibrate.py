"""BN re-estimation: replace every BN's moving statistics by population statistics.

Two methods (`keras_vs.vocab.RECALIBRATION_METHODS`):

``"precise"`` (PreciseBN, Wu & Johnson 2021; `torch.optim.swa_utils.update_bn`):
    one pass over the data with dropout off and every BN normalising with the
    statistics of the current batch, as in training; each BN's population
    mean and variance are pooled exactly (Chan et al.) from the per-batch
    moments of its input. Cost: one forward pass, whatever the depth.
``"exact"``: each BN's statistics are those of its input when every BN
    upstream of it already uses its re-estimated statistics, i.e. exactly what
    the BN sees at inference after the fix. Computed stage by stage on cached
    activations when they fit `memory_budget` (one stage per level of BN
    depth, each compiled once and run over the data in a few large chunks,
    its BN moments pooled per chunk); otherwise, and for a BN called at two
    depths (its statistics are then a fixed point), by repeated passes (one
    per level of BN depth, plus one to confirm, moments pooled per batch).
    The two agree to float32 rounding.

They differ only in what the upstream BNs do: per-batch statistics
(precise) or the final population statistics (exact). With large, i.i.d.
batches the two agree closely; with small batches exact matches inference
better.
"""

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
            it, it falls back to one pass per BN level.

    Returns:
        The recalibrated model.

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
        stats = {n: (moments[n][1], moments[n][2]) for n in probe.names}
    else:
        stats = _exact(probe, batches, memory_budget, data)
    return _write(model, stats, inplace)


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
    """Exact statistics: staged on cached activations, else one pass per BN level."""
    stats = _exact_staged(probe, batches, memory_budget)
    if stats is not None:
        return stats
    if not batches.reiterable:
        raise ValueError(
            "recalibrate_bn(method='exact') needs to pass over the data several "
            "times when its activations exceed memory_budget; pass NumPy arrays, "
            "a tf.data.Dataset or a PyDataset, raise memory_budget or use "
            "method='precise'. Received: a one-shot iterator of type "
            f"{type(data).__name__}"
        )
    return _exact_passes(probe, batches)


def _write(model, stats, inplace):
    target = model if inplace else graph_lib.copy(model)
    if not inplace:
        graph_lib.compile_like(target, model)
    layers = {view.qualname(layer): layer for view, layer in graph_lib.ModelGraph(target).all_layers()}
    for name, (mean, var) in stats.items():
        if name in layers:
            bn = graph_lib.unwrap(layers[name])
        else:  # inside a custom layer: "custom/bn"
            where = next(w for w in sorted(layers, key=len, reverse=True) if name.startswith(w + "/"))
            bn = graph_lib.unwrap(graph_lib.sublayer(layers[where], name[len(where) + 1 :]))
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
        new = {n: (moments[n][1], moments[n][2]) for n in probe.names}
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
    """What exact by stages derives from the probe once; None if it cannot be staged."""
    view, stage, sources, last = _stages(probe)
    levels = {}
    for name, _, at in sources:
        levels.setdefault(name, set()).add(at)
    if any(len(at) > 1 for at in levels.values()):
        # A BN called at two depths normalises its own later input: only
        # passes (to a fixed point) pool both calls.
        return None
    nodes = _needed_nodes(view, sources)
    return view, stage, sources, last, nodes, _last_reads(nodes, stage), {}


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


def _stage_model(stage, nodes, sources, last_read, s):
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
    return keras.Model(inputs, outs), inputs, outs


def _chunks(sizes, per_example):
    """``[(first batch, end batch)]``: consecutive batches, one chunk each call."""
    chunks, start, total = [], 0, 0
    for i, size in enumerate(sizes):
        if i > start and (per_example is None or (total + size) * per_example > _CHUNK_BYTES):
            chunks.append((start, i))
            start, total = i, 0
        total += size
    chunks.append((start, len(sizes)))
    return chunks


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


def _exact_staged(probe, batches, budget):
    if not probe.flat or probe.patched:  # BNs the stages cannot see: use passes
        return None
    if "stages" not in probe.extras:
        probe.extras["stages"] = _stage_plan(probe)
    if probe.extras["stages"] is None:
        return None
    view, stage, sources, last, nodes, last_read, built = probe.extras["stages"]
    # JAX: each stage one jitted program, its activations left on the device
    # (predict_on_batch writes back every variable and copies to the host).
    jitted = keras.backend.backend() == "jax" and graph_lib.supports_jit(probe.model)
    probe.resync(statistics=False)  # every copy's statistics are set below
    raw = {id(t): [] for t in view.inputs}
    sizes, used = [], 0
    for index, (x, _) in enumerate(batches):
        batches_lib.check_batch(probe.inputs, x, index)
        size = batches_lib.num_examples(x)
        if size == 0:
            continue
        sizes.append(size)
        for t, a in zip(view.inputs, keras.tree.flatten(x)):
            raw[id(t)].append(np.asarray(a))
            used += raw[id(t)][-1].nbytes
        if used > budget:
            return None
    if not sizes:
        raise ValueError("The data set is empty: no examples reached the model. Received: no examples")
    chunks = _chunks(sizes, _per_example_bytes(nodes))
    place = keras.ops.convert_to_tensor if jitted else (lambda a: a)
    cache = {key: [place(arrays[a] if b == a + 1 else np.concatenate(arrays[a:b])) for a, b in chunks]
             for key, arrays in raw.items()}
    del raw
    stats = {}
    for s in range(last + 1):
        if s not in built:
            model, inputs, outs = _stage_model(stage, nodes, sources, last_read, s)
            # Compiled once per stage and reused by every chunk and call.
            run = None if model is None else (
                probe_lib.state_writer(model, []) if jitted else model.predict_on_batch
            )
            built[s] = run, inputs, outs
        run, inputs, outs = built[s]
        if run is None:
            continue
        rows = {id(row): name for name, row, at in sources if at == s}
        moments = []  # (name, moments row): read after the stage's last call, so that
        # the calls queue on the device rather than each waiting for the one before
        call = run.bound() if jitted else run  # the statistics are set for this stage
        for c in range(len(chunks)):
            result = call([cache[id(t)][c] for t in inputs])
            for t, value in zip(outs, keras.tree.flatten(result)):
                if id(t) in rows:
                    moments.append((rows[id(t)], value[0]))
                else:
                    cache.setdefault(id(t), []).append(value)
                    used += value.nbytes
            if used > budget:
                return None
        acc = {}
        for name, row in moments:  # the first read waits for every chunk's call
            probe_lib.merge(acc, name, np.asarray(keras.ops.convert_to_numpy(row), dtype=np.float64))
        new = {n: (m, v) for n, (_, m, v) in probe_lib.finish(acc).items()}
        probe.set_statistics(new)
        stats.update(new)
        used -= _drop_spent(cache, last_read, s)
    return stats


def _drop_spent(cache, last_read, s):
    """Frees cached tensors that no stage after `s` reads; returns bytes freed."""
    freed = 0
    for key in [k for k in cache if last_read.get(k, -1) <= s]:
        freed += sum(a.nbytes for a in cache.pop(key))
    return freed


def _last_reads(nodes, stage):
    """``id(tensor) -> the last stage whose nodes read it``."""
    last = {}
    for n in nodes:
        for t in n.arguments.keras_tensors:
            last[id(t)] = max(last.get(id(t), -1), stage[id(n)])
    return last
