"""The settings of a search, as frozen records: how each trial trains, which data it reads.

`TrainingConfig` and `DataConfig` group the keywords of `tuner.search` (and
`tuner.DropoutHyperModel`) that used to be passed one by one from function to
function; `tuner.SearchSpace` is the third group. Each checks its values when
made, so a bad value fails before any data is read or model built. This
module imports no Keras: ``keras-vs tune`` builds these records before it
loads TensorFlow.

Example:

>>> TrainingConfig(epochs=2, optimizer="adam").batch_size
128
"""

import dataclasses
import numbers

from keras_vs import checks

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
    "TrainingConfig",
    "check_int",
    "check_objective",
    "given_or_made",
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


def check_int(name, value, minimum=1, allow_none=False):
    """``value`` as an int, or a ValueError that names ``name`` (`keras_vs.checks.integer`)."""
    return checks.integer(name, value, minimum=minimum, allow_none=allow_none)


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


def _is_default(value, default):
    if value is default:
        return True
    if isinstance(default, tuple) and isinstance(value, (tuple, list)):
        return tuple(value) == default
    return default is not None and type(value) is type(default) and value == default


def given_or_made(name, given, record_class, defaults, **keywords):
    """The record passed as ``name``, or one made of the separate keywords.

    `tuner.search` and `tuner.DropoutHyperModel` take either the record or
    its fields as keywords; a keyword changed from its default next to the
    record is refused rather than silently ignored.

    Args:
        name: The record's keyword (e.g. ``"training_config"``).
        given: The record passed, or None.
        record_class: Its class (e.g. `TrainingConfig`).
        defaults: ``{keyword: default}`` of the caller's signature.
        **keywords: The values of those keywords.

    Returns:
        An instance of ``record_class``.
    """
    if given is None:
        return record_class(**keywords)
    if not isinstance(given, record_class):
        raise ValueError(
            f"Expected {name} to be a tuner.{record_class.__name__}. Received: {name}={given!r}"
        )
    changed = [k for k, v in keywords.items() if not _is_default(v, defaults[k])]
    if changed:
        received = ", ".join(f"{k}={keywords[k]!r}" for k in changed)
        raise ValueError(
            f"Pass {', '.join(changed)} inside {name}, not next to it. Received: {received}"
        )
    return given


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
        object.__setattr__(self, "epochs", check_int("epochs", self.epochs))
        object.__setattr__(self, "batch_size", check_int("batch_size", self.batch_size))
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
        object.__setattr__(self, "probe_size", check_int("probe_size", self.probe_size))
        object.__setattr__(self, "take", check_int("take", self.take, allow_none=True))
