"""The paper's training recipes, trained the way the reference code trains.

The paper defers to pytorch-classification (``cifar.py``, ``TRAINING.md``):
``torch.optim.SGD(params, lr, momentum=0.9, weight_decay=wd)`` over every
parameter (conv kernels, BN gamma and beta, classifier kernel and bias), the
learning rate multiplied by ``gamma`` at the start of each milestone epoch.

Keras' own SGD differs from torch's in two ways that change the numbers:

- its ``weight_decay`` is decoupled (``w -= lr * wd * w`` outside the
  momentum), about 10x weaker at momentum 0.9 than torch's coupled decay,
  which adds ``wd * w`` to the gradient (the gradient of an L2 term
  ``wd / 2 * ||w||^2``) and so passes it through the momentum buffer;
- its velocity holds ``lr * g`` (``v = m * v - lr * g; w += v``) while
  torch's buffer holds ``g`` (``b = m * b + g; w -= lr * b``): the same
  while the rate is constant, but at a milestone torch's whole buffer moves
  at the new rate at once, Keras' only gradually.

`TorchSGD` is torch's update: the coupled L2 term is applied in the
optimizer, to every trainable variable, and Keras' decoupled
``weight_decay`` stays off. The reported training loss is the data loss
alone, as torch's.

Example:

>>> opt = optimizer(RECIPES["wide_resnet"], epochs=200, steps_per_epoch=391)
>>> opt.coupled_weight_decay, opt.weight_decay
(0.0005, None)
"""

import dataclasses
import fractions
import numbers

import keras
from keras import ops

from keras_vs import checks
from keras_vs import graph as graph_lib

__all__ = [
    "RECIPES",
    "REFERENCE_BATCH",
    "Recipe",
    "TorchSGD",
    "learning_rate_schedule",
    "milestone_steps",
    "optimizer",
]

REFERENCE_BATCH = 128  # the batch size at which a recipe's learning rate is given


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A training recipe: torch-style SGD with a step learning-rate schedule.

    Attributes:
        learning_rate: Initial learning rate at batch size 128.
        weight_decay: torch SGD's (coupled) weight decay: ``wd * w`` is added
            to the gradient of every parameter before the momentum.
        milestones: Epochs of the reference run (0-based, as
            ``adjust_learning_rate``) from which the rate is multiplied by
            ``gamma``; scaled to the epochs actually run.
        gamma: Decay factor at each milestone.
        epochs: Epochs of the reference run.
        momentum: SGD momentum (dampening 0, no Nesterov).
    """

    learning_rate: float
    weight_decay: float
    milestones: tuple
    gamma: float
    epochs: int
    momentum: float = 0.9


# pytorch-classification's TRAINING.md commands (--schedule, --gamma, --wd,
# --epochs; lr 0.1 and momentum 0.9 are cifar.py's defaults).
RECIPES = {
    "preresnet": Recipe(0.1, 1e-4, (81, 122), 0.1, 164),
    "resnext": Recipe(0.1, 5e-4, (150, 225), 0.1, 300),
    "wide_resnet": Recipe(0.1, 5e-4, (60, 120, 160), 0.2, 200),
    "densenet": Recipe(0.1, 1e-4, (150, 225), 0.1, 300),
}


def milestone_steps(recipe, epochs, steps_per_epoch):
    """First optimizer step (0-based) of each decayed learning rate.

    Milestones are scaled from the reference run's epochs to ``epochs``
    and rounded to whole steps; run at the reference length, milestone
    epoch ``e`` starts at step ``e * steps_per_epoch``, as torch's.

    Example:

    >>> milestone_steps(RECIPES["preresnet"], epochs=164, steps_per_epoch=391)
    [31671, 47702]
    """
    epochs = checks.integer("epochs", epochs)
    steps_per_epoch = checks.integer("steps_per_epoch", steps_per_epoch)
    total = epochs * steps_per_epoch
    # Exact fractions: 81 / 164 * (164 * n) must land on 81 * n, not beside it.
    return [round(fractions.Fraction(m * total, recipe.epochs)) for m in recipe.milestones]


def learning_rate_schedule(recipe, epochs, steps_per_epoch, batch_size=REFERENCE_BATCH):
    """The recipe's step schedule over a run (a float if no milestone falls in it).

    The rate is scaled linearly from batch size 128 to ``batch_size``.
    """
    batch_size = checks.integer("batch_size", batch_size)
    lr = recipe.learning_rate * batch_size / REFERENCE_BATCH
    total = epochs * steps_per_epoch
    # Step k (0-based) uses the decayed rate once k >= its milestone step, as
    # torch's adjust_learning_rate; PiecewiseConstantDecay switches after each
    # boundary, hence the -1.
    starts = sorted(set(milestone_steps(recipe, epochs, steps_per_epoch)))
    boundaries = [b - 1 for b in starts if 1 <= b < total]
    if not boundaries:
        return lr
    values = [lr * recipe.gamma**i for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)


def optimizer(recipe, epochs, steps_per_epoch, batch_size=REFERENCE_BATCH):
    """A new `TorchSGD` with the recipe's momentum, coupled decay and schedule."""
    return TorchSGD(
        learning_rate=learning_rate_schedule(recipe, epochs, steps_per_epoch, batch_size),
        momentum=float(recipe.momentum),
        coupled_weight_decay=float(recipe.weight_decay),
    )


