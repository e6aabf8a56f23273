"""How a search compiles each trial: a user model's own training setup, or the paper's recipe.

A zoo network trains with the paper's recipe (`tuner.recipe`) and sparse
categorical cross-entropy on its softmax output. A user's model trains as
its owner compiled it: its loss, metrics and optimizer (a fresh optimizer per
trial, from its config). ``loss=`` and ``optimizer=`` override either; a user
model that is not compiled gets sparse categorical cross-entropy on
probabilities or logits, as its output says, and the recipe. Every trial
also reports ``accuracy``, the search's objective.
"""

import dataclasses
import warnings

import keras

from keras_vs import graph as graph_lib
from tuner.config import TrainingConfig

__all__ = ["RECIPE", "TrainingSetup"]

RECIPE = "recipe"
_OWN = "the model's own compile()"


def _camel(name):
    return "".join(part.capitalize() for part in name.split("_"))


def _ends_in_softmax(model):
    """Whether the (first) output of ``model`` comes out of a softmax."""
    try:
        layer = graph_lib.output_layer(model)
    except graph_lib.GraphError:  # a subclassed model: no graph to read
        return False
    if isinstance(layer, keras.layers.Softmax):
        return True
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", None) == "softmax" or activation == "softmax"


def _resolve_loss(loss, from_logits):
    """``loss`` as a serialized Keras object (or name), validated (``from_logits``: by `TrainingConfig`)."""
    if isinstance(loss, str) and from_logits is not None:
        # "sparse_categorical_crossentropy" + from_logits -> the Loss class with that option.
        try:
            loss = keras.losses.deserialize({"class_name": _camel(loss) if "_" in loss or loss.islower()
                                             else loss, "config": {"from_logits": from_logits}})
        except (ValueError, TypeError):
            raise ValueError(
                f"from_logits applies to a cross-entropy loss. Received: loss={loss!r}, "
                f"from_logits={from_logits!r}"
            ) from None
    try:
        keras.losses.get(loss)
    except (ValueError, TypeError):
        raise ValueError(
            "Unknown loss. Expected a Keras loss name (e.g. sparse_categorical_crossentropy), "
            f"a keras.losses.Loss or a function. Received: loss={loss!r}"
        ) from None
    return loss if isinstance(loss, str) else keras.saving.serialize_keras_object(loss)


def _resolve_optimizer(optimizer, learning_rate, weight_decay):
    """``optimizer`` as a serialized Keras optimizer config, or `RECIPE`."""
    if optimizer == RECIPE:
        return RECIPE
    if isinstance(optimizer, dict):
        config = optimizer
    else:
        try:
            config = keras.optimizers.serialize(keras.optimizers.get(optimizer))
        except (ValueError, TypeError):
            raise ValueError(
                f"Unknown optimizer. Expected {RECIPE!r} (the paper's SGD recipe), a Keras optimizer "
                f"name (e.g. adam, sgd, rmsprop, adamw) or a keras.optimizers.Optimizer. "
                f"Received: optimizer={optimizer!r}"
            ) from None
    return _with_rates(config, learning_rate, weight_decay)


def _with_rates(config, learning_rate, weight_decay):
    config = {**config, "config": dict(config.get("config", {}))}
    if learning_rate is not None:
        config["config"]["learning_rate"] = float(learning_rate)
    if weight_decay is not None:
        config["config"]["weight_decay"] = float(weight_decay) or None
    return config


def _short(serialized):
    """A one-line description of a serialized loss or optimizer."""
    if serialized == RECIPE:
        return "the paper's SGD recipe"
    if isinstance(serialized, str):
        return serialized
    if not isinstance(serialized, dict):
        return repr(serialized)
    config = serialized.get("config") or {}
    name = serialized.get("class_name", "?")
    shown = {k: config[k] for k in ("from_logits", "learning_rate") if k in config}
    if isinstance(shown.get("learning_rate"), dict):
        shown["learning_rate"] = shown["learning_rate"].get("class_name", "schedule")
    elif isinstance(shown.get("learning_rate"), float):
        shown["learning_rate"] = float(f"{shown['learning_rate']:.6g}")
    return f"{name}({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


def _has_accuracy(metrics):
    for m in metrics:
        name = m if isinstance(m, str) else getattr(m, "name", None)
        if isinstance(m, dict):
            name = (m.get("config") or {}).get("name")
        if name in ("accuracy", "acc"):
            return True
    return False


