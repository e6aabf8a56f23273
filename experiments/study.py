"""The dropout study: the paper's protocol on top of `tuner.search`.

`dropout_study` trains a network for each dropout setting and seed (a
resumable grid search, so an interrupted study picks up where it stopped),
then measures every trained model as the paper does: the variance-shift
statistic of every BN on the training data (max(real/moving, moving/real)
per BN), the train-mode/inference-mode accuracy on the training data, test
accuracy, and test accuracy after BN re-estimation.
"""

import dataclasses

import numpy as np

import keras_vs
from experiments.common import DEFAULT_DIRECTORY
from keras_vs import data as data_lib
from keras_vs import theory
from keras_vs import vocab
from tuner import deprecation
from tuner import tfds
from tuner.config import DataConfig, ProjectConfig, RunConfig, TrainingConfig
from tuner.space import SearchSpace

__all__ = [
    "PER_BN_COLUMNS",
    "STUDY_COLUMNS",
    "StudyConfig",
    "accuracy",
    "dropout_study",
    "expected_statistic",
    "grid_size",
    "study_data",
]


def expected_statistic(dropout_type, value, mean=0.0, var=1.0):
    """The paper's statistic at a direct pair, from the closed form (case a).

    With per-channel ``mean`` (c) and ``var`` (v) of the dropout's input this
    is mean(Var_train) / mean(v) over channels, the channel average the
    statistic itself uses; the defaults give ``1 / (1 - rate)`` for Bernoulli.

    Args:
        dropout_type: ``"bernoulli"`` or ``"uout"`` (anything else: 1).
        value: Rate or beta.
        mean: Per-channel input means (array or float).
        var: Per-channel input variances (array or float).

    Returns:
        The predicted statistic (moving / real variance).

    Example:

    >>> expected_statistic("bernoulli", 0.5)
    2.0
    """
    if dropout_type == "bernoulli":
        shift = theory.dropout_shift(value, mean, var)
    elif dropout_type == "uout":
        shift = theory.uout_shift(value, mean, var)
    else:
        return 1.0
    var = np.broadcast_to(np.asarray(var, dtype=np.float64), np.shape(shift))
    return float(np.mean(var / shift) / np.mean(var))


def study_data(dataset, data=DataConfig(), *, batch_size=128, seed=0):
    """``(train, test)`` for measuring trained models, without augmentation.

    BN re-estimation repeats passes until the statistics stop changing, so
    the training data is read as the test data is: no random crops or flips.

    Args:
        dataset: ``"digits"``, a ``.npz`` file, or a TFDS name.
        data: A `tuner.DataConfig`: only the first ``take`` training
            examples (as the search); ``data_dir`` and ``download`` go to
            TensorFlow Datasets.
        batch_size: Batch size of the TFDS pipelines.
        seed: Seed of the TFDS pipelines.

    Returns:
        Two ``(x, y)`` tuples, or two `tf.data.Dataset` for a TFDS set.
    """
    if dataset in tfds.NAMES:
        kwargs = dict(batch_size=batch_size, training=False, data_dir=data.data_dir, download=data.download,
                      seed=seed)
        return (
            tfds.tfds_dataset(dataset, "train", take=data.take, **kwargs),
            tfds.tfds_dataset(dataset, "test", **kwargs),
        )
    train = data_lib.load(dataset, "train")
    test = data_lib.load(dataset, "test")
    if data.take is not None:
        train = (train[0][:data.take], train[1][:data.take])
    return train, test


def accuracy(model, data, batch_size=256):
    """Inference-mode top-1 accuracy on ``(x, y)`` arrays or a dataset of batches."""
    if isinstance(data, tuple):
        x, y = data
        pred = model.predict(x, batch_size=batch_size, verbose=0)
        return float(np.mean(np.argmax(pred, axis=-1) == np.asarray(y).reshape(-1)))
    correct = total = 0
    for x, y in data:
        pred = np.asarray(model.predict_on_batch(x))
        y = np.asarray(y).reshape(-1)
        correct += int(np.sum(np.argmax(pred, axis=-1) == y))
        total += len(y)
    if total == 0:
        raise ValueError("The test data is empty. Received: 0 examples")
    return correct / total


