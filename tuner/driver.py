"""`search`: a keras-tuner search over dropout position, type and rate, recording each trial's shift.

`search` reads the data (`tuner.data`), makes the hypermodel
(`tuner.DropoutHyperModel`), the oracle (`tuner.oracles`) and the tuner
(`tuner.DropoutTuner`, which trains and measures each trial), runs the
search and writes the results (`tuner.results`).

The search directory is keras-tuner's: rerunning the same search resumes it
(finished trials are kept, an interrupted one is rerun; `tuner.project`), and
keras-tuner's chief/worker mode (``KERASTUNER_TUNER_ID``,
``KERASTUNER_ORACLE_IP``, ``KERASTUNER_ORACLE_PORT``) spreads trials over
processes that share it. At the end the chief (or the only process) writes
``results.csv``, ``results.json``, ``results.png`` and ``best_model.keras``
next to the trials.

This module also keeps the names it held before the search was split into
those modules, so that ``from tuner import driver`` code goes on working.
"""

import dataclasses
import numbers
import os
import warnings

from keras_vs import data as kvs_data
from keras_vs import vocab
from tuner import config as config_lib
from tuner import data as data_lib
from tuner import distribute
from tuner import identity
from tuner import project as project_lib
from tuner import results as results_lib
from tuner.config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_DATASET,
    DEFAULT_DIRECTORY,
    DEFAULT_EPOCHS,
    DEFAULT_MAX_TRIALS,
    DEFAULT_MODEL,
    DEFAULT_ORACLE,
    DEFAULT_PROBE_SIZE,
    OBJECTIVE,
    DataConfig,
    TrainingConfig,
)
from tuner.dropout_tuner import DropoutTuner
from tuner.hypermodel import DropoutHyperModel
from tuner.oracles import ORACLES, DropoutGridOracle, make_oracle  # noqa: F401
from tuner.project import (  # noqa: F401
    CONFIG_FILE,
    RESULT_FILES,
    TRIAL_FILE,
    WEIGHTS_FILE,
    default_project_name,
    read_trial_file,
)
from tuner.results import (  # noqa: F401
    SearchResult,
    collect_rows,
    export_results,
    format_table,
    plot_results,
    summary_line,
    trial_row,
)
from tuner.space import DEFAULT_BETAS, DEFAULT_RATES, SearchSpace, point_text
from tuner.training import RECIPE

__all__ = ["search"]


