"""Rebuilding a model from its graph: copies and per-edge edits.

`rebuild` re-creates the whole model tree from the views by walking each
graph in topological order and re-calling (cloned or shared) layers on new
symbolic tensors, applying per-edge `Action`s on the way. Keras'
`clone_model` offers the same walk but not per-edge edits, does not apply a
`call_function` to Sequential models and does not recurse into nested
Sequential models, which is why keras-vs walks the graph itself.

Every model comes back as its own class, made as Keras makes it when it
loads a file (`keras_vs.graph.classes` makes it: a Functional subclass with
the new inputs and outputs, a class with a config of its own by its
`from_config`, with the nested models that were edited passed in their
place). State goes through `carry_state` (Keras' saving contract), so a copy
keeps what a `.keras` round trip keeps. A class whose own graph is edited
cannot say so in its config: it comes back as a Functional.

Example:

>>> import keras
>>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
>>> copy(m).layers[0] is m.layers[0]
False
"""

import dataclasses
import warnings

import keras

from keras_vs.graph import classes
from keras_vs.checks import first_line
from keras_vs.graph.kinds import GraphError, _describe, has_graph
from keras_vs.graph.model_graph import (
    Edge,
    ModelGraph,
    check_sequential_chains,
    clone_input,
    node_inputs,
)
from keras_vs.graph.state import carry_state

__all__ = ["Action", "NewLayer", "clone_layer", "copy", "rebuild"]


@dataclasses.dataclass(frozen=True)
class NewLayer:
    """A layer to create while rebuilding: a class and its config."""

    cls: type
    config: dict

    @property
    def name(self):
        return self.config["name"]


@dataclasses.dataclass(frozen=True)
class Action:
    """What happens to the value read through one edge.

    kind:
        ``"bypass"``: the edge's tensor comes from a one-input layer (a
            dropout); read that layer's input instead, as if it were absent.
        ``"via"``: like bypass, then apply `layer` (a replacement).
        ``"after"``: apply `layer` to the edge's tensor (an insertion).
    """

    kind: str
    layer: NewLayer = None


def clone_layer(layer):
    """A new, unbuilt layer from `layer`'s config (`copy_state` fills it)."""
    return _clone_layer(layer)


def _clone_layer(layer):
    try:
        config = layer.get_config()
    except Exception as e:  # noqa: BLE001 - any failure means "not cloneable"
        raise GraphError(
            f"Cannot rebuild layer {layer.name!r} ({type(layer).__name__}): its "
            f"get_config() failed ({first_line(e)}). Give the layer a "
            "get_config() that returns its constructor arguments, or pass "
            f"share_weights=True to reuse it. Received: layer={_describe(layer)}"
        ) from None
    try:
        return type(layer).from_config(config)
    except Exception as e:  # noqa: BLE001
        raise GraphError(
            f"Cannot rebuild layer {layer.name!r} ({type(layer).__name__}) from "
            f"its config ({first_line(e)}). Received: layer={_describe(layer)}"
        ) from None


def _is_lambda(layer):
    # A Lambda holds Python code and no weights. Re-creating it from its
    # config would mean unsafe deserialisation of code that is already
    # loaded and trusted, so the rebuilt model calls the same instance.
    return isinstance(layer, keras.layers.Lambda) and not layer.weights


