"""Small models trained on digits for the attribution and doctor tests (one per process).

Each builder trains once per process (`functools.cache`), seeded, so that
test modules sharing a worker share the models.
"""

import functools

import keras
import numpy as np
from keras import layers

from keras_vs import data as data_lib
from keras_vs.layers import Uout


@functools.cache
def digits():
    """``(x_train, y_train, x_test, y_test)``: digits' fixed 80/20 split."""
    x, y = data_lib.load("digits", "train")
    xt, yt = data_lib.load("digits", "test")
    return x, y, xt, yt


def _cnn(noise, *, momentum=0.99, after_bn=False, name="cnn"):
    i = keras.Input((8, 8, 1))
    h = layers.ReLU()(layers.Conv2D(16, 3, padding="same", name="conv1")(i))
    if noise is not None and not after_bn:
        h = noise(h)
    h = layers.BatchNormalization(momentum=momentum, name="bn1")(h)
    h = layers.Conv2D(16, 3, padding="same", name="conv2")(h)
    h = layers.ReLU()(layers.BatchNormalization(momentum=momentum, name="bn2")(h))
    if noise is not None and after_bn:
        h = noise(h)
    h = layers.GlobalAveragePooling2D()(h)
    return keras.Model(i, layers.Dense(10, name="head")(h), name=name)


def _trained(model, epochs, seed=0):
    x, y, _, _ = digits()
    model.compile(keras.optimizers.AdamW(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=0)
    return model


@functools.cache
def under_trained():
    """Dropout(0.5) -> bn1 (the issue's model), 3 epochs: 69 steps at momentum 0.99."""
    keras.utils.set_random_seed(0)
    return _trained(_cnn(layers.Dropout(0.5, name="drop")), 3)


@functools.cache
def converged():
    """Dropout(0.5) -> bn1, BN momentum 0.9: the moving averages have converged."""
    keras.utils.set_random_seed(1)
    return _trained(_cnn(layers.Dropout(0.5, name="drop"), momentum=0.9), 4)


@functools.cache
def uout():
    """Uout(beta=0.1) -> bn1, momentum 0.9."""
    keras.utils.set_random_seed(2)
    return _trained(_cnn(Uout(0.1, name="uout"), momentum=0.9), 4)


@functools.cache
def after_bn():
    """Dropout(0.5) after the last BN (none feeds a BN), momentum 0.9."""
    keras.utils.set_random_seed(3)
    return _trained(_cnn(layers.Dropout(0.5, name="drop"), momentum=0.9, after_bn=True), 4)


@functools.cache
def no_bn():
    """A CNN with dropout and no BN."""
    keras.utils.set_random_seed(4)
    i = keras.Input((8, 8, 1))
    h = layers.Dropout(0.2)(layers.ReLU()(layers.Conv2D(8, 3, padding="same")(i)))
    h = layers.GlobalAveragePooling2D()(h)
    return _trained(keras.Model(i, layers.Dense(10)(h), name="no_bn"), 2)


def weights(model):
    return [np.array(w) for w in model.get_weights()]
