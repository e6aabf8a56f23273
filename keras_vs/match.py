"""Match once: every dropout call of a model and the BNs each of its edges feeds.

`match(model)` reads a model through the graph core one time and returns a
`Match`: typed, frozen records of every dropout-like call (`DropoutMatch`),
each out-edge of it (`EdgeMatch`) and every BN call a path from that edge
reaches (`Reach`), plus the pairs hidden inside custom layers
(`HiddenPair`). `keras_vs.find_disharmony` reports the match as `Finding`s;
the rewrite policies (`keras_vs.policies`) turn the same match into graph
edits and the `Change`s `keras_vs.plan` prints, as torch.fx's
``replace_pattern`` turns its match records into the replacement report.

Vocabulary: a dropout *feeds* a BN when a path leads from it to the BN
through no other BN; the path is ``"direct"`` when no conv/dense layer sits on
it and ``"through_linear"`` otherwise.

Example:

>>> import keras
>>> x = keras.Input((4,))
>>> y = keras.layers.BatchNormalization(name="bn")(keras.layers.Dropout(0.5, name="d")(x))
>>> m = match(keras.Model(x, y))
>>> [(d.name, [(r.name, r.kind) for e in d.edges for r in e.reaches]) for d in m.dropouts]
[('d', [('bn', 'direct')])]
"""

import dataclasses

import keras

from keras_vs import vocab
from keras_vs.graph import kinds
from keras_vs.graph import model_graph

__all__ = [
    "BLOCKING",
    "LINEAR",
    "DropoutMatch",
    "EdgeMatch",
    "HiddenPair",
    "Match",
    "Reach",
    "is_linear",
    "match",
    "reach",
]


def _layers(*names):
    return tuple(getattr(keras.layers, n) for n in names if hasattr(keras.layers, n))


#: Weighted sums over many inputs: the paper's case (b).
LINEAR = _layers(
    "Dense", "EinsumDense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose",
    "Conv2DTranspose", "Conv3DTranspose", "DepthwiseConv1D", "DepthwiseConv2D",
    "SeparableConv1D", "SeparableConv2D",
)
#: Normalizations that use batch statistics at inference too: the shift
#: does not reach past them.
BLOCKING = _layers("LayerNormalization", "GroupNormalization", "UnitNormalization",
                   "RMSNormalization")


def is_linear(layer):
    """Whether `layer` (possibly wrapped) is a conv or dense layer."""
    return isinstance(kinds.unwrap(layer), LINEAR)


@dataclasses.dataclass(frozen=True)
class Reach:
    """A BN call that a path from a dropout reaches through no other BN.

    Attributes:
        bn: The BN's `keras_vs.graph.call_site.CallSite`.
        kind: ``"direct"`` or ``"through_linear"`` (a direct path wins).
        path: Layer names from the start to the BN, both included.
    """

    bn: object
    kind: str
    path: tuple

    @property
    def name(self):
        """The BN's qualified name."""
        return self.bn.name


@dataclasses.dataclass(frozen=True)
class EdgeMatch:
    """Where one out-edge of a dropout call leads.

    Attributes:
        edge: The `keras_vs.graph.Edge` (a rewrite edits it).
        reaches: A `Reach` per BN call the edge feeds, in walk order.
        outputs: Names of the root outputs the edge reaches through no BN.
    """

    edge: object
    reaches: tuple
    outputs: frozenset

    @property
    def feeds_bn(self):
        return bool(self.reaches)

    @property
    def feeds_bn_directly(self):
        return any(r.kind == vocab.DIRECT for r in self.reaches)

    @property
    def direct(self):
        """The reaches of kind ``"direct"``."""
        return tuple(r for r in self.reaches if r.kind == vocab.DIRECT)


@dataclasses.dataclass(frozen=True)
class DropoutMatch:
    """One call of a dropout-like (or recurrent) layer and its out-edges.

    Attributes:
        site: The call's `keras_vs.graph.call_site.CallSite`.
        rate: The layer's rate (Uout: beta; GaussianNoise: stddev; a
            recurrent layer: its input ``dropout``).
        edges: An `EdgeMatch` per out-edge.
    """

    site: object
    rate: float
    edges: tuple

    @property
    def layer(self):
        return self.site.layer

    @property
    def name(self):
        return self.site.name

    @property
    def source(self):
        """Identifies the dropout as reported: every call of one layer in one view."""
        return self.site.layer_key

    @property
    def forced(self):
        """Whether the call was made with ``training=True`` (MC dropout)."""
        return self.site.training_forced

    @property
    def reaches(self):
        return tuple(r for e in self.edges for r in e.reaches)