@dataclasses.dataclass(frozen=True)
class TrainingSetup:
    """What ``compile`` gets in every trial.

    Attributes:
        loss: A Keras loss name or serialized loss.
        optimizer: `RECIPE` or a serialized Keras optimizer.
        compile_options: The rest of a user's compile config (metrics,
            ``jit_compile``, ...), serialized.
        sources: ``{"loss": ..., "optimizer": ...}``: where each came from.
        notes: Assumptions made, one sentence each.
    """

    loss: object
    optimizer: object
    compile_options: dict
    sources: dict
    notes: tuple = ()

    @classmethod
    def resolve(cls, user_model, config=None):
        """The setup of a search.

        Args:
            user_model: The user's `keras.Model`, or None for a zoo network.
            config: A `tuner.TrainingConfig`: its ``loss`` and ``optimizer``
                override (see the module docstring), ``from_logits`` applies
                to the default loss (or a loss name), ``learning_rate`` and
                ``weight_decay`` to a non-recipe optimizer (the recipe takes
                them itself). None: the defaults.

        Returns:
            A `TrainingSetup`.
        """
        config = TrainingConfig() if config is None else config
        own = _own_compile_config(user_model)
        notes = []
        loss, loss_source = _choose_loss(user_model, own, config, notes)
        if config.optimizer is not None:
            optimizer = _resolve_optimizer(config.optimizer, config.learning_rate, config.weight_decay)
            optimizer_source = "given"
        elif own.get("optimizer") is not None:
            optimizer = _with_rates(own["optimizer"], config.learning_rate, config.weight_decay)
            optimizer_source = _OWN
        else:
            optimizer, optimizer_source = RECIPE, "recipe"
        options = {k: v for k, v in own.items() if k not in ("loss", "optimizer")}
        sources = {"loss": loss_source, "optimizer": optimizer_source}
        return cls(loss, optimizer, options, sources, tuple(notes))

    def compile(self, model, recipe_optimizer):
        """Compiles ``model`` with a fresh optimizer; ``recipe_optimizer()`` makes the recipe's."""
        options = keras.saving.deserialize_keras_object(self.compile_options) if self.compile_options else {}
        metrics = options.pop("metrics", None)
        if metrics is None:
            metrics = ["accuracy"]
        elif isinstance(metrics, (list, tuple)) and not _has_accuracy(metrics):
            metrics = list(metrics) + ["accuracy"]
        if self.optimizer == RECIPE:
            optimizer = recipe_optimizer()
        else:
            optimizer = keras.optimizers.deserialize(self.optimizer)
        loss = self.loss if isinstance(self.loss, str) else keras.saving.deserialize_keras_object(self.loss)
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics, **options)
        return model

    def is_recipe_default(self):
        """True for a zoo network's default setup: the recipe and its softmax loss."""
        return self.sources == {"loss": "the zoo's softmax output", "optimizer": "recipe"}

    def describe(self):
        """``{"loss": ..., "optimizer": ...}``: one line each, with where it came from."""
        return {
            "loss": f"{_short(self.loss)} ({self.sources['loss']})",
            "optimizer": f"{_short(self.optimizer)} ({self.sources['optimizer']})",
        }

    def config(self):
        """A JSON-able record of the setup, for a search's settings."""
        return {"loss": self.loss, "optimizer": self.optimizer, "compile": self.compile_options}


def _own_compile_config(user_model):
    """A compiled user model's compile config (checked to rebuild), else ``{}``."""
    if user_model is None or not getattr(user_model, "compiled", False):
        return {}
    own = dict(user_model.get_compile_config() or {})
    try:  # every trial rebuilds it from this config: check once that it can
        keras.saving.deserialize_keras_object(own)
    except Exception as e:  # noqa: BLE001  (whatever the config holds)
        raise ValueError(
            f"The compile() setup of model {user_model.name!r} cannot be rebuilt for each "
            f"trial ({type(e).__name__}: {e}); pass loss= and optimizer= (keras-vs tune: "
            f"--loss, --optimizer). Received: {sorted(own)}"
        ) from None
    return own


def _choose_loss(user_model, own, config, notes):
    """``(serialized loss, where it came from)``; appends the assumption made, if any, to ``notes``."""
    if config.loss is not None:
        return _resolve_loss(config.loss, config.from_logits), "given"
    if own.get("loss") is not None and config.from_logits is None:
        return own["loss"], _OWN
    if config.from_logits is not None:
        logits, source = config.from_logits, "given"
    elif user_model is None:
        logits, source = False, "the zoo's softmax output"
    else:
        logits, source = not _ends_in_softmax(user_model), "assumed"
        if logits:
            # Past this function, resolve and DropoutHyperModel.__init__: the user's call.
            warnings.warn(
                f"model {user_model.name!r} is not compiled and its output is not a "
                "softmax: assuming SparseCategoricalCrossentropy(from_logits=True)",
                stacklevel=4,
            )
        notes.append(
            f"model {user_model.name!r} is not compiled and its output is "
            f"{'not a softmax' if logits else 'a softmax'}: assuming "
            f"SparseCategoricalCrossentropy(from_logits={logits}); pass loss= "
            "(keras-vs tune: --loss, --from_logits) to choose"
        )
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=logits)
    return keras.saving.serialize_keras_object(loss), source
