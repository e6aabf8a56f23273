"""Find every dropout that feeds a batch normalization ("disharmony").

Vocabulary: a dropout *feeds* a BN when a path leads from it to
the BN through no other BN; the pair is ``"direct"`` when no conv/dense layer
sits on the path (the paper's case a, the large shift) and
``"through_linear"`` otherwise (case b, a smaller shift).
"""

import dataclasses

import keras

from keras_vs import graph as graph_lib
from keras_vs import vocab

__all__ = ["DIRECT", "OPAQUE", "RECURRENT", "THROUGH_LINEAR", "Finding", "find_disharmony"]

DIRECT = vocab.DIRECT
THROUGH_LINEAR = vocab.THROUGH_LINEAR
OPAQUE = vocab.OPAQUE
RECURRENT = vocab.RECURRENT

#: The one definition lives in the graph core (wrappers included).
DROPOUT_LIKE = graph_lib.DROPOUT_CLASSES
BN_LIKE = graph_lib.BN_CLASSES
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


is_dropout_like = graph_lib.is_dropout_like
is_bn_like = graph_lib.is_bn_like
dropout_rate = graph_lib.noise_rate


def is_linear(layer):
    return isinstance(graph_lib.unwrap(layer), LINEAR)


@dataclasses.dataclass(frozen=True)
class Finding:
    """A dropout-like layer that feeds a BN.

    Attributes:
        dropout: Name of the dropout-like layer (``"inner_model/name"`` inside
            a nested model).
        bn: Name of the BN layer it feeds.
        kind: ``"direct"`` (no conv/dense on the path),
            ``"through_linear"`` (with several paths, ``"direct"`` wins) or
            ``"opaque"``: the dropout or the BN sits inside a custom layer,
            which keras-vs cannot look into or rewrite (the names then read
            ``custom_layer/inner_name``), or ``"recurrent"``: the source is
            a recurrent layer (LSTM, GRU, ...) with ``dropout`` or
            ``recurrent_dropout`` in its cells, which every rewrite keeps.
        path: Layer names from the dropout to the BN, both included (a
            shortest path of that kind).
        rate: The dropout rate (`keras_vs.Uout`: its beta; GaussianNoise:
            its stddev; a recurrent layer: its input ``dropout``, the
            ``recurrent_dropout`` is in `note`).
        note: Why the pair needs a second look, e.g. an MC-dropout call
            (``training=True``), which every rewrite leaves in place.
    """

    dropout: str
    bn: str
    kind: str
    path: tuple
    rate: float
    note: str = ""

    def __str__(self):
        text = f"{self.dropout} -> {self.bn} ({self.kind}, rate={self.rate:g}): {' -> '.join(self.path)}"
        return f"{text} [{self.note}]" if self.note else text


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
        outputs.add(graph_lib.producer_name(t, str(slot)))

    graph_lib.walk(start_edges, visit, on_output, (False, tuple(first)), lambda s: s[0])
    return reaches, outputs


def dropout_calls(graph, include_forced=False):
    """Every call of a dropout-like layer in a `graph.ModelGraph`.

    Args:
        graph: A `graph.ModelGraph`.
        include_forced: Also return calls made with ``training=True`` (MC
            dropout), which rewrites leave in place.
    """
    return _calls(graph, is_dropout_like, dropout_rate, include_forced)


def recurrent_calls(graph):
    """Every call of a recurrent layer with dropout in its cells (rate: its ``dropout``)."""
    return _calls(graph, graph_lib.is_recurrent_dropout,
                  lambda layer: graph_lib.recurrent_dropout(layer)[0], True)


def _calls(graph, select, rate_of, include_forced):
    calls = []
    for view in graph.views:
        for node in view.nodes:
            layer = node.operation
            if not select(layer) or view.children.get(id(node)):
                continue
            if graph_lib.forced_training(node) and not include_forced:
                continue
            name = view.qualname(layer)
            edges = []
            for t in node.outputs:
                for e in view.out_edges(t):
                    reaches, outputs = reach([e], first=(name,))
                    edges.append(EdgeReport(e, reaches, outputs))
            calls.append(DropoutCall(view, node, layer, name, rate_of(layer), edges))
    return calls


_MC_NOTE = (
    "called with training=True (MC dropout): on in model(x) calls, off in predict(); "
    "rewrites keep it"
)


def _recurrent_note(layer):
    dropout, recurrent = graph_lib.recurrent_dropout(layer)
    return (f"{type(graph_lib.unwrap(layer)).__name__}: dropout={dropout:g} on its inputs, "
            f"recurrent_dropout={recurrent:g} on its state")


