"""The keras-tuner oracles of a search, and the one place that uses keras-tuner's private API.

`make_oracle` gives the oracle of each name in `keras_vs.vocab.ORACLES`: keras-tuner's
random, Bayesian and Hyperband oracles, or `DropoutGridOracle`, a grid in a
chosen order. Every one writes keras-tuner's ``oracle.json`` and
``trial.json`` atomically, so that a search killed at any moment can be
resumed.

keras-tuner has no public hook for either of two things a search needs:
where an oracle writes its files (overridden in `_AtomicFiles`) and the
per-trial TensorBoard folder its `Tuner.run_trial` sets up (reused by
`trial_callbacks`, since `tuner.DropoutTuner` replaces that method). Both
are keras-tuner 1.4 private methods, used here only, so that a keras-tuner
upgrade that changes them breaks one module.

Example:

>>> make_oracle("grid", max_trials=2, epochs=1, seed=0, points=[{"dropout_position": "none"}]).points
[{'dropout_position': 'none'}]
"""

import copy
import functools
import json
import os

import keras_tuner

from keras_vs import vocab
from keras_vs.files import write_atomic
from tuner.config import OBJECTIVE, check_objective

__all__ = ["DropoutGridOracle", "make_oracle", "trial_callbacks"]


class _AtomicFiles:
    """Writes keras-tuner's ``oracle.json`` and ``trial.json`` atomically.

    keras-tuner writes them in place: a process killed during a write leaves
    a truncated file, and the rerun that should resume the search cannot read
    it. Mixed into every oracle a search uses.
    """

    def save(self):
        write_atomic(self._get_oracle_fname(), json.dumps(self.get_state()))

    def _save_trial(self, trial):
        path = os.path.join(self._get_trial_dir(trial.trial_id), "trial.json")
        write_atomic(path, json.dumps(trial.get_state()))


class DropoutGridOracle(_AtomicFiles, keras_tuner.Oracle):
    """Grid search over a fixed list of points, in the list's order.

    `tuner.search` gives it `tuner.SearchSpace.grid_points`, which visits
    every position before a second rate, so a search cut short by
    ``max_trials`` still compares positions. Each new trial takes the first
    point that no trial has taken yet: a reloaded search goes on where it
    stopped and never runs a point twice (an interrupted trial is rerun by
    keras-tuner with its own values).

    Args:
        points: Dicts of hyperparameter values, in the order to try them.
        **kwargs: `keras_tuner.Oracle` arguments.
    """

    def __init__(self, points, **kwargs):
        super().__init__(**kwargs)
        self.points = [dict(p) for p in points]

    def populate_space(self, trial_id):
        status = keras_tuner.engine.trial.TrialStatus
        taken = [t.hyperparameters.values for i, t in self.trials.items() if i != trial_id]
        for point in self.points:
            if not any(all(values.get(k) == v for k, v in point.items()) for values in taken):
                return {"status": status.RUNNING, "values": dict(point)}
        if self.ongoing_trials:
            return {"status": status.IDLE, "values": None}
        return {"status": status.STOPPED, "values": None}


def make_oracle(name, max_trials, epochs, seed, max_consecutive_failed_trials=3, points=(), objective=OBJECTIVE):
    """The oracle of a search, maximising ``objective``.

    Args:
        name: One of `keras_vs.vocab.ORACLES`.
        max_trials: Trials to run (not used by Hyperband).
        epochs: Hyperband's largest per-trial budget.
        seed: Seeds the oracle's sampling.
        max_consecutive_failed_trials: Stop after this many failed trials in
            a row.
        points: The grid's points, in order (``"grid"`` only).
        objective: One of `tuner.config.OBJECTIVES`: ``"val_accuracy"``, or
            ``"val_accuracy_recalibrated"`` (after BN re-estimation).

    Returns:
        A `keras_tuner.Oracle`.
    """
    common = dict(
        objective=keras_tuner.Objective(check_objective(objective), "max"),
        seed=seed,
        max_consecutive_failed_trials=max_consecutive_failed_trials,
    )
    if name == "grid":
        return DropoutGridOracle(points, max_trials=max_trials, **common)
    if name == "hyperband":
        return _atomic(keras_tuner.oracles.HyperbandOracle)(max_epochs=epochs, factor=3, **common)
    base = {"random": keras_tuner.oracles.RandomSearchOracle,
            "bayesian": keras_tuner.oracles.BayesianOptimizationOracle}[name]
    return _atomic(base)(max_trials=max_trials, **common)


@functools.lru_cache(maxsize=None)
def _atomic(oracle_class):
    """``oracle_class`` with `_AtomicFiles` mixed in."""
    return type(oracle_class.__name__, (_AtomicFiles, oracle_class), {"__module__": __name__})


def trial_callbacks(tuner, callbacks, trial):
    """Deep copies of the user's callbacks for one trial, as keras-tuner's `Tuner.run_trial` makes.

    A `keras.callbacks.TensorBoard` among them logs to
    ``<log_dir>/<trial_id>/execution0`` with the trial's hyperparameters;
    the callbacks that write files get a path per trial too, so that no trial
    overwrites another's: `keras.callbacks.CSVLogger` ``log.csv`` ->
    ``log_<trial_id>.csv``, `keras.callbacks.ModelCheckpoint` ``best.keras``
    -> ``best_<trial_id>.keras``, `keras.callbacks.BackupAndRestore`
    ``backup_dir`` -> ``<backup_dir>/<trial_id>``.

    Args:
        tuner: The `keras_tuner.Tuner` running the trial.
        callbacks: The callbacks given to the search.
        trial: The `keras_tuner.engine.trial.Trial`.

    Returns:
        A list of new callbacks.
    """
    callbacks = copy.deepcopy(list(callbacks))
    configure = getattr(tuner, "_configure_tensorboard_dir", None)
    if configure is not None:
        configure(callbacks, trial, 0)
    for callback in callbacks:
        _per_trial_path(callback, trial.trial_id)
    return callbacks


def _with_trial(path, trial_id):
    """``log.csv`` -> ``log_<trial_id>.csv`` (a format field such as ``{epoch}`` stays as it is)."""
    folder, name = os.path.split(os.fspath(path))
    stem, ext = (name[: -len(".weights.h5")], ".weights.h5") if name.endswith(".weights.h5") \
        else os.path.splitext(name)
    return os.path.join(folder, f"{stem}_{trial_id}{ext}")


def _per_trial_path(callback, trial_id):
    """Points a file-writing Keras callback (a per-trial deep copy) at this trial's own path."""
    import keras

    if isinstance(callback, keras.callbacks.CSVLogger):
        callback.filename = _with_trial(callback.filename, trial_id)
    elif isinstance(callback, keras.callbacks.ModelCheckpoint):
        callback.filepath = _with_trial(callback.filepath, trial_id)
    elif isinstance(callback, keras.callbacks.BackupAndRestore):
        # Its file paths derive from backup_dir in __init__: run it again with the same settings.
        settings = {name: getattr(callback, name)
                    for name in ("save_freq", "delete_checkpoint", "double_checkpoint")
                    if hasattr(callback, name)}
        keras.callbacks.BackupAndRestore.__init__(
            callback, backup_dir=os.path.join(os.fspath(callback.backup_dir), str(trial_id)),
            **settings)
