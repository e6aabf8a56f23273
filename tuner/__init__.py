"""Hyperparameter search over dropout position, type and rate with keras-tuner.

`search` runs a keras-tuner search (random, Bayesian, Hyperband or grid)
over a zoo network or a user's model and records, for every trial, the
variance shift of its BN layers and its train/inference inconsistency next
to its validation accuracy. ``keras-vs tune`` is the same on the command line.

Example:

>>> import tuner
>>> sorted(tuner.ORACLES)
['bayesian', 'grid', 'hyperband', 'random']
"""

from tuner.distribute import STRATEGIES, get_strategy
from tuner.hypermodel import (
    DROPOUT_TYPES,
    MODEL_POSITIONS,
    RECIPES,
    ZOO_POSITIONS,
    DropoutHyperModel,
    Recipe,
    with_dropout,
)
from tuner.recipe import TorchSGD
from tuner.driver import (
    DEFAULT_DIRECTORY,
    ORACLES,
    DropoutTuner,
    SearchResult,
    format_table,
    search,
)

__all__ = [
    "DEFAULT_DIRECTORY",
    "DROPOUT_TYPES",
    "MODEL_POSITIONS",
    "ORACLES",
    "RECIPES",
    "STRATEGIES",
    "ZOO_POSITIONS",
    "DropoutHyperModel",
    "DropoutTuner",
    "Recipe",
    "SearchResult",
    "TorchSGD",
    "format_table",
    "get_strategy",
    "search",
    "with_dropout",
]
