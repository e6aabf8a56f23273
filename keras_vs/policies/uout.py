"""Policy ``"uout"``: every dropout that feeds a BN becomes a `keras_vs.Uout`.

Example:

>>> import keras
>>> from keras_vs import match
>>> x = keras.Input((4,))
>>> y = keras.layers.BatchNormalization(name="bn")(keras.layers.Dropout(0.5, name="d")(x))
>>> print(UoutPolicy(match.match(keras.Model(x, y)), {}).outcome().changes[0])
replace d as 'd_uout' (beta=0.1); fed bn (direct)
"""

from keras_vs import graph as graph_lib
from keras_vs import vocab
from keras_vs.changes import Change
from keras_vs.layers import Uout
from keras_vs.policies.base import Policy, groups, register, spec_rate

__all__ = ["UoutPolicy"]


@register(vocab.UOUT)
class UoutPolicy(Policy):
    """Routes the BN-feeding edges of each dropout through a new Uout (``"<name>_uout"``).

    Options: ``beta`` (default 0.1); a Uout with that beta already is kept.
    """

    OPTIONS = ("beta", "share_weights")

    def run(self):
        beta = self.options.get("beta")
        for group in groups(self.match, lambda e: e.feeds_bn):
            layer = group.layer
            if isinstance(layer, Uout) and (beta is None or beta == layer.beta):
                self.report(Change("keep", group.name, note="already a Uout"), (), group.source)
                continue
            spec = graph_lib.NewLayer(
                Uout,
                {"name": self.new_name(f"{layer.name}_uout"),
                 "beta": 0.1 if beta is None else float(beta),
                 "seed": getattr(layer, "seed", None)},
            )
            via, edges = graph_lib.Action("via", spec), [e.edge for e in group.chosen]
            for edge in edges:
                self.edit(edge, via)
            self.report(Change("replace", group.name, new_layer=spec.name, feeds=group.feeds,
                               rate=spec_rate(spec), note=group.fork_note()),
                        edges, group.source)
