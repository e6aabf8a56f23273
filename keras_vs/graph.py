"""The one module that reads Keras' functional-graph internals.

Everything else in keras-vs sees a model through this module: `model_graph`
turns a Functional or Sequential model (and every Functional or Sequential
model nested in it, to any depth) into `View`s, one per model, whose edges are
`Edge`s: "tensor T, as read by node N" (or "as returned as output J"). An
edge, not a tensor, is the unit of analysis and of rewriting, so that a
tensor that forks to several consumers can be rewritten on one branch and
left alone on the others.

`rebuild` re-creates the whole model tree from the views by walking each
graph in topological order and re-calling (cloned or shared) layers on new
symbolic tensors, applying per-edge `Action`s on the way. Keras'
`clone_model` offers the same walk but not per-edge edits, does not apply a
`call_function` to Sequential models and does not recurse into nested
Sequential models, which is why keras-vs walks the graph itself.

`inline` re-calls the leaf operations of the whole tree on new symbolic
inputs with nested models flattened into one graph, sharing the original
layers (nothing is re-instantiated) and letting a hook replace or observe
single calls: measuring taps BN inputs this way. `copy` is `rebuild` with no
edits: every layer is re-created and its state carried over, variables and
non-variable state (lookup tables, vocabularies, other assets) alike.

One definition of what keras-vs treats as dropout-like and BN-like lives
here (`is_dropout_like`, `is_bn_like`), wrappers such as `TimeDistributed`
included; custom layers that hide such layers are reported by `hidden`.

Keras internals used here: `Functional._nodes_by_depth`, `Node.arguments`
(`fill_in`, `kwargs`), `Node.outputs`, `Node.operation`,
`Sequential._functional`, `Functional._inputs_struct` / `_outputs_struct`,
`Layer._flatten_layers` and `KerasTensor` identity.
"""

import collections
import dataclasses
import os
import shutil
import tempfile

import keras

from keras_vs.layers import Uout


class GraphError(ValueError):
    """A model, or a layer in it, that keras-vs cannot read or rebuild."""


# ---------------------------------------------------------------------------
# What keras-vs calls dropout-like and BN-like (the one definition).

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


def sublayer(layer, name):
    """The sub-layer called `name` inside a custom layer."""
    for sub in layer._flatten_layers(include_self=False, recursive=True):
        if sub.name == name:
            return sub
    raise GraphError(
        f"Layer {layer.name!r} has no sub-layer {name!r}. Received: layer={_describe(layer)}"
    )


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


class Edge(collections.namedtuple("Edge", ["view", "node", "slot", "tensor"])):
    """Tensor `tensor` of `view`, as read by `node` (or as output `slot`)."""

    __slots__ = ()

    @property
    def key(self):
        return (
            id(self.view),
            -1 if self.node is None else id(self.node),
            -1 if self.slot is None else self.slot,
            id(self.tensor),
        )

    @property
    def consumer_name(self):
        if self.node is None:
            return f"{self.view.prefix}<output {self.slot}>"
        return self.view.qualname(self.node.operation)


