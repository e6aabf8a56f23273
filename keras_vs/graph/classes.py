"""How each model class is rebuilt: the copy contract's "its own class".

A model a tool returns is made as Keras makes it when it loads a file:

- "plain": a Functional or a Sequential, called with the new graph (or
  layers); its `trainable` flag and own dtype policy are set afterwards
  (`keep_settings`), since neither constructor takes them.
- "functional": a Functional subclass that Keras revives from a functional
  config (`functional_from_config`): its class is called with the new
  inputs and outputs and the rest of its config (`functional`).
- "config": a class with a config of its own (a keras-hub task or
  backbone), made by its `from_config`, with the nested models that were
  rebuilt passed in place of their serialized form (`from_config`).

`rebuild` walks the graph and decides which applies; this module only
makes the object and names the class when it cannot.

Example:

>>> import keras
>>> kind(keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)]))
('plain', None)
"""

import inspect

import keras
from keras.src.models.functional import Functional

from keras_vs.checks import first_line
from keras_vs.graph.kinds import GraphError, _describe
from keras_vs.graph.model_graph import sublayers

__all__ = ["FUNCTIONAL_KEYS", "from_config", "functional", "keep_settings", "kind", "sequential"]

# The keys of a functional config; a subclass's own arguments are the others.
FUNCTIONAL_KEYS = ("name", "trainable", "layers", "input_layers", "output_layers")


def kind(model):
    """How Keras remakes `model`: ``("functional"|"config"|"plain", config)``.

    "plain": a Functional or Sequential. "functional": a Functional subclass
    that Keras revives from a functional config (`functional_from_config`).
    "config": a class with a config of its own, remade by its `from_config`.
    """
    if type(model) in (Functional, keras.Model) or isinstance(model, keras.Sequential):
        return "plain", None
    config = model.get_config()
    spec = inspect.getfullargspec(type(model).__init__)
    revivable = (spec.args[1:] == inspect.getfullargspec(Functional.__init__).args[1:]
                 or (spec.varargs is not None and spec.varkw is not None))
    if all(k in config for k in FUNCTIONAL_KEYS[2:]) and revivable:
        return "functional", config
    return "config", config


def from_config(model, config, children):
    """`model` remade by its class's `from_config`, rebuilt nested models passed in.

    Args:
        model: The model to remake (kind "config").
        config: Its `get_config()`.
        children: ``[(old nested model, new nested model)]``: each new one
            replaces the config entries that serialize the old one.

    Returns:
        The new model (its state is not carried here).
    """
    config = dict(config)
    for old, new in children:
        keys = [k for k, v in config.items() if _serializes(v, old)]
        if not keys:
            raise GraphError(
                f"Cannot rebuild {type(model).__name__} {model.name!r} around its "
                f"rewritten part {old.name!r}: its get_config() does not hold "
                f"that model. Rewrite {old.name!r} itself "
                f"(model.get_layer({old.name!r})). Received: model={_describe(model)}")
        for k in keys:
            config[k] = new
    try:
        with keras.saving.custom_object_scope(_classes(model)):
            return type(model).from_config(config)
    except Exception as e:  # noqa: BLE001 - any failure: name the class
        raise GraphError(
            f"Cannot rebuild {type(model).__name__} {model.name!r} from its config "
            f"({first_line(e)}). keras-vs makes every model it returns as Keras "
            "loads it from a file; give the class a get_config()/from_config() "
            "that round-trip, or use inplace=True where a tool offers it. "
            f"Received: model={_describe(model)}") from None


def functional(model, inputs, outputs, config=None):
    """A model of `model`'s class on a new graph.

    Args:
        model: The model the graph was read from.
        inputs, outputs: The new graph's inputs and outputs, in `model`'s
            structures.
        config: `model`'s config when it is a Functional subclass (kind
            "functional"); None makes a plain Functional (a Functional, or
            a class whose config cannot hold the edit).
    """
    if config is None:
        new = keras.Model(inputs=inputs, outputs=outputs, name=model.name)
    else:  # a Functional subclass: made as `functional_from_config` makes it
        extra = {k: v for k, v in config.items() if k not in FUNCTIONAL_KEYS}
        try:
            new = type(model)(inputs=inputs, outputs=outputs, name=model.name, **extra)
        except Exception as e:  # noqa: BLE001
            raise GraphError(
                f"Cannot rebuild {type(model).__name__} {model.name!r} on the new "
                f"graph ({first_line(e)}): keras-vs calls the class with inputs, "
                "outputs and its config, as Keras does when it loads a file. "
                f"Received: model={_describe(model)}") from None
    keep_settings(new, model)
    return new


def sequential(model, input_layer, layers):
    """A Sequential of `model`'s class (a subclass too) from `input_layer`'s config and `layers`."""
    layers = [keras.layers.InputLayer.from_config(input_layer.get_config())] + list(layers)
    try:  # as `Sequential.from_config` makes it
        new = type(model)(layers, name=model.name)
    except Exception as e:  # noqa: BLE001
        raise GraphError(
            f"Cannot rebuild {type(model).__name__} {model.name!r} from its layers "
            f"({first_line(e)}): keras-vs calls the class with its layers and name. "
            f"Received: model={_describe(model)}") from None
    keep_settings(new, model)
    return new


def keep_settings(new, model):
    """`trainable` and the model's own dtype policy, which neither a Functional's nor
    a Sequential's constructor takes: made under the global policy, a copy of a
    mixed_float16 model would compile without loss scaling."""
    new.trainable = model.trainable
    if model.dtype_policy.name != new.dtype_policy.name:
        new.dtype_policy = model.dtype_policy


def _serializes(value, model):
    """Whether a config entry is the serialized form of `model`."""
    return (isinstance(value, dict) and isinstance(value.get("config"), dict)
            and value["config"].get("name") == model.name
            and value.get("class_name") in (type(model).__name__,
                                            keras.saving.get_registered_name(type(model))))


def _classes(model):
    """The classes of `model` and every layer under it, by the names a config uses.

    A config names classes; the classes are already loaded here, so they are
    given to Keras as custom objects (a user's unregistered layer included).
    """
    found = {}
    for layer in [model, *sublayers(model)]:
        cls = type(layer)
        found.setdefault(cls.__name__, cls)
        found.setdefault(keras.saving.get_registered_name(cls), cls)
    return found
