"""The settings of a search, as frozen records: training, data, how it runs, where it goes.

`tuner.search` takes four of them besides `tuner.SearchSpace` (the dropout
choices): `TrainingConfig` (how every trial trains), `DataConfig` (which
examples it reads), `RunConfig` (oracle, trials, seed, distribution,
callbacks, output) and `ProjectConfig` (the search folder). Each checks its
values when made, so a bad value fails before any data is read or model
built. This module imports no Keras: ``keras-vs tune`` builds these records
before it loads TensorFlow.

Example:

>>> TrainingConfig(epochs=2, optimizer="adam").batch_size
128
>>> RunConfig(oracle="random", max_trials=4).seed
0
"""

import dataclasses
import numbers
import os

from keras_vs import checks, vocab

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DEFAULT_DATASET",
    "DEFAULT_DIRECTORY",
    "DEFAULT_EPOCHS",
    "DEFAULT_MAX_TRIALS",
    "DEFAULT_MODEL",
    "DEFAULT_ORACLE",
    "DEFAULT_PROBE_SIZE",
    "OBJECTIVE",
    "OBJECTIVES",
    "RECALIBRATED_OBJECTIVE",
    "DataConfig",
    "ProjectConfig",
    "RunConfig",
    "TrainingConfig",
    "check_objective",
]

# What every oracle maximises, and what the results table ranks by, by default.
OBJECTIVE = "val_accuracy"
# The same accuracy after precise BN re-estimation on the training data
# (`keras_vs.recalibrate_bn`): every trial records both, either can rank.
RECALIBRATED_OBJECTIVE = OBJECTIVE + "_recalibrated"
OBJECTIVES = (OBJECTIVE, RECALIBRATED_OBJECTIVE)
# The default search (`tuner.search`, ``keras-vs tune`` without flags): the
# paper's experiment in miniature on the offline digits set. Every zoo
# position with Bernoulli rates 0.2 and 0.5 and Uout beta 0.5
# (`tuner.space.DEFAULT_RATES`, `tuner.space.DEFAULT_BETAS`), plus no
# dropout: 10 grid points, each trained 8 epochs at the recipe's batch size
# (a few minutes on 2 CPU cores), the shift measured on 256 training examples.
DEFAULT_MODEL = "wrn-10-1"
DEFAULT_DATASET = "digits"
DEFAULT_ORACLE = "grid"
DEFAULT_MAX_TRIALS = 10
DEFAULT_EPOCHS = 8
DEFAULT_BATCH_SIZE = 128
DEFAULT_PROBE_SIZE = 256
DEFAULT_DIRECTORY = "keras_vs_tune"  # parent folder of the search folders


def check_objective(objective):
    """``objective`` if it is one of `OBJECTIVES`, else a ValueError that names it."""
    if objective not in OBJECTIVES:
        raise ValueError(
            f"Unknown objective. Expected one of {', '.join(OBJECTIVES)}. Received: objective={objective!r}"
        )
    return objective


