"""`DropoutTuner`: the keras-tuner `Tuner` that trains, measures and records each trial.

Each trial builds the network for its hyperparameters (seeded, so weights
and data order depend only on the seed), trains it, measures the
variance-shift statistic of every BN with `keras_vs.VarianceShiftCallback`
at the end of each epoch and, once trained, the train/inference
inconsistency (`keras_vs.prediction_inconsistency`) on training examples,
and ``val_accuracy_recalibrated``: the validation accuracy after precise BN
re-estimation (`keras_vs.recalibrate_bn`, one forward pass over the training
data, then one evaluation; a model without BN records its ``val_accuracy``).
These numbers are reported to the oracle as metrics next to
``val_accuracy`` (either can be the objective) and written, with the
per-epoch history, to ``trial_<id>/keras_vs.json``. A trial whose loss diverges (NaN/inf) or that
runs out of memory is marked failed and the search goes on.
"""

import math
import os
import time
import warnings

import keras
import keras_tuner
import numpy as np

import keras_vs
from keras_vs import probe as probe_lib
from keras_vs.files import atomic_path
from tuner import distribute
from tuner import oracles
from tuner import project as project_lib
from tuner import results
from tuner.config import OBJECTIVE, RECALIBRATED_OBJECTIVE

__all__ = ["DropoutTuner"]


def _is_out_of_memory(error):
    names = {type(e).__name__ for e in (error, error.__cause__, error.__context__) if e is not None}
    text = str(error)
    return (
        isinstance(error, MemoryError)
        or "ResourceExhaustedError" in names
        or "RESOURCE_EXHAUSTED" in text
        or "out of memory" in text.lower()
    )


def _divergence(logs, epochs, initial_epoch, model):
    """Why a trained model diverged ("diverged: ..."), or None."""
    losses = logs.get("loss", [])
    if len(losses) < epochs - initial_epoch or not all(math.isfinite(v) for v in losses):
        where = next((i for i, v in enumerate(losses) if not math.isfinite(v)), len(losses) - 1)
        return f"diverged: loss {losses[where] if losses else 'nan'} at epoch {initial_epoch + where + 1}"
    if not all(np.all(np.isfinite(w)) for w in model.get_weights()):
        # Some backends' losses stay finite on NaN outputs (JAX clips them
        # away), so the weights are checked too.
        return f"diverged: non-finite weights after epoch {initial_epoch + len(losses)}"
    return None


def _trial_metrics(logs, inconsistency):
    """The metrics a trial reports: last-epoch accuracy and loss, inconsistency, variance shift."""
    metrics = {
        OBJECTIVE: float(logs[OBJECTIVE][-1]),
        "val_loss": float(logs["val_loss"][-1]),
        "accuracy": float(logs["accuracy"][-1]),
        "loss": float(logs["loss"][-1]),
        "train_mode_accuracy": float(inconsistency.train_mode_accuracy),
        "inference_accuracy": float(inconsistency.inference_accuracy),
        "inconsistency_gap": float(inconsistency.gap),
        "disagreement": float(inconsistency.disagreement),
    }
    if "variance_shift/max" in logs:
        metrics["variance_shift_max"] = float(logs["variance_shift/max"][-1])
        metrics["variance_shift_mean"] = float(logs["variance_shift/mean"][-1])
    return metrics


def _load_weights(model, path):
    with warnings.catch_warnings():
        # The file also holds the trained optimizer's variables, which a
        # freshly compiled model does not have yet; only weights matter.
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(path)


