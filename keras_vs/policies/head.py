"""Policy ``"head"``: remove every dropout that feeds a BN, add one before the classifier.

The head dropout goes on the classifier's input: walking back from each root
output through elementwise layers (activations, reshapes, dropouts) and
nested models called once, to the input of the first conv/dense layer met.

Example:

>>> import keras
>>> from keras_vs import match
>>> x = keras.Input((4,))
>>> y = keras.layers.BatchNormalization(name="bn")(keras.layers.Dropout(0.5, name="d")(x))
>>> y = keras.layers.Dense(2, name="fc")(y)
>>> [str(c) for c in HeadPolicy(match.match(keras.Model(x, y)), {}).outcome().changes][1]
"insert  'head_dropout' before fc (rate=0.5)"
"""

import keras

from keras_vs import graph as graph_lib
from keras_vs import match as match_lib
from keras_vs import vocab
from keras_vs.changes import Change
from keras_vs.layers import Uout
from keras_vs.policies.remove import RemovePolicy
from keras_vs.policies.base import register

__all__ = ["HeadPolicy"]

# Layers that act elementwise on one input: a head dropout may go before them.
_PASSTHROUGH = tuple(
    getattr(keras.layers, name)
    for name in ("Activation", "ReLU", "Softmax", "LeakyReLU", "ELU", "Identity",
                 "Flatten", "Reshape")
    if hasattr(keras.layers, name)
) + graph_lib.DROPOUT_CLASSES


@register(vocab.HEAD)
class HeadPolicy(RemovePolicy):
    """Removes the dropouts that feed a BN; puts one dropout before each classifier.

    Options: ``rate`` (a Dropout head; default: the largest removed rate) or
    ``beta`` (a Uout head, when every removed dropout is a Uout).
    """

    OPTIONS = ("rate", "beta", "share_weights")

    def run(self):
        removed = [group.layer for group in self.remove_feeding()]
        if not removed:
            return
        plain = [layer for layer in removed if not isinstance(layer, Uout)]
        cls, key = (keras.layers.Dropout, "rate") if plain else (Uout, "beta")
        rate = self.options.get(key)  # a Uout head takes beta=, a Dropout head rate=
        if rate is None:
            rate = max(graph_lib.noise_rate(layer) for layer in (plain or removed))
        seen = set()
        for out in self.match.graph.root.output_edges():
            edge, where = _head_edge(out)
            if edge.key in seen:
                continue
            seen.add(edge.key)
            self._insert(edge, where, cls, key, float(rate))

    def _insert(self, edge, where, cls, key, rate):
        producer = edge.view.producer_site(edge.tensor)
        bypassed = any(a.kind == "bypass" for a in self.actions_on(edge))
        if producer is not None and graph_lib.is_dropout_like(producer.layer) and not bypassed:
            self.report(Change("keep", producer.name,
                               note=f"already a dropout {where}: no head dropout added"),
                        (), producer.layer_key)
            return
        spec = graph_lib.NewLayer(cls, {"name": self.new_name("head_dropout"), key: rate})
        self.edit(edge, graph_lib.Action("after", spec))
        self.report(Change("insert", new_layer=spec.name, where=where, rate=rate, parameter=key),
                    (edge,))


def _head_edge(edge):
    """Walks back from an output to the classifier's input edge; returns ``(edge, where)``."""
    while True:
        view = edge.view
        if len(view.out_edges(edge.tensor)) != 1:
            break  # the tensor forks: a dropout above it would reach other branches
        site = view.producer_site(edge.tensor)
        if site is None:
            break
        child = site.child
        if child is not None:
            if len(child.calls) != 1:
                break
            edge = child.output_edges()[site.output_slot(edge.tensor)]
            continue
        ins = site.inputs
        if match_lib.is_linear(site.layer) and len(ins) == 1:
            return ins[0], f"before {site.name}"
        if isinstance(site.layer, _PASSTHROUGH) and len(ins) == 1:
            edge = ins[0]
            continue
        break
    return edge, f"before {edge.consumer_name}"