def findings_from_calls(graph, calls, kind=None):
    """One `Finding` per (source, BN) pair of `calls`; `kind` overrides the path's kind."""
    by_pair = {}
    for call in calls:
        notes = [_recurrent_note(call.layer)] if kind == vocab.RECURRENT else []
        if graph_lib.forced_training(call.node):
            notes.append(_MC_NOTE)
        note = "; ".join(notes)
        reached = sorted(
            (r for report in call.edges for r in report.reaches.values()),
            key=lambda r: graph.order(r.view, r.node),
        )
        for r in reached:
            k = (call.name, r.name)
            old, old_kind = by_pair.get(k, (None, None))
            if old is None or (old_kind == THROUGH_LINEAR and r.kind == DIRECT) or (
                old_kind == r.kind and len(r.path) < len(old.path)
            ):
                finding = Finding(call.name, r.name, kind or r.kind, r.path, call.rate, note)
                by_pair[k] = (finding, r.kind)  # the path's own kind decides the best path
    return [finding for finding, _ in by_pair.values()]


_OPAQUE_NOTE = "inside custom layer {layer!r}: keras-vs cannot see or rewrite it"


def opaque_findings(graph):
    """Pairs whose dropout or BN hides inside a custom layer (kind ``"opaque"``)."""
    found = {}

    def add(finding):
        found.setdefault((finding.dropout, finding.bn), finding)

    for view in graph.views:
        for node in view.nodes:
            layer = node.operation
            name = view.qualname(layer)
            drops, bns = graph_lib.hidden(layer)
            note = _OPAQUE_NOTE.format(layer=name)
            for d in drops:  # inside the layer, and from it to the BNs it feeds
                for b in bns:
                    add(Finding(f"{name}/{d.name}", f"{name}/{b.name}", OPAQUE, (name,),
                                dropout_rate(d), note))
                for t in node.outputs:
                    reaches, _ = reach(view.out_edges(t), first=(name,))
                    for r in reaches.values():
                        add(Finding(f"{name}/{d.name}", r.name, OPAQUE, r.path,
                                    dropout_rate(d), note))
            if is_dropout_like(layer) and not graph_lib.forced_training(node):
                for t in node.outputs:  # a visible dropout into hidden BNs
                    for e in view.out_edges(t):
                        _into_hidden(e, name, dropout_rate(layer), add)
    return list(found.values())


def _into_hidden(edge, dropout, rate, add):
    def visit(view, node, path):
        op = node.operation
        path = path + (view.qualname(op),)
        _, bns = graph_lib.hidden(op)
        for b in bns:
            add(Finding(dropout, f"{view.qualname(op)}/{b.name}", OPAQUE, path, rate,
                        _OPAQUE_NOTE.format(layer=view.qualname(op))))
        if is_bn_like(op) or isinstance(op, BLOCKING) or bns:
            return None
        return path

    graph_lib.walk([edge], visit, None, (dropout,))


def find_disharmony(model):
    """Finds every (dropout-like layer, BN) pair where the dropout feeds the BN.

    Sees through Add/Concatenate, activations, pooling, reshapes, other
    dropouts and any other layer except BN and the normalizations that use
    batch statistics at inference (LayerNormalization, ...), and into nested
    Functional and Sequential models. Dropout-like: Dropout,
    SpatialDropout1D/2D/3D, GaussianDropout, AlphaDropout, `keras_vs.Uout`;
    recurrent layers (LSTM, GRU, SimpleRNN, ConvLSTM*, RNN, Bidirectional)
    with ``dropout`` or ``recurrent_dropout`` > 0 are found too, with kind
    ``"recurrent"``.

    Args:
        model: A Functional or Sequential `keras.Model` (built).

    Returns:
        A list of `Finding`, one per (dropout, BN) pair: dropout-like layers
        in graph order, then opaque pairs, then recurrent ones.

    Example:

    >>> x = keras.Input((8,))
    >>> y = keras.layers.Dropout(0.5, name="drop")(x)
    >>> y = keras.layers.BatchNormalization(name="bn")(y)
    >>> [(f.dropout, f.bn, f.kind) for f in find_disharmony(keras.Model(x, y))]
    [('drop', 'bn', 'direct')]
    """
    graph = graph_lib.ModelGraph(model)
    found = findings_from_calls(graph, dropout_calls(graph, include_forced=True))
    recurrent = findings_from_calls(graph, recurrent_calls(graph), kind=RECURRENT)
    return found + opaque_findings(graph) + recurrent
