"""Policy ``"remove"``: every dropout that feeds a BN is removed.

Example:

>>> import keras
>>> from keras_vs import match
>>> x = keras.Input((4,))
>>> y = keras.layers.BatchNormalization(name="bn")(keras.layers.Dropout(0.5, name="d")(x))
>>> print(RemovePolicy(match.match(keras.Model(x, y)), {}).outcome().changes[0])
remove  d (rate=0.5); fed bn (direct)
"""

from keras_vs import graph as graph_lib
from keras_vs import vocab
from keras_vs.changes import Change
from keras_vs.policies.base import Policy, groups, parameter, register

__all__ = ["RemovePolicy"]


@register(vocab.REMOVE)
class RemovePolicy(Policy):
    """Bypasses every out-edge of a dropout that feeds a BN (other branches keep it)."""

    def run(self):
        self.remove_feeding()

    def remove_feeding(self):
        """Removes the dropouts that feed a BN; returns their `DropoutGroup`s."""
        bypass = graph_lib.Action("bypass")
        found = groups(self.match, lambda e: e.feeds_bn)
        for group in found:
            edges = [e.edge for e in group.chosen]
            for edge in edges:
                self.edit(edge, bypass)
            self.report(Change("remove", group.name, feeds=group.feeds, rate=group.rate,
                               note=group.fork_note(), parameter=parameter(group.layer)),
                        edges, group.source)
        return found
