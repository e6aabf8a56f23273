"""What keras-vs calls dropout-like and BN-like: the one definition.

Also the graph core's error type and the predicates every part of it shares
(`has_graph`). Wrappers such as `TimeDistributed` count as what they wrap;
custom layers that hide such layers are reported by `hidden`.

Example:

>>> import keras
>>> is_dropout_like(keras.layers.TimeDistributed(keras.layers.Dropout(0.5)))
True
"""

import keras

from keras_vs.layers import Uout

__all__ = [
    "BN_CLASSES",
    "DROPOUT_CLASSES",
    "GraphError",
    "RECURRENT_CLASSES",
    "bn_axis",
    "forced_training",
    "has_graph",
    "hidden",
    "is_bn_like",
    "is_dropout_like",
    "is_recurrent_dropout",
    "noise_rate",
    "producer_name",
    "recurrent_dropout",
    "unwrap",
]


class GraphError(ValueError):
    """A model, or a layer in it, that keras-vs cannot read or rebuild."""


#: Layers whose training-time noise changes the variance a later BN sees.
#: GaussianNoise counts: it adds stddev**2 to the variance in training only.
DROPOUT_CLASSES = (
    keras.layers.Dropout,  # SpatialDropout1D/2D/3D subclass it
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
    keras.layers.GaussianNoise,
    Uout,
)
#: BN layers keep a moving variance (the one the shift makes wrong).
BN_CLASSES = (keras.layers.BatchNormalization,)
#: Recurrent layers whose cells can drop inputs (``dropout=``) and states
#: (``recurrent_dropout=``) in training: LSTM, GRU, SimpleRNN, ConvLSTM*,
#: `keras.layers.RNN` around such cells, and `Bidirectional` around those.
RECURRENT_CLASSES = (keras.layers.RNN, keras.layers.Bidirectional)


def unwrap(layer):
    """The layer inside `keras.layers.Wrapper`s (`TimeDistributed`, ...)."""
    while isinstance(layer, keras.layers.Wrapper):
        layer = layer.layer
    return layer


def is_dropout_like(layer):
    """Whether `layer` (possibly wrapped) adds noise in training only."""
    return isinstance(unwrap(layer), DROPOUT_CLASSES)


def is_bn_like(layer):
    """Whether `layer` (possibly wrapped) is a BatchNormalization."""
    return isinstance(unwrap(layer), BN_CLASSES)


def noise_rate(layer):
    """A dropout-like layer's amount: rate, Uout's beta or GaussianNoise's stddev."""
    inner = unwrap(layer)
    if isinstance(inner, Uout):
        return float(inner.beta)
    if isinstance(inner, keras.layers.GaussianNoise):
        return float(inner.stddev)
    return float(inner.rate)


def _rate(obj, key):
    value = getattr(obj, key, 0.0)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0


def recurrent_dropout(layer):
    """A recurrent layer's ``(dropout, recurrent_dropout)``.

    Each is the largest over its cells (`keras.layers.StackedRNNCells`) and,
    for `Bidirectional`, over both directions.

    Args:
        layer: Any operation of a graph (possibly wrapped).

    Returns:
        ``(dropout, recurrent_dropout)`` as floats; ``(0.0, 0.0)`` for a
        layer that is not recurrent.
    """
    inner = unwrap(layer)
    if isinstance(inner, keras.layers.Bidirectional):
        rates = [recurrent_dropout(d) for d in (inner.forward_layer, inner.backward_layer)]
    elif isinstance(inner, keras.layers.RNN):
        cells = getattr(inner.cell, "cells", None) or [inner.cell]
        rates = [(_rate(c, "dropout"), _rate(c, "recurrent_dropout")) for c in cells]
    else:
        return 0.0, 0.0
    return max(r[0] for r in rates), max(r[1] for r in rates)


def is_recurrent_dropout(layer):
    """Whether `layer` (possibly wrapped) is recurrent with a dropout > 0 in its cells."""
    return isinstance(unwrap(layer), RECURRENT_CLASSES) and any(
        rate > 0 for rate in recurrent_dropout(layer)
    )


def bn_axis(layer, rank):
    """The channel axis, counted from 0, of a BN-like call on a rank-`rank` input."""
    axis = unwrap(layer).axis
    if isinstance(axis, (list, tuple)):
        (axis,) = axis
    if isinstance(layer, keras.layers.Wrapper):
        # TimeDistributed feeds its layer inputs without the time axis.
        return axis + 1 if axis >= 0 else rank + axis
    return axis % rank


def hidden(layer):
    """Dropout-like and BN-like layers hidden inside a custom layer.

    Args:
        layer: Any operation of a graph.

    Returns:
        ``(dropouts, bns)``: lists of sub-layers keras-vs cannot reach through
        the graph (empty for graph models, wrappers and plain layers).
    """
    if not isinstance(layer, keras.layers.Layer) or has_graph(layer):
        return [], []
    if is_dropout_like(layer) or is_bn_like(layer):
        return [], []
    subs = [s for s in layer._flatten_layers(include_self=False, recursive=True)]
    return [s for s in subs if is_dropout_like(s)], [s for s in subs if is_bn_like(s)]


def producer_name(tensor, default=None):
    """Name of the operation that produced a symbolic tensor (`default` if none)."""
    history = getattr(tensor, "_keras_history", None)
    return history.operation.name if history is not None else default


def supports_jit(model):
    """Whether Keras would compile `model`'s calls (its ``jit_compile="auto"``):
    not when a layer, nested ones included, is TF-backed preprocessing such as
    a lookup table."""
    from keras.src.trainers.trainer import model_supports_jit

    return model_supports_jit(model)


def forced_training(node):
    """Whether the call was made with ``training=True`` (e.g. MC dropout)."""
    return node.arguments.kwargs.get("training") is True


def _is_functional(obj):
    return isinstance(obj, keras.Model) and hasattr(obj, "_nodes_by_depth")


def _is_sequential(obj):
    return isinstance(obj, keras.Sequential)


def has_graph(obj):
    """Whether `obj` is a model whose layer graph keras-vs can read."""
    if _is_sequential(obj):
        return getattr(obj, "_functional", None) is not None
    return _is_functional(obj)


def _describe(obj):
    return f"{type(obj).__name__} {getattr(obj, 'name', '?')!r}"

