"""`DropoutHyperModel`: where, which and how much dropout, as keras-tuner hyperparameters.

The search space (conditional hyperparameters, so an oracle never samples a
value that the model would ignore):

- ``dropout_position``: for a zoo network one of the zoo positions
  (``"none"``, ``"before_bn"``, ``"before_conv"``, ``"after_conv"``,
  ``"head"``); for a user's own model ``"original"`` (the dropouts stay
  where the model has them) or a `keras_vs.rewrite` policy (``"after_bn"``, ``"head"``, ``"remove"``).
- ``dropout_type``: ``"bernoulli"`` or ``"uout"``, active unless the position
  builds no dropout (``"none"``, ``"remove"``).
- ``dropout_rate`` (Bernoulli) or ``uout_beta`` (Uout), each active only
  for its type.

Models are compiled with the paper's training recipe for their family
(`tuner.recipe`: torch's SGD with momentum 0.9 and coupled weight decay on
every parameter, step-decayed learning rate; PAPER.md, "Training recipe"),
with the epoch milestones scaled to the number of epochs actually run and
the learning rate scaled linearly with the batch size.
"""

import dataclasses
import numbers

import keras
import keras_tuner

import keras_vs
import zoo
from keras_vs import graph as graph_lib
from keras_vs import vocab
from tuner import recipe as recipe_lib
from tuner import training as training_lib
from tuner.recipe import RECIPES, Recipe  # noqa: F401  (their old home)

# The one vocabulary (keras_vs.vocab); the old names stay as aliases.
ZOO_POSITIONS = vocab.DROPOUT_POSITIONS
MODEL_POSITIONS = vocab.MODEL_POSITIONS
DROPOUT_TYPES = vocab.DROPOUT_TYPES
DEFAULT_RATES = (0.1, 0.3, 0.5)
DEFAULT_BETAS = (0.1, 0.3, 0.5)
# Positions that build no dropout layer: no type, rate or beta to choose.
_NO_DROPOUT = ("none", "remove")
_REFERENCE_BATCH = recipe_lib.REFERENCE_BATCH


def _choices(name, values, check, allowed):
    try:
        values = tuple(values)
    except TypeError:
        values = None
    if not values:
        raise ValueError(f"Expected a non-empty sequence for {name}. Received: {name}={values!r}")
    for v in values:
        if not check(v):
            raise ValueError(
                f"Invalid value {v!r} in {name}. Expected {allowed}. Received: {name}={values!r}"
            )
    if len(set(values)) != len(values):
        raise ValueError(f"Duplicate values in {name}. Received: {name}={values!r}")
    return values


def _is_number(v, low, high, high_open):
    return (
        not isinstance(v, bool)
        and isinstance(v, numbers.Real)
        and low <= v
        and (v < high if high_open else v <= high)
    )


# Builder arguments the search itself sets.
_SEARCH_SET = ("num_classes", "input_shape", "dropout_rate", "dropout_position", "dropout_type")


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


def _positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"Expected {name} to be a positive integer. Received: {name}={value!r}")
    return int(value)