class _Rebuilder:
    def __init__(self, graph, actions, share_weights, replace=None):
        self.graph = graph
        self.actions = actions
        self.share = share_weights
        self.replace = replace
        self.layers = {}  # id(old layer) -> new layer
        self.pairs = []  # (old, new) leaf layers whose weights to copy
        self.new_layers = {}  # NewLayer name -> layer
        self.applied = {}  # (name, id(value)) -> value
        self.models = {}  # id(view) -> new model
        self.carried = []  # (old model, new model, skip): made by from_config
        self._edited = self._edited_views()

    def _edited_views(self):
        edited = {id(v) for v in self.graph.views if any(
            k[0] == id(v) for k in self.actions)}
        changed = True
        while changed:  # a view is edited when one of its nested views is
            changed = False
            for view in self.graph.views:
                if id(view) not in edited and any(
                    id(c) in edited for c in view.children.values()
                ):
                    edited.add(id(view))
                    changed = True
        return edited

    def op(self, view, node):
        old = node.operation
        child = view.children.get(id(node))
        if child is not None:
            return self.model(child)
        if not isinstance(old, keras.layers.Layer):
            return old  # a stateless keras.ops operation
        new = self.layers.get(id(old))
        if new is None and self.replace is not None:
            new = self.replace(old)
            if new is not None:
                self.layers[id(old)] = new
        if new is None:
            if self.share or _is_lambda(old):
                new = old
            else:
                new = _clone_layer(old)
                self.pairs.append((old, new))
            self.layers[id(old)] = new
        return new

    def new_layer(self, spec, policy=None):
        layer = self.new_layers.get(spec.name)
        if layer is None:
            config = dict(spec.config)
            if "dtype" not in config and policy is not None:
                # An inserted layer computes as the layer it reads from (a
                # mixed-precision model stays mixed), never in the global policy.
                config["dtype"] = policy
            layer = spec.cls.from_config(config)
            self.new_layers[spec.name] = layer
        return layer

    def apply(self, spec, value):
        k = (spec.name, id(value))
        out = self.applied.get(k)
        if out is None:
            out = self.new_layer(spec, _policy_of(value))(value)
            self.applied[k] = (out, value)  # keep `value` alive: its id is a key
            return out
        return out[0]

    # -- reading an edge ----------------------------------------------------
    def _source(self, edge):
        """The dropout's own input edge when `edge` bypasses it."""
        node = edge.view.producer(edge.tensor)
        if node is None or len(node_inputs(node)) != 1:
            raise GraphError(
                f"Cannot bypass {edge.consumer_name!r}'s input: it is not the "
                "output of a one-input layer. Received: "
                f"tensor={edge.tensor.name!r}"
            )
        return Edge(edge.view, node, None, node_inputs(node)[0])

    def mark(self, edge, needed):
        acts = self.actions.get(edge.key, ())
        src = [a for a in acts if a.kind in ("bypass", "via")]
        if src:
            self.mark(self._source(edge), needed)
            return
        node = edge.view.producer(edge.tensor)
        if node is not None:
            needed.add(id(node))

    def read(self, edge, values):
        acts = self.actions.get(edge.key, ())
        src = [a for a in acts if a.kind in ("bypass", "via")]
        if src:
            value = self.read(self._source(edge), values)
            if src[0].kind == "via":
                value = self.apply(src[0].layer, value)
        else:
            value = values[id(edge.tensor)]
        for a in acts:
            if a.kind == "after":
                value = self.apply(a.layer, value)
        return value

    # -- models -------------------------------------------------------------
    def model(self, view):
        new = self.models.get(id(view))
        if new is not None:
            return new
        kind, config = classes.kind(view.model)
        own_edits = any(k[0] == id(view) for k in self.actions)
        if self.share and id(view) not in self._edited:
            new = view.model
        elif view.is_sequential:
            new = self._sequential(view)
        elif kind == "config" and not own_edits:
            new = self._from_config(view, config)
        else:
            new = self._functional(view, config if kind == "functional" else None)
            if kind == "config" and view is self.graph.root:
                warnings.warn(
                    f"{type(view.model).__name__} {view.model.name!r} comes back as a "
                    "Functional: its class builds its graph from its config, which "
                    "cannot hold the change. Rewrite a model that calls it instead, "
                    "or rebuild the class yourself.", stacklevel=4)
        self.models[id(view)] = new
        return new

    def _from_config(self, view, config):
        """`view`'s model remade by its class's `from_config`, edited children passed in."""
        children = []
        for child in {id(c): c for c in view.children.values()}.values():
            if id(child) not in self._edited and not self.share:
                continue  # remade by from_config, state carried below
            children.append((child.model, self.model(child)))
        new = classes.from_config(view.model, config, children)
        self.carried.append((view.model, new, children))
        return new

    def _functional(self, view, config=None):
        values = {}
        new_inputs = []
        for t in view.inputs:
            x = clone_input(t)
            values[id(t)] = x
            new_inputs.append(x)
        needed = set()
        for e in view.output_edges():
            self.mark(e, needed)
        for node in reversed(view.nodes):
            if id(node) in needed:
                for e in view.in_edges(node):
                    self.mark(e, needed)
        for node in view.nodes:
            if id(node) not in needed:
                continue
            read = {id(e.tensor): self.read(e, values) for e in view.in_edges(node)}
            args, kwargs = node.arguments.fill_in(read)
            op = self.op(view, node)
            try:
                outs = op(*args, **kwargs)
            except Exception as e:  # noqa: BLE001
                raise GraphError(
                    f"Cannot rebuild layer {view.qualname(node.operation)!r} "
                    f"({type(node.operation).__name__}): calling it on the new "
                    f"graph failed ({first_line(e)}). Received: "
                    f"layer={_describe(node.operation)}"
                ) from None
            for x, y in zip(node.outputs, keras.tree.flatten(outs)):
                values[id(x)] = y
        outputs = [self.read(e, values) for e in view.output_edges()]
        model = view.model
        inputs = keras.tree.pack_sequence_as(model._inputs_struct, new_inputs)
        outputs = keras.tree.pack_sequence_as(model._outputs_struct, outputs)
        return classes.functional(model, inputs, outputs, config)

    def _sequential(self, view):
        layers = []
        (first,) = view.inputs
        policy = view.model.dtype_policy
        for edge in view.out_edges(first):  # insertions before the first layer
            layers += [self.new_layer(a.layer, policy) for a in self.actions.get(edge.key, ())
                       if a.kind == "after"]
        for node in view.nodes:
            (out_edge,) = view.out_edges(node.outputs[0])
            acts = self.actions.get(out_edge.key, ())
            kinds = [a.kind for a in acts]
            if "bypass" in kinds:
                pass
            elif "via" in kinds:
                layers.append(self.new_layer(acts[kinds.index("via")].layer,
                                             _policy_of(node.operation)))
            else:
                layers.append(self.op(view, node))
            for a in acts:
                if a.kind == "after":
                    layers.append(self.new_layer(a.layer, _policy_of(node.operation)))
        return classes.sequential(view.model, first._keras_history.operation, layers)

    def copy_weights(self):
        for old, new in self.pairs:
            carry_state(old, new)
        for old, new, skip in self.carried:
            carry_state(old, new, skip=skip)


