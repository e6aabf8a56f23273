"""Carrying state from a layer or model into its copy, and compile settings.

`carry_state` is Keras' own saving contract run in memory: every object of
the tree saves its state with `save_own_variables`/`save_assets` and its copy
loads it with `load_own_variables`/`load_assets`, along the paths a `.keras`
file uses. Whatever a `.keras` round trip keeps (variables, adapted bins,
vocabularies, seed states, quantized weights), a copy keeps, with no list of
layer types. `copy_state` copies variables only, for the private helper
copies (BN clones) that measuring makes.

Example:

>>> import keras
>>> a, b = keras.layers.Dense(1), keras.layers.Dense(1)
>>> a.build((None, 2)); b.build((None, 2))
>>> carry_state(a, b)
>>> bool((a.kernel.numpy() == b.kernel.numpy()).all())
True
"""

import warnings

import keras
from keras.src.saving import keras_saveable, saving_lib

from keras_vs.checks import first_line
from keras_vs.graph.kinds import GraphError, _describe

__all__ = ["carry_state", "compile_like", "copy_state", "variable_slot"]


class _Values(dict):
    """One object's saved variables; values detached from the original's."""

    def __setitem__(self, key, value):
        if isinstance(value, keras.Variable):
            value = value.value
            if keras.backend.backend() == "jax":
                # A JAX variable adopts the assigned array itself: training
                # the copy would then donate (delete) the original's buffer.
                value = keras.ops.copy(value)
        super().__setitem__(key, value)


class _MemoryStore(saving_lib.NpzIOStore):
    """Keras' variable store, held in memory instead of a file."""

    def __init__(self):  # noqa: D107 - no file to open
        self.contents, self.mode, self.archive = {}, "w", None

    def make(self, path, metadata=None):
        values = self.contents[path or "__root__"] = _Values()
        return values

    def get(self, path):
        return self.contents.get(path or "__root__", {})

    def has_path(self, path):
        return (path or "__root__") in self.contents

    def close(self):
        pass


def _saveables(obj):
    """Ids of every Keras saveable under `obj`, `obj` included."""
    seen = set()
    stack = [obj]
    while stack:
        x = stack.pop()
        if isinstance(x, (list, tuple, dict)):
            stack.extend(x.values() if isinstance(x, dict) else x)
            continue
        if not isinstance(x, keras_saveable.KerasSaveable) or id(x) in seen:
            continue
        seen.add(id(x))
        stack.extend(child for _, child in saving_lib._walk_saveable(x))
    return seen


def carry_state(old, new, skip=()):
    """Carries all state of `old` into `new` through Keras' saving contract.

    Args:
        old: A layer or model.
        new: Its copy (same structure), built.
        skip: Pairs ``(part of old, part of new)`` whose state is left as
            it is (e.g. a nested model that was carried already).

    Raises:
        GraphError: naming the layer whose state does not fit its copy.

    Example:

    >>> a = keras.layers.Normalization()
    >>> a.adapt(np.array([[1.0], [3.0]]))
    >>> b = keras.layers.Normalization()
    >>> b.build((None, 1))
    >>> carry_state(a, b)
    >>> float(b(np.array([[3.0]]))[0, 0])
    1.0
    """
    _cache_attr_skipsets()
    if not skip and _is_leaf(old) and _is_leaf(new):
        _carry_leaf(old, new)
        return
    done_old = set().union(*(_saveables(a) for a, _ in skip)) if skip else set()
    done_new = set().union(*(_saveables(b) for _, b in skip)) if skip else set()
    for model, done in ((old, done_old), (new, done_new)):
        optimizer = getattr(model, "optimizer", None)
        if optimizer is not None:
            done.add(id(optimizer))  # a copy is compiled afresh (`compile_like`)
    weights = _MemoryStore()
    assets = saving_lib.DiskIOStore("assets", mode="w") if _has_assets(old) else None
    try:
        saving_lib._save_state(old, weights, assets, "", done_old)
        readable = saving_lib.DiskIOStore(assets.working_dir, mode="r") if assets else None
        try:
            saving_lib._load_state(new, weights, readable, "", visited_saveables=done_new)
        except Exception as e:  # noqa: BLE001 - any mismatch: name the layer
            raise GraphError(
                f"Cannot carry the state of {old.name!r} ({type(old).__name__}) into "
                f"its copy: {first_line(e)} Received: layer={_describe(old)}"
            ) from None
    finally:
        if assets is not None:
            assets.close()