def grid_size(space):
    """Models one seed of a study trains: one per position without dropout, else one per rate/beta.

    Args:
        space: A `tuner.SearchSpace` over zoo positions (None: all of them).

    Example:

    >>> grid_size(SearchSpace(positions=("none", "before_bn", "head"), types=("bernoulli",), rates=(0.1, 0.5)))
    5
    """
    return len(space.for_model(vocab.DROPOUT_POSITIONS).grid_points())


STUDY_COLUMNS = (
    "model", "seed", "position", "type", "rate", "test_accuracy", "recalibrated_accuracy",
    "shift_max", "shift_mean", "shift_direct", "expected_direct", "expected_direct_measured_c",
    "shift_through_linear",
    "shift_max_recalibrated",
    "train_mode_accuracy", "train_inference_accuracy", "train_gap", "disagreement", "seconds",
)
PER_BN_COLUMNS = ("model", "seed", "position", "type", "rate", "index", "bn", "statistic", "direct")


@dataclasses.dataclass(frozen=True)
class StudyConfig:
    """Where a study keeps its searches, and how it measures and reports.

    Attributes:
        directory: Parent folder of the searches (resumed when rerun).
        project_prefix: Search folder prefix; None: the model name.
        measure_steps: Batches used to measure and re-estimate (all if None).
        analyse: Optional ``fn(model, row) -> dict`` adding columns per
            trained model.
        verbose: keras-tuner progress (0 silences it).
    """

    directory: str = DEFAULT_DIRECTORY
    project_prefix: object = None
    measure_steps: object = None
    analyse: object = None
    verbose: int = 1


@dataclasses.dataclass(frozen=True)
class _Study:
    """The records of one study; `seed_rows` trains and measures one seed."""

    model: object
    dataset: str
    space: SearchSpace
    training: TrainingConfig
    data: DataConfig
    study: StudyConfig
    model_options: object

    def _search(self, seed):
        """The resumable grid search of one seed (`tuner.search`)."""
        import tuner

        prefix = self.study.project_prefix or self.model
        return tuner.search(
            self.model, self.dataset, space=self.space, training=self.training, data=self.data,
            run=RunConfig(oracle="grid", max_trials=grid_size(self.space), seed=seed, verbose=self.study.verbose),
            project=ProjectConfig(directory=self.study.directory, name=f"{prefix}-{self.dataset}-seed{seed}",
                                  export=False),
            model_options=self.model_options,
        )

    def seed_rows(self, seed, per_bn):
        """Rows of every completed trial of ``seed``; appends the per-BN rows to ``per_bn``."""
        result = self._search(seed)
        train, test = study_data(self.dataset, self.data, batch_size=self.training.batch_size, seed=seed)
        rows = []
        for found in result.rows:
            if found["status"] != "COMPLETED":
                continue
            trained = result.load_model(found["trial_id"])
            row = {
                "model": trained.name,
                "seed": seed,
                "position": found["position"],
                "type": found["type"],
                "rate": found["rate"],
                "seconds": found.get("seconds"),
            }
            steps, batch_size = self.study.measure_steps, self.training.batch_size
            row.update(_measure(trained, train, test, steps, batch_size, row, per_bn))
            if self.study.analyse is not None:
                row.update(self.study.analyse(trained, row))
            rows.append(row)
        return rows


# The keywords `dropout_study` took before its records, and the field each
# became (`tuner.deprecation`): accepted until the next release.
_MOVED = {
    **{k: f"space.{k}" for k in ("positions", "rates", "types", "betas")},
    **{k: f"training.{k}" for k in ("epochs", "batch_size", "learning_rate")},
    **{k: f"data.{k}" for k in ("take", "data_dir", "download")},
    **{k: f"study.{k}" for k in ("directory", "project_prefix", "measure_steps", "analyse", "verbose")},
}
# A study trains Bernoulli dropout unless told otherwise.
_DEFAULTS = dict(space=SearchSpace(types=("bernoulli",)), training=TrainingConfig(), data=DataConfig(),
                 study=StudyConfig())


