"""`SearchSpace`: the dropout positions, types, rates and betas a search chooses from.

As keras-tuner hyperparameters the space is conditional, so an oracle never
samples a value that the model would ignore:

- ``dropout_position``: for a zoo network one of `keras_vs.vocab.DROPOUT_POSITIONS`;
  for a user's own model one of `keras_vs.vocab.MODEL_POSITIONS` (``"original"``
  keeps the dropouts where the model has them, the others are
  `keras_vs.rewrite` policies).
- ``dropout_type``: one of `keras_vs.vocab.DROPOUT_TYPES`, active unless the
  position builds no dropout (`keras_vs.vocab.NO_DROPOUT_POSITIONS`).
- ``dropout_rate`` (Bernoulli's drop rate) or ``uout_beta`` (Uout's noise
  beta), each active only for its type.

Example:

>>> space = SearchSpace(positions=("none", "head"), types=("uout",), betas=(0.5,))
>>> space.grid_points()
[{'dropout_position': 'none'}, {'dropout_position': 'head', 'dropout_type': 'uout', 'uout_beta': 0.5}]
"""

import dataclasses
import numbers

from keras_vs import vocab

__all__ = [
    "AMOUNT",
    "BETA",
    "DEFAULT_BETAS",
    "DEFAULT_RATES",
    "POSITION",
    "RATE",
    "TYPE",
    "SearchSpace",
    "point",
    "point_text",
]

# Hyperparameter names, as keras-tuner records them in every trial.
POSITION = "dropout_position"
TYPE = "dropout_type"
RATE = "dropout_rate"
BETA = "uout_beta"
# The hyperparameter holding each dropout type's amount: a Bernoulli layer
# drops with probability `rate`, a Uout layer adds uniform noise of width
# `beta`; the two never share a name.
AMOUNT = dict(zip(vocab.DROPOUT_TYPES, (RATE, BETA)))
# The default search (`tuner.search`, ``keras-vs tune``): Bernoulli rates 0.2
# and 0.5, Uout beta 0.5.
DEFAULT_RATES = (0.2, 0.5)
DEFAULT_BETAS = (0.5,)
_ALL_POSITIONS = tuple(dict.fromkeys(vocab.DROPOUT_POSITIONS + vocab.MODEL_POSITIONS))


