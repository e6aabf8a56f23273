"""Inlining: re-calling a model's own layers on new inputs, with a hook per call.

Measuring taps BN inputs this way: the original layers are called (never
re-instantiated), so the inlined graph computes exactly what the model
computes, reads its live variables and works for any layer, custom and
Lambda included.

Example:

>>> import keras
>>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
>>> inputs, outputs, _, _ = inline(m)
>>> keras.Model(inputs, outputs).layers[1] is m.layers[0]
True
"""

import contextlib
import dataclasses

import keras

from keras_vs.checks import first_line
from keras_vs.graph.kinds import GraphError, _describe
from keras_vs.graph.model_graph import ModelGraph, check_sequential_chains, clone_input

__all__ = ["Site", "calls_replaced", "inline", "own_call"]


@dataclasses.dataclass(frozen=True)
class Site:
    """One call of a leaf operation in an inlined model.

    Attributes:
        name: Qualified name of the operation (``outer/inner/bn``).
        layer: The operation (the original instance).
        node: Its node in the original graph.
        tap: ``tap(key, tensor)`` adds `tensor` to the taps returned by
            `inline` under `key`.
    """

    name: str
    layer: object
    node: object
    tap: object


def _unique_names(graph):
    seen = {}
    for view in graph.views:
        for node in view.nodes:
            op = node.operation
            if view.children.get(id(node)) is None and seen.setdefault(op.name, id(op)) != id(op):
                return False
    return True


def _call(site, args, kwargs):
    return site.layer(*args, **kwargs)


class _Inliner:
    """Walks the views of a `ModelGraph`, calling each leaf through the hook."""

    def __init__(self, graph, hook):
        self.graph = graph
        self.hook = hook or _call
        self.flat = _unique_names(graph)
        self._wrapped = {}

    def nested(self, child):
        """`child` as a model of its own that returns its outputs, then its taps."""
        if id(child) not in self._wrapped:
            inputs = [clone_input(t) for t in child.inputs]
            taps = []
            outs = self.run(child, {id(t): v for t, v in zip(child.inputs, inputs)}, taps)
            sub = keras.Model(inputs, outs + [t for _, t in taps], name=child.model.name)
            self._wrapped[id(child)] = (sub, len(outs), [k for k, _ in taps])
        return self._wrapped[id(child)]

    def run(self, view, values, taps):
        """Computes `view`'s outputs from `values` (``{id(tensor): value}``)."""
        for node in view.nodes:
            read = {id(t): values[id(t)] for t in node.arguments.keras_tensors}
            child = view.children.get(id(node))
            if child is not None:
                outs = self._enter(view, node, child, read, taps)
            else:
                outs = self._leaf(view, node, read, taps)
            for t, v in zip(node.outputs, keras.tree.flatten(outs)):
                values[id(t)] = v
        return [values[id(t)] for t in view.outputs]

    def _enter(self, view, node, child, read, taps):
        given = [read[id(t)] for t in node.arguments.keras_tensors]
        if len(given) != len(child.inputs):
            raise GraphError(
                f"Cannot follow the call of nested model "
                f"{view.qualname(node.operation)!r}: it takes "
                f"{len(child.inputs)} input(s) but was called on "
                f"{len(given)} tensor(s). Received: model={_describe(child.model)}"
            )
        if self.flat:
            return self.run(child, {id(t): v for t, v in zip(child.inputs, given)}, taps)
        sub, n_main, keys = self.nested(child)
        res = keras.tree.flatten(sub(given))
        taps.extend(zip(keys, res[n_main:]))
        return res[:n_main]

    def _leaf(self, view, node, read, taps):
        args, kwargs = node.arguments.fill_in(read)
        site = Site(
            view.qualname(node.operation),
            node.operation,
            node,
            lambda key, tensor: taps.append((key, tensor)),
        )
        try:
            return self.hook(site, args, kwargs)
        except GraphError:
            raise
        except Exception as e:  # noqa: BLE001 - any failure: name the layer
            raise GraphError(
                f"Cannot re-call layer {site.name!r} "
                f"({type(site.layer).__name__}) on a new graph "
                f"({first_line(e)}). Received: layer={_describe(site.layer)}"
            ) from None


def inline(model, hook=None):
    """Re-calls `model`'s leaf operations on new inputs, sharing its layers.

    Nested models are flattened into one graph when every leaf name is unique
    across the tree; otherwise each nested model becomes a nested model of
    its own that also returns its taps.

    Args:
        model: A Functional or Sequential model.
        hook: Optional ``hook(site, args, kwargs) -> outputs``, called instead
            of ``site.layer(*args, **kwargs)`` for every leaf call; it may
            call ``site.tap(key, tensor)``.

    Returns:
        ``(inputs, outputs, taps, flat)``: new symbolic inputs and outputs,
        structured as the model's (for `keras.Model(inputs, outputs)`), the
        ``(key, tensor)`` taps, and whether the graph was flattened.
    """
    graph = ModelGraph(model)
    check_sequential_chains(graph)
    inliner = _Inliner(graph, hook)
    root = graph.root
    new_inputs = [clone_input(t) for t in root.inputs]
    taps = []
    outputs = inliner.run(root, {id(t): v for t, v in zip(root.inputs, new_inputs)}, taps)
    fn = root.fn
    return (
        keras.tree.pack_sequence_as(fn._inputs_struct, new_inputs),
        keras.tree.pack_sequence_as(fn._outputs_struct, outputs),
        taps,
        inliner.flat,
    )


@contextlib.contextmanager
def calls_replaced(replacements):
    """Context: each ``(layer, call)`` pair's layer runs `call` instead of its own.

    This reaches layers inside custom layers, where no graph edit can; the
    layers are restored on exit, also after an error.

    Args:
        replacements: ``(layer, call)`` pairs; `call` takes the arguments of
            the layer's ``call``.
    """
    done = []
    try:
        for layer, call in replacements:
            # An instance attribute shadows the class's `call` for this layer only.
            object.__setattr__(layer, "call", call)
            done.append(layer)
        yield
    finally:
        for layer in done:
            object.__delattr__(layer, "call")


def own_call(layer):
    """The layer's class `call`, bound to it (even while `calls_replaced` is active)."""
    return type(layer).call.__get__(layer)