class View:
    """One model of the tree: its nodes in topological order and its edges.

    Attributes:
        model: The Functional or Sequential model.
        prefix: ``""`` for the root, ``"outer/inner/"`` for nested models.
        nodes: Non-input nodes, producers before consumers.
        calls: ``(parent_view, node)`` pairs where this model is called.
        children: ``{id(node): View}`` for nodes that call a nested model.
    """

    def __init__(self, model, prefix):
        self.model = model
        self.prefix = prefix
        self.fn = model._functional if _is_sequential(model) else model
        depths = sorted(self.fn._nodes_by_depth, reverse=True)
        self.nodes = [
            node
            for depth in depths
            for node in self.fn._nodes_by_depth[depth]
            if not node.is_input
        ]
        self.inputs = list(self.fn.inputs)
        self.outputs = list(self.fn.outputs)
        self._producer = {}
        self._consumers = collections.defaultdict(list)
        for node in self.nodes:
            for i, t in enumerate(node.outputs):
                self._producer[id(t)] = node
            seen = set()
            for t in node.arguments.keras_tensors:
                if id(t) not in seen:
                    seen.add(id(t))
                    self._consumers[id(t)].append(node)
        self._out_slots = collections.defaultdict(list)
        for j, t in enumerate(self.outputs):
            self._out_slots[id(t)].append(j)
        self.calls = []
        self.children = {}

    @property
    def is_sequential(self):
        return _is_sequential(self.model)

    def qualname(self, op):
        return f"{self.prefix}{op.name}"

    def producer(self, tensor):
        """The node that computes `tensor`, or None for an input of the view."""
        return self._producer.get(id(tensor))

    def out_edges(self, tensor):
        """Every edge that reads `tensor`: consumer nodes and output slots."""
        edges = [Edge(self, n, None, tensor) for n in self._consumers.get(id(tensor), ())]
        edges += [Edge(self, None, j, tensor) for j in self._out_slots.get(id(tensor), ())]
        return edges

    def in_edges(self, node):
        """The edges `node` reads, one per distinct input tensor."""
        seen, edges = set(), []
        for t in node.arguments.keras_tensors:
            if id(t) not in seen:
                seen.add(id(t))
                edges.append(Edge(self, node, None, t))
        return edges

    def output_edges(self):
        return [Edge(self, None, j, t) for j, t in enumerate(self.outputs)]


def node_inputs(node):
    """Flat list of the symbolic tensors a node was called on."""
    return list(node.arguments.keras_tensors)


def node_outputs(node):
    return list(node.outputs)


class ModelGraph:
    """The views of a model and of every model nested in it."""

    def __init__(self, model):
        if not isinstance(model, keras.Model):
            raise GraphError(
                "Expected a keras.Model (Functional or Sequential). "
                f"Received: model={model!r}"
            )
        if not has_graph(model):
            if _is_sequential(model):
                raise GraphError(
                    f"Sequential model {model.name!r} is not built, so it has "
                    "no layer graph yet. Give it an `keras.Input(shape)` as "
                    "first layer or call it on data first. "
                    f"Received: model={_describe(model)}"
                )
            raise GraphError(
                f"Model {model.name!r} ({type(model).__name__}) is a subclassed "
                "model without a functional layer graph: keras-vs can only "
                "read Functional and Sequential models. "
                f"Received: model={_describe(model)}"
            )
        self.root = View(model, "")
        self.views = [self.root]
        by_model = {id(model): self.root}
        queue = collections.deque([self.root])
        while queue:
            view = queue.popleft()
            for node in view.nodes:
                op = node.operation
                if not has_graph(op):
                    continue
                child = by_model.get(id(op))
                if child is None:
                    child = View(op, f"{view.prefix}{op.name}/")
                    by_model[id(op)] = child
                    self.views.append(child)
                    queue.append(child)
                child.calls.append((view, node))
                view.children[id(node)] = child
        self._order = {}
        for i, view in enumerate(self.views):
            for j, node in enumerate(view.nodes):
                self._order[(id(view), id(node))] = (i, j)

    def order(self, view, node):
        """A sort key: views in discovery order, nodes in topological order."""
        return self._order.get((id(view), id(node)), (len(self.views), 0))

    def all_layers(self):
        """``(view, layer)`` for every operation of every view, once per view."""
        for view in self.views:
            seen = set()
            for node in view.nodes:
                op = node.operation
                if id(op) not in seen:
                    seen.add(id(op))
                    yield view, op

    def taken_names(self):
        names = set()
        for view in self.views:
            names.add(view.model.name)
            for layer in view.fn.operations:
                names.add(layer.name)
        return names


# ---------------------------------------------------------------------------
# Forward walks (analysis).


