"""`DropoutHyperModel`: where, which and how much dropout, as keras-tuner hyperparameters.

The search space is a `tuner.SearchSpace` (conditional hyperparameters
``dropout_position``, ``dropout_type``, ``dropout_rate`` and ``uout_beta``;
see `tuner.space`). A zoo network is compiled with the training recipe of
its family in the reference code (`tuner.recipe`: torch's SGD with momentum
0.9 and coupled weight decay on every parameter, step-decayed learning rate),
with the epoch milestones scaled to the number of epochs actually run and the
learning rate scaled linearly with the batch size. A user's model keeps its
own loss and optimizer when compiled (`tuner.training`).
"""

import dataclasses

import keras
import keras_tuner

import keras_vs
import zoo
from keras_vs import checks
from keras_vs import graph as graph_lib
from keras_vs import vocab
from tuner import deprecation
from tuner import recipe as recipe_lib
from tuner import training as training_lib
from tuner.config import TrainingConfig
from tuner.recipe import RECIPES
from tuner.space import SearchSpace

__all__ = ["DropoutHyperModel", "with_dropout"]

# The `zoo.DropoutPlan` field of each dropout type's amount: Bernoulli's
# drop rate, Uout's noise.
_ZOO_AMOUNT = dict(zip(vocab.DROPOUT_TYPES, ("rate", "beta")))
# Builder arguments the search itself sets (the flat dropout ones are the
# zoo's deprecated spelling of ``dropout``).
_SEARCH_SET = ("num_classes", "input_shape", "dropout", "dropout_rate", "dropout_position", "dropout_type",
               "beta")


def _model_options(model, options):
    if options is None:
        return {}
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        raise ValueError(
            f"Expected model_options to be a dict of builder arguments. Received: model_options={options!r}"
        )
    if options and not isinstance(model, str):
        raise ValueError(
            "model_options apply to zoo models only; a user's model is used as built. "
            f"Received: model_options={options!r}"
        )
    clash = sorted(set(options) & set(_SEARCH_SET))
    if clash:
        raise ValueError(
            f"model_options cannot set {', '.join(clash)}: the search sets them. "
            f"Received: model_options={options!r}"
        )
    return dict(options)


def _model_kind(model):
    """``(family, user_model, zoo_name, positions)`` of a zoo name or a user's model."""
    if isinstance(model, str):
        return zoo.entry(model).family, None, model, vocab.DROPOUT_POSITIONS  # unknown names raise here
    if isinstance(model, keras.Model):
        if not model.built or not getattr(model, "inputs", None):
            raise ValueError(
                "Expected a built Functional or Sequential model (with known inputs). "
                f"Received: model={model!r}"
            )
        return None, model, None, vocab.MODEL_POSITIONS
    raise ValueError(
        "Expected a zoo model name or a keras.Model. "
        f"Received: model={model!r} of type {type(model).__name__}"
    )


# The keywords `DropoutHyperModel` took before its records, and the field
# each became (`tuner.deprecation`): accepted until the next release.
_MOVED = {
    **{k: f"space.{k}" for k in ("positions", "types", "rates", "betas")},
    **{k: f"training.{k}" for k in ("epochs", "batch_size", "learning_rate", "weight_decay", "from_logits",
                                    "loss", "optimizer")},
    "training_config": "training",
}
_DEFAULTS = dict(space=SearchSpace(), training=TrainingConfig())


