"""What the BNs do while the tap records their inputs: one strategy per method.

One table, `METHODS`, maps each method's name to its class (registered with
`register` beside its definition). A `keras_vs.probe.Probe` makes one
instance and asks it, for every BN:

- ``graph_call``: what the BN computes in the tap's graph;
- ``hidden``/``host_call``: the same for a BN inside a custom layer, whose
  call is patched while the tap runs;
- ``statistics``: each BN's re-estimated ``(mean, var)`` from passes of the tap.

Methods:
    ``"inference"``: the BNs normalise with their moving statistics
        (measuring: the statistics are what each BN sees at inference now).
    ``"precise"``: every BN normalises with the statistics of the current
        batch, as in training, without touching its moving statistics
        (PreciseBN; one pass).
    ``"exact"``: the BNs are copies whose moving statistics are set as they
        are re-estimated (each BN calibrated on what it sees at inference
        after the fix; by stages or passes, `keras_vs.exact`).

A method owns what it derives from its tap (the copies, the stage plan), so
a cached tap keeps it for every later call.

Example:

>>> sorted(METHODS)
['exact', 'inference', 'precise']
"""

import typing

import keras

from keras_vs import exact as exact_lib
from keras_vs import graph as graph_lib
from keras_vs import moments as moments_lib

__all__ = [
    "METHODS", "Exact", "GraphCall", "HostCall", "Inference", "Method", "Precise", "get", "register",
]

#: ``name -> Method subclass``, in the order they were registered.
METHODS = {}


class GraphCall(typing.NamedTuple):
    """A BN call being inlined into the tap (symbolic).

    Attributes:
        args: The call's positional arguments.
        kwargs: Its keyword arguments.
        x: The BN's input.
        row: The input's moments row (`keras_vs.moments.moments_row`).
    """

    args: tuple
    kwargs: dict
    x: object
    row: object


class HostCall(typing.NamedTuple):
    """A call of a BN inside a custom layer while the tap runs (eager).

    Attributes:
        inputs: The BN's input.
        row: Its moments row.
        mask: The call's mask.
        kwargs: The call's other keyword arguments.
    """

    inputs: object
    row: object
    mask: object
    kwargs: dict


def register(name):
    """Class decorator: adds a `Method` to `METHODS` under `name`."""

    def add(cls):
        cls.name = name
        METHODS[name] = cls
        return cls

    return add


def get(name):
    """A new instance of the method `name`, or a ValueError naming the choices."""
    if name not in METHODS:
        raise ValueError(f"Expected method in {tuple(METHODS)}. Received: method={name!r}")
    return METHODS[name]()


class Method:
    """A BN's behaviour while tapped, and the statistics derived from it.

    By default (measuring's behaviour) the BN is called as it is, in
    inference, and the statistics are one pass's pooled moments.
    """

    name = None

    def graph_call(self, tap, name, layer, call):
        """The BN's output in the tap's graph.

        Args:
            tap: The `keras_vs.probe.Probe` being built.
            name: The BN's name in the tap.
            layer: The BN (the user's instance).
            call: The `GraphCall` being inlined.
        """
        return layer(*call.args, **call.kwargs)

    def hidden(self, name, bn):
        """Prepares for a built BN inside a custom layer (patched while tapped)."""

    def host_call(self, name, bn, original, call):
        """The output of a BN inside a custom layer, called eagerly.

        Args:
            name: The BN's name in the tap.
            bn: The BN.
            original: Its class ``call`` bound to it.
            call: The `HostCall`.
        """
        return original(call.inputs, training=False, mask=call.mask, **call.kwargs)

    def resync(self, statistics=True):
        """Copies the BNs' current state into what the method calls instead (if anything)."""

    def statistics(self, tap, batches, options):
        """``name -> (mean, var)`` of every BN the data reaches.

        Args:
            tap: The method's `keras_vs.probe.Probe`.
            batches: A `keras_vs.batches.Batches`.
            options: A `keras_vs.exact.Options` (what some methods also need).
        """
        moments = tap.moments(batches)
        return {n: (moments[n][1], moments[n][2]) for n in tap.names if n in moments}


@register("inference")
class Inference(Method):
    """Every BN on its moving statistics, as at inference (measuring)."""


class _TrainingNorm(keras.layers.Layer):
    """`keras_vs.moments.batch_norm_train` of a BN as a layer of the tap.

    As a Functional op node, ``batch_norm_train`` would hold gamma and beta
    as the constants they were when the tap was built: stale once the
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
        return moments_lib.batch_norm_train(self.bn, x, row)

    def compute_output_spec(self, x, row):
        return keras.KerasTensor(x.shape, dtype=graph_lib.unwrap(self.bn).compute_dtype)


@register("precise")
class Precise(Method):
    """Every BN on the statistics of the current batch; one pass."""

    def graph_call(self, tap, name, layer, call):
        # One set of moments for recording and normalising.
        return _TrainingNorm(layer, name=tap.new_name("training_norm"))(call.x, call.row)

    def host_call(self, name, bn, original, call):
        return moments_lib.batch_norm_train(bn, call.inputs, call.row)


@register("exact")
class Exact(Method):
    """Every BN a copy whose moving statistics are set as they are re-estimated.

    Attributes:
        copies: ``BN name -> its copy``.
        plan: The tap's `keras_vs.exact.Plan`, made on first use (None when
            the tap cannot be run in stages).
    """

    def __init__(self):
        self.copies = {}
        self._pairs = []  # (original, copy)
        self._plan = exact_lib.UNPLANNED

    def graph_call(self, tap, name, layer, call):
        copy = self.copies.get(name)
        if copy is None:
            copy = graph_lib.clone_layer(layer)
            self._add(name, layer, copy)
        return copy(*call.args, **call.kwargs)

    def hidden(self, name, bn):
        copy = graph_lib.clone_layer(bn)
        # Built for the input the BN was built for: BN checks the rank.
        shape = (bn.get_build_config() or {}).get("input_shape")
        if shape is None:
            inner = graph_lib.unwrap(bn)
            axis = inner.axis[0] if isinstance(inner.axis, (list, tuple)) else inner.axis
            channels = int(inner.moving_mean.shape[0])
            shape = [None, channels] if axis == -1 else [None] * axis + [channels]
        copy.build(tuple(shape))
        self._add(name, bn, copy)

    def _add(self, name, bn, copy):
        self.copies[name] = copy
        self._pairs.append((bn, copy))

    def host_call(self, name, bn, original, call):
        return self.copies[name](call.inputs, training=False)

    def resync(self, statistics=True):
        """Copies the original BNs' current state into the copies.

        Args:
            statistics: Also the moving mean and variance; False when the
                caller sets every copy's statistics itself.
        """
        for old, new in self._pairs:
            inner = graph_lib.unwrap(old)
            skip = () if statistics else (inner.moving_mean, inner.moving_variance)
            graph_lib.copy_state(old, new, skip=skip)

    def set_statistics(self, stats):
        """Sets the copies' moving statistics: ``name -> (mean, var)``."""
        for name, (mean, var) in stats.items():
            exact_lib.assign(self.copies[name], mean, var)

    def plan(self, tap):
        """The tap's stage plan, made once; None if the tap cannot be staged."""
        if self._plan is exact_lib.UNPLANNED:
            self._plan = exact_lib.plan_for(tap, self.copies)
        return self._plan

    def statistics(self, tap, batches, options):
        plan = self.plan(tap)
        if plan is None:
            exact_lib.require_reiterable(batches, options.data)
            return exact_lib.by_passes(tap, self, batches)
        return exact_lib.by_stages(tap, self, plan, batches, options)