@keras.saving.register_keras_serializable(package="tuner")
class TorchSGD(keras.optimizers.SGD):
    """``torch.optim.SGD`` (dampening 0, no Nesterov) as a Keras optimizer.

    Per trainable variable ``w`` with gradient ``g``, at learning rate ``lr``::

        g = g + coupled_weight_decay * w   # the gradient of wd/2 * ||w||^2
        b = momentum * b + g               # b starts at 0, so b = g first
        w = w - lr * b

    Keras' decoupled ``weight_decay`` is off (None); every trainable
    variable is decayed, as torch decays every parameter it is given.

    Args:
        learning_rate: A float or a `keras.optimizers.schedules` schedule.
        momentum: Momentum in [0, 1].
        coupled_weight_decay: torch's ``weight_decay`` (>= 0).
        name: Optimizer name.
        **kwargs: Other `keras.optimizers.Optimizer` arguments (clipping,
            EMA, ...), except ``weight_decay`` and ``nesterov``.
    """

    def __init__(
        self, learning_rate=0.01, momentum=0.0, coupled_weight_decay=0.0, name="torch_sgd", **kwargs
    ):
        for arg in ("weight_decay", "nesterov"):
            if kwargs.get(arg):
                raise ValueError(
                    f"TorchSGD has no {arg}: its weight decay is coupled_weight_decay. "
                    f"Received: {arg}={kwargs[arg]!r}"
                )
            kwargs.pop(arg, None)
        if (
            isinstance(coupled_weight_decay, bool)
            or not isinstance(coupled_weight_decay, numbers.Real)
            or not coupled_weight_decay >= 0
        ):
            raise ValueError(
                "Expected coupled_weight_decay to be a number >= 0. "
                f"Received: coupled_weight_decay={coupled_weight_decay!r}"
            )
        super().__init__(learning_rate=learning_rate, momentum=float(momentum), name=name, **kwargs)
        self.coupled_weight_decay = float(coupled_weight_decay)

    def update_step(self, gradient, variable, learning_rate):
        learning_rate = ops.cast(learning_rate, variable.dtype)
        gradient = ops.cast(gradient, variable.dtype)
        if self.coupled_weight_decay:
            gradient = ops.add(
                gradient, ops.multiply(ops.cast(self.coupled_weight_decay, variable.dtype), variable)
            )
        if self.momentum != 0:
            buffer = self.momentums[graph_lib.variable_slot(self, variable)]
            gradient = ops.add(ops.multiply(buffer, ops.cast(self.momentum, variable.dtype)), gradient)
            self.assign(buffer, gradient)
        self.assign_sub(variable, ops.multiply(gradient, learning_rate))

    def get_config(self):
        config = super().get_config()
        config.pop("nesterov", None)
        config.pop("weight_decay", None)
        config["coupled_weight_decay"] = self.coupled_weight_decay
        return config