def _policy_of(x):
    """The dtype policy of a layer, or of the layer that made symbolic tensor `x`."""
    layer = x if isinstance(x, keras.layers.Layer) else getattr(
        getattr(x, "_keras_history", None), "operation", None)
    if layer is None or isinstance(layer, keras.layers.InputLayer):
        return None
    return getattr(layer, "dtype_policy", None)


def rebuild(graph, actions, share_weights=False, replace=None):
    """Builds a new model from `graph`, applying `actions` on the way.

    Args:
        graph: A `ModelGraph`.
        actions: ``{edge.key: tuple of Action}``.
        share_weights: Reuse the original layers (and their variables)
            instead of copies.
        replace: Optional ``replace(layer) -> new layer or None``: the layer
            to call instead of a copy of `layer` (None: copy as usual).

    Returns:
        The new model; the input model is left as it was.
    """
    check_sequential_chains(graph)
    if not share_weights:
        # Fail on an uncloneable layer before anything is built.
        for _, layer in graph.all_layers():
            if isinstance(layer, keras.layers.Layer) and not has_graph(layer):
                try:
                    layer.get_config()
                except Exception:  # noqa: BLE001
                    _clone_layer(layer)
    builder = _Rebuilder(graph, actions, share_weights, replace)
    new = builder.model(graph.root)
    builder.copy_weights()
    return new


def copy(model, replace=None):
    """An independent copy of `model`: every layer re-created, all state carried.

    Args:
        model: A Functional or Sequential model (nested models allowed).
        replace: Optional ``replace(layer) -> new layer or None`` (see `rebuild`).

    Returns:
        The copy; outputs equal the original's bit for bit.

    Example:

    >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> copy(m).layers[0] is m.layers[0]
    False
    """
    return rebuild(ModelGraph(model), {}, replace=replace)