def walk(start_edges, visit, on_output=None, state=None, state_key=lambda s: None):
    """Breadth-first walk forward from `start_edges`, across model boundaries.

    Nested models are entered (and left through the call they were entered
    from, or through every call when the walk starts inside them), so
    `visit` only ever sees leaf layers.

    Args:
        start_edges: Edges to start from.
        visit: ``visit(view, node, state) -> new_state | None``; None stops
            the walk on this branch.
        on_output: ``on_output(root_view, slot, state)`` when a branch reaches
            an output of the root model.
        state: Initial state.
        state_key: Maps a state to the part that distinguishes walks (edges
            reached again with the same key are not walked again).
    """
    queue = collections.deque((e, (), state) for e in start_edges)
    seen = set()
    while queue:
        edge, stack, st = queue.popleft()
        k = (edge.key, tuple(id(n) for _, n in stack), state_key(st))
        if k in seen:
            continue
        seen.add(k)
        view = edge.view
        if edge.node is None:  # leaving `view` through output `slot`
            if stack:
                (pview, pnode), rest = stack[-1], stack[:-1]
                outer = [(pview, pnode, rest)]
            else:
                outer = [(pv, pn, ()) for pv, pn in view.calls]
            if not outer and on_output is not None:
                on_output(view, edge.slot, st)
            for pview, pnode, rest in outer:
                t = pnode.outputs[edge.slot]
                queue.extend((e, rest, st) for e in pview.out_edges(t))
            continue
        child = view.children.get(id(edge.node))
        if child is not None:  # entering a nested model
            for i, t in enumerate(node_inputs(edge.node)):
                if t is edge.tensor and i < len(child.inputs):
                    inner = child.inputs[i]
                    pushed = stack + ((view, edge.node),)
                    queue.extend((e, pushed, st) for e in child.out_edges(inner))
            continue
        new_state = visit(view, edge.node, st)
        if new_state is None:
            continue
        for t in edge.node.outputs:
            queue.extend((e, stack, new_state) for e in view.out_edges(t))


# ---------------------------------------------------------------------------
# Rebuilding.


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


def _first_line(error):
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return f"{type(error).__name__}: {lines[0] if lines else ''}"


def clone_layer(layer):
    """A new, unbuilt layer from `layer`'s config (`copy_state` fills it)."""
    return _clone_layer(layer)


def _clone_layer(layer):
    try:
        config = layer.get_config()
    except Exception as e:  # noqa: BLE001 - any failure means "not cloneable"
        raise GraphError(
            f"Cannot rebuild layer {layer.name!r} ({type(layer).__name__}): its "
            f"get_config() failed ({_first_line(e)}). Give the layer a "
            "get_config() that returns its constructor arguments, or pass "
            f"share_weights=True to reuse it. Received: layer={_describe(layer)}"
        ) from None
    try:
        return type(layer).from_config(config)
    except Exception as e:  # noqa: BLE001
        raise GraphError(
            f"Cannot rebuild layer {layer.name!r} ({type(layer).__name__}) from "
            f"its config ({_first_line(e)}). Received: layer={_describe(layer)}"
        ) from None


def _is_lambda(layer):
    # A Lambda holds Python code and no weights. Re-creating it from its
    # config would mean unsafe deserialisation of code that is already
    # loaded and trusted, so the rebuilt model calls the same instance.
    return isinstance(layer, keras.layers.Lambda) and not layer.weights


