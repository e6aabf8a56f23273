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
"""

import dataclasses
import os
import warnings

from keras_vs import data as kvs_data
from tuner import data as data_lib
from tuner import deprecation
from tuner import distribute
from tuner import identity
from tuner import oracles
from tuner import project as project_lib
from tuner import results as results_lib
from tuner.config import (
    DEFAULT_DATASET,
    DEFAULT_MODEL,
    OBJECTIVE,
    DataConfig,
    ProjectConfig,
    RunConfig,
    TrainingConfig,
)
from tuner.dropout_tuner import DropoutTuner
from tuner.hypermodel import DropoutHyperModel
from tuner.space import SearchSpace, point_text
from tuner.training import RECIPE

__all__ = ["search"]


# The keywords `search` took before its records, and the field each became
# (`tuner.deprecation`): accepted until the next release, with a warning.
_MOVED = {
    **{k: f"space.{k}" for k in ("positions", "types", "rates", "betas")},
    **{k: f"training.{k}" for k in ("epochs", "batch_size", "learning_rate", "weight_decay", "loss",
                                    "optimizer", "from_logits")},
    **{k: f"data.{k}" for k in ("take", "probe_size", "data_dir", "download")},
    **{k: f"run.{k}" for k in ("oracle", "max_trials", "seed", "objective", "strategy",
                               "max_consecutive_failed_trials", "callbacks", "verbose", "fit_verbose")},
    **{k: f"project.{k}" for k in ("directory", "overwrite", "export", "model_file")},
    "project_name": "project.name",
    "training_config": "training",
    "data_config": "data",
}


def search(
    model=DEFAULT_MODEL, dataset=DEFAULT_DATASET, *, space=None, training=None, data=None, run=None,
    project=None, model_options=None, **deprecated,
):
    """Searches dropout position, type and rate; records variance shift per trial.

    One seed (``run.seed``) fixes the oracle's choices and, in every trial,
    the initial weights, dropout masks and data order: on CPU two runs of the
    default search print the same table. GPU kernels may still change the
    last digits between runs; call
    `tf.config.experimental.enable_op_determinism()` first for bitwise
    repeatable trials there (slower).

    Args:
        model: A zoo name (`zoo.list_models`) or a user's `keras.Model` (see
            `tuner.DropoutHyperModel`).
        dataset: ``"digits"``, ``"cifar10"``, ``"cifar100"``,
            ``"imagenet2012"``, a ``.npz`` file with ``x`` and ``y`` (20% held
            out for validation), or ``((x_train, y_train), (x_val, y_val))``.
        space: A `tuner.SearchSpace`: the positions, types, rates and betas
            searched (default: every position of the model's kind, Bernoulli
            rates 0.2 and 0.5, Uout beta 0.5).
        training: A `tuner.TrainingConfig`: how every trial trains.
        data: A `tuner.DataConfig`: which training examples are read and
            how many measure the shift.
        run: A `tuner.RunConfig`: oracle, trials, seed, objective,
            distribution, callbacks, verbosity.
        project: A `tuner.ProjectConfig`: the search folder, overwriting,
            exporting the results.
        model_options: Extra zoo builder arguments, e.g. ``{"width": 4}``.
        **deprecated: The keywords this function took before its records
            (``epochs=``, ``oracle=``, ...): each still works until the next
            release, with a DeprecationWarning naming its record field.

    Returns:
        A `tuner.SearchResult`.

    Example:

    >>> result = search("densenet-bc-22-4", "digits",
    ...                 training=TrainingConfig(epochs=1), data=DataConfig(take=64),
    ...                 run=RunConfig(max_trials=1, verbose=0),
    ...                 project=ProjectConfig(directory=tmp))  # doctest: +SKIP
    >>> result.rows[0]["status"]  # doctest: +SKIP
    'COMPLETED'
    """
    given = dict(space=space, training=training, data=data, run=run, project=project)
    made = deprecation.records("tuner.search", given, _DEFAULTS, deprecated, _MOVED)
    run, project = made["run"], made["project"]
    if project.name is None:
        project = dataclasses.replace(project, name=project_lib.default_project_name(model, dataset, run.oracle))
    job = _Job(model, dataset, run, project, project_lib.role())
    return _search(job, made["space"], made["training"], made["data"], model_options)


_DEFAULTS = dict(space=SearchSpace(), training=TrainingConfig(), data=DataConfig(), run=RunConfig(),
                 project=ProjectConfig())


@dataclasses.dataclass(frozen=True)
class _Job:
    """One search's model, data, run and folder (its name resolved), and this process's role."""

    model: object
    dataset: object
    run: RunConfig
    project: ProjectConfig
    role: str  # "single", "chief" or "worker" (`tuner.project.role`)

    @property
    def project_dir(self):
        return os.path.join(self.project.directory, self.project.name)


def _search(job, space, training_config, data_config, model_options):
    """`search` once its records are made."""
    run = job.run
    strategy = distribute.get_strategy(run.strategy) if isinstance(run.strategy, str) else run.strategy
    if run.verbose > 0 and job.role != "worker":  # reading a data set can take seconds without output
        shown = job.dataset if isinstance(job.dataset, (str, os.PathLike)) else "the arrays"
        print(f"[keras-vs] loading {os.fspath(shown)}", flush=True)
    data, data_identity = _load(job.dataset, data_config, training_config.batch_size, run.seed, strategy)
    if not isinstance(job.model, str):
        _check_fits(job.model, data, job.dataset)
    hypermodel = DropoutHyperModel(
        job.model, num_classes=data.num_classes, input_shape=data.input_shape,
        steps_per_epoch=data.steps_per_epoch, model_options=model_options, space=space,
        training=training_config,
    )
    config = _settings(job, hypermodel, data_config, data_identity)
    _announce(job, hypermodel)
    project_lib.prepare(job.project_dir, config, job.project.overwrite, job.role)
    oracle = oracles.make_oracle(run.oracle, run.max_trials, training_config.epochs, run.seed,
                                 run.max_consecutive_failed_trials, hypermodel.grid_points(), run.objective)
    tuner = DropoutTuner(
        oracle, hypermodel, probe=data.probe, epochs=training_config.epochs,
        batch_size=training_config.batch_size, seed=run.seed, fit_verbose=run.fit_verbose,
        summaries=run.verbose > 0, directory=job.project.directory, project_name=job.project.name,
        distribution_strategy=distribute.tuner_strategy(strategy), overwrite=False,
    )
    with distribute.distributed(strategy):
        tuner.search(data.train, data.validation, callbacks=list(run.callbacks), verbose=run.verbose)
    if job.role == "worker":
        return results_lib.SearchResult([], None, job.project_dir, {}, list(tuner.ran), job.role,
                                        objective=run.objective)
    rows = results_lib.collect_rows(tuner.oracle, tuner.project_dir)
    best = results_lib.best_row(rows, run.objective)
    files = (results_lib.export_results(tuner, rows, best, _results_config(config, hypermodel),
                                        job.project_dir) if job.project.export else {})
    return results_lib.SearchResult(rows, best, job.project_dir, files, list(tuner.ran), job.role, tuner,
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


def _settings(job, hypermodel, data_config, data_identity):
    """The settings recorded in ``search_config.json``: a rerun with others is refused.

    A user's model and data that are not a named set add their fingerprints
    (`tuner.identity`); a zoo model and a named set are identified by name.
    """
    model, dataset, run = job.model, job.dataset, job.run
    space, training_config = hypermodel.space, hypermodel.training_config
    config = {
        "model": model if isinstance(model, str) else f"user model {model.name!r}",
        "dataset": dataset if isinstance(dataset, str) else (
            os.fspath(dataset) if isinstance(dataset, os.PathLike) else "arrays"),
        "oracle": run.oracle,
        "epochs": training_config.epochs,
        "batch_size": training_config.batch_size,
        "seed": run.seed,
        "positions": list(space.positions),
        "types": list(space.types),
        "rates": list(space.rates),
        "betas": list(space.betas),
        "learning_rate": hypermodel.recipe.learning_rate,
        "weight_decay": hypermodel.recipe.weight_decay,
        "take": data_config.take,
        "probe_size": data_config.probe_size,
    }
    if not isinstance(model, str):
        config[identity.MODEL_KEY] = identity.model_identity(model)
        if job.project.model_file is not None:
            config[identity.FILE_KEY] = job.project.model_file
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


def _announce(job, hypermodel):
    """Prints every trial's loss and optimizer; warns when ``max_trials`` cuts the grid short."""
    run = job.run
    if run.verbose > 0 and job.role != "worker":
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
