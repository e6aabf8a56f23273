"""What a search is of: fingerprints of a user's model and of the data, kept with the search.

A search folder's ``search_config.json`` records them (`tuner.project`), so
that another model or other data, even under the same names, never resumes
or overwrites the search. A zoo model is identified by its name and builder
options and a named data set by its name: both are already in the settings.

Example:

>>> import numpy as np
>>> data_identity(((np.zeros((2, 3)), np.zeros(2)), (np.ones((1, 3)), np.ones(1))))["shapes"]
[[2, 3], [2], [1, 3], [1]]
"""

import hashlib
import json

import numpy as np

__all__ = [
    "DATA_KEY",
    "FILE_KEY",
    "MODEL_KEY",
    "data_identity",
    "describe_data",
    "describe_model",
    "model_identity",
]

# Keys of ``search_config.json``. The file is recorded to name the model in
# messages; it is not compared (the same model may be saved elsewhere).
MODEL_KEY = "model_identity"
FILE_KEY = "model_file"
DATA_KEY = "data_identity"
_SHORT = 12  # hex digits shown in messages


def _hash_arrays(arrays):
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.dtype.str}{a.shape}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def _json_default(value):
    if hasattr(value, "tolist"):  # NumPy arrays and scalars in a layer's config
        return value.tolist()
    return f"<{type(value).__name__}>"


def _layer_names(model):
    import keras

    names = {model.name}
    for layer in getattr(model, "layers", ()):
        names |= _layer_names(layer) if isinstance(layer, keras.Model) else {layer.name}
    return names


def _canonical(value, names, ids):
    """``value`` with every layer name replaced by its order of first appearance."""
    if isinstance(value, dict):
        return {k: _canonical(value[k], names, ids) for k in sorted(value)}
    if isinstance(value, (list, tuple)):
        return [_canonical(v, names, ids) for v in value]
    if isinstance(value, str) and value in names:
        return f"<layer {ids.setdefault(value, len(ids))}>"
    return value


def model_identity(model):
    """A user's model as its search records it.

    Args:
        model: A `keras.Model`.

    Returns:
        ``{"name", "architecture", "weights"}``: the model's name, the
        sha256 of its class and config (`get_config`, as sorted JSON, layer
        names replaced by their order: a model rebuilt in the same process,
        whose layers Keras names ``dense_1`` and so on, is the same) and the
        sha256 of every weight's dtype, shape and bytes, in order.
    """
    import keras

    config = {"class": f"{type(model).__module__}.{type(model).__qualname__}",
              "config": _canonical(model.get_config(), _layer_names(model), {})}
    text = json.dumps(config, sort_keys=True, default=_json_default)
    weights = [keras.ops.convert_to_numpy(w) for w in model.weights]
    return {
        "name": model.name,
        "architecture": hashlib.sha256(text.encode()).hexdigest(),
        "weights": _hash_arrays(weights),
    }


def data_identity(arrays):
    """The arrays a search trains and validates on, as its search records them.

    Args:
        arrays: ``((x_train, y_train), (x_val, y_val))`` NumPy arrays.

    Returns:
        ``{"shapes", "sha256"}``: the four arrays' shapes and the sha256 of
        their dtypes, shapes and bytes.
    """
    flat = [np.asarray(a) for split in arrays for a in split]
    return {"shapes": [list(a.shape) for a in flat], "sha256": _hash_arrays(flat)}


def describe_model(config):
    """One phrase naming the model of a search's settings, e.g. for an error message.

    Args:
        config: A search's settings (``search_config.json``).
    """
    identity = config.get(MODEL_KEY)
    if not identity:
        model = config.get("model")
        if isinstance(model, str) and model.startswith("user model"):
            return f"{model} (no fingerprint recorded: an older keras-vs search)"
        return f"zoo model {model!r}"
    source = f" from {config[FILE_KEY]}" if config.get(FILE_KEY) else ""
    return (f"user model {identity['name']!r}{source} (architecture "
            f"{identity['architecture'][:_SHORT]}, weights {identity['weights'][:_SHORT]})")


def describe_data(config):
    """One phrase naming the data of a search's settings, e.g. for an error message.

    Args:
        config: A search's settings (``search_config.json``).
    """
    identity = config.get(DATA_KEY)
    if not identity:
        return f"{config.get('dataset')!r} (no fingerprint recorded)"
    shapes = ", ".join("x".join(map(str, s)) or "()" for s in identity["shapes"])
    return f"{config.get('dataset')!r} (shapes {shapes}; sha256 {identity['sha256'][:_SHORT]})"
