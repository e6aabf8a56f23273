"""Hyperparameter search over dropout position, type and rate with keras-tuner.

`search` runs a keras-tuner search (random, Bayesian, Hyperband or grid)
over a zoo network or a user's model and records, for every trial, the
variance shift of its BN layers and its train/inference inconsistency next
to its validation accuracy. ``keras-vs tune`` is the same on the command line.

Example:

>>> import tuner
>>> tuner.RunConfig(oracle="grid", max_trials=4).max_trials
4
"""

import importlib

# Where each public name lives. Names are imported on first use, so that
# `keras-vs --help`, which imports `tuner.cli`, starts without Keras.
_EXPORTS = {
    "tuner.config": ("DEFAULT_DIRECTORY", "OBJECTIVES", "DataConfig", "ProjectConfig", "RunConfig",
                     "TrainingConfig"),
    "tuner.distribute": ("get_strategy",),
    "tuner.driver": ("search",),
    "tuner.dropout_tuner": ("DropoutTuner",),
    "tuner.hypermodel": ("DropoutHyperModel", "with_dropout"),
    "tuner.recipe": ("RECIPES", "Recipe", "TorchSGD"),
    "tuner.results": ("SearchResult", "format_table"),
    "tuner.space": ("SearchSpace",),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}
_SUBMODULES = (
    "cli", "config", "data", "deprecation", "distribute", "driver", "dropout_tuner", "hypermodel", "identity",
    "oracles", "project", "recipe", "results", "space", "tfds", "training",
)


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"tuner.{name}")
    if name not in _HOME:
        raise AttributeError(f"module 'tuner' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOME[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_HOME))


__all__ = [
    "DEFAULT_DIRECTORY",
    "OBJECTIVES",
    "RECIPES",
    "DataConfig",
    "DropoutHyperModel",
    "DropoutTuner",
    "ProjectConfig",
    "Recipe",
    "RunConfig",
    "SearchResult",
    "SearchSpace",
    "TorchSGD",
    "TrainingConfig",
    "format_table",
    "get_strategy",
    "search",
    "with_dropout",
]
