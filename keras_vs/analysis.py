"""Find every dropout that feeds a batch normalization ("disharmony").

The matching itself is `keras_vs.match` (one pass over the graph, typed
records); this module reports the match as `Finding`s, one per pair.

Vocabulary: a dropout *feeds* a BN when a path leads from it to
the BN through no other BN; the pair is ``"direct"`` when no conv/dense layer
sits on the path (the paper's case a, the large shift) and
``"through_linear"`` otherwise (case b, a smaller shift).
"""

import dataclasses

from keras_vs import graph as graph_lib
from keras_vs import match as match_lib
from keras_vs import vocab

__all__ = ["DIRECT", "OPAQUE", "RECURRENT", "THROUGH_LINEAR", "Finding", "Pair", "find_disharmony",
           "pairs"]

DIRECT = vocab.DIRECT
THROUGH_LINEAR = vocab.THROUGH_LINEAR
OPAQUE = vocab.OPAQUE
RECURRENT = vocab.RECURRENT

#: The one definition lives in the graph core (wrappers included).
DROPOUT_LIKE = graph_lib.DROPOUT_CLASSES
BN_LIKE = graph_lib.BN_CLASSES
#: Weighted sums over many inputs (`keras_vs.match.LINEAR`): the paper's case (b).
LINEAR = match_lib.LINEAR
#: Normalizations that use batch statistics at inference too (`keras_vs.match.BLOCKING`).
BLOCKING = match_lib.BLOCKING

is_dropout_like = graph_lib.is_dropout_like
is_bn_like = graph_lib.is_bn_like
dropout_rate = graph_lib.noise_rate
is_linear = match_lib.is_linear


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


@dataclasses.dataclass(frozen=True)
class Pair:
    """A `Finding` and the dropout it is about, as matched.

    Attributes:
        source: `keras_vs.match.DropoutMatch.source` of the dropout (or
            recurrent layer), or None for a dropout hidden in a custom layer.
        finding: The `Finding`.
    """

    source: tuple
    finding: Finding


_MC_NOTE = (
    "called with training=True (MC dropout): on in model(x) calls, off in predict(); "
    "rewrites keep it"
)
_OPAQUE_NOTE = "inside custom layer {layer!r}: keras-vs cannot see or rewrite it"


def _recurrent_note(layer):
    dropout, recurrent = graph_lib.recurrent_dropout(layer)
    return (f"{type(graph_lib.unwrap(layer)).__name__}: dropout={dropout:g} on its inputs, "
            f"recurrent_dropout={recurrent:g} on its state")


def _pairs_of_calls(graph, calls, kind=None):
    """One `Pair` per (source, BN) of `calls`; `kind` overrides the path's kind."""
    by_pair = {}
    for call in calls:
        notes = [_recurrent_note(call.layer)] if kind == vocab.RECURRENT else []
        if call.forced:
            notes.append(_MC_NOTE)
        note = "; ".join(notes)
        for r in sorted(call.reaches, key=lambda r: graph.position(r.bn)):
            k = (call.source, r.bn.layer_key)
            old, old_kind = by_pair.get(k, (None, None))
            if old is None or (old_kind == THROUGH_LINEAR and r.kind == DIRECT) or (
                old_kind == r.kind and len(r.path) < len(old.finding.path)
            ):
                finding = Finding(call.name, r.name, kind or r.kind, r.path, call.rate, note)
                by_pair[k] = (Pair(call.source, finding), r.kind)  # the path's own kind decides
    return [pair for pair, _ in by_pair.values()]


def pairs(match):
    """Every (dropout, BN) pair of a `keras_vs.match.Match`, as `Pair`s.

    Args:
        match: What `keras_vs.match.match` returned.

    Returns:
        A list of `Pair`, in `find_disharmony`'s order.
    """
    found = _pairs_of_calls(match.graph, match.dropouts)
    hidden = [
        Pair(p.source, Finding(p.dropout, p.bn, OPAQUE, p.path, p.rate,
                               _OPAQUE_NOTE.format(layer=p.inside)))
        for p in match.hidden
    ]
    return found + hidden + _pairs_of_calls(match.graph, match.recurrent, kind=RECURRENT)


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

    >>> import keras
    >>> x = keras.Input((8,))
    >>> y = keras.layers.Dropout(0.5, name="drop")(x)
    >>> y = keras.layers.BatchNormalization(name="bn")(y)
    >>> [(f.dropout, f.bn, f.kind) for f in find_disharmony(keras.Model(x, y))]
    [('drop', 'bn', 'direct')]
    """
    return [pair.finding for pair in pairs(match_lib.match(model))]