@dataclasses.dataclass(frozen=True)
class HiddenPair:
    """A dropout -> BN pair where either hides inside a custom layer.

    Attributes:
        dropout: ``"custom/inner"`` for a hidden dropout, else the visible one's name.
        bn: ``"custom/inner"`` for a hidden BN, else the visible one's name.
        path: Layer names from the dropout (or its custom layer) to the BN.
        rate: The dropout's rate.
        inside: The custom layer keras-vs cannot look into.
        source: `DropoutMatch.source` of a visible dropout, else None.
    """

    dropout: str
    bn: str
    path: tuple
    rate: float
    inside: str
    source: tuple = None


@dataclasses.dataclass(frozen=True)
class Match:
    """Everything keras-vs finds in one model, found once.

    Attributes:
        graph: The `keras_vs.graph.ModelGraph` the records point into.
        dropouts: A `DropoutMatch` per dropout-like call, in graph order
            (``training=True`` calls included: see `DropoutMatch.forced`).
        recurrent: A `DropoutMatch` per call of a recurrent layer with
            dropout in its cells.
        hidden: The `HiddenPair`s.
    """

    graph: object
    dropouts: tuple
    recurrent: tuple
    hidden: tuple

    @property
    def editable(self):
        """The dropout calls a rewrite may change (not ``training=True``)."""
        return tuple(d for d in self.dropouts if not d.forced)


def reach(start_edges, first=()):
    """Walks forward from `start_edges` to the BNs they feed.

    Args:
        start_edges: `keras_vs.graph.Edge`s to start from.
        first: Layer names that start every path.

    Returns:
        ``(reaches, outputs)``: a tuple of `Reach`, one per BN call (a direct
        path wins over a through-linear one), and the frozenset of the names
        of the root outputs reached through no BN.
    """
    reaches, outputs = {}, set()

    def visit(site, state):
        linear, path = state
        path = path + (site.name,)
        if kinds.is_bn_like(site.layer):
            kind = vocab.THROUGH_LINEAR if linear else vocab.DIRECT
            old = reaches.get(site.key)
            if old is None or (old.kind == vocab.THROUGH_LINEAR and kind == vocab.DIRECT):
                reaches[site.key] = Reach(site, kind, path)
            return None
        if isinstance(site.layer, BLOCKING):
            return None
        return (linear or is_linear(site.layer), path)

    def on_output(view, slot, state):
        outputs.add(kinds.producer_name(view.outputs[slot], str(slot)))

    model_graph.walk_sites(start_edges, visit, on_output, (False, tuple(first)), lambda s: s[0])
    return tuple(reaches.values()), frozenset(outputs)


def _calls(graph, select, rate_of):
    found = []
    for view in graph.views:
        for site in view.call_sites():
            if not select(site.layer) or site.child is not None:
                continue
            edges = tuple(EdgeMatch(e, *reach([e], first=(site.name,))) for e in site.out_edges())
            found.append(DropoutMatch(site, rate_of(site.layer), edges))
    return tuple(found)


def _hidden_pairs(graph):
    found = {}

    def add(pair):
        found.setdefault((pair.dropout, pair.bn), pair)

    for view in graph.views:
        for site in view.call_sites():
            name = site.name
            drops, bns = kinds.hidden(site.layer)
            for d in drops:  # inside the layer, and from it to the BNs it feeds
                for b in bns:
                    add(HiddenPair(f"{name}/{d.name}", f"{name}/{b.name}", (name,),
                                   kinds.noise_rate(d), name))
                for r in reach(site.out_edges(), first=(name,))[0]:
                    add(HiddenPair(f"{name}/{d.name}", r.name, r.path, kinds.noise_rate(d), name))
            if kinds.is_dropout_like(site.layer) and not site.training_forced:
                for e in site.out_edges():  # a visible dropout into hidden BNs
                    _into_hidden(e, site, add)
    return tuple(found.values())


def _into_hidden(edge, dropout, add):
    rate = kinds.noise_rate(dropout.layer)

    def visit(site, path):
        path = path + (site.name,)
        _, bns = kinds.hidden(site.layer)
        for b in bns:
            add(HiddenPair(dropout.name, f"{site.name}/{b.name}", path, rate, site.name,
                           dropout.layer_key))
        if kinds.is_bn_like(site.layer) or isinstance(site.layer, BLOCKING) or bns:
            return None
        return path

    model_graph.walk_sites([edge], visit, None, (dropout.name,))


def match(model):
    """Matches every dropout-like call of `model` and the BNs it feeds.

    Args:
        model: A Functional or Sequential `keras.Model` (built).

    Returns:
        A `Match`.

    Raises:
        keras_vs.graph.GraphError: `model` has no graph keras-vs can read.
    """
    graph = model_graph.ModelGraph(model)
    dropouts = _calls(graph, kinds.is_dropout_like, kinds.noise_rate)
    recurrent = _calls(graph, kinds.is_recurrent_dropout,
                       lambda layer: kinds.recurrent_dropout(layer)[0])
    return Match(graph, dropouts, recurrent, _hidden_pairs(graph))