class DropoutHyperModel(keras_tuner.HyperModel):
    """Searches dropout position, type and rate (or Uout's beta) of a network.

    Args:
        model: A zoo name (e.g. ``"wrn-10-1"``, see `zoo.list_models`) or a
            user's Functional/Sequential `keras.Model`. A user's model is only
            read: every trial trains a rewritten copy that starts from the
            model's current weights.
        num_classes: Classes of the zoo network (ignored for a user model).
        input_shape: Input shape of the zoo network (ignored for a user model).
        steps_per_epoch: Optimizer steps per epoch (the recipe's schedule
            counts steps).
        model_options: Extra keyword arguments of the zoo builder, e.g.
            ``{"width": 4}`` to search a WRN-10-4 from ``"wrn-10-1"``
            (not for a user model; the dropout arguments, ``num_classes``
            and ``input_shape`` are set by the search).
        space: A `tuner.SearchSpace` (default: the default search's; its
            positions default to every position of the model's kind,
            `keras_vs.vocab.DROPOUT_POSITIONS` for a zoo network and
            `keras_vs.vocab.MODEL_POSITIONS` for a user model).
        training: A `tuner.TrainingConfig`: its epochs scale the schedule's
            milestones, its batch size the recipe's learning rate (by
            ``batch_size / 128``); loss and optimizer as `tuner.training` says.
        **deprecated: The keywords this class took before its records
            (``rates=``, ``epochs=``, ``training_config=``, ...): each still
            works until the next release, with a DeprecationWarning naming
            its record field.

    The model is compiled in `build`, so the hypermodel also works inside
    keras-tuner's own tuners, e.g. ``keras_tuner.RandomSearch(hypermodel,
    objective="val_accuracy", max_trials=4)``.

    Example:

    >>> import keras_tuner
    >>> hypermodel = DropoutHyperModel("wrn-10-1", input_shape=(8, 8, 1), steps_per_epoch=1,
    ...                                training=TrainingConfig(epochs=1))
    >>> hp = keras_tuner.HyperParameters()
    >>> hypermodel.build(hp).name, hp.values
    ('wrn-10-1', {'dropout_position': 'none'})
    """

    def __init__(
        self, model, num_classes=10, input_shape=None, steps_per_epoch=1, model_options=None, *,
        space=None, training=None, **deprecated,
    ):
        super().__init__(name="dropout")
        made = deprecation.records("tuner.DropoutHyperModel", dict(space=space, training=training),
                                   _DEFAULTS, deprecated, _MOVED)
        self.model_options = _model_options(model, model_options)
        self.family, self.user_model, self.zoo_name, allowed = _model_kind(model)
        self.space = made["space"].for_model(allowed)
        self.num_classes = checks.integer("num_classes", num_classes)
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self.training_config = made["training"]
        self.steps_per_epoch = checks.integer("steps_per_epoch", steps_per_epoch)
        self.recipe = _recipe(self.family, self.training_config)
        self.training = training_lib.TrainingSetup.resolve(self.user_model, self.training_config)

    def declare_hyperparameters(self, hp):
        """Declares the conditional search space on ``hp`` (see `tuner.SearchSpace.declare`).

        Returns:
            ``(position, type, amount)`` for the values in ``hp``: ``type`` and
            ``amount`` (rate or beta) are None when the position builds no
            dropout.
        """
        return self.space.declare(hp)

    def grid_points(self):
        """Every point of the search space, positions first (see `tuner.SearchSpace.grid_points`)."""
        return self.space.grid_points()

    def build(self, hp):
        """Builds and compiles the network for the values in ``hp``."""
        position, dropout_type, amount = self.declare_hyperparameters(hp)
        if self.user_model is None:
            dropout_type = dropout_type or "bernoulli"  # no dropout: Bernoulli at rate 0
            plan = zoo.DropoutPlan(position=position, type=dropout_type,
                                   **{_ZOO_AMOUNT[dropout_type]: 0.0 if amount is None else amount})
            model = zoo.get(self.zoo_name, num_classes=self.num_classes, input_shape=self.input_shape,
                            dropout=plan, **self.model_options)
        else:
            model = with_dropout(self.user_model, position, dropout_type, amount)
        return self.training.compile(model, self.optimizer)

    def learning_rate_schedule(self):
        """The recipe's step schedule over this run's steps (a float if it has no steps)."""
        config = self.training_config
        return recipe_lib.learning_rate_schedule(self.recipe, config.epochs, self.steps_per_epoch, config.batch_size)

    def optimizer(self):
        """A new `tuner.recipe.TorchSGD`: the recipe's momentum, coupled decay and schedule."""
        config = self.training_config
        return recipe_lib.optimizer(self.recipe, config.epochs, self.steps_per_epoch, config.batch_size)


