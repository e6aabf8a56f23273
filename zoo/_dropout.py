"""The dropout plan: which dropout a zoo model gets and where, one frozen
record for every family, with ``rate`` (Bernoulli) and ``beta`` (Uout) kept
apart; and the one mapping from the deprecated flat keywords to it."""

import dataclasses
import os
import sys
import warnings

import keras

import keras_vs
from keras_vs import vocab
from keras_vs.deprecation import KerasVsDeprecationWarning
from zoo._checks import check_choice, check_real

__all__ = ["DropoutPlan", "resolve"]

_ZOO_DIR = os.path.dirname(os.path.abspath(__file__))
# The deprecated flat keywords of the builders and `zoo.get`, by plan field.
FLAT_KEYWORDS = {
    "dropout_rate": "rate",
    "dropout_position": "position",
    "dropout_type": "type",
    "beta": "beta",
}


@dataclasses.dataclass(frozen=True)
class DropoutPlan:
    """Where a zoo model gets dropout, and which; every family takes it as ``dropout=``.

    Builders apply it at each place the paper may put dropout: ``"before_bn"``
    right before the last BN of a block, ``"before_conv"`` right before the
    last conv of a block, ``"after_conv"`` right after the last conv of a
    block, before the merge (residual add or concatenation), ``"head"`` after
    global pooling. Only the place matching ``position`` gets a layer.

    A rate (or beta) of 0 builds no dropout layer at all, whatever the
    position: the model is then the same graph as with ``position="none"``,
    so a search over rates can include 0 without a special case.

    Attributes:
        rate: Bernoulli drop rate (`keras.layers.Dropout`) in [0, 1); 0 for Uout.
        position: One of `keras_vs.vocab.DROPOUT_POSITIONS`.
        type: One of `keras_vs.vocab.DROPOUT_TYPES`: ``"bernoulli"`` (takes
            ``rate``) or ``"uout"`` (`keras_vs.Uout`, takes ``beta``).
        beta: Uout's noise in [0, 1]; 0 for Bernoulli dropout.

    Example:

    >>> import zoo
    >>> plan = zoo.DropoutPlan(0.3, "before_bn")
    >>> zoo.get("wrn-10-1", dropout=plan).get_layer("stage1_block1_dropout").rate
    0.3
    >>> uout = zoo.DropoutPlan(position="head", type="uout", beta=0.1)
    """

    rate: float = 0.0
    position: str = "none"
    type: str = "bernoulli"
    beta: float = 0.0

    def __post_init__(self):
        me = "DropoutPlan"
        check_choice(me, "position", self.position, vocab.DROPOUT_POSITIONS)
        check_choice(me, "type", self.type, vocab.DROPOUT_TYPES)
        # Plain floats, so that equal plans compare and print equal.
        rate = check_real(me, "rate", self.rate, 0.0, 1.0, high_open=True)
        object.__setattr__(self, "rate", rate)
        object.__setattr__(self, "beta", check_real(me, "beta", self.beta, 0.0, 1.0))
        other = "beta" if self.type == "bernoulli" else "rate"
        if getattr(self, other) > 0.0:
            takes = "rate" if other == "beta" else "beta"
            raise ValueError(
                f"Invalid DropoutPlan: type={self.type!r} takes `{takes}`; `rate` is the "
                "Bernoulli drop rate, `beta` Uout's noise. "
                f"Received: {other}={getattr(self, other)!r}, type={self.type!r}"
            )
        if self.position == "none" and self.amount > 0:
            arg = "beta" if self.type == "uout" else "rate"
            raise ValueError(
                "Invalid DropoutPlan: position='none' builds no dropout layer, so a positive "
                f"{arg} would be ignored. Pass {arg}=0.0 or choose one of "
                f"{vocab.DROPOUT_POSITIONS[1:]}. Received: {arg}={self.amount!r}, position='none'"
            )

    @property
    def amount(self):
        """The rate (Bernoulli) or beta (Uout) of the planned dropout."""
        return self.beta if self.type == "uout" else self.rate

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
        if self.type == "uout":
            return keras_vs.Uout(beta=self.beta, name=name)(x)
        return keras.layers.Dropout(self.rate, name=name)(x)


def resolve(builder, dropout, flat):
    """The plan a builder was given: ``dropout``, or the deprecated flat keywords.

    Args:
        builder: Name of the calling builder, for messages.
        dropout: A `DropoutPlan`, or None (no dropout).
        flat: The other keyword arguments the builder received; only the
            deprecated `FLAT_KEYWORDS` are allowed there.

    Returns:
        A `DropoutPlan`.

    Raises:
        TypeError: ``flat`` holds a keyword that is not a dropout keyword.
        ValueError: ``dropout`` is not a plan, or comes with flat keywords.
    """
    unknown = [k for k in flat if k not in FLAT_KEYWORDS]
    if unknown:
        raise TypeError(f"{builder}() got an unexpected keyword argument {unknown[0]!r}")
    received = ", ".join(f"{k}={v!r}" for k, v in flat.items())
    if dropout is not None and flat:
        raise ValueError(
            f"Invalid arguments for {builder}: pass dropout=zoo.DropoutPlan(...) or the "
            f"deprecated flat keywords, not both. Received: dropout={dropout!r}, {received}"
        )
    if flat:
        dropout = _from_flat(builder, flat, received)
    if dropout is None:
        return DropoutPlan()
    if not isinstance(dropout, DropoutPlan):
        raise ValueError(
            f"Invalid value received for argument `dropout` of {builder}. Expected a "
            f"zoo.DropoutPlan or None. Received: dropout={dropout!r}"
        )
    return dropout


def _from_flat(builder, flat, received):
    """The plan of the deprecated flat keywords, with a DeprecationWarning."""
    fields = {FLAT_KEYWORDS[k]: v for k, v in flat.items()}
    if fields.get("type") == "uout" and fields.get("rate", 0.0) != 0.0 and not fields.get("beta"):
        # An older spelling still: Uout's beta given as dropout_rate.
        fields["beta"] = fields.pop("rate")
    order = [f.name for f in dataclasses.fields(DropoutPlan) if f.name in fields]
    spelled = ", ".join(f"{k}={fields[k]!r}" for k in order)
    warnings.warn(
        f"{builder}: the flat dropout keywords are deprecated; pass "
        f"dropout=zoo.DropoutPlan({spelled}) instead. Received: {received}",
        KerasVsDeprecationWarning,
        stacklevel=_stacklevel_outside_zoo(),
    )
    return DropoutPlan(**fields)


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