def search(
    model=DEFAULT_MODEL, dataset=DEFAULT_DATASET, *, oracle=DEFAULT_ORACLE, max_trials=DEFAULT_MAX_TRIALS,
    seed=0, positions=None, types=vocab.DROPOUT_TYPES, rates=DEFAULT_RATES, betas=DEFAULT_BETAS,
    epochs=DEFAULT_EPOCHS, batch_size=DEFAULT_BATCH_SIZE, learning_rate=None, weight_decay=None,
    loss=None, optimizer=None, from_logits=None, take=None, probe_size=DEFAULT_PROBE_SIZE,
    data_dir=None, download=False, directory=DEFAULT_DIRECTORY, project_name=None, overwrite=False,
    strategy="auto", max_consecutive_failed_trials=3, callbacks=(), verbose=1, fit_verbose=None,
    export=True, model_options=None, space=None, training_config=None, data_config=None,
    model_file=None, objective=OBJECTIVE,
):
    """Searches dropout position, type and rate; records variance shift per trial.

    One seed fixes the oracle's choices and, in every trial, the initial
    weights, dropout masks and data order: on CPU two runs of the default
    search print the same table. GPU kernels may still change the last
    digits between runs; call `tf.config.experimental.enable_op_determinism()`
    first for bitwise repeatable trials there (slower).

    Args:
        model: A zoo name (`zoo.list_models`) or a user's `keras.Model` (see
            `tuner.DropoutHyperModel`).
        dataset: ``"digits"``, ``"cifar10"``, ``"cifar100"``,
            ``"imagenet2012"``, a ``.npz`` file with ``x`` and ``y`` (20% held
            out for validation), or ``((x_train, y_train), (x_val, y_val))``.
        oracle: One of `tuner.ORACLES`: ``"random"``, ``"bayesian"``,
            ``"hyperband"`` or ``"grid"`` (every position before a second rate).
        max_trials: Trials to run (not used by Hyperband, whose budget is ``epochs``).
        seed: Seeds the oracle and every trial's weights, dropout masks and data order.
        positions, types, rates, betas: Fields of ``space``.
        epochs, batch_size, learning_rate, weight_decay, loss, optimizer,
            from_logits: Fields of ``training_config``.
        take, probe_size, data_dir, download: Fields of ``data_config``.
        directory: Parent folder of the search folder.
        project_name: Search folder name; defaults to ``"<model>-<dataset>-<oracle>"``.
            A folder that holds the search of another user model (other
            architecture or weights) or other data (other arrays or ``.npz``
            contents) is refused, overwrite or not: pass another name.
        overwrite: Delete an earlier search of the same folder instead of
            resuming it (only a folder keras-vs wrote is ever deleted).
        strategy: A name of `tuner.STRATEGIES` (see `tuner.get_strategy`), a
            `tf.distribute.Strategy` or a `keras.distribution.Distribution`
            (JAX: set as Keras' global distribution for the search).
        max_consecutive_failed_trials: Stop after this many failed trials in a row.
        callbacks: Keras callbacks for every trial, deep-copied per trial; they
            run after the variance-shift callback, so a CSVLogger or
            TensorBoard (one folder per trial) records ``variance_shift/*`` too.
        verbose: keras-tuner's progress and the one-line summary per trial (0: silent).
        fit_verbose: ``verbose`` of each trial's `keras.Model.fit`; None follows ``verbose``.
        export: Write the result files and the best model.
        model_options: Extra zoo builder arguments, e.g. ``{"width": 4}``.
        space, training_config, data_config: A `tuner.SearchSpace`,
            `tuner.TrainingConfig` and `tuner.DataConfig`, instead of their
            fields as keywords (a field changed next to its record is an error).
        model_file: The file a user's ``model`` was loaded from (``keras-vs
            tune --model``): recorded with the search to name it in messages.
        objective: What the oracle maximises and the best trial is ranked by:
            ``"val_accuracy"`` (BN statistics as trained) or
            ``"val_accuracy_recalibrated"`` (after precise BN re-estimation on
            the training data, `keras_vs.recalibrate_bn`). Every trial records
            both; the saved weights and ``best_model.keras`` are as trained.

    Returns:
        A `tuner.SearchResult`.

    Example:

    >>> result = search("densenet-bc-22-4", "digits", max_trials=1, epochs=1,
    ...                 take=64, directory=tmp, verbose=0)  # doctest: +SKIP
    >>> result.rows[0]["status"]  # doctest: +SKIP
    'COMPLETED'
    """
    run = _Run(
        model=model, dataset=dataset, oracle=oracle, max_trials=config_lib.check_int("max_trials", max_trials),
        seed=_check_seed(seed), objective=config_lib.check_objective(objective),
        directory=os.fspath(directory),
        project_name=project_name or project_lib.default_project_name(model, dataset, oracle),
        overwrite=overwrite, strategy=strategy, max_consecutive_failed_trials=max_consecutive_failed_trials,
        callbacks=tuple(callbacks), verbose=verbose, fit_verbose=verbose if fit_verbose is None else fit_verbose,
        export=export, role=project_lib.role(),
        model_file=None if model_file is None else os.fspath(model_file),
    )
    # Keywords left at these defaults may sit next to their record.
    defaults = search.__kwdefaults__
    made = config_lib.given_or_made
    training_config = made("training_config", training_config, TrainingConfig, defaults, epochs=epochs,
                           batch_size=batch_size, learning_rate=learning_rate, weight_decay=weight_decay,
                           loss=loss, optimizer=optimizer, from_logits=from_logits)
    data_config = made("data_config", data_config, DataConfig, defaults, take=take, probe_size=probe_size,
                       data_dir=data_dir, download=download)
    space = made("space", space, SearchSpace, defaults, positions=positions, types=types, rates=rates, betas=betas)
    return _search(run, space, training_config, data_config, model_options)


def _check_seed(seed):
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"Expected seed to be an integer. Received: seed={seed!r}")
    return int(seed)


