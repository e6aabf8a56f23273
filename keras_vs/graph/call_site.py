"""One call of a layer in a model's graph, as the rest of keras-vs sees it.

A `CallSite` wraps a Keras ``Node`` (the one thing that records a layer call)
so that code outside the graph core reads a call through a small typed record
(`layer`, `outputs`, `inputs`, `key`) and never touches a Node.

Example:

>>> import keras
>>> from keras_vs.graph.model_graph import ModelGraph
>>> m = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="out")])
>>> [site.name for site in ModelGraph(m).root.call_sites()]
['out']
"""

import dataclasses

from keras_vs.graph.kinds import forced_training

__all__ = ["CallSite"]


@dataclasses.dataclass(frozen=True, eq=False)
class CallSite:
    """One call of a layer (or of a nested model) in a `View`.

    Two records of the same call compare equal (`key`).

    Attributes:
        view: The `View` the call belongs to.
        node: The Keras node of the call (read by the graph core only).
    """

    view: object
    node: object

    def __eq__(self, other):
        return isinstance(other, CallSite) and self.key == other.key

    def __hash__(self):
        return hash(self.key)

    @property
    def key(self):
        """A stable identity of the call: equal for two records of one call."""
        return (id(self.view), id(self.node))

    @property
    def layer(self):
        """The layer (or nested model) called."""
        return self.node.operation

    @property
    def name(self):
        """The layer's name qualified by its view (``"outer/inner/name"``)."""
        return self.view.qualname(self.node.operation)

    @property
    def layer_key(self):
        """The identity of the layer in its view: equal for every call of one layer."""
        return (id(self.view), id(self.node.operation))

    @property
    def outputs(self):
        """The symbolic tensors the call returns."""
        return tuple(self.node.outputs)

    @property
    def inputs(self):
        """The `Edge`s the call reads, one per distinct input tensor."""
        return self.view.in_edges(self.node)

    @property
    def training_forced(self):
        """Whether the call was made with ``training=True`` (e.g. MC dropout)."""
        return forced_training(self.node)

    @property
    def child(self):
        """The `View` of the nested model this call runs, or None for a layer."""
        return self.view.children.get(id(self.node))

    def out_edges(self):
        """Every edge that reads one of the call's outputs, output by output."""
        return [e for t in self.node.outputs for e in self.view.out_edges(t)]

    def output_slot(self, tensor):
        """The index of `tensor` among the call's outputs.

        Raises:
            ValueError: `tensor` is not an output of the call.
        """
        for i, t in enumerate(self.node.outputs):
            if t is tensor:
                return i
        raise ValueError(f"Tensor is not an output of call {self.name!r}. Received: tensor={tensor!r}")
