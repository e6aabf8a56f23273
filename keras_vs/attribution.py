"""Why a BN is shifted: the paper's ratio real/moving split into three parts.

For one BN, with channel-mean variances as `keras_vs.shift.statistic` uses:

- ``moving``: its stored moving variance;
- ``train``: the population variance of its input in training mode (dropout
  on, every BN normalising with batch statistics): what the moving average
  estimates once it has converged;
- ``real``: the population variance of its input at inference, upstream BNs
  as stored (what `measure_variance_shift` measures);
- ``real_star``: the same with every upstream BN at its re-estimated
  (``recalibrate_bn(method="exact")``) statistics.

Then ``real / moving = (train / moving) * (real_star / train) * (real / real_star)``:
the *statistics part* (moving averages that have not converged, or drifted),
the *dropout part* (the paper's variance shift proper) and the *upstream
part* (inherited from stale BNs above). Each part is also shown as
``max(a/b, b/a)``, 1 = none. The cost is three passes over the data (one in
training mode, one at inference, the exact re-estimation) and one model copy.

Example:

>>> import keras, numpy as np
>>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dropout(0.5, seed=1),
...                       keras.layers.BatchNormalization(name="bn")])
>>> a = attribute_shift(m, np.random.default_rng(0).normal(size=(512, 2)))
>>> part = a["bn"]
>>> round(part.statistics * part.dropout * part.upstream / part.ratio, 6)
1.0
"""

import collections.abc
import dataclasses
import math
import weakref

import keras
import numpy as np

from keras_vs import graph as graph_lib
from keras_vs import probe as probe_lib
from keras_vs import runner
from keras_vs.batches import DEFAULT_BATCH_SIZE, Batches

__all__ = ["BNAttribution", "ShiftAttribution", "attribute", "attribute_shift"]

#: A part above this (as max(a/b, b/a)) is worth a sentence (networks
#: trained without dropout measure 1.00-1.07 in the paper).
NOTABLE = 1.1
PARTS = ("statistics", "dropout", "upstream")


def _both(ratio):
    if not math.isfinite(ratio) or ratio <= 0:
        return math.inf
    return max(ratio, 1.0 / ratio)


def _ratio(a, b):
    if a == b:
        return 1.0
    return a / b if b > 0 else math.inf