def _recipe(family, training_config):
    """The family's recipe (PreResNet's for a user model), with the config's rates where given."""
    recipe = RECIPES.get(family, RECIPES["preresnet"])
    changes = {
        name: getattr(training_config, name)
        for name in ("learning_rate", "weight_decay")
        if getattr(training_config, name) is not None
    }
    return dataclasses.replace(recipe, **changes)


def _dropout_layers(model):
    """The retypeable dropout-like layers of a model (wrapped ones stay as they are)."""
    return [
        layer
        for _, layer in graph_lib.ModelGraph(model).all_layers()
        if graph_lib.is_dropout_like(layer) and not isinstance(layer, keras.layers.Wrapper)
    ]


def _retyped(layer, dropout_type, value):
    """`layer` as ``dropout_type`` with rate/beta ``value`` (its own when None)."""
    amount = graph_lib.noise_rate(layer) if value is None else value
    if dropout_type == "uout":
        return keras_vs.Uout(beta=amount, name=layer.name)
    if isinstance(layer, keras.layers.Dropout):  # SpatialDropout keeps its class
        config = dict(layer.get_config(), rate=float(amount))
        return type(layer).from_config(config)
    return keras.layers.Dropout(amount, name=layer.name)


def with_dropout(model, position, dropout_type=None, value=None):
    """A copy of a user's model with its dropout moved, retyped and re-rated.

    ``position`` ``"original"`` keeps the dropouts where they are;
    ``"after_bn"``, ``"head"`` and ``"remove"`` apply that `keras_vs.rewrite`
    policy. Then every plain `keras.layers.Dropout` (and `keras_vs.Uout`) of
    the result gets ``dropout_type`` with rate (or beta) ``value``. Weights
    are copied; the input model is not modified.

    Args:
        model: A Functional or Sequential `keras.Model`.
        position: One of `keras_vs.vocab.MODEL_POSITIONS`.
        dropout_type: ``"bernoulli"`` or ``"uout"`` (ignored for ``"remove"``).
        value: Rate (Bernoulli) or beta (Uout); None keeps the layers' own.

    Returns:
        A new `keras.Model`.

    Example:

    >>> x = keras.Input((4,))
    >>> y = keras.layers.Dropout(0.5)(x)
    >>> y = keras.layers.BatchNormalization()(y)
    >>> new = with_dropout(keras.Model(x, y), "after_bn", "uout", 0.2)
    >>> [type(layer).__name__ for layer in new.layers]
    ['InputLayer', 'BatchNormalization', 'Uout']
    """
    if position not in vocab.MODEL_POSITIONS:
        raise ValueError(
            f"Unknown position for a user model. Expected one of {', '.join(vocab.MODEL_POSITIONS)}. "
            f"Received: position={position!r}"
        )
    builds_dropout = position not in vocab.NO_DROPOUT_POSITIONS
    if builds_dropout and dropout_type not in (None,) + vocab.DROPOUT_TYPES:
        raise ValueError(
            f"Unknown dropout type. Expected one of {', '.join(vocab.DROPOUT_TYPES)}. "
            f"Received: dropout_type={dropout_type!r}"
        )
    if position == "original":
        base = model
    else:
        base = keras_vs.rewrite(model, position)
    if not builds_dropout or dropout_type is None or not _dropout_layers(base):
        return base if base is not model else graph_lib.copy(model)
    targets = {id(layer) for layer in _dropout_layers(base)}

    def replace(layer):
        if id(layer) in targets:
            return _retyped(layer, dropout_type, value)
        return None

    return graph_lib.copy(base, replace=replace)