def _clone_input(tensor):
    layer = tensor._keras_history.operation
    if isinstance(layer, keras.layers.InputLayer):
        return keras.layers.InputLayer.from_config(layer.get_config()).output
    return keras.Input(batch_shape=tensor.shape, dtype=tensor.dtype, sparse=tensor.sparse)


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

    def new_layer(self, spec):
        layer = self.new_layers.get(spec.name)
        if layer is None:
            layer = spec.cls.from_config(dict(spec.config))
            self.new_layers[spec.name] = layer
        return layer

    def apply(self, spec, value):
        k = (spec.name, id(value))
        out = self.applied.get(k)
        if out is None:
            out = self.new_layer(spec)(value)
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
        if self.share and id(view) not in self._edited:
            new = view.model
        elif view.is_sequential:
            new = self._sequential(view)
        else:
            new = self._functional(view)
        self.models[id(view)] = new
        return new

    def _functional(self, view):
        values = {}
        new_inputs = []
        for t in view.inputs:
            x = _clone_input(t)
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
                    f"graph failed ({_first_line(e)}). Received: "
                    f"layer={_describe(node.operation)}"
                ) from None
            for x, y in zip(node.outputs, keras.tree.flatten(outs)):
                values[id(x)] = y
        outputs = [self.read(e, values) for e in view.output_edges()]
        model = view.model
        new = keras.Model(
            inputs=keras.tree.pack_sequence_as(model._inputs_struct, new_inputs),
            outputs=keras.tree.pack_sequence_as(model._outputs_struct, outputs),
            name=model.name,
        )
        new.trainable = model.trainable
        return new

    def _sequential(self, view):
        layers = []
        (first,) = view.inputs
        for edge in view.out_edges(first):  # insertions before the first layer
            layers += [self.new_layer(a.layer) for a in self.actions.get(edge.key, ())
                       if a.kind == "after"]
        for node in view.nodes:
            (out_edge,) = view.out_edges(node.outputs[0])
            acts = self.actions.get(out_edge.key, ())
            kinds = [a.kind for a in acts]
            if "bypass" in kinds:
                pass
            elif "via" in kinds:
                layers.append(self.new_layer(acts[kinds.index("via")].layer))
            else:
                layers.append(self.op(view, node))
            for a in acts:
                if a.kind == "after":
                    layers.append(self.new_layer(a.layer))
        model = view.model
        input_layer = first._keras_history.operation
        new = keras.Sequential(
            [keras.layers.InputLayer.from_config(input_layer.get_config())] + layers,
            name=model.name,
        )
        new.trainable = model.trainable
        return new

    def copy_weights(self):
        for old, new in self.pairs:
            copy_state(old, new)


def copy_state(old, new):
    """Copies a layer's variables and non-variable state into its built copy."""
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


def _check_sequential_chains(graph):
    for view in graph.views:
        if not view.is_sequential:
            continue
        for node in view.nodes:
            if len(node.outputs) != 1 or len(view.out_edges(node.outputs[0])) != 1:
                raise GraphError(
                    f"Sequential model {view.model.name!r} is not a chain at "
                    f"layer {node.operation.name!r}. Received: model="
                    f"{_describe(view.model)}"
                )


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
    _check_sequential_chains(graph)
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


def output_layer(model, index=0):
    """The leaf operation that computes output `index` of `model` (through nested models).

    Example:

    >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="out")])
    >>> output_layer(m).name
    'out'
    """
    view = ModelGraph(model).root
    tensor = view.outputs[index]
    while True:
        node = view.producer(tensor)
        if node is None:
            return None
        child = view.children.get(id(node))
        if child is None:
            return node.operation
        slot = [i for i, t in enumerate(node.outputs) if t is tensor][0]
        view, tensor = child, child.outputs[slot]


def signature(model):
    """Identifies a model's graph: equal as long as no node was added or removed."""
    graph = ModelGraph(model)
    return tuple((id(v.model), tuple(id(n) for n in v.nodes)) for v in graph.views)


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


# ---------------------------------------------------------------------------
# Inlining (measuring).


@dataclasses.dataclass(frozen=True)
class Site:
    """One call of a leaf operation in an inlined model.

    Attributes:
        name: Qualified name of the operation (``outer/inner/bn``).
        layer: The operation (the original instance).
        node: Its node in the original graph.
        repeats: How many times this call runs per forward pass of the root
            model (more than 1 inside a nested model called several times).
        tap: ``tap(key, tensor)`` adds `tensor` to the taps returned by
            `inline` under `key`.
    """

    name: str
    layer: object
    node: object
    repeats: int
    tap: object


def _unique_names(graph):
    seen = {}
    for view in graph.views:
        for node in view.nodes:
            op = node.operation
            if view.children.get(id(node)) is None and seen.setdefault(op.name, id(op)) != id(op):
                return False
    return True