class DropoutTuner(keras_tuner.Tuner):
    """A keras-tuner `Tuner` whose trials record variance shift and inconsistency.

    ``search(train, validation_data)`` takes NumPy ``(x, y)`` tuples or
    `tf.data.Dataset` objects of ``(x, y)`` batches.

    Args:
        oracle: A keras-tuner `Oracle`.
        hypermodel: A `DropoutHyperModel`.
        probe: ``(x, y)`` NumPy training examples on which the variance shift
            and the inconsistency are measured.
        epochs: Epochs per trial (Hyperband overrides it per trial).
        batch_size: Batch size for NumPy data.
        seed: Seeds weights, dropout masks and data order of every trial.
        fit_verbose: ``verbose`` of `keras.Model.fit`.
        summaries: Print a one-line summary after each trial.
        **kwargs: `keras_tuner.Tuner` arguments (``directory``,
            ``project_name``, ``distribution_strategy``, ``overwrite``...).
    """

    def __init__(
        self, oracle, hypermodel, probe, epochs, batch_size=128, seed=0, fit_verbose=0, summaries=True, **kwargs
    ):
        super().__init__(oracle, hypermodel, **kwargs)
        self.summaries = summaries
        self.probe = probe
        self.epochs = epochs
        self.batch_size = batch_size
        self.seed = seed
        self.fit_verbose = fit_verbose
        self.ran = []  # trial ids this process ran

    # -- trials --------------------------------------------------------------
    def on_trial_begin(self, trial):
        # A trial interrupted after reporting is rerun from scratch: drop the
        # metrics of the lost run so they are not averaged with the new one.
        if len(trial.metrics.metrics):
            trial.metrics = type(trial.metrics)()
        self._trial_start = time.time()
        super().on_trial_begin(trial)

    def _build(self, hp):
        distribute.clear_session()  # keeps a JAX DataParallel set for the search
        keras.utils.set_random_seed(self.seed)
        if self.distribution_strategy is None:
            return self.hypermodel.build(hp)
        with self.distribution_strategy.scope():
            return self.hypermodel.build(hp)

    def run_trial(self, trial, train, validation_data, callbacks=(), **unused):
        hp = trial.hyperparameters
        epochs = hp.values.get("tuner/epochs", self.epochs)
        initial_epoch = hp.values.get("tuner/initial_epoch", 0)
        if self.summaries:  # building and the first epoch's compile: seconds without output
            print(f"[keras-vs] Trial #{int(trial.trial_id) + 1}: building the model and training "
                  f"{epochs - initial_epoch} epoch(s); the first compiles it", flush=True)
        model = self._build(hp)
        previous = hp.values.get("tuner/trial_id")
        if previous is not None:  # Hyperband continues a promising trial
            _load_weights(model, self._weights_path(previous))
        history = self._fit(trial, model, train, validation_data, callbacks, epochs, initial_epoch)
        logs = history.history
        message = _divergence(logs, epochs, initial_epoch, model)
        if message is not None:
            self._write_trial(trial, "FAILED", logs, {}, message)
            raise keras_tuner.errors.FailedTrialError(f"Trial {trial.trial_id} {message}.")
        inconsistency = keras_vs.prediction_inconsistency(model, self.probe, batch_size=self.batch_size)
        metrics = _trial_metrics(logs, inconsistency)
        self.save_model(trial.trial_id, model)  # as trained: before its BN statistics are re-estimated
        metrics[RECALIBRATED_OBJECTIVE] = self._recalibrated_accuracy(model, train, validation_data, logs)
        self._write_trial(trial, "COMPLETED", logs, metrics, "")
        return metrics

    def _recalibrated_accuracy(self, model, train, validation_data, logs):
        """The validation accuracy of ``model`` after precise BN re-estimation on ``train``.

        Re-estimates in place: the trial's model is only measured after its
        trained weights are saved (Hyperband continues from those, and
        ``best_model.keras`` and `SearchResult.load_model` give them), so no
        copy is built, compiled or traced. Cost: one forward pass over the
        training data (as the trial reads it: a `tf.data` pipeline with its
        augmentation, NumPy arrays in order) and one evaluation. A model with
        no BN to re-estimate is unchanged by it: its ``val_accuracy``.
        """
        if probe_lib.probe_for(model, "precise").model is None:
            return float(logs[OBJECTIVE][-1])
        keras_vs.recalibrate_bn(model, train, batch_size=self.batch_size, inplace=True, method="precise")
        x, y = (validation_data, None) if not isinstance(validation_data, tuple) else validation_data
        scores = model.evaluate(
            x, y, batch_size=self.batch_size if y is not None else None, verbose=0, return_dict=True
        )
        return float(scores[OBJECTIVE[len("val_"):]])  # the compiled metric that fit logs as val_accuracy

    def _fit(self, trial, model, train, validation_data, callbacks, epochs, initial_epoch):
        """`keras.Model.fit` of one trial; an out-of-memory error fails the trial, not the search."""
        shift_callback = keras_vs.VarianceShiftCallback(
            self.probe, probe_size=len(self.probe[1]), batch_size=self.batch_size
        )
        # The shift callback comes first: CSVLogger/TensorBoard callbacks
        # given by the user then see its variance_shift/* entries.
        all_callbacks = [shift_callback, keras.callbacks.TerminateOnNaN()]
        all_callbacks += oracles.trial_callbacks(self, callbacks, trial)
        x, y = (train, None) if not isinstance(train, tuple) else train
        try:
            return model.fit(
                x,
                y,
                batch_size=self.batch_size if y is not None else None,
                # A tf.data pipeline shuffles itself; fit warns if asked again.
                shuffle=y is not None,
                epochs=epochs,
                initial_epoch=initial_epoch,
                validation_data=validation_data,
                callbacks=all_callbacks,
                verbose=self.fit_verbose,
            )
        except Exception as e:  # noqa: BLE001  (only memory errors are turned into failures)
            if _is_out_of_memory(e):
                self._write_trial(trial, "FAILED", {}, {}, f"out of memory: {str(e).splitlines()[0]}")
                raise keras_tuner.errors.FailedTrialError(
                    f"Trial {trial.trial_id} ran out of memory ({type(e).__name__}); "
                    "try a smaller --batch_size or model."
                ) from e
            raise

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        self.ran.append(trial.trial_id)
        record = project_lib.read_trial_file(self.get_trial_dir(trial.trial_id)) or {}
        if self.summaries:
            print(results.summary_line(results.trial_row(trial, record)), flush=True)

    # -- files ---------------------------------------------------------------
    def _weights_path(self, trial_id):
        return os.path.join(self.get_trial_dir(trial_id), project_lib.WEIGHTS_FILE)

    def save_model(self, trial_id, model, step=0):
        with atomic_path(self._weights_path(trial_id)) as tmp:
            model.save_weights(tmp)

    def load_model(self, trial):
        model = self._build(trial.hyperparameters)
        _load_weights(model, self._weights_path(trial.trial_id))
        return model

    def _write_trial(self, trial, status, history, metrics, message):
        record = {
            "trial_id": trial.trial_id,
            "status": status,
            "tuner_id": self.tuner_id,
            "pid": os.getpid(),
            "hyperparameters": dict(trial.hyperparameters.values),
            "metrics": metrics,
            "history": {k: [float(v) for v in vs] for k, vs in history.items()},
            "seconds": time.time() - getattr(self, "_trial_start", time.time()),
            "message": message,
        }
        project_lib.write_trial_file(self.get_trial_dir(trial.trial_id), record)
