"""The dropout plan: which dropout a zoo model gets and where, decided once
for every family, with ``rate`` (Bernoulli) and ``beta`` (Uout) kept apart."""

import dataclasses
import os
import sys
import warnings

import keras

import keras_vs
from keras_vs import vocab
from zoo._checks import check_choice, check_real

__all__ = ["DropoutPlan"]

_ZOO_DIR = os.path.dirname(os.path.abspath(__file__))


def _in_zoo(filename):
    """Whether ``filename`` is a module of the zoo package."""
    return os.path.dirname(os.path.abspath(filename)) == _ZOO_DIR


def _stacklevel_outside_zoo():
    """The ``stacklevel`` that points a warning at the first caller outside the zoo."""
    # Level 1 is the function that warns (our caller); count outwards from it.
    level, frame = 1, sys._getframe(1)
    while frame is not None and _in_zoo(frame.f_code.co_filename):
        level, frame = level + 1, frame.f_back
    return level


def _uout_beta(builder, dropout_rate, beta):
    """Uout's beta from ``beta``, or from a deprecated ``dropout_rate``."""
    beta = check_real(builder, "beta", beta, 0.0, 1.0, what=" (Uout's noise)")
    rate = check_real(builder, "dropout_rate", dropout_rate, 0.0, 1.0, what=" (Uout's beta)")
    if rate == 0.0:
        return beta
    if beta > 0.0:
        raise ValueError(
            f"Invalid arguments for {builder}: Uout takes `beta`; `dropout_rate` is "
            "the Bernoulli drop rate. Pass only beta. "
            f"Received: dropout_rate={dropout_rate!r}, beta={beta!r}"
        )
    warnings.warn(
        f"{builder}: dropout_rate with dropout_type='uout' is deprecated; pass "
        f"beta={dropout_rate!r} instead (dropout_rate is the Bernoulli drop rate).",
        DeprecationWarning,
        stacklevel=_stacklevel_outside_zoo(),
    )
    return rate


@dataclasses.dataclass(frozen=True)
class DropoutPlan:
    """Where a model gets dropout, and which, decided once for every family.

    Builders call `apply` at each place the paper may put dropout, naming
    the place: ``"before_bn"`` right before the last BN of a block,
    ``"before_conv"`` right before the last conv of a block, ``"after_conv"``
    right after the last conv of a block, before the merge (residual add or
    concatenation), ``"head"`` after global pooling. Only the place matching
    ``position`` gets a layer.

    A rate (or beta) of 0 builds no dropout layer at all, whatever the
    position: the model is then the same graph as with ``position="none"``,
    so a search over rates can include 0 without a special case.

    Attributes:
        position: One of `keras_vs.vocab.DROPOUT_POSITIONS`.
        dropout_type: One of `keras_vs.vocab.DROPOUT_TYPES`.
        rate: Bernoulli drop rate in [0, 1) (0 for Uout).
        beta: Uout's noise in [0, 1] (0 for Bernoulli dropout).
    """

    position: str = "none"
    dropout_type: str = "bernoulli"
    rate: float = 0.0
    beta: float = 0.0

    @classmethod
    def from_arguments(cls, builder, dropout_rate, dropout_position, dropout_type, beta=0.0):
        """Validates a builder's dropout arguments and returns the plan.

        Args:
            builder: Name of the calling builder, for error messages.
            dropout_rate: Bernoulli drop rate, in [0, 1). With
                ``dropout_type="uout"`` a positive value is taken as beta,
                with a DeprecationWarning.
            dropout_position: One of `keras_vs.vocab.DROPOUT_POSITIONS`.
            dropout_type: One of `keras_vs.vocab.DROPOUT_TYPES`.
            beta: Uout's noise, in [0, 1]; only with ``dropout_type="uout"``.

        Returns:
            A `DropoutPlan`.

        Raises:
            ValueError: A value is out of range, an amount belongs to the
                other dropout type, or a positive amount comes with
                ``dropout_position="none"`` (it would be silently ignored).
        """
        positions = vocab.DROPOUT_POSITIONS
        position = check_choice(builder, "dropout_position", dropout_position, positions)
        dropout_type = check_choice(builder, "dropout_type", dropout_type, vocab.DROPOUT_TYPES)
        if dropout_type == "uout":
            plan = cls(position, dropout_type, beta=_uout_beta(builder, dropout_rate, beta))
            arg = "beta"
        else:
            rate = check_real(builder, "dropout_rate", dropout_rate, 0.0, 1.0, high_open=True)
            if check_real(builder, "beta", beta, 0.0, 1.0) > 0.0:
                raise ValueError(
                    f"Invalid arguments for {builder}: `beta` is Uout's noise; pass "
                    "dropout_type='uout' with it, or dropout_rate for Bernoulli dropout. "
                    f"Received: beta={beta!r}, dropout_type={dropout_type!r}"
                )
            plan, arg = cls(position, dropout_type, rate=rate), "dropout_rate"
        if position == "none" and plan.amount > 0:
            raise ValueError(
                f"Invalid arguments for {builder}: dropout_position='none' builds "
                f"no dropout layer, so a positive {arg} would be ignored. Pass "
                f"{arg}=0.0 or choose one of {vocab.DROPOUT_POSITIONS[1:]}. Received: "
                f"{arg}={plan.amount!r}, dropout_position={position!r}"
            )
        return plan

    @property
    def amount(self):
        """The rate (Bernoulli) or beta (Uout) of the planned dropout."""
        return self.beta if self.dropout_type == "uout" else self.rate

    @property
    def active(self):
        """Whether the plan builds any dropout layer."""
        return self.position != "none" and self.amount > 0

    def apply(self, x, position, prefix):
        """Returns ``x`` through a new dropout layer named ``{prefix}_dropout``
        if ``position`` is the planned one, otherwise ``x`` unchanged."""
        if position not in vocab.DROPOUT_POSITIONS[1:]:
            raise ValueError(f"Unknown dropout position. Received: position={position!r}")
        if not self.active or position != self.position:
            return x
        name = f"{prefix}_dropout"
        if self.dropout_type == "uout":
            return keras_vs.Uout(beta=self.beta, name=name)(x)
        return keras.layers.Dropout(self.rate, name=name)(x)