@dataclasses.dataclass(frozen=True)
class BNAttribution:
    """The three parts of one BN's shift (channel-mean variances).

    Attributes:
        bn: The BN's name (``outer/inner/bn`` in nested models).
        moving: Stored moving variance.
        train: Population variance of its input in training mode.
        real: Variance of its input at inference, upstream BNs as stored.
        real_star: The same with every upstream BN re-estimated (exact).
        momentum: The BN's momentum.
        steps: Optimizer steps the model was trained for (None: unknown).
    """

    bn: str
    moving: float
    train: float
    real: float
    real_star: float
    momentum: float
    steps: object = None

    @property
    def ratio(self):
        """``real / moving``: the product of the three ratios."""
        return _ratio(self.real, self.moving)

    @property
    def shift(self):
        """The paper's statistic, ``max(real/moving, moving/real)``."""
        return _both(self.ratio)

    @property
    def statistics(self):
        """``train / moving`` (stale or drifted moving averages)."""
        return _ratio(self.train, self.moving)

    @property
    def dropout(self):
        """``real_star / train`` (the variance shift proper)."""
        return _ratio(self.real_star, self.train)

    @property
    def upstream(self):
        """``real / real_star`` (inherited from upstream BNs)."""
        return _ratio(self.real, self.real_star)

    def part(self, name):
        """The part `name` (one of `PARTS`) as ``max(a/b, b/a)``, 1 = none."""
        return _both(getattr(self, name))

    @property
    def dominant(self):
        """The largest part when it is notable (> `NOTABLE`), else None."""
        name = max(PARTS, key=self.part)
        return name if self.part(name) > NOTABLE else None

    def explain(self):
        """One sentence on what dominates, or that nothing does."""
        name = self.dominant
        if name is None:
            return f"{self.bn}: no notable shift (shift {self.shift:.3g}, every part below {NOTABLE})."
        k = self.part(name)
        if name == "statistics":
            side = "above" if self.moving > self.train else "below"
            return (f"{self.bn}: the statistics part dominates: the stored moving variance is {k:.3g}x "
                    f"{side} the training-mode variance of its input, so the moving averages "
                    f"{self._why_stale()}. Re-estimating the statistics removes this part.")
        if name == "dropout":
            side = "lower" if self.real_star < self.train else "higher"
            return (f"{self.bn}: the dropout part dominates: with every BN above it re-estimated, "
                    f"its input is {k:.3g}x {side} in variance at inference than in training: the "
                    "paper's variance shift, from dropout (or other training-only noise) in front "
                    "of it. Re-estimation removes it from inference; moving the dropout after the "
                    "BN (keras-vs rewrite) and fine-tuning removes it from training.")
        return (f"{self.bn}: the upstream part dominates: its inference input is {k:.3g}x off only "
                "because BNs above it keep stale statistics; with them re-estimated its own "
                f"shift is {self.part('dropout'):.3g} (dropout) x {self.part('statistics'):.3g} "
                "(statistics).")

    def _why_stale(self):
        m = self.momentum
        if self.steps and 0 < m < 1:
            kept = m ** self.steps
            if kept > 0.01:
                return (f"have not converged (momentum {m:g} over {self.steps} steps keeps "
                        f"{m:g}^{self.steps} = {kept:.0%} of the initial variance 1.0)")
            return (f"have drifted (momentum {m:g} over {self.steps} steps has long forgotten the "
                    "initial value: the weights or the data changed after the averages settled)")
        if 0 < m < 1:
            need = math.ceil(math.log(0.01) / math.log(m))
            return (f"have not converged or have drifted (momentum {m:g} needs about {need} "
                    "steps to forget 99% of the initial variance 1.0)")
        return "do not match the data"

    def as_dict(self):
        """JSON-ready: the variances, ``shift`` and each part in both forms."""
        def num(v):
            return float(v) if math.isfinite(v) else None

        out = {"bn": self.bn, "shift": num(self.shift)}
        out.update({f"{p}_part": num(self.part(p)) for p in PARTS})
        out.update({f"{p}_ratio": num(getattr(self, p)) for p in PARTS})
        out.update(moving_var=self.moving, train_var=self.train, real_var=self.real,
                   real_var_upstream_reestimated=self.real_star, momentum=self.momentum,
                   steps=self.steps, dominant=self.dominant, explanation=self.explain())
        return out


class ShiftAttribution(collections.abc.Mapping):
    """``bn name -> BNAttribution``, shallow to deep.

    Attributes:
        num_examples: Examples each pass read.
        not_called: BNs never called on the data (not attributed).
    """

    def __init__(self, layers, num_examples, not_called=()):
        self._layers = dict(layers)
        self.num_examples = num_examples
        self.not_called = tuple(not_called)

    def __getitem__(self, name):
        return self._layers[name]

    def __iter__(self):
        return iter(self._layers)

    def __len__(self):
        return len(self._layers)

    def explain(self):
        """One sentence per BN with a notable part."""
        return [a.explain() for a in self.values() if a.dominant]

    def __repr__(self):
        body = ", ".join(
            f"{k!r}: ({a.part('statistics'):.3g}, {a.part('dropout'):.3g}, {a.part('upstream'):.3g})"
            for k, a in self.items()
        )
        return f"ShiftAttribution({{{body}}})  # (statistics, dropout, upstream) parts"


def attribute_shift(model, data, steps=None, *, batch_size=DEFAULT_BATCH_SIZE):
    """Splits every BN's variance shift into its statistics, dropout and upstream parts.

    Args:
        model: A built Functional or Sequential model (not modified).
        data: What `measure_variance_shift` takes, but re-iterable (NumPy
            arrays, a `tf.data.Dataset`, a `keras.utils.PyDataset`): it is
            read three times. Use the training data, unaugmented.
        steps: Optional number of batches to use (all if None).
        batch_size: Batch size for NumPy inputs; training-mode BN statistics
            depend on it: use the one the model was trained with.

    Returns:
        A `ShiftAttribution`; empty for a model without BatchNormalization.

    Raises:
        ValueError: The data is a one-shot iterator, or what
            `measure_variance_shift` and `recalibrate_bn` raise.
    """
    from keras_vs.recalibrate import recalibrate_bn

    if not Batches(data, steps, batch_size).reiterable:
        raise ValueError(
            "attribute_shift reads the data three times; pass NumPy arrays, a tf.data.Dataset "
            f"or a PyDataset. Received: a one-shot iterator of type {type(data).__name__}"
        )
    probe = probe_lib.probe_for(model)
    if probe.model is None and not probe.hidden:
        return ShiftAttribution({}, 0, probe.names)
    exact = recalibrate_bn(model, data, steps, batch_size=batch_size, method="exact")
    return attribute(model, data, exact, steps=steps, batch_size=batch_size)


