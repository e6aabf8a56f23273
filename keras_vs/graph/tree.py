"""The layer tree: every layer a model owns, called by its graph or not.

A model can own layers its graph never calls: a keras-hub task keeps its
whole backbone (``post_bn`` included) while calling only the feature maps it
needs, and a custom layer may create a BatchNormalization it never uses.

Example:

>>> import keras
>>> inner = keras.Sequential([keras.layers.BatchNormalization(name="bn")], name="inner")
>>> m = keras.Sequential([keras.Input((2,)), inner])
>>> [path for path, _ in owned(m) if path.endswith("bn")]
['inner/bn']
"""

from keras_vs.graph.kinds import is_bn_like

__all__ = ["owned"]


def owned(model):
    """``(path, layer)`` for every layer `model` owns, depth first.

    Paths join the owners' names (``backbone/post_bn``); a layer owned twice
    is listed once; a BN-like wrapper is listed, not the layer it wraps.

    Args:
        model: A built model or layer.
    """
    seen, found = {id(model)}, []

    def visit(layer, prefix):
        for sub in layer._flatten_layers(include_self=False, recursive=False):
            if id(sub) in seen:
                continue
            seen.add(id(sub))
            path = f"{prefix}{sub.name}"
            found.append((path, sub))
            if not is_bn_like(sub):
                visit(sub, f"{path}/")

    visit(model, "")
    return found
