"""Exact re-estimation: each BN calibrated on what it sees at inference after the fix.

Computed stage by stage where the tap splits into stages at its BN copies
(`keras_vs.graph.stages`: one stage per level of BN depth, each compiled
once by `keras_vs.runner.program` and run over the data in a few large
chunks, its BN moments pooled per chunk) on activations cached while they
fit the memory budget; beyond it a stage's inputs are recomputed from the
data by the same compiled stages on the same chunks, so the statistics are
bit-identical whatever the budget, and only the time changes (about one pass
in all when cached, one per stage when not). A BN called at two depths (its
statistics are then a fixed point) or hidden in a custom layer is calibrated
by repeated passes of the whole tap instead (`by_passes`: one per level of
BN depth, plus one to confirm), which agree with the stages to float32
rounding.
"""

import dataclasses

import keras
import numpy as np

from keras_vs import batches as batches_lib
from keras_vs import graph as graph_lib
from keras_vs import moments as moments_lib
from keras_vs import runner
from keras_vs.graph import stages as stages_lib

__all__ = ["Options", "Plan", "assign", "by_passes", "by_stages", "plan_for", "require_reiterable"]

# Consecutive batches whose largest activation takes at most this many bytes
# go through a stage in one call: a stage is a few layers, and calling each
# of them once per batch cost ~20x its arithmetic in per-call overhead
# (MobileNetV2: 53 stages), while the intermediates of one call stay bounded.
_CHUNK_BYTES = 128 * 2**20
# Relative change below which a pass counts as a fixed point.
_RTOL = 1e-5
UNPLANNED = object()  # a plan not made yet (None: the tap cannot be staged)


@dataclasses.dataclass(frozen=True)
class Options:
    """What exact re-estimation takes besides the data.

    Attributes:
        memory_budget: Bytes of activations it may cache.
        data: The data as the user passed it (named in errors).
    """

    memory_budget: float
    data: object = None


@dataclasses.dataclass(frozen=True)
class Plan:
    """What exact by stages derives from a tap once (kept by its `Exact` method).

    Attributes:
        inputs: The tap's flat symbolic inputs.
        nodes: The nodes the moments rows depend on, in graph order.
        stage: ``id(node) -> stage``.
        sources: ``(name, moments row of the BN input, stage)`` per BN call.
        last: The last stage that records moments (-1: none).
        last_read: ``id(tensor) -> the last stage that reads it``.
        per_example: Bytes per example of the largest activation (None if
            a shape is unknown or the batch size is fixed).
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
    name: object
    built: dict = dataclasses.field(default_factory=dict)

    def rows(self, s):
        """``id(moments row) -> BN name`` for the BNs stage `s` records."""
        return {id(row): name for name, row, at in self.sources if at == s}


def assign(bn, mean, var):
    """Sets a BN's (possibly wrapped) moving mean and variance from arrays."""
    bn = graph_lib.unwrap(bn)
    bn.moving_mean.assign(np.asarray(mean).astype(bn.moving_mean.dtype))
    bn.moving_variance.assign(np.asarray(var).astype(bn.moving_variance.dtype))


def require_reiterable(batches, data):
    """Refuses one-shot data where exact must read it several times."""
    if not batches.reiterable:
        raise ValueError(
            "recalibrate_bn(method='exact') needs to pass over the data several "
            "times when its activations exceed memory_budget; pass NumPy arrays, "
            "a tf.data.Dataset or a PyDataset, raise memory_budget or use "
            "method='precise'. Received: a one-shot iterator of type "
            f"{type(data).__name__}"
        )


def plan_for(tap, copies):
    """The tap's stage plan, or None where stages cannot reach every BN.

    Args:
        tap: A `keras_vs.probe.Probe` of method "exact".
        copies: ``BN name -> copy``: where the graph is cut.
    """
    if not tap.flat or tap.patched:  # BNs the stages cannot see
        return None
    view = graph_lib.ModelGraph(tap.model).root
    ids = {id(c) for c in copies.values()}
    cut = stages_lib.stages_of(view, lambda op: id(op) in ids)
    sources = [(name, row, cut.level[id(row)]) for name, row in tap.sources]
    levels = {}
    for name, _, at in sources:
        levels.setdefault(name, set()).add(at)
    if any(len(at) > 1 for at in levels.values()):
        # A BN called at two depths normalises its own later input: only
        # passes (to a fixed point) pool both calls.
        return None
    nodes = stages_lib.needed_nodes(view, [row for _, row, _ in sources])
    # A static batch size (stateful RNNs): a chunk is one batch, never several.
    fixed = any(t.shape and t.shape[0] is not None for t in view.inputs)
    return Plan(
        list(view.inputs), nodes, cut.stage, sources,
        max((s for *_, s in sources), default=-1),
        stages_lib.last_reads(nodes, cut.stage),
        None if fixed else stages_lib.per_example_bytes(nodes), tap.new_name,
    )


# ---------------------------------------------------------------------------
# By passes of the whole tap.


