"""A stateful LSTM (fixed batch of 8) -> dropout -> BN -> stateful LSTM -> BN -> Dense.

Shared by the tests of measuring and recalibrating, which must leave its
RNN states as they were.
"""

import keras
import numpy as np
from keras import layers


def stateful_model():
    """The model, seeded; its states are the initial zeros until it is called."""
    keras.utils.set_random_seed(0)
    x = keras.Input(batch_shape=(8, 5, 3))
    h = layers.LSTM(4, stateful=True, return_sequences=True, name="lstm1")(x)
    h = layers.BatchNormalization(name="bn1")(layers.Dropout(0.5)(h))
    h = layers.BatchNormalization(name="bn2")(layers.LSTM(3, stateful=True, name="lstm2")(h))
    return keras.Model(x, layers.Dense(2, activation="softmax")(h))


def stepped(seed):
    """The model after one call on 8 of 32 examples (states not the initial zeros), and the 32."""
    model = stateful_model()
    data = np.random.default_rng(seed).normal(size=(32, 5, 3)).astype("float32")
    model(data[:8])
    return model, data


def rnn_states(model):
    """NumPy copies of the states of every stateful layer of `model`."""
    return [keras.ops.convert_to_numpy(s).copy()
            for layer in model.layers if getattr(layer, "stateful", False) for s in layer.states]
