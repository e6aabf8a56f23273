"""What a tap could not reach: one wording for every tool that measures or recalibrates.

`no_bn_error` is the error for a model with nothing to tap, `warn_hidden`
names BNs inside custom layers, `warn_not_called` BNs that their layer owns
but never calls on the data. Each takes a `keras_vs.probe.Probe` or what it
found.

Example:

>>> import keras
>>> from keras_vs.probe import Probe
>>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)], name="m")
>>> str(no_bn_error(model, Probe(model)))
"The model has no BatchNormalization layer. Received: model 'm'"
"""

import warnings

__all__ = ["no_bn_error", "warn_hidden", "warn_not_called"]


def no_bn_error(model, probe):
    """The error for a model with nothing to measure, naming hidden BNs."""
    if probe.hidden:
        where = "; ".join(f"{layer!r} holds {bns}" for layer, bns in probe.hidden.items())
        return ValueError(
            "Every BatchNormalization of this model sits inside a custom layer, where "
            "keras-vs cannot tap its input, so nothing can be measured or recalibrated "
            f"({where}). Build the block as a Functional model (nested models are "
            f"followed). Received: model {model.name!r}"
        )
    if probe.names:  # owned, never called
        return ValueError(
            "The model calls none of its BatchNormalization layers, so nothing can be "
            f"measured or recalibrated ({probe.names} are never called). "
            f"Received: model {model.name!r}"
        )
    return ValueError(
        f"The model has no BatchNormalization layer. Received: model {model.name!r}"
    )


def warn_hidden(probe):
    """Warns about BNs inside custom layers that were skipped."""
    if probe.hidden:
        where = "; ".join(f"{layer!r} holds {bns}" for layer, bns in probe.hidden.items())
        warnings.warn(
            f"BatchNormalization layers inside custom layers were not reached: {where}.",
            stacklevel=3,
        )


def warn_not_called(names, action, stacklevel=3):
    """Warns that the BNs `names` were never called on the data (`action`: what was done)."""
    if names:
        warnings.warn(
            f"BatchNormalization layers owned by a layer that never called them on the "
            f"data have no input statistics and were {action}: {list(names)}.",
            stacklevel=stacklevel,
        )
