"""Every public `keras.layers` class that builds with default arguments (or
required ones filled in by parameter name), placed beside a Dropout -> BN pair: a rewrite keeps the layer's state (its
outputs and weights) whenever a `.keras` round trip keeps it.

Generated over `dir(keras.layers)`, so a Keras release that adds a layer with
state of a new kind is checked without anyone listing it here.
"""

import inspect
import warnings

import keras
import numpy as np
import pytest
from keras import layers as L

import keras_vs as kvs

# Required constructor arguments, by parameter name (not by layer class): a
# class whose required arguments are all here is built with these.
_REQUIRED = {
    "units": 3, "filters": 2, "kernel_size": 2, "rate": 0.3, "stddev": 0.1, "num_bins": 3,
    "input_dim": 6, "output_dim": 3, "num_heads": 2, "key_dim": 4, "head_dim": 4,
    "num_query_heads": 2, "num_key_value_heads": 1, "height": 4, "width": 4, "n": 2,
    "factor": 0.2, "num_tokens": 6, "scale": 0.5, "axes": 1, "dims": (1, 2),
    "target_shape": (-1,), "value_range": (0.0, 1.0), "equation": "ab,bc->ac",
    "output_shape": 3, "num_classes": 3, "max_tokens": 8, "cropping": 1,
    "activation": "relu", "pool_size": 2, "output_size": 2,
}
_SHAPES = (  # tried in order: the first the layer accepts is used
    ((8, 8, 3), "float32"),
    ((6, 8), "float32"),
    ((8,), "float32"),
    ((8,), "int32"),
    ((6, 8, 8, 3), "float32"),
    ((1,), "string"),  # lookups and text layers; TensorFlow only
)
N = 4


def _public_layer_classes():
    found = {}
    for name in sorted(dir(keras.layers)):
        cls = getattr(keras.layers, name)
        if (inspect.isclass(cls) and issubclass(cls, keras.layers.Layer)
                and cls not in (keras.layers.Layer, keras.layers.InputLayer)
                and cls.__name__ not in found):
            found[cls.__name__] = cls
    return sorted(found.values(), key=lambda c: c.__name__)


def _sample(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    if dtype == "string":
        return np.array([["a b"], ["b c"], ["c a"], ["d"]], dtype=object)[:N].reshape((N,) + shape)
    if dtype == "int32":
        return rng.integers(0, 5, size=(N,) + shape).astype("int32")
    return rng.uniform(0.0, 1.0, size=(N,) + shape).astype("float32")


def _make(cls):
    """`cls` with its required arguments from `_REQUIRED`; failing that, with
    every argument `_REQUIRED` knows (Discretization needs num_bins or bins)."""
    params = [p for p in inspect.signature(cls.__init__).parameters.values()
              if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    required = [p.name for p in params if p.default is inspect.Parameter.empty]
    if any(name not in _REQUIRED for name in required):
        return None
    try:
        return cls(**{name: _REQUIRED[name] for name in required})
    except Exception:  # noqa: BLE001
        return cls(**{p.name: _REQUIRED[p.name] for p in params if p.name in _REQUIRED})


def _placed(cls):
    """(model, inputs) with an instance of `cls` on one branch and Dropout ->
    BN on the other, or None if `cls` does not build here."""
    for shape, dtype in _SHAPES:
        if dtype == "string" and keras.backend.backend() != "tensorflow":
            continue
        try:
            layer = _make(cls)
        except Exception:  # noqa: BLE001 - these arguments do not fit it
            return None
        if layer is None:
            return None
        x = L.Input(shape, dtype=dtype, batch_size=N)
        data = _sample(shape, dtype, seed=0)
        if hasattr(layer, "adapt"):
            try:
                layer.adapt(data)
            except Exception:  # noqa: BLE001 - adapting is optional
                pass
        for args in ((x,), ([x, x],)):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    y = layer(*args)
                    layer(*(data if a is x else [data, data] for a in args))
            except Exception:  # noqa: BLE001 - this input does not fit the layer
                continue
            if not all(isinstance(t, keras.KerasTensor) for t in keras.tree.flatten(y)):
                continue
            f = L.Input((3,), batch_size=N)
            bn = L.BatchNormalization(name="bn")(L.Dropout(0.5, name="drop")(f))
            try:
                model = keras.Model([x, f], keras.tree.flatten(y) + [bn])
            except ValueError:  # e.g. a layer that returns its input tensor itself
                continue
            rng = np.random.default_rng(1)
            for v in model.weights:  # a state other than the initial one
                if "float" in str(v.dtype) and v.trainable:
                    v.assign(rng.uniform(0.5, 1.5, v.shape).astype(v.dtype))
            return model, [data, _sample((3,), "float32", seed=2)]
    return None


def _state(model, inputs):
    """Outputs, and every layer's weights by layer name (a rewrite reorders layers)."""
    outs = [np.asarray(keras.ops.convert_to_numpy(t)) for t in
            keras.tree.flatten(model(inputs, training=False))]
    weights = [np.asarray(keras.ops.convert_to_numpy(v))
               for layer in sorted(model.layers, key=lambda layer: layer.name)
               if layer.name not in ("drop", "bn_dropout") for v in layer.weights]
    return outs, weights


def _same(a, b):
    return len(a) == len(b) and all(
        u.shape == v.shape and np.array_equal(u, v, equal_nan=u.dtype.kind == "f")
        for u, v in zip(a, b))


@pytest.mark.slow
@pytest.mark.slow_on_jax  # 93 s on JAX against 26 s on TF (2-core CPU): the contract is Keras'
@pytest.mark.parametrize("cls", _public_layer_classes(), ids=lambda c: c.__name__)
def test_rewrite_keeps_what_a_keras_file_keeps(cls, tmp_path):
    placed = _placed(cls)
    if placed is None:
        pytest.skip(f"{cls.__name__} needs other arguments or inputs than _REQUIRED and _SHAPES give")
    model, inputs = placed
    before = _state(model, inputs)
    try:
        model.save(tmp_path / "m.keras")
        loaded = keras.saving.load_model(tmp_path / "m.keras", safe_mode=False)
        round_trip = _state(loaded, inputs)
        kept_by_keras = _same(round_trip[0], before[0]) and _same(round_trip[1], before[1])
    except Exception:  # noqa: BLE001 - Keras' own round trip fails: nothing to match
        kept_by_keras = False
    new = kvs.rewrite(model, "after_bn")
    assert [layer.name for layer in new.layers][-1] == "bn_dropout"
    after = _state(new, inputs)
    if kept_by_keras:
        assert _same(after[0], before[0]), f"{cls.__name__}: outputs changed by the rewrite"
        assert _same(after[1], before[1]), f"{cls.__name__}: weights changed by the rewrite"
