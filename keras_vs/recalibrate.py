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
    activations (one stage per level of BN depth, each run once over the data)
    when the activations fit `memory_budget`; otherwise by repeated passes
    (one per level of BN depth, plus one to confirm).

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

#: Bytes of cached activations the "exact" method may hold on the host.
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
        memory_budget: Bytes of activations ``"exact"`` may cache; above it,
            it falls back to one pass per BN level.

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
    used = {
        n: (_value(graph_lib.unwrap(c).moving_mean), _value(graph_lib.unwrap(c).moving_variance))
        for n, c in probe.copies.items()
    }
    new = used
    for _ in range(len(probe.names)):
        moments = probe.moments(batches)
        new = {n: (moments[n][1], moments[n][2]) for n in probe.names}
        probe.set_statistics(new)
        if all(_close(new[n], used[n], graph_lib.unwrap(probe.copies[n]).epsilon) for n in new):
            break
        used = new
    return new


def _value(v):
    return np.asarray(keras.ops.convert_to_numpy(v), dtype=np.float64)


def _close(a, b, epsilon):
    (mean_a, var_a), (mean_b, var_b) = a, b
    scale = var_b + epsilon
    return bool(
        np.all(np.abs(var_a - var_b) <= _RTOL * scale)
        and np.all(np.abs(mean_a - mean_b) <= _RTOL * np.sqrt(scale))
    )


# ---------------------------------------------------------------------------
# Exact by stages on cached activations.


def _stages(probe):
    """Splits the probe's flat graph at BN copies into stages.

    Returns:
        ``(view, stage of each node, recorder ids, last stage)``: a BN copy runs
        one stage after its input is computed, every other node in the stage
        of its latest input, so stage ``s`` needs only the statistics of BNs
        recorded in stages ``< s``.
    """
    view = graph_lib.ModelGraph(probe.model).root
    copies = {id(c) for c in probe.copies.values()}
    recorders = {id(r) for _, r in probe.recorders()}
    level = {id(t): 0 for t in view.inputs}
    stage = {}
    for node in view.nodes:
        ins = node.arguments.keras_tensors
        base = max((level[id(t)] for t in ins), default=0)
        s = base + 1 if id(node.operation) in copies else base
        stage[id(node)] = s
        for t in node.outputs:
            level[id(t)] = s
    last = max((stage[id(n)] for n in view.nodes if id(n.operation) in recorders), default=-1)
    return view, stage, recorders, last


def _stage_model(view, stage, recorders, s):
    """The sub-model computing stage `s`: cached tensors in, recorder flags and
    the tensors later stages read out (returns None when the stage is empty)."""
    flags = {id(n.outputs[0]) for n in view.nodes if id(n.operation) in recorders}
    later = set()
    for node in view.nodes:
        ins = node.arguments.keras_tensors
        if stage[id(node)] > s and not any(id(t) in flags for t in ins):
            later.update(id(t) for t in ins)
    mine = [n for n in view.nodes if stage[id(n)] == s]
    outs = [n.outputs[0] for n in mine if id(n.operation) in recorders]
    carried = [t for n in mine for t in n.outputs if id(t) in later]
    if not outs and not carried:
        return None, [], []
    producer = {id(t): n for n in view.nodes for t in n.outputs}
    inputs, seen, stack = [], set(), outs + carried
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
    return keras.Model(inputs, outs + carried), inputs, carried


def _exact_staged(probe, batches, budget):
    if not probe.flat or probe.patched:  # BNs the stages cannot see: use passes
        return None
    if "stages" not in probe.extras:
        probe.extras["stages"] = (_stages(probe), {})
    (view, stage, recorders, last), built = probe.extras["stages"]
    cache = {id(t): [] for t in view.inputs}
    used = 0
    for index, (x, _) in enumerate(batches):
        batches_lib.check_batch(probe.inputs, x, index)
        if batches_lib.num_examples(x) == 0:
            continue
        for t, a in zip(view.inputs, keras.tree.flatten(x)):
            cache[id(t)].append(a)
            used += np.asarray(a).nbytes
        if used > budget:
            return None
    if not cache or not cache[id(view.inputs[0])]:
        raise ValueError("The data set is empty: no examples reached the model. Received: no examples")
    n_batches = len(cache[id(view.inputs[0])])
    stats = {}
    for s in range(last + 1):
        if s not in built:
            built[s] = _stage_model(view, stage, recorders, s)
        model, inputs, carried = built[s]
        if model is None:
            continue
        acc = {}
        probe.reset()
        for b in range(n_batches):
            outs = model([cache[id(t)][b] for t in inputs], training=False)
            outs = list(outs) if isinstance(outs, (list, tuple)) else [outs]
            for t, value in zip(carried, outs[len(outs) - len(carried):]):
                array = keras.ops.convert_to_numpy(value)
                cache.setdefault(id(t), []).append(array)
                used += array.nbytes
            if used > budget:
                return None
            probe.recorded(acc)
        probe.flush(acc)
        new = {n: (m, v) for n, (_, m, v) in probe_lib.finish(acc).items()}
        probe.set_statistics(new)
        stats.update(new)
        used -= _drop_spent(cache, view, stage, s)
    return stats


def _drop_spent(cache, view, stage, s):
    """Frees cached tensors that no stage after `s` reads; returns bytes freed."""
    needed = set()
    for node in view.nodes:
        if stage[id(node)] > s:
            needed.update(id(t) for t in node.arguments.keras_tensors)
    freed = 0
    for key in [k for k in cache if k not in needed]:
        freed += sum(np.asarray(a).nbytes for a in cache.pop(key))
    return freed
