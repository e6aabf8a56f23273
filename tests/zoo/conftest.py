"""Zoo test helpers: who produces and who consumes a layer's tensors, via
the public ``layer.input`` / ``layer.output`` of a functional model."""

import types

import keras
import pytest


def _inputs(layer):
    value = layer.input
    return value if isinstance(value, (list, tuple)) else [value]


def producer(model, name):
    """Name of the layer whose output is the input of layer ``name``."""
    (tensor,) = _inputs(model.get_layer(name))
    for layer in model.layers:
        if layer.output is tensor:
            return layer.name
    raise AssertionError(f"no producer for {name}")


def consumers(model, name):
    """Names of the layers that take layer ``name``'s output as an input."""
    out = model.get_layer(name).output
    return sorted(
        layer.name
        for layer in model.layers
        if not isinstance(layer, keras.layers.InputLayer)
        and any(t is out for t in _inputs(layer))
    )


def dropout_names(model):
    return [layer.name for layer in model.layers if layer.name.endswith("_dropout")]


@pytest.fixture
def graph():
    """The helpers above, as ``graph.producer(model, name)`` etc."""
    return types.SimpleNamespace(
        producer=producer, consumers=consumers, dropout_names=dropout_names
    )