@dataclasses.dataclass(frozen=True)
class _Run:
    """One search's settings besides its space, training and data (`search`'s arguments)."""

    model: object
    dataset: object
    oracle: str
    max_trials: int
    seed: int
    objective: str
    directory: str
    project_name: str
    overwrite: bool
    strategy: object
    max_consecutive_failed_trials: int
    callbacks: tuple
    verbose: int
    fit_verbose: int
    export: bool
    role: str  # of this process: "single", "chief" or "worker" (`tuner.project.role`)
    model_file: object = None  # where a user's model was loaded from (messages only)

    def __post_init__(self):
        if self.oracle not in ORACLES:
            raise ValueError(
                f"Unknown oracle. Expected one of {', '.join(ORACLES)}. Received: oracle={self.oracle!r}"
            )

    @property
    def project_dir(self):
        return os.path.join(self.directory, self.project_name)


def _search(run, space, training_config, data_config, model_options):
    """`search` once its arguments are checked and grouped."""
    strategy = distribute.get_strategy(run.strategy) if isinstance(run.strategy, str) else run.strategy
    progress = run.verbose > 0 and run.role != "worker"
    if progress:  # reading a data set can take seconds without output
        shown = run.dataset if isinstance(run.dataset, (str, os.PathLike)) else "the arrays"
        print(f"[keras-vs] loading {os.fspath(shown)}", flush=True)
    data, data_identity = _load(run.dataset, data_config, training_config.batch_size, run.seed, strategy)
    if not isinstance(run.model, str):
        _check_fits(run.model, data, run.dataset)
    hypermodel = DropoutHyperModel(
        run.model, num_classes=data.num_classes, input_shape=data.input_shape,
        steps_per_epoch=data.steps_per_epoch, model_options=model_options, space=space,
        training_config=training_config,
    )
    config = _settings(run, hypermodel, data_config, data_identity)
    _announce(run, hypermodel)
    project_lib.prepare(run.project_dir, config, run.overwrite, run.role)
    oracle = make_oracle(run.oracle, run.max_trials, training_config.epochs, run.seed,
                         run.max_consecutive_failed_trials, hypermodel.grid_points(), run.objective)
    tuner = DropoutTuner(
        oracle, hypermodel, probe=data.probe, epochs=training_config.epochs,
        batch_size=training_config.batch_size, seed=run.seed, fit_verbose=run.fit_verbose,
        summaries=run.verbose > 0, directory=run.directory, project_name=run.project_name,
        distribution_strategy=distribute.tuner_strategy(strategy), overwrite=False,
    )
    with distribute.distributed(strategy):
        tuner.search(data.train, data.validation, callbacks=list(run.callbacks), verbose=run.verbose)
    if run.role == "worker":
        return results_lib.SearchResult([], None, run.project_dir, {}, list(tuner.ran), run.role,
                                        objective=run.objective)
    rows = results_lib.collect_rows(tuner.oracle, tuner.project_dir)
    best = results_lib.best_row(rows, run.objective)
    files = (results_lib.export_results(tuner, rows, best, _results_config(config, hypermodel),
                                        run.project_dir) if run.export else {})
    return results_lib.SearchResult(rows, best, run.project_dir, files, list(tuner.ran), run.role, tuner,
                                    run.objective)


def _check_fits(model, data, dataset):
    """Refuses data a user's model cannot read, or whose labels it cannot predict, before any trial.

    Raises:
        ValueError: One line naming the model's input and output and the data's shapes.
    """
    import keras

    from keras_vs import graph

    if any(getattr(layer, "stateful", False) for layer in graph.sublayers(model)):
        return  # a call would advance its states: the user's model stays as given
    name = dataset if isinstance(dataset, (str, os.PathLike)) else "the arrays"
    x = data.probe[0][:2]
    try:
        out = model(x, training=False)
    except Exception as e:  # noqa: BLE001  (whatever the model says about the input)
        expected = [tuple(t.shape) for t in model.inputs] if getattr(model, "inputs", None) else "?"
        expected = expected[0] if isinstance(expected, list) and len(expected) == 1 else expected
        raise ValueError(
            f"The data does not fit model {model.name!r}: it takes inputs of shape {expected}, "
            f"{os.fspath(name)} has examples of shape {tuple(data.input_shape)} "
            f"({type(e).__name__}). Received: input_shape={tuple(data.input_shape)}"
        ) from None
    outputs = keras.tree.flatten(out)
    units = outputs[0].shape[-1] if len(outputs) == 1 and len(outputs[0].shape) == 2 else None
    if units is not None and units < data.num_classes:
        raise ValueError(
            f"The data does not fit model {model.name!r}: it predicts {units} classes, "
            f"{os.fspath(name)} has {data.num_classes} (labels 0..{data.num_classes - 1}). "
            f"Received: num_classes={data.num_classes}"
        )