def _check_rate(name, value):
    """A learning rate or weight decay: None (the default's own) or a number >= 0, as a float."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < float("inf"):
        raise ValueError(f"Expected {name} to be a number >= 0. Received: {name}={value!r}")
    return float(value)


def _check_choice(name, value, allowed):
    if value not in allowed:
        raise ValueError(f"Unknown {name}. Expected one of {', '.join(allowed)}. Received: {name}={value!r}")
    return value


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """How every trial trains.

    Attributes:
        epochs: Epochs per trial (the recipe's learning-rate milestones scale
            with it; Hyperband sets each trial's own).
        batch_size: Global batch size; the recipe's learning rate is scaled
            by ``batch_size / 128``.
        learning_rate: Initial learning rate: of the paper's recipe (given at
            batch size 128), or of the optimizer. None: their own.
        weight_decay: Weight decay of the recipe (torch's coupled decay) or
            of the optimizer. None: their own.
        loss: Loss of every trial (a Keras loss name, object or function).
            None: a compiled user model's own, else sparse categorical
            cross-entropy (see `tuner.training`).
        optimizer: ``"recipe"`` (the paper's SGD recipe), a Keras optimizer
            name or object (a fresh copy per trial). None: a compiled user
            model's own optimizer, else the recipe.
        from_logits: Whether the model outputs logits, for the default loss
            (None: read from the model's output layer).
    """

    epochs: int = DEFAULT_EPOCHS
    batch_size: int = DEFAULT_BATCH_SIZE
    learning_rate: object = None
    weight_decay: object = None
    loss: object = None
    optimizer: object = None
    from_logits: object = None

    def __post_init__(self):
        # Frozen: the checked, normalised values are set through object.__setattr__.
        object.__setattr__(self, "epochs", checks.integer("epochs", self.epochs))
        object.__setattr__(self, "batch_size", checks.integer("batch_size", self.batch_size))
        object.__setattr__(self, "learning_rate", _check_rate("learning_rate", self.learning_rate))
        object.__setattr__(self, "weight_decay", _check_rate("weight_decay", self.weight_decay))
        if self.from_logits is not None and not isinstance(self.from_logits, bool):
            raise ValueError(
                f"Expected from_logits to be True, False or None. Received: from_logits={self.from_logits!r}"
            )


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which training examples a search reads, and how many it measures on.

    Attributes:
        take: Use only the first ``take`` training examples (None: all).
        probe_size: Training examples on which every trial's variance shift
            and train/inference inconsistency are measured.
        data_dir: TensorFlow Datasets data folder.
        download: Let TensorFlow Datasets download and prepare a missing set.
    """

    take: object = None
    probe_size: int = DEFAULT_PROBE_SIZE
    data_dir: object = None
    download: bool = False

    def __post_init__(self):
        object.__setattr__(self, "probe_size", checks.integer("probe_size", self.probe_size))
        object.__setattr__(self, "take", checks.integer("take", self.take, allow_none=True))


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """How a search runs: the oracle, its trials, their seed, distribution, callbacks and output.

    Attributes:
        oracle: One of `keras_vs.vocab.ORACLES`: ``"random"``, ``"bayesian"``,
            ``"hyperband"`` or ``"grid"`` (every position before a second rate).
        max_trials: Trials to run (not used by Hyperband, whose budget is
            `TrainingConfig.epochs`).
        seed: Seeds the oracle and every trial's weights, dropout masks and
            data order.
        objective: What the oracle maximises and the best trial is ranked by,
            one of `OBJECTIVES`: ``"val_accuracy"`` (BN statistics as trained)
            or ``"val_accuracy_recalibrated"`` (after precise BN re-estimation
            on the training data). Every trial records both.
        strategy: A name of `keras_vs.vocab.STRATEGIES` (see
            `tuner.get_strategy`), a `tf.distribute.Strategy` or a
            `keras.distribution.Distribution` (JAX: set as Keras' global
            distribution for the search).
        max_consecutive_failed_trials: Stop after this many failed trials in a row.
        callbacks: Keras callbacks for every trial, deep-copied per trial; they
            run after the variance-shift callback, so a CSVLogger or
            TensorBoard (one folder per trial) records ``variance_shift/*`` too.
        verbose: keras-tuner's progress and the one-line summary per trial (0: silent).
        fit_verbose: ``verbose`` of each trial's `keras.Model.fit`; None follows ``verbose``.
    """

    oracle: str = DEFAULT_ORACLE
    max_trials: int = DEFAULT_MAX_TRIALS
    seed: int = 0
    objective: str = OBJECTIVE
    strategy: object = "auto"
    max_consecutive_failed_trials: int = 3
    callbacks: tuple = ()
    verbose: int = 1
    fit_verbose: object = None

    def __post_init__(self):
        _check_choice("oracle", self.oracle, vocab.ORACLES)
        object.__setattr__(self, "max_trials", checks.integer("max_trials", self.max_trials))
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise ValueError(f"Expected seed to be an integer. Received: seed={self.seed!r}")
        object.__setattr__(self, "seed", int(self.seed))
        check_objective(self.objective)
        if isinstance(self.strategy, str):
            _check_choice("strategy", self.strategy, vocab.STRATEGIES)
        object.__setattr__(self, "max_consecutive_failed_trials", checks.integer(
            "max_consecutive_failed_trials", self.max_consecutive_failed_trials))
        object.__setattr__(self, "callbacks", tuple(self.callbacks))
        object.__setattr__(self, "verbose", checks.integer("verbose", self.verbose, minimum=0))
        fit_verbose = self.verbose if self.fit_verbose is None else self.fit_verbose
        object.__setattr__(self, "fit_verbose", checks.integer("fit_verbose", fit_verbose, minimum=0))


@dataclasses.dataclass(frozen=True)
class ProjectConfig:
    """Where a search lives and what it writes there.

    The search folder is keras-tuner's: rerunning the same search resumes it.

    Attributes:
        directory: Parent folder of the search folder.
        name: Search folder name; None: ``"<model>-<dataset>-<oracle>"``. A
            folder that holds the search of another user model (other
            architecture or weights) or other data (other arrays or ``.npz``
            contents) is refused, overwrite or not: pass another name.
        overwrite: Delete an earlier search of the same folder instead of
            resuming it (only a folder keras-vs wrote is ever deleted).
        export: Write ``results.csv``, ``results.json``, ``results.png`` and
            ``best_model.keras`` at the end.
        model_file: The file a user's model was loaded from (``keras-vs tune
            --model``): recorded with the search to name it in messages.
    """

    directory: str = DEFAULT_DIRECTORY
    name: object = None
    overwrite: bool = False
    export: bool = True
    model_file: object = None

    def __post_init__(self):
        object.__setattr__(self, "directory", os.fspath(self.directory))
        if self.model_file is not None:
            object.__setattr__(self, "model_file", os.fspath(self.model_file))
