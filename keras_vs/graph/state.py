"""Carrying a layer's state into its copy, and a model's compile settings.

State is the variables and what is not a variable: lookup tables and
vocabularies, which Keras saves as assets (`save_assets`/`load_assets`).

Example:

>>> import keras
>>> a, b = keras.layers.Dense(1), keras.layers.Dense(1)
>>> a.build((None, 2)); b.build((None, 2))
>>> copy_state(a, b)
>>> bool((a.kernel.numpy() == b.kernel.numpy()).all())
True
"""

import os
import shutil
import tempfile

import keras

from keras_vs.graph.kinds import GraphError, _describe

__all__ = ["compile_like", "copy_state", "variable_slot"]


def copy_state(old, new, skip=()):
    """Copies a layer's variables and non-variable state into its built copy.

    Args:
        old: The layer.
        new: Its built copy.
        skip: Variables of `old` to leave as they are in `new`.
    """
    old_w, new_w = old.weights, new.weights
    if len(old_w) != len(new_w) or any(
        tuple(a.shape) != tuple(b.shape) for a, b in zip(old_w, new_w)
    ):
        raise GraphError(
            f"Cannot carry the weights of layer {old.name!r} "
            f"({type(old).__name__}) over: its rebuilt copy has "
            f"{[tuple(w.shape) for w in new_w]} weights instead of "
            f"{[tuple(w.shape) for w in old_w]}. Received: layer={_describe(old)}"
        )
    copy_buffers = keras.backend.backend() == "jax"
    for a, b in zip(old_w, new_w):
        if any(a is v for v in skip):
            continue
        value = a.value
        if copy_buffers:
            # JAX variables adopt the assigned array itself; training
            # the copy would then donate (delete) the original's buffer.
            value = keras.ops.copy(value)
        b.assign(value)
    _copy_assets(old, new)
    for layer in new._flatten_layers(include_self=True, recursive=True):
        # Preprocessing layers (Normalization, lookups) derive constants from
        # their variables here, as Keras does after loading a file.
        finalize = getattr(layer, "finalize_state", None)
        if callable(finalize):
            finalize()


def _has_assets(layer):
    # The base Layer has no such hook: any layer that defines one keeps state
    # outside its variables (IndexLookup, TextVectorization, ...).
    return callable(getattr(layer, "save_assets", None))


def _copy_assets(old, new):
    """Carries state that is not a variable (lookup tables, vocabularies) over.

    Keras saves such state as assets; the same public hooks
    (`save_assets` / `load_assets`) move it from layer to copy.
    """
    olds = list(old._flatten_layers(include_self=True, recursive=True))
    news = list(new._flatten_layers(include_self=True, recursive=True))
    pairs = [(a, b) for a, b in zip(olds, news) if _has_assets(a)]
    if not pairs:
        return
    if len(olds) != len(news):
        raise GraphError(
            f"Cannot carry the state of layer {old.name!r} ({type(old).__name__}) "
            f"over: its copy has {len(news)} sub-layers instead of {len(olds)}. "
            f"Received: layer={_describe(old)}"
        )
    folder = tempfile.mkdtemp(prefix="keras_vs_assets_")
    try:
        for i, (a, b) in enumerate(pairs):
            path = os.path.join(folder, str(i))
            os.makedirs(path)
            a.save_assets(path)
            b.load_assets(path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def compile_like(new, old):
    """Compiles `new` as `old` was compiled (fresh optimizer state); no-op if not.

    Returns:
        Whether `new` was compiled.
    """
    config = old.get_compile_config() if getattr(old, "compiled", False) else None
    if not config:
        return False
    new.compile_from_config(config)
    return True


def variable_slot(optimizer, variable):
    """Index of `variable` in the optimizer's per-variable slot lists (momentums, ...).

    Keras' own optimizers find slots by this private method; Keras has no
    public mapping, so custom optimizers (`tuner.recipe.TorchSGD`) ask here.
    """
    return optimizer._get_variable_index(variable)