def by_passes(tap, method, batches):
    """Passes of the whole tap, each with the statistics of the last, to a fixed point."""
    method.resync()
    bns = {n: graph_lib.unwrap(c) for n, c in method.copies.items()}
    values = runner.host_values([v for bn in bns.values() for v in (bn.moving_mean, bn.moving_variance)])
    used = {n: (values[2 * i], values[2 * i + 1]) for i, n in enumerate(bns)}
    new = used
    for _ in range(len(tap.names)):
        moments = tap.moments(batches)
        new = {n: (moments[n][1], moments[n][2]) for n in tap.names if n in moments}
        method.set_statistics(new)
        if all(_close(new[n], used[n], bns[n].epsilon) for n in new):
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
# By stages on cached activations.


@dataclasses.dataclass
class _Sweep:
    """One exact-by-stages run: the tap, its method and plan, and how stages run."""

    tap: object
    method: object
    plan: Plan
    batches: object
    jitted: bool
    place: object

    def chunks(self):
        return _read_chunks(self.tap, self.plan, self.batches, self.place)

    def call(self, s):
        return _bind(self.plan, s, self.jitted)

    def pool(self, moments):
        """Pools ``[(name, moments row)]`` per BN, sets the copies to it and returns it."""
        new = moments_lib.pool(moments)
        self.method.set_statistics(new)
        return new


def by_stages(tap, method, plan, batches, options):
    """Exact statistics stage by stage, on cached activations while they fit the budget.

    Stage `s` runs on every chunk once the statistics of the BNs it uses are
    set. Activations are cached while they fit; from the stage where they no
    longer do, each stage's inputs are recomputed from the data by the same
    compiled stages on the same chunks, so the result is bit-identical
    whatever the budget, only slower (one pass over the data per stage).
    Every sweep over the data starts from the model's state (stateful RNNs),
    and the model keeps it afterwards.
    """
    # Each stage one compiled program, its activations kept as tensors between
    # stages: on JAX a jitted `stateless_call` (activations on the device), on
    # TF a `tf.function` (`predict_on_batch` wrote back every variable on JAX
    # and copied every output to the host as NumPy on both).
    jitted = runner.programs_supported(tap.model)
    place = runner.placer() if jitted else (lambda t, a: a)
    sweep = _Sweep(tap, method, plan, batches, jitted, place)
    with tap.state:
        method.resync(statistics=False)  # every copy's statistics are set below
        stats, s = _cached(sweep, options.memory_budget)
        if s <= plan.last:
            require_reiterable(batches, options.data)
        for level in range(s, plan.last + 1):
            stats.update(_recomputed(sweep, level))
        return stats


def _cached(sweep, budget):
    """Stages on cached chunks while they fit `budget`: ``(stats, first stage not done)``."""
    plan, stats, s = sweep.plan, {}, 0
    cache, used = [], 0
    for chunk in sweep.chunks():
        cache.append(chunk)
        used += sum(_nbytes(a) for a in chunk.values())
        if used > budget:
            return stats, s
    while s <= plan.last:
        call, moments = sweep.call(s), []
        for chunk in cache if call else ():
            found, added = _call_stage(plan, s, call, chunk)
            moments += found
            used += added
            if used > budget:
                return stats, s
        stats.update(sweep.pool(moments))
        used -= _drop_spent(cache, plan.last_read, s)
        s += 1
    return stats, s


def _recomputed(sweep, level):
    """Stage `level` on inputs recomputed from the data: one pass over it."""
    plan = sweep.plan
    calls = [sweep.call(t) for t in range(level + 1)]
    if not calls[level]:
        return {}
    sweep.tap.state.restore()
    moments = []
    for chunk in sweep.chunks():
        for t, call in enumerate(calls[:level]):
            if call:
                _call_stage(plan, t, call, chunk)
                _drop_spent([chunk], plan.last_read, t)
        moments += _call_stage(plan, level, calls[level], chunk)[0]
    return sweep.pool(moments)


def _read_chunks(tap, plan, batches, place):
    """Yields the data in chunks of consecutive batches: ``{id(input): array}``."""
    sized = (
        (size, [np.asarray(a) for a in keras.tree.flatten(x)])
        for x, _, size in batches_lib.checked(batches, tap.inputs)
    )
    for group in _chunked(sized, plan.per_example):
        yield {
            id(t): place(t, arrays[0] if len(arrays) == 1 else np.concatenate(arrays))
            for t, arrays in zip(plan.inputs, zip(*group))
        }


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


def _bind(plan, s, jitted):
    """Stage `s`'s call with the statistics set now (None: the stage computes nothing)."""
    if s not in plan.built:
        wanted = [row for _, row, at in plan.sources if at == s]
        inputs, outs = stages_lib.stage_io(plan.nodes, plan.stage, s, wanted, plan.last_read)
        run = None
        if outs:
            model = keras.Model(inputs, outs, name=plan.name("stage"))
            run = runner.program(model) if jitted else model.predict_on_batch
        plan.built[s] = run, inputs, outs
    run = plan.built[s][0]
    return run.bound() if jitted and run is not None else run


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