def _holds_saveable(value, depth=0):
    """Whether `value` is, or a container in it holds, a Keras saveable."""
    if isinstance(value, keras_saveable.KerasSaveable):
        return True
    if depth < 4 and isinstance(value, (list, tuple, set, dict)):
        values = value.values() if isinstance(value, dict) else value
        return any(_holds_saveable(v, depth + 1) for v in values)
    return False


def _is_leaf(obj):
    """Whether the saving walk would find no saveable under `obj`, and no assets.

    A leaf layer (a Conv2D, a BN: no sublayers, no optimizer or metric of
    its own) holds its state in what its own `save_own_variables` writes.
    Keras' walk finds children by listing every attribute name of the object
    (``dir``, sorted, each read), a few ms a layer; a child saveable is an
    attribute the instance holds, so its ``__dict__`` tells the same faster.
    """
    if not isinstance(obj, keras.layers.Layer) or isinstance(obj, keras.Model):
        return False
    if callable(getattr(obj, "save_assets", None)) or callable(getattr(obj, "load_assets", None)):
        return False
    return not any(_holds_saveable(v) for v in vars(obj).values())


def _carry_leaf(old, new):
    """`carry_state` of one leaf layer: its own save/load hooks, in memory, no walk."""
    values = _Values()
    try:
        old.save_own_variables(values)
        new.load_own_variables(values)
    except Exception as e:  # noqa: BLE001 - any mismatch: name the layer
        raise GraphError(
            f"Cannot carry the state of {old.name!r} ({type(old).__name__}) into "
            f"its copy: {first_line(e)} Received: layer={_describe(old)}"
        ) from None


_SKIPSET_KINDS = ("Operation", "Layer", "Functional", "Sequential")


def _cache_attr_skipsets():
    """Makes Keras' per-kind attribute skip sets cached, as Keras meant them to be.

    `saving_lib.get_attr_skipset` reads its cache under one key
    (``saving_attr_skiplist_*``) and writes it under another
    (``saving_attr_skipset_*``; Keras 3.15), so every object the saving walk
    visits built a reference `Layer` again: 3.7 ms a layer, a third of a copy
    of MobileNetV2. The set is the same every time (the attributes of a bare
    `Layer`), so it is stored under the key Keras reads; `clear_session`
    clears it with Keras' other global state.
    """
    from keras.src.backend.common import global_state

    for kind in _SKIPSET_KINDS:
        key = f"saving_attr_skiplist_{kind}"
        if global_state.get_global_attribute(key, None) is None:
            global_state.set_global_attribute(key, saving_lib.get_attr_skipset(kind))


def copy_state(old, new, skip=()):
    """Copies a layer's variables into its built copy (helper copies only).

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


def _has_assets(layer):
    # The base Layer has no such hook: any layer that defines one keeps state
    # outside its variables (IndexLookup, TextVectorization, ...).
    return any(callable(getattr(x, "save_assets", None))
               for x in layer._flatten_layers(include_self=True, recursive=True))


def compile_like(new, old):
    """Compiles `new` as `old` was compiled (fresh optimizer state); no-op if not.

    Returns:
        Whether `new` was compiled.
    """
    config = old.get_compile_config() if getattr(old, "compiled", False) else None
    if not config:
        return False
    # What `compile_from_config` does, also for classes with their own
    # `compile` (keras-hub tasks), which it skips with a warning.
    try:
        new.compile(**keras.saving.deserialize_keras_object(config))
    except TypeError as e:  # a `compile` of its own that takes other arguments
        if getattr(new, "compiled", False):
            return True  # compiled by its own constructor, as loading its file gives it
        warnings.warn(
            f"{type(new).__name__}.compile() does not take the compile settings "
            f"{type(old).__name__} {old.name!r} was saved with ({first_line(e)}): the "
            "returned model is not compiled; compile it before fit or evaluate.",
            stacklevel=3)
        return False
    if getattr(new, "optimizer", None) is not None and new.built:
        new.optimizer.build(new.trainable_variables)
    return True


def variable_slot(optimizer, variable):
    """Index of `variable` in the optimizer's per-variable slot lists (momentums, ...).

    Keras' own optimizers find slots by this private method; Keras has no
    public mapping, so custom optimizers (`tuner.recipe.TorchSGD`) ask here.
    """
    return optimizer._get_variable_index(variable)