def _load(dataset, data_config, batch_size, seed, strategy):
    """The search's `tuner.data.SearchData`, its NumPy sets trimmed to split evenly under
    ``strategy``, and the data's `tuner.identity.data_identity` (None for a named data set)."""
    data = data_lib.load(dataset, data_config, batch_size, seed)
    named = isinstance(dataset, (str, os.PathLike)) and os.fspath(dataset) in kvs_data.names()
    fingerprint = None if named else identity.data_identity((data.train, data.validation))
    train, validation, steps = distribute.even_batches(
        strategy, data.train, data.validation, batch_size, data.steps_per_epoch
    )
    return dataclasses.replace(data, train=train, validation=validation, steps_per_epoch=steps), fingerprint


def _settings(run, hypermodel, data_config, data_identity):
    """The settings recorded in ``search_config.json``: a rerun with others is refused.

    A user's model and data that are not a named set add their fingerprints
    (`tuner.identity`); a zoo model and a named set are identified by name.
    """
    model, dataset = run.model, run.dataset
    config = {
        "model": model if isinstance(model, str) else f"user model {model.name!r}",
        "dataset": dataset if isinstance(dataset, str) else (
            os.fspath(dataset) if isinstance(dataset, os.PathLike) else "arrays"),
        "oracle": run.oracle,
        "epochs": hypermodel.epochs,
        "batch_size": hypermodel.batch_size,
        "seed": run.seed,
        "positions": list(hypermodel.positions),
        "types": list(hypermodel.types),
        "rates": list(hypermodel.rates),
        "betas": list(hypermodel.betas),
        "learning_rate": hypermodel.recipe.learning_rate,
        "weight_decay": hypermodel.recipe.weight_decay,
        "take": data_config.take,
        "probe_size": data_config.probe_size,
    }
    if not isinstance(model, str):
        config[identity.MODEL_KEY] = identity.model_identity(model)
        if run.model_file is not None:
            config[identity.FILE_KEY] = run.model_file
    if data_identity is not None:
        config[identity.DATA_KEY] = data_identity
    if run.objective != OBJECTIVE:  # absent otherwise: earlier searches still resume
        config["objective"] = run.objective
    if hypermodel.model_options:  # absent otherwise: earlier searches still resume
        config["model_options"] = hypermodel.model_options
    if not hypermodel.training.is_recipe_default():
        config["training"] = hypermodel.training.config()  # likewise absent for the zoo's recipe
    return config


def _results_config(config, hypermodel):
    """results.json's ``config``: the search's settings with the loss and optimizer every trial
    used (`TrainingSetup.config` and where each came from); the recipe's learning rate and weight
    decay only when the recipe's optimizer trained."""
    setup = hypermodel.training
    out = {k: v for k, v in config.items() if k != "training"}
    if setup.optimizer != RECIPE:
        out.pop("learning_rate", None)
        out.pop("weight_decay", None)
    out["training"] = {**setup.config(), "sources": dict(setup.sources), **{
        f"{k}_summary": v for k, v in setup.describe().items()}}
    return out


def _announce(run, hypermodel):
    """Prints every trial's loss and optimizer; warns when ``max_trials`` cuts the grid short."""
    if run.verbose > 0 and run.role != "worker":
        setup = hypermodel.training.describe()
        print(f"[keras-vs] every trial: loss {setup['loss']}, optimizer {setup['optimizer']}", flush=True)
    points = hypermodel.grid_points()
    if run.oracle == "grid" and run.max_trials < len(points):
        warnings.warn(
            f"the grid has {len(points)} points and max_trials={run.max_trials} runs the first "
            f"{run.max_trials} (every position before a second rate): "
            + ", ".join(point_text(p) for p in points[:run.max_trials]),
            stacklevel=4,  # past this, _search and search: the user's call
        )