def inline(model, hook=None):
    """Re-calls `model`'s leaf operations on new inputs, sharing its layers.

    The original layers are called (never re-instantiated), so the result
    computes exactly what `model` computes, reads its live variables and works
    for any layer, custom and Lambda included. Nested models are flattened
    into one graph when every leaf name is unique across the tree; otherwise
    each nested model becomes a nested model of its own that also returns
    its taps.

    Args:
        model: A Functional or Sequential model.
        hook: Optional ``hook(site, args, kwargs) -> outputs``, called instead
            of ``site.layer(*args, **kwargs)`` for every leaf call; it may
            call ``site.tap(key, tensor)``.

    Returns:
        ``(inputs, outputs, taps, flat)``: new symbolic inputs and outputs,
        structured as the model's (for `keras.Model(inputs, outputs)`), the
        ``(key, tensor)`` taps, and whether the graph was flattened.

    Example:

    >>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    >>> inputs, outputs, _, _ = inline(m)
    >>> keras.Model(inputs, outputs).layers[1] is m.layers[0]
    True
    """
    graph = ModelGraph(model)
    _check_sequential_chains(graph)
    flat = _unique_names(graph)
    repeats = {}

    def times(view):  # calls of `view` per forward pass of the root
        if id(view) not in repeats:
            repeats[id(view)] = sum(times(pv) for pv, _ in view.calls) if view.calls else 1
        return repeats[id(view)]

    wrapped = {}

    def nested(child):
        if id(child) not in wrapped:
            inputs = [_clone_input(t) for t in child.inputs]
            taps = []
            outs = run(child, {id(t): v for t, v in zip(child.inputs, inputs)}, taps)
            sub = keras.Model(inputs, outs + [t for _, t in taps], name=child.model.name)
            wrapped[id(child)] = (sub, len(outs), [k for k, _ in taps])
        return wrapped[id(child)]

    def run(view, values, taps):
        for node in view.nodes:
            read = {id(t): values[id(t)] for t in node.arguments.keras_tensors}
            child = view.children.get(id(node))
            if child is not None:
                given = [read[id(t)] for t in node.arguments.keras_tensors]
                if len(given) != len(child.inputs):
                    raise GraphError(
                        f"Cannot follow the call of nested model "
                        f"{view.qualname(node.operation)!r}: it takes "
                        f"{len(child.inputs)} input(s) but was called on "
                        f"{len(given)} tensor(s). Received: model={_describe(child.model)}"
                    )
                if flat:
                    outs = run(child, {id(t): v for t, v in zip(child.inputs, given)}, taps)
                else:
                    sub, n_main, keys = nested(child)
                    res = keras.tree.flatten(sub(given))
                    outs = res[:n_main]
                    taps.extend(zip(keys, res[n_main:]))
            else:
                args, kwargs = node.arguments.fill_in(read)
                site = Site(
                    view.qualname(node.operation),
                    node.operation,
                    node,
                    times(view),
                    lambda key, tensor: taps.append((key, tensor)),
                )
                try:
                    outs = (hook or _call)(site, args, kwargs)
                except GraphError:
                    raise
                except Exception as e:  # noqa: BLE001
                    raise GraphError(
                        f"Cannot re-call layer {site.name!r} "
                        f"({type(site.layer).__name__}) on a new graph "
                        f"({_first_line(e)}). Received: layer={_describe(site.layer)}"
                    ) from None
            for t, v in zip(node.outputs, keras.tree.flatten(outs)):
                values[id(t)] = v
        return [values[id(t)] for t in view.outputs]

    root = graph.root
    new_inputs = [_clone_input(t) for t in root.inputs]
    taps = []
    outputs = run(root, {id(t): v for t, v in zip(root.inputs, new_inputs)}, taps)
    fn = root.fn
    return (
        keras.tree.pack_sequence_as(fn._inputs_struct, new_inputs),
        keras.tree.pack_sequence_as(fn._outputs_struct, outputs),
        taps,
        flat,
    )


def _call(site, args, kwargs):
    return site.layer(*args, **kwargs)


def call_node(site, args, kwargs, **overrides):
    """Calls a site's layer with its recorded arguments, some overridden."""
    return site.layer(*args, **{**kwargs, **overrides})


def inputs_of(model):
    """The model's symbolic inputs as the flat list its data must match."""
    return list(ModelGraph(model).root.inputs)
