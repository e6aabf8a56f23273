"""A model as a graph keras-vs can walk: views, edges and forward walks.

`ModelGraph` turns a Functional or Sequential model (and every Functional or
Sequential model nested in it, to any depth) into `View`s, one per model,
whose edges are `Edge`s: "tensor T, as read by node N" (or "as returned as
output J"). An edge, not a tensor, is the unit of analysis and of rewriting,
so that a tensor that forks to several consumers can be rewritten on one
branch and left alone on the others.

Example:

>>> import keras
>>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="out")])
>>> [node.operation.name for node in ModelGraph(m).root.nodes]
['out']
"""

import collections

import keras

from keras_vs.graph.call_site import CallSite
from keras_vs.graph.kinds import GraphError, _describe, _is_sequential, has_graph

__all__ = [
    "Edge",
    "ModelGraph",
    "View",
    "check_sequential_chains",
    "clone_input",
    "layer_pairs",
    "node_inputs",
    "output_layer",
    "signature",
    "sublayers",
    "walk",
    "walk_sites",
]


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

    @property
    def consumer(self):
        """The `CallSite` that reads the edge, or None for an output slot."""
        return None if self.node is None else CallSite(self.view, self.node)


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

    def call_sites(self):
        """A `CallSite` per node, producers before consumers."""
        return [CallSite(self, node) for node in self.nodes]

    def producer_site(self, tensor):
        """The `CallSite` that computes `tensor`, or None for an input of the view."""
        node = self._producer.get(id(tensor))
        return None if node is None else CallSite(self, node)

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

    def position(self, site):
        """`order` of a `CallSite`."""
        return self.order(site.view, site.node)

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


def layer_pairs(old, new):
    """Pairs every layer of model `old` (nested ones included) with its place in `new`.

    Pairs by place in the graph, then inside a layer without a graph by the
    order Keras tracks its sub-layers, never by name: a layer rebuilt from
    its config may take another name (keras-hub's ``DepthwiseConvBlock``
    appends ``"_0"`` to its own).

    Args:
        old: A Functional or Sequential model.
        new: Its copy (`keras_vs.graph.copy`), or any model of the same structure.

    Returns:
        A list of ``(layer of old, layer of new)``.

    Example:

    >>> pairs = layer_pairs(model, copy(model))  # doctest: +SKIP
    """
    olds, news = list(ModelGraph(old).all_layers()), list(ModelGraph(new).all_layers())
    pairs = [(a, b) for (_, a), (_, b) in zip(olds, news)] if len(olds) == len(news) else None
    for a, b in list(pairs or ()):
        if isinstance(a, keras.layers.Layer) and not has_graph(a) and type(a) is type(b):
            subs_a, subs_b = (list(x._flatten_layers(include_self=False, recursive=True)) for x in (a, b))
            if len(subs_a) != len(subs_b):
                pairs = None
                break
            pairs += zip(subs_a, subs_b)
    if pairs is None or not all(_same_kind(a, b) for a, b in pairs):
        raise GraphError(
            f"Model {new.name!r} is not a copy of {old.name!r}: their layers differ in "
            f"number or type. Received: model={_describe(new)}"
        )
    return pairs


def sublayers(model):
    """Every layer under `model` (nested models, wrappers and custom layers' own).

    Example:

    >>> x = keras.Input((2,))
    >>> [l.name for l in sublayers(keras.Model(x, keras.layers.Dense(1, name="d")(x)))][1:]
    ['d']
    """
    return list(model._flatten_layers(include_self=False, recursive=True))


def _same_kind(a, b):
    # A Functional subclass (a keras-hub backbone) is copied as a Functional.
    return type(a) is type(b) or (has_graph(a) and has_graph(b))


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


def walk_sites(start_edges, visit, on_output=None, state=None, state_key=lambda s: None):
    """`walk` whose `visit` takes ``(call_site, state)``: a `CallSite`, not a node."""
    walk(start_edges, lambda view, node, st: visit(CallSite(view, node), st),
         on_output, state, state_key)


def check_sequential_chains(graph):
    """Raises `GraphError` unless every Sequential view is a chain of single calls."""
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


def clone_input(tensor):
    """A new symbolic input like `tensor` (its InputLayer re-created when it has one)."""
    layer = tensor._keras_history.operation
    if isinstance(layer, keras.layers.InputLayer):
        return keras.layers.InputLayer.from_config(layer.get_config()).output
    return keras.Input(batch_shape=tensor.shape, dtype=tensor.dtype, sparse=tensor.sparse)