def _choices(name, values, check, allowed):
    try:
        values = tuple(values)
    except TypeError:
        values = None
    if not values:
        raise ValueError(f"Expected a non-empty sequence for {name}. Received: {name}={values!r}")
    for v in values:
        if not check(v):
            raise ValueError(f"Invalid value {v!r} in {name}. Expected {allowed}. Received: {name}={values!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"Duplicate values in {name}. Received: {name}={values!r}")
    return values


def _in_unit_interval(v, closed):
    """Whether ``v`` is a number in (0, 1), or (0, 1] when ``closed``."""
    return (
        not isinstance(v, bool) and isinstance(v, numbers.Real) and 0 < v and (v <= 1 if closed else v < 1)
    )


def point(values):
    """The dropout a trial's hyperparameter values choose.

    Args:
        values: ``trial.hyperparameters.values`` (or a grid point).

    Returns:
        ``(position, type, amount)``: the amount is the rate (Bernoulli) or
        beta (Uout); type and amount are None where the position builds no
        dropout.
    """
    position = values.get(POSITION)
    if position in vocab.NO_DROPOUT_POSITIONS:
        return position, None, None
    dropout_type = values.get(TYPE)
    return position, dropout_type, values.get(AMOUNT.get(dropout_type))


def point_text(values):
    """A point in a few words.

    Args:
        values: Hyperparameter values (see `point`).

    Returns:
        E.g. ``"head uout 0.5"``, or ``"none"``.
    """
    position, dropout_type, amount = point(values)
    return position + (f" {dropout_type} {amount:g}" if amount is not None else "")


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """The dropout positions, types, rates and betas a search chooses from.

    Attributes:
        positions: Positions to search; None: every position of the model's
            kind (`keras_vs.vocab.DROPOUT_POSITIONS` for a zoo network,
            `keras_vs.vocab.MODEL_POSITIONS` for a user's model).
        types: Dropout types to search, from `keras_vs.vocab.DROPOUT_TYPES`.
        rates: Bernoulli drop rates to search, each in (0, 1).
        betas: Uout noise betas to search, each in (0, 1].

    The defaults are the default search's (`tuner.search`, ``keras-vs tune``).
    """

    positions: object = None
    types: tuple = vocab.DROPOUT_TYPES
    rates: tuple = DEFAULT_RATES
    betas: tuple = DEFAULT_BETAS

    def __post_init__(self):
        # Frozen: the checked, normalised values are set through object.__setattr__.
        if self.positions is not None:
            positions = _choices("positions", self.positions, lambda p: p in _ALL_POSITIONS,
                                 f"each of {', '.join(_ALL_POSITIONS)}")
            object.__setattr__(self, "positions", positions)
        types = _choices("types", self.types, lambda t: t in vocab.DROPOUT_TYPES,
                         f"each of {', '.join(vocab.DROPOUT_TYPES)}")
        rates = _choices("rates", self.rates, lambda r: _in_unit_interval(r, closed=False), "numbers in (0, 1)")
        betas = _choices("betas", self.betas, lambda b: _in_unit_interval(b, closed=True), "numbers in (0, 1]")
        object.__setattr__(self, "types", types)
        object.__setattr__(self, "rates", tuple(float(r) for r in rates))
        object.__setattr__(self, "betas", tuple(float(b) for b in betas))

    def for_model(self, allowed):
        """This space with its positions checked against (or, if None, set to) ``allowed``.

        Args:
            allowed: The positions of the model's kind.

        Returns:
            A `SearchSpace` whose ``positions`` is a tuple.
        """
        positions = _choices("positions", allowed if self.positions is None else self.positions,
                             lambda p: p in allowed, f"each of {', '.join(allowed)}")
        return dataclasses.replace(self, positions=positions)

    def declare(self, hp):
        """Declares the conditional space on a `keras_tuner.HyperParameters`.

        Returns:
            ``(position, type, amount)`` for the values in ``hp``: type and
            amount (rate or beta) are None when the position builds no
            dropout.
        """
        position = hp.Choice(POSITION, list(self.positions))
        typed = [p for p in self.positions if p not in vocab.NO_DROPOUT_POSITIONS]
        if not typed:
            return position, None, None
        amounts = {}
        with hp.conditional_scope(POSITION, typed):
            dropout_type = hp.Choice(TYPE, list(self.types))
            # In vocabulary order, whatever the order of `types`: the order of
            # declaration is the order in which an oracle samples.
            for each in (t for t in vocab.DROPOUT_TYPES if t in self.types):
                with hp.conditional_scope(TYPE, [each]):
                    amounts[each] = hp.Choice(AMOUNT[each], list(self._amounts(each)), ordered=True)
        if position not in typed:
            return position, None, None
        return position, dropout_type, amounts[dropout_type]

    def grid_points(self):
        """Every point of the space, positions first.

        The first point of each position comes before the second of any, and
        so on: a grid search cut short by ``max_trials`` still compares
        positions (e.g. ``original``, ``after_bn``, ``head``, ``remove`` at
        the first rate) before it tries more rates.

        Returns:
            A list of dicts of the active hyperparameter values.
        """
        per_position = []
        for position in self.positions:
            if position in vocab.NO_DROPOUT_POSITIONS:
                per_position.append([{POSITION: position}])
                continue
            per_position.append([
                {POSITION: position, TYPE: dropout_type, AMOUNT[dropout_type]: amount}
                for dropout_type in self.types
                for amount in self._amounts(dropout_type)
            ])
        longest = max(len(points) for points in per_position)
        return [points[k] for k in range(longest) for points in per_position if k < len(points)]

    def _amounts(self, dropout_type):
        return self.rates if AMOUNT[dropout_type] == RATE else self.betas