def dropout_study(
    model, dataset, *, seeds, space=None, training=None, data=None, study=None, model_options=None,
    **deprecated,
):
    """Trains every dropout setting for every seed and measures it as the paper does.

    Args:
        model: A zoo name (e.g. ``"wrn-10-1"``).
        dataset: ``"digits"``, a ``.npz`` file or a TFDS name.
        seeds: One search per seed; the seed fixes weights, masks and order.
        space: A `tuner.SearchSpace`, the grid (default: every zoo position,
            Bernoulli rates 0.2 and 0.5); ``"none"`` trains the network
            without dropout once per seed.
        training: A `tuner.TrainingConfig` (the paper's recipe, scaled).
        data: A `tuner.DataConfig`: ``take``, ``data_dir``, ``download``.
        study: A `StudyConfig`: folders, measuring, the ``analyse`` hook, verbosity.
        model_options: Extra zoo builder arguments (e.g. ``{"width": 4}``).
        **deprecated: The keywords this function took before its records
            (``positions=``, ``epochs=``, ``directory=``, ...): each still
            works until the next release, with a DeprecationWarning naming
            its record field.

    Returns:
        ``(rows, per_bn)``: one row per trained model (`STUDY_COLUMNS`) and
        one row per (model, BN layer) (`PER_BN_COLUMNS`).

    Example:

    >>> space = SearchSpace(positions=("none", "head"), types=("bernoulli",), rates=(0.5,))
    >>> rows, per_bn = dropout_study("wrn-10-1", "digits", seeds=(0,), space=space,
    ...                              training=TrainingConfig(epochs=1))  # doctest: +SKIP
    """
    given = dict(space=space, training=training, data=data, study=study)
    made = deprecation.records("experiments.study.dropout_study", given, _DEFAULTS, deprecated, _MOVED)
    run = _Study(model, dataset, made["space"], made["training"], made["data"], made["study"], model_options)
    rows, per_bn = [], []
    for seed in seeds:
        rows += run.seed_rows(seed, per_bn)
    return rows, per_bn


def _measure(model, train, test, steps, batch_size, row, per_bn):
    """The paper's measurements of one trained model; appends its per-BN rows to ``per_bn``."""
    shift = keras_vs.measure_variance_shift(model, train, steps, batch_size=batch_size)
    findings = keras_vs.find_disharmony(model)
    direct = {f.bn for f in findings if f.kind == "direct"}
    linear = {f.bn for f in findings if f.kind == "through_linear"} - direct
    for index, (bn, value) in enumerate(shift.items(), start=1):
        per_bn.append({**row, "index": index, "bn": bn, "statistic": value, "direct": bn in direct})
    gap = keras_vs.prediction_inconsistency(model, train, steps, batch_size=batch_size)
    repaired = keras_vs.recalibrate_bn(model, train, steps, batch_size=batch_size)
    after = keras_vs.measure_variance_shift(repaired, train, steps, batch_size=batch_size)
    at_direct = [shift[bn] for bn in direct if bn in shift]
    at_linear = [shift[bn] for bn in linear if bn in shift]
    return {
        "test_accuracy": accuracy(model, test),
        "recalibrated_accuracy": accuracy(repaired, test),
        "shift_max": shift.max() if len(shift) else None,
        "shift_mean": shift.mean() if len(shift) else None,
        "shift_direct": float(np.mean(at_direct)) if at_direct else None,
        "expected_direct": expected_statistic(row["type"], row["rate"]) if at_direct else None,
        # Conv outputs are not zero-mean: the closed form with each channel's
        # measured mean c and variance v (inference mode, i.e. the real ones).
        "expected_direct_measured_c": float(np.mean([
            expected_statistic(row["type"], row["rate"], shift.real_mean[bn], shift.real_var[bn])
            for bn in direct if bn in shift
        ])) if at_direct else None,
        "shift_through_linear": float(np.mean(at_linear)) if at_linear else None,
        "shift_max_recalibrated": after.max() if len(after) else None,
        "train_mode_accuracy": gap.train_mode_accuracy,
        "train_inference_accuracy": gap.inference_accuracy,
        "train_gap": gap.gap,
        "disagreement": gap.disagreement,
    }