def attribute(model, data, exact, *, steps=None, batch_size=DEFAULT_BATCH_SIZE):
    """`attribute_shift` given ``exact``, ``recalibrate_bn(model, data, method="exact")``.

    The doctor re-uses the copy it evaluates as a candidate fix.
    """
    from keras_vs import shift

    measured = shift.measure_variance_shift(model, data, steps, batch_size=batch_size)
    train = _training_moments(model, Batches(data, steps, batch_size))
    counterpart = {id(old): new for old, new in graph_lib.layer_pairs(model, exact)}
    bns = probe_lib.probe_for(model).bns
    iterations = _steps(model)
    layers = {}
    for name in measured:
        bn = bns[name]
        twin = graph_lib.unwrap(counterpart.get(id(bn), bn))
        real_star = float(np.mean(runner.host_values([twin.moving_variance])[0]))
        if twin is graph_lib.unwrap(bn):  # no counterpart (hidden BN): nothing re-estimated
            real_star = math.nan
        layers[name] = BNAttribution(
            name, float(np.mean(measured.moving_var[name])), float(np.mean(train[name][2])),
            float(np.mean(measured.real_var[name])), real_star,
            float(getattr(graph_lib.unwrap(bn), "momentum", math.nan)), iterations,
        )
    return ShiftAttribution(layers, measured.num_examples, measured.not_called)


def _steps(model):
    """The optimizer's iteration count, when the model has trained with one."""
    optimizer = getattr(model, "optimizer", None)
    iterations = getattr(optimizer, "iterations", None)
    if iterations is None:
        return None
    try:
        value = int(keras.ops.convert_to_numpy(iterations.value if hasattr(iterations, "value") else iterations))
    except (TypeError, ValueError):
        return None
    return value or None


# ---------------------------------------------------------------------------
# Training-mode moments: the "precise" probe with every dropout on.


class _Noisy(keras.layers.Layer):
    """Calls a dropout-like (or recurrent) layer in training mode, whatever the call's mode."""

    def __init__(self, layer, **kwargs):
        super().__init__(dtype=layer.dtype_policy, autocast=False, **kwargs)
        self.inner = layer
        self.supports_masking = True

    def call(self, *args, **kwargs):
        kwargs.pop("training", None)
        return self.inner(*args, training=True, **kwargs)

    def compute_mask(self, *args, mask=None, **kwargs):
        return mask

    def compute_output_spec(self, *args, **kwargs):
        kwargs.pop("training", None)
        return self.inner.compute_output_spec(*args, **kwargs)


class _TrainingProbe(probe_lib.Probe):
    """A "precise" probe (BNs on batch statistics) whose dropout-like layers are on.

    Dropout inside custom layers stays off (keras-vs cannot reach it).
    """

    def __init__(self, model):
        super().__init__(model, "precise")

    def _hook(self, site, args, kwargs):
        layer = site.layer
        if graph_lib.is_dropout_like(layer) or graph_lib.is_recurrent_dropout(layer):
            kwargs = {k: v for k, v in kwargs.items() if k != "training"}
            return _Noisy(layer, name=self.new_name("training_noise"))(*args, **kwargs)
        return super()._hook(site, args, kwargs)


_TRAINING = weakref.WeakKeyDictionary()  # model -> (graph signature, _TrainingProbe)


def _training_moments(model, batches):
    """``name -> (count, mean, var)`` of every BN input in training mode."""
    signature = graph_lib.signature(model)
    cached = _TRAINING.get(model)
    if cached is None or cached[0] != signature:
        cached = (signature, _TrainingProbe(model))
        try:
            _TRAINING[model] = cached
        except TypeError:
            pass
    return cached[1].moments(batches)
