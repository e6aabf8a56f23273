"""Fixtures the keras_vs tests share: a layer owning a BN it never calls, a
mixed global dtype policy, and the small trained digits models."""

import importlib.util
import pathlib
import sys

import keras
import pytest
from keras import layers


@keras.saving.register_keras_serializable("keras_vs_tests")
class UnusedBN(layers.Layer):
    """Owns a BN it never calls (keras-hub's RetinaNet FPN with
    use_fpn_batch_norm=True holds output_norm_P3..P5 like this)."""

    def __init__(self, units=3, build_bn=True, **kwargs):
        super().__init__(**kwargs)
        self.units, self.build_bn = units, build_bn
        self.dense = layers.Dense(units)
        self.norm = layers.BatchNormalization(name="norm")

    def build(self, shape):
        self.dense.build(shape)
        if self.build_bn:
            self.norm.build(shape)

    def call(self, x):
        return self.dense(x)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "build_bn": self.build_bn}


@pytest.fixture
def unused_bn():
    """The `UnusedBN` class: ``unused_bn(units=3, build_bn=True, name=...)``."""
    return UnusedBN


@pytest.fixture(params=["mixed_float16", "mixed_bfloat16"])
def mixed_policy(request):
    """A mixed global dtype policy, set for the test and restored after it."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(request.param)
    yield request.param
    keras.config.set_dtype_policy(previous)


def _sibling(stem):
    """The module ``tests/keras_vs/<stem>.py``, loaded once per process (tests are not a package)."""
    name = f"keras_vs_tests_{stem}"
    if name not in sys.modules:
        path = pathlib.Path(__file__).resolve().parent / f"{stem}.py"
        spec = importlib.util.spec_from_file_location(name, path)
        sys.modules[name] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[name])
    return sys.modules[name]


@pytest.fixture(scope="session")
def trained():
    """The sibling module `trained.py`: small digits CNNs, each trained once per process."""
    return _sibling("trained")


@pytest.fixture(scope="session")
def stateful():
    """The sibling module `stateful.py`: a stateful LSTM model and its RNN states."""
    return _sibling("stateful")
