"""Find every dropout that feeds a batch normalization ("disharmony").

Vocabulary (DESIGN.md): a dropout *feeds* a BN when a path leads from it to
the BN through no other BN; the pair is ``"direct"`` when no conv/dense layer
sits on the path (the paper's case a, the large shift) and
``"through_linear"`` otherwise (case b, a smaller shift).
"""

import dataclasses

import keras

from keras_vs import graph as graph_lib
from keras_vs.layers import Uout

DIRECT = "direct"
THROUGH_LINEAR = "through_linear"

#: Layers whose training-time noise changes the variance a later BN sees.
DROPOUT_LIKE = (
    keras.layers.Dropout,  # also SpatialDropout1D/2D/3D
    keras.layers.SpatialDropout1D,
    keras.layers.SpatialDropout2D,
    keras.layers.SpatialDropout3D,
    keras.layers.GaussianDropout,
    keras.layers.AlphaDropout,
    Uout,
)
#: BN layers keep a moving variance (the one the shift makes wrong).
BN_LIKE = (keras.layers.BatchNormalization,)
#: Weighted sums over many inputs: the paper's case (b).
LINEAR = tuple(
    getattr(keras.layers, name)
    for name in (
        "Dense",
        "EinsumDense",
        "Conv1D",
        "Conv2D",
        "Conv3D",
        "Conv1DTranspose",
        "Conv2DTranspose",
        "Conv3DTranspose",
        "DepthwiseConv1D",
        "DepthwiseConv2D",
        "SeparableConv1D",
        "SeparableConv2D",
    )
    if hasattr(keras.layers, name)
)
#: Normalizations that use batch statistics at inference too: the shift
#: does not reach past them.
BLOCKING = tuple(
    getattr(keras.layers, name)
    for name in (
        "LayerNormalization",
        "GroupNormalization",
        "UnitNormalization",
        "RMSNormalization",
    )
    if hasattr(keras.layers, name)
)


def is_dropout_like(layer):
    return isinstance(layer, DROPOUT_LIKE)


def is_bn_like(layer):
    return isinstance(layer, BN_LIKE)


def is_linear(layer):
    return isinstance(layer, LINEAR)


def dropout_rate(layer):
    """The drop rate of a dropout-like layer (Uout: its beta)."""
    if isinstance(layer, Uout):
        return float(layer.beta)
    return float(layer.rate)


@dataclasses.dataclass(frozen=True)
class Finding:
    """A dropout-like layer that feeds a BN.

    Attributes:
        dropout: Name of the dropout-like layer (``"inner_model/name"`` inside
            a nested model).
        bn: Name of the BN layer it feeds.
        kind: ``"direct"`` (no conv/dense on the path) or
            ``"through_linear"``. With several paths, ``"direct"`` wins.
        path: Layer names from the dropout to the BN, both included (a
            shortest path of that kind).
        rate: The dropout rate (for `keras_vs.Uout`, its beta).
    """

    dropout: str
    bn: str
    kind: str
    path: tuple
    rate: float

    def __str__(self):
        return f"{self.dropout} -> {self.bn} ({self.kind}, rate={self.rate:g}): {' -> '.join(self.path)}"


@dataclasses.dataclass
class Reach:
    """A BN node reached from one edge."""

    view: object
    node: object
    name: str
    kind: str
    path: tuple


@dataclasses.dataclass
class EdgeReport:
    """Where one out-edge of a dropout call leads."""

    edge: object
    reaches: dict  # (id(view), id(node)) -> Reach
    outputs: set  # names of root outputs reached through no BN

    @property
    def feeds_bn(self):
        return bool(self.reaches)

    @property
    def feeds_bn_directly(self):
        return any(r.kind == DIRECT for r in self.reaches.values())


@dataclasses.dataclass
class DropoutCall:
    """One call of a dropout-like layer and where each of its out-edges leads."""

    view: object
    node: object
    layer: object
    name: str
    rate: float
    edges: list


def reach(start_edges, first=()):
    """Walks forward from `start_edges` to the BNs they feed.

    Args:
        start_edges: `graph.Edge`s to start from.
        first: Layer names that start every path.

    Returns:
        ``(reaches, outputs)``: ``{(id(view), id(node)): Reach}`` (a direct
        path wins over a through-linear one) and the root outputs reached
        through no BN.
    """
    reaches, outputs = {}, set()

    def visit(view, node, state):
        linear, path = state
        op = node.operation
        path = path + (view.qualname(op),)
        if is_bn_like(op):
            k = (id(view), id(node))
            kind = THROUGH_LINEAR if linear else DIRECT
            old = reaches.get(k)
            if old is None or (old.kind == THROUGH_LINEAR and kind == DIRECT):
                reaches[k] = Reach(view, node, view.qualname(op), kind, path)
            return None
        if isinstance(op, BLOCKING):
            return None
        return (linear or is_linear(op), path)

    def on_output(view, slot, state):
        t = view.outputs[slot]
        outputs.add(t._keras_history.operation.name if hasattr(t, "_keras_history") else str(slot))

    graph_lib.walk(start_edges, visit, on_output, (False, tuple(first)), lambda s: s[0])
    return reaches, outputs


def dropout_calls(graph):
    """Every call of a dropout-like layer in a `graph.ModelGraph`."""
    calls = []
    for view in graph.views:
        for node in view.nodes:
            layer = node.operation
            if not is_dropout_like(layer) or view.children.get(id(node)):
                continue
            name = view.qualname(layer)
            edges = []
            for t in node.outputs:
                for e in view.out_edges(t):
                    reaches, outputs = reach([e], first=(name,))
                    edges.append(EdgeReport(e, reaches, outputs))
            calls.append(DropoutCall(view, node, layer, name, dropout_rate(layer), edges))
    return calls


def findings_from_calls(graph, calls):
    by_pair = {}
    for call in calls:
        reached = sorted(
            (r for report in call.edges for r in report.reaches.values()),
            key=lambda r: graph.order(r.view, r.node),
        )
        for r in reached:
                k = (call.name, r.name)
                old = by_pair.get(k)
                if old is None or (old.kind == THROUGH_LINEAR and r.kind == DIRECT) or (
                    old.kind == r.kind and len(r.path) < len(old.path)
                ):
                    by_pair[k] = Finding(call.name, r.name, r.kind, r.path, call.rate)
    return list(by_pair.values())


def find_disharmony(model):
    """Finds every (dropout-like layer, BN) pair where the dropout feeds the BN.

    Sees through Add/Concatenate, activations, pooling, reshapes, other
    dropouts and any other layer except BN and the normalizations that use
    batch statistics at inference (LayerNormalization, ...), and into nested
    Functional and Sequential models. Dropout-like: Dropout,
    SpatialDropout1D/2D/3D, GaussianDropout, AlphaDropout, `keras_vs.Uout`.

    Args:
        model: A Functional or Sequential `keras.Model` (built).

    Returns:
        A list of `Finding`, in graph order of the dropouts, one per
        (dropout, BN) pair.

    Example:

    >>> x = keras.Input((8,))
    >>> y = keras.layers.Dropout(0.5, name="drop")(x)
    >>> y = keras.layers.BatchNormalization(name="bn")(y)
    >>> [(f.dropout, f.bn, f.kind) for f in find_disharmony(keras.Model(x, y))]
    [('drop', 'bn', 'direct')]
    """
    graph = graph_lib.ModelGraph(model)
    return findings_from_calls(graph, dropout_calls(graph))