class DropoutHyperModel(keras_tuner.HyperModel):
    """Searches dropout position, type and rate (or Uout's beta) of a network.

    Args:
        model: A zoo name (e.g. ``"wrn-10-1"``, see `zoo.list_models`) or a
            user's Functional/Sequential `keras.Model`. A user's model is only
            read: every trial trains a rewritten copy that starts from the
            model's current weights.
        num_classes: Classes of the zoo network (ignored for a user model).
        input_shape: Input shape of the zoo network (ignored for a user model).
        positions: Positions to search; defaults to `ZOO_POSITIONS` for a zoo
            network and `MODEL_POSITIONS` for a user model.
        types: Dropout types to search, from `DROPOUT_TYPES`.
        rates: Bernoulli rates to search, each in (0, 1).
        betas: Uout betas to search, each in (0, 1].
        epochs: Epochs each trial trains (scales the schedule's milestones).
        steps_per_epoch: Optimizer steps per epoch.
        batch_size: Batch size; the learning rate is scaled by it / 128.
        learning_rate: Initial learning rate at batch size 128 (recipe's
            when None).
        weight_decay: torch-style coupled weight decay on every parameter
            (recipe's when None; see `tuner.recipe.TorchSGD`).
        from_logits: Whether the model outputs logits, for the default loss
            (None: zoo networks end in a softmax; a user model that is not
            compiled is read from its output layer).
        model_options: Extra keyword arguments of the zoo builder, e.g.
            ``{"width": 4}`` to search a WRN-10-4 from ``"wrn-10-1"``
            (not for a user model; the dropout arguments, ``num_classes``
            and ``input_shape`` are set by the search).
        loss: Loss of every trial (a Keras loss name, object or function).
            Default: a compiled user model's own; otherwise sparse categorical
            cross-entropy (see `tuner.training`).
        optimizer: ``"recipe"`` (the paper's SGD recipe), a Keras optimizer
            name or object (a fresh copy per trial; ``learning_rate`` and
            ``weight_decay`` override its own). Default: a compiled user
            model's own optimizer, else the recipe.

    The model is compiled in `build`, so the hypermodel also works inside
    keras-tuner's own tuners, e.g. ``keras_tuner.RandomSearch(hypermodel,
    objective="val_accuracy", max_trials=4)``.

    Example:

    >>> import keras_tuner
    >>> hypermodel = DropoutHyperModel("wrn-10-1", input_shape=(8, 8, 1), epochs=1,
    ...                                steps_per_epoch=1)
    >>> hp = keras_tuner.HyperParameters()
    >>> hypermodel.build(hp).name, hp.values
    ('wrn-10-1', {'dropout_position': 'none'})
    """

    def __init__(
        self,
        model,
        num_classes=10,
        input_shape=None,
        positions=None,
        types=DROPOUT_TYPES,
        rates=DEFAULT_RATES,
        betas=DEFAULT_BETAS,
        epochs=1,
        steps_per_epoch=1,
        batch_size=_REFERENCE_BATCH,
        learning_rate=None,
        weight_decay=None,
        from_logits=None,
        model_options=None,
        loss=None,
        optimizer=None,
    ):
        super().__init__(name="dropout")
        self.model_options = _model_options(model, model_options)
        if isinstance(model, str):
            self.family = zoo.entry(model).family  # unknown names raise here
            self.user_model = None
            self.zoo_name = model
            allowed = ZOO_POSITIONS
        elif isinstance(model, keras.Model):
            if not model.built or not getattr(model, "inputs", None):
                raise ValueError(
                    "Expected a built Functional or Sequential model (with known inputs). "
                    f"Received: model={model!r}"
                )
            self.family = None
            self.user_model = model
            self.zoo_name = None
            allowed = MODEL_POSITIONS
        else:
            raise ValueError(
                "Expected a zoo model name or a keras.Model. "
                f"Received: model={model!r} of type {type(model).__name__}"
            )
        self.positions = _choices(
            "positions", allowed if positions is None else positions, lambda p: p in allowed,
            f"each of {', '.join(allowed)}",
        )
        self.types = _choices("types", types, lambda t: t in DROPOUT_TYPES,
                              f"each of {', '.join(DROPOUT_TYPES)}")
        self.rates = _choices("rates", rates, lambda r: _is_number(r, 0.0, 1.0, True) and r > 0,
                              "numbers in (0, 1)")
        self.betas = _choices("betas", betas, lambda b: _is_number(b, 0.0, 1.0, False) and b > 0,
                              "numbers in (0, 1]")
        self.rates = tuple(float(r) for r in self.rates)
        self.betas = tuple(float(b) for b in self.betas)
        self.num_classes = _positive_int("num_classes", num_classes)
        self.input_shape = None if input_shape is None else tuple(input_shape)
        self.epochs = _positive_int("epochs", epochs)
        self.steps_per_epoch = _positive_int("steps_per_epoch", steps_per_epoch)
        self.batch_size = _positive_int("batch_size", batch_size)
        recipe = RECIPES.get(self.family, RECIPES["preresnet"])
        for name, value in (("learning_rate", learning_rate), ("weight_decay", weight_decay)):
            if value is not None and not _is_number(value, 0.0, float("inf"), True):
                raise ValueError(f"Expected {name} to be a number >= 0. Received: {name}={value!r}")
        self.recipe = dataclasses.replace(
            recipe,
            learning_rate=recipe.learning_rate if learning_rate is None else float(learning_rate),
            weight_decay=recipe.weight_decay if weight_decay is None else float(weight_decay),
        )
        self.from_logits = from_logits
        self.training = training_lib.TrainingSetup.resolve(
            self.user_model, loss=loss, optimizer=optimizer, from_logits=from_logits,
            learning_rate=learning_rate, weight_decay=weight_decay,
        )

    # -- search space ------------------------------------------------------
    def declare_hyperparameters(self, hp):
        """Declares the conditional search space on ``hp``.

        Returns:
            ``(position, type, value)`` for the values in ``hp``: ``type`` and
            ``value`` (rate or beta) are None when the position builds no
            dropout.
        """
        position = hp.Choice("dropout_position", list(self.positions))
        typed = [p for p in self.positions if p not in _NO_DROPOUT]
        dropout_type = value = None
        if typed:
            with hp.conditional_scope("dropout_position", typed):
                dropout_type = hp.Choice("dropout_type", list(self.types))
                if "bernoulli" in self.types:
                    with hp.conditional_scope("dropout_type", ["bernoulli"]):
                        rate = hp.Choice("dropout_rate", list(self.rates), ordered=True)
                if "uout" in self.types:
                    with hp.conditional_scope("dropout_type", ["uout"]):
                        beta = hp.Choice("uout_beta", list(self.betas), ordered=True)
            if position in typed:
                value = rate if dropout_type == "bernoulli" else beta
        if position in _NO_DROPOUT:
            dropout_type = None
        return position, dropout_type, value

    def grid_points(self):
        """Every point of the search space, positions first.

        The first point of each position comes before the second of any, and
        so on: a grid search cut short by ``max_trials`` still compares
        positions (e.g. ``original``, ``after_bn``, ``head``, ``remove`` at
        the first rate) before it tries more rates.

        Returns:
            A list of dicts of the active hyperparameter values.
        """
        per_position = []
        for position in self.positions:
            if position in _NO_DROPOUT:
                per_position.append([{"dropout_position": position}])
                continue
            points = []
            for dropout_type in self.types:
                name, values = (
                    ("dropout_rate", self.rates) if dropout_type == "bernoulli" else ("uout_beta", self.betas)
                )
                points += [
                    {"dropout_position": position, "dropout_type": dropout_type, name: v} for v in values
                ]
            per_position.append(points)
        longest = max(len(points) for points in per_position)
        return [points[k] for k in range(longest) for points in per_position if k < len(points)]

    # -- models --------------------------------------------------------------
    def build(self, hp):
        """Builds and compiles the network for the values in ``hp``."""
        position, dropout_type, value = self.declare_hyperparameters(hp)
        if self.user_model is None:
            model = zoo.get(
                self.zoo_name,
                num_classes=self.num_classes,
                input_shape=self.input_shape,
                dropout_rate=0.0 if value is None else value,
                dropout_position=position,
                dropout_type=dropout_type or "bernoulli",
                **self.model_options,
            )
        else:
            model = with_dropout(self.user_model, position, dropout_type, value)
        return self.training.compile(model, self.optimizer)

    def learning_rate_schedule(self):
        """The recipe's step schedule over this run's steps (a float if it has no steps)."""
        return recipe_lib.learning_rate_schedule(
            self.recipe, self.epochs, self.steps_per_epoch, self.batch_size
        )

    def optimizer(self):
        """A new `tuner.recipe.TorchSGD`: the recipe's momentum, coupled decay and schedule."""
        return recipe_lib.optimizer(self.recipe, self.epochs, self.steps_per_epoch, self.batch_size)


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
        position: One of `MODEL_POSITIONS`.
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
    if position not in MODEL_POSITIONS:
        raise ValueError(
            f"Unknown position for a user model. Expected one of {', '.join(MODEL_POSITIONS)}. "
            f"Received: position={position!r}"
        )
    if position != "remove" and dropout_type not in (None,) + DROPOUT_TYPES:
        raise ValueError(
            f"Unknown dropout type. Expected one of {', '.join(DROPOUT_TYPES)}. "
            f"Received: dropout_type={dropout_type!r}"
        )
    if position == "original":
        base = model
    else:
        base = keras_vs.rewrite(model, position)
    if position == "remove" or dropout_type is None or not _dropout_layers(base):
        return base if base is not model else graph_lib.copy(model)
    targets = {id(layer) for layer in _dropout_layers(base)}

    def replace(layer):
        if id(layer) in targets:
            return _retyped(layer, dropout_type, value)
        return None

    return graph_lib.copy(base, replace=replace)
