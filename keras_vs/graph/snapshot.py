"""What an inference pass may write in a model, saved and put back.

Measuring and re-estimation run the user's own layers at inference. Most
layers write nothing then, but a stateful RNN advances its states (Keras does
not track them as variables) and a custom layer may count calls. `Snapshot`
saves such state before a pass and puts it back after, so a tool leaves its
input model as it found it, bit for bit.

Example:

>>> import keras
>>> m = keras.Sequential([keras.Input(batch_shape=(2, 3, 1)),
...                       keras.layers.SimpleRNN(2, stateful=True)])
>>> with Snapshot(m):
...     _ = m(keras.ops.ones((2, 3, 1)))
>>> float(keras.ops.sum(keras.ops.abs(m.layers[0].states[0])))
0.0
"""

import keras

from keras_vs.graph.kinds import is_bn_like

__all__ = ["Snapshot", "mutable_state"]


def mutable_state(model):
    """Variables of `model` that a call at inference may write.

    The states of stateful layers (``layer.states`` where ``layer.stateful``:
    RNNs, untracked by Keras) and every non-trainable variable outside BN-like
    layers (whose moving statistics no inference call writes). Trainable
    variables are only written by optimizers.

    Args:
        model: A built model.

    Returns:
        A list of `keras.Variable`s, without repeats.
    """
    layers = list(model._flatten_layers(include_self=True, recursive=True))
    in_bns = {id(v) for layer in layers if is_bn_like(layer) for v in layer.variables}
    found = {id(v): v for v in model.non_trainable_variables if id(v) not in in_bns}
    for layer in layers:
        if getattr(layer, "stateful", False) is True:
            for v in keras.tree.flatten(getattr(layer, "states", None) or []):
                if isinstance(v, keras.Variable):
                    found.setdefault(id(v), v)
    return list(found.values())


class Snapshot:
    """The values of a model's `mutable_state`, to put back after passes.

    Also a context manager: saves on entry, restores on exit (errors too).

    Args:
        model: A built model.
        variables: The variables to save (default: `mutable_state(model)`).
    """

    def __init__(self, model, variables=None):
        self.variables = mutable_state(model) if variables is None else list(variables)
        self._saved = None

    def save(self):
        """Saves the current values (copies: JAX may donate a variable's buffer)."""
        self._saved = [keras.ops.copy(v.value) for v in self.variables]
        return self

    def restore(self):
        """Puts the saved values back (as often as needed: each pass from the same state)."""
        fresh = keras.backend.backend() == "jax"  # a JAX variable adopts the array
        for v, value in zip(self.variables, self._saved or ()):
            v.assign(keras.ops.copy(value) if fresh else value)

    def __enter__(self):
        return self.save()

    def __exit__(self, *exc):
        self.restore()
        return False
