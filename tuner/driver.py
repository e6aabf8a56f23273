"""The search driver: `search`, a keras-tuner search over dropout position, type and rate that
records the variance shift of every trial.

Each trial builds the network for its hyperparameters (seeded, so weights
and data order depend only on the seed), trains it with the paper's recipe,
measures the variance-shift statistic of every BN with
`keras_vs.VarianceShiftCallback` at the end of each epoch and, once trained,
the train/inference inconsistency (`keras_vs.prediction_inconsistency`) on
training examples. These numbers are reported to the oracle as metrics next
to ``val_accuracy`` and written, with the per-epoch history, to
``trial_<id>/keras_vs.json``. A trial whose loss diverges (NaN/inf) or that
runs out of memory is marked failed and the search goes on.

The search directory is keras-tuner's: rerunning the same search resumes it
(finished trials are kept, an interrupted one is rerun), and keras-tuner's
chief/worker mode (``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP``,
``KERASTUNER_ORACLE_PORT``) spreads trials over processes that share it.
At the end the chief (or the only process) writes ``results.csv``,
``results.json``, ``results.png`` and ``best_model.keras`` next to the trials.
"""

import contextlib
import copy
import csv
import dataclasses
import functools
import io
import json
import math
import numbers
import os
import shutil
import time
import warnings

import keras
import keras_tuner
import numpy as np

import keras_vs
from keras_vs import data as data_lib
from keras_vs import vocab
from keras_vs.files import atomic_path, save_figure, write_atomic
from tuner import distribute
from tuner.hypermodel import DropoutHyperModel

ORACLES = vocab.ORACLES
OBJECTIVE = "val_accuracy"
CONFIG_FILE = "search_config.json"
TRIAL_FILE = "keras_vs.json"
WEIGHTS_FILE = "model.weights.h5"
RESULT_FILES = ("results.csv", "results.json", "results.png", "best_model.keras")
DEFAULT_DIRECTORY = "keras_vs_tune"
DEFAULT_PROBE_SIZE = 256
# The default search (``keras-vs tune`` without flags): the paper's
# experiment in miniature on the offline digits set. Every zoo position, rate
# 0.2 and 0.5 Bernoulli dropout and beta 0.5 Uout, plus no dropout: 10 grid
# points, each trained 8 epochs (a few minutes on 2 CPU cores).
DEFAULT_MODEL = "wrn-10-1"
DEFAULT_DATASET = "digits"
DEFAULT_ORACLE = "grid"
DEFAULT_MAX_TRIALS = 10
DEFAULT_EPOCHS = 8
DEFAULT_BATCH_SIZE = 128
DEFAULT_RATES = (0.2, 0.5)
DEFAULT_BETAS = (0.5,)


def _now():
    return time.time()


# ---------------------------------------------------------------------------
# Files


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _dump(value):
    return json.dumps(_json_safe(value), indent=2, sort_keys=True) + "\n"


# ---------------------------------------------------------------------------
# The tuner


def _is_out_of_memory(error):
    names = {type(e).__name__ for e in (error, error.__cause__, error.__context__) if e is not None}
    text = str(error)
    return (
        isinstance(error, MemoryError)
        or "ResourceExhaustedError" in names
        or "RESOURCE_EXHAUSTED" in text
        or "out of memory" in text.lower()
    )


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
        self._trial_start = _now()
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
        model = self._build(hp)
        previous = hp.values.get("tuner/trial_id")
        if previous is not None:  # Hyperband continues a promising trial
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
                model.load_weights(self._weights_path(previous))
        shift_callback = keras_vs.VarianceShiftCallback(
            self.probe, probe_size=len(self.probe[1]), batch_size=self.batch_size
        )
        # The shift callback comes first: CSVLogger/TensorBoard callbacks
        # given by the user then see its variance_shift/* entries.
        all_callbacks = [shift_callback, keras.callbacks.TerminateOnNaN()]
        all_callbacks += self._trial_callbacks(callbacks, trial)
        x, y = (train, None) if not isinstance(train, tuple) else train
        try:
            history = model.fit(
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
        logs = history.history
        losses = logs.get("loss", [])
        message = None
        if len(losses) < epochs - initial_epoch or not all(math.isfinite(v) for v in losses):
            where = next((i for i, v in enumerate(losses) if not math.isfinite(v)), len(losses) - 1)
            message = f"diverged: loss {losses[where] if losses else 'nan'} at epoch {initial_epoch + where + 1}"
        elif not all(np.all(np.isfinite(w)) for w in model.get_weights()):
            # Some backends' losses stay finite on NaN outputs (JAX clips
            # them away), so the weights are checked too.
            message = f"diverged: non-finite weights after epoch {initial_epoch + len(losses)}"
        if message is not None:
            self._write_trial(trial, "FAILED", logs, {}, message)
            raise keras_tuner.errors.FailedTrialError(f"Trial {trial.trial_id} {message}.")
        inconsistency = keras_vs.prediction_inconsistency(model, self.probe, batch_size=self.batch_size)
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
        self.save_model(trial.trial_id, model)
        self._write_trial(trial, "COMPLETED", logs, metrics, "")
        return metrics

    def _trial_callbacks(self, callbacks, trial):
        """Deep copies of the user's callbacks, TensorBoard logging to its own folder per trial.

        As keras-tuner's `Tuner.run_trial`: a TensorBoard callback writes to
        ``<log_dir>/<trial_id>/execution0`` with the trial's hyperparameters.
        """
        callbacks = copy.deepcopy(list(callbacks))
        configure = getattr(self, "_configure_tensorboard_dir", None)
        if configure is not None:
            configure(callbacks, trial, 0)
        return callbacks

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        self.ran.append(trial.trial_id)
        record = read_trial_file(self.get_trial_dir(trial.trial_id)) or {}
        if self.summaries:
            print(summary_line(trial_row(trial, record)), flush=True)

    # -- files ---------------------------------------------------------------
    def _weights_path(self, trial_id):
        return os.path.join(self.get_trial_dir(trial_id), WEIGHTS_FILE)

    def save_model(self, trial_id, model, step=0):
        with atomic_path(self._weights_path(trial_id)) as tmp:
            model.save_weights(tmp)

    def load_model(self, trial):
        model = self._build(trial.hyperparameters)
        with warnings.catch_warnings():
            # The file also holds the trained optimizer's variables, which a
            # freshly compiled model does not have yet; only weights matter.
            warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
            model.load_weights(self._weights_path(trial.trial_id))
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
            "seconds": _now() - getattr(self, "_trial_start", _now()),
            "message": message,
        }
        write_atomic(os.path.join(self.get_trial_dir(trial.trial_id), TRIAL_FILE), _dump(record))


def read_trial_file(trial_dir):
    """The ``keras_vs.json`` record of a trial folder, or None."""
    path = os.path.join(trial_dir, TRIAL_FILE)
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


# ---------------------------------------------------------------------------
# Results


def trial_number(trial_id):
    """keras-tuner's "Trial #N" of a trial id: ``"00"`` is Trial #1."""
    return int(trial_id) + 1


def trial_row(trial, record=None):
    """One results row (a flat dict) for a keras-tuner `Trial`."""
    values = trial.hyperparameters.values
    position = values.get("dropout_position")
    dropout_type = values.get("dropout_type") if position not in ("none", "remove") else None
    rate = None
    if dropout_type == "bernoulli":
        rate = values.get("dropout_rate")
    elif dropout_type == "uout":
        rate = values.get("uout_beta")
    row = {
        "trial_id": trial.trial_id,
        "trial_number": trial_number(trial.trial_id),
        "status": str(trial.status),
        "position": position,
        "type": dropout_type or "-",
        "rate": 0.0 if rate is None else float(rate),
    }
    for name in (
        OBJECTIVE, "val_loss", "variance_shift_max", "variance_shift_mean",
        "train_mode_accuracy", "inference_accuracy", "inconsistency_gap", "disagreement",
    ):
        metric = None
        if trial.metrics.exists(name):
            metric = trial.metrics.get_last_value(name)
        elif record and name in record.get("metrics", {}):
            metric = record["metrics"][name]
        # NaN (e.g. the shift of a diverged model) is reported as missing.
        row[name] = float(metric) if metric is not None and math.isfinite(metric) else None
    record = record or {}
    row["tuner_id"] = record.get("tuner_id")
    row["seconds"] = record.get("seconds")
    message = record.get("message") or (trial.message or "").strip().splitlines()[-1:] or [""]
    row["message"] = message if isinstance(message, str) else message[0]
    return row


def _cell(row, key, fmt):
    value = row.get(key)
    if value is None:
        return "-"
    return fmt.format(value)


def format_table(rows):
    """The results table as text (one line per trial)."""
    header = (
        f"{'trial':>5} {'id':>3} {'status':<9} {'position':<11} {'type':<9} {'rate':>5} "
        f"{'val acc':>7} {'max shift':>9} {'train acc: train mode':>21} {'inference':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{'#' + str(r['trial_number']):>5} {r['trial_id']:>3} {r['status']:<9} "
            f"{str(r['position']):<11} {r['type']:<9} "
            f"{_cell(r, 'rate', '{:g}'):>5} {_cell(r, OBJECTIVE, '{:.4f}'):>7} "
            f"{_cell(r, 'variance_shift_max', '{:.3f}'):>9} "
            f"{_cell(r, 'train_mode_accuracy', '{:.4f}'):>21} {_cell(r, 'inference_accuracy', '{:.4f}'):>9}"
        )
    return "\n".join(lines)


def summary_line(row):
    """A one-line summary of a finished trial."""
    what = f"{row['position']}" + (f", {row['type']} {row['rate']:g}" if row["type"] != "-" else "")
    name = f"[keras-vs] Trial #{row['trial_number']} (trial_id {row['trial_id']}: {what})"
    if row["status"] != "COMPLETED":
        return f"{name}: {row['status']} {row.get('message') or ''}".rstrip()
    text = f"{name}: val_accuracy {row[OBJECTIVE]:.4f}"
    if row.get("variance_shift_max") is not None:
        text += f", max variance shift {row['variance_shift_max']:.3f}"
    text += (
        f", train-set accuracy {row['train_mode_accuracy']:.4f} (training mode) vs "
        f"{row['inference_accuracy']:.4f} (inference mode)"
    )
    if row.get("seconds") is not None:
        text += f" [{row['seconds']:.1f}s]"
    return text


_CSV_FIELDS = (
    "trial_id", "trial_number", "status", "position", "type", "rate", OBJECTIVE, "val_loss", "variance_shift_max",
    "variance_shift_mean", "train_mode_accuracy", "inference_accuracy", "inconsistency_gap",
    "disagreement", "tuner_id", "seconds", "message",
)


def _csv_text(rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in _CSV_FIELDS})
    return out.getvalue()


def plot_results(rows, path, title=""):
    """Writes accuracy and max variance shift against rate, one line per position/type."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    done = [r for r in rows if r["status"] == "COMPLETED"]
    fig, (ax_acc, ax_shift) = plt.subplots(1, 2, figsize=(10, 4))
    groups = {}
    for r in done:
        key = "no dropout" if r["type"] == "-" else f"{r['position']} / {r['type']}"
        groups.setdefault(key, []).append(r)
    baseline = groups.get("no dropout", [])
    for key, group in sorted(groups.items()):
        if key.endswith("/ bernoulli"):
            group = baseline + group  # rate 0 is the network without dropout
        by_rate = {}
        for r in group:
            by_rate.setdefault(r["rate"], []).append(r)
        rates = sorted(by_rate)

        def mean(name):
            out = []
            for rate in rates:
                vals = [r[name] for r in by_rate[rate] if r.get(name) is not None]
                out.append(float(np.mean(vals)) if vals else np.nan)
            return out

        ax_acc.plot(rates, mean(OBJECTIVE), marker="o", label=key)
        ax_shift.plot(rates, mean("variance_shift_max"), marker="o", label=key)
    ax_acc.set_xlabel("dropout rate (Uout: beta)")
    ax_acc.set_ylabel("validation accuracy")
    ax_shift.set_xlabel("dropout rate (Uout: beta)")
    ax_shift.set_ylabel("max variance shift over BN layers")
    ax_shift.axhline(1.0, color="gray", linewidth=0.8, linestyle="--")
    if groups:
        ax_acc.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


@dataclasses.dataclass
class SearchResult:
    """What a search produced.

    Attributes:
        rows: One dict per trial (see `format_table`); empty on a worker.
        best: The best completed row, or None.
        project_dir: The search folder.
        files: Paths of the written result files, by kind (empty on a worker).
        ran: Trial ids this process ran.
        role: ``"single"``, ``"chief"`` or ``"worker"``.
        tuner: The `DropoutTuner` that ran the search (None on a worker).
    """

    rows: list
    best: object
    project_dir: str
    files: dict
    ran: list
    role: str
    tuner: object = dataclasses.field(default=None, repr=False)

    def table(self):
        """The results table as text."""
        return format_table(self.rows)

    def load_model(self, trial_id):
        """The trained model of a completed trial, rebuilt from its saved weights.

        Args:
            trial_id: A ``trial_id`` of `rows` (keras-tuner's ids are strings
                such as ``"03"``; the same number as an int is accepted).

        Returns:
            The compiled `keras.Model` with the trial's trained weights.
        """
        if self.tuner is None:
            raise ValueError(
                "Trained models are loaded on the chief (or a single process), not on a "
                f"worker. Received: role={self.role!r}"
            )
        trials = self.tuner.oracle.trials
        if isinstance(trial_id, numbers.Integral) and not isinstance(trial_id, bool):
            trial_id = next((t for t in trials if int(t) == trial_id), trial_id)
        if trial_id not in trials or str(trials[trial_id].status) != "COMPLETED":
            done = [t for t, trial in sorted(trials.items()) if str(trial.status) == "COMPLETED"]
            raise ValueError(
                f"Expected the id of a completed trial ({', '.join(done) or 'none'}). "
                f"Received: trial_id={trial_id!r}"
            )
        return self.tuner.load_model(trials[trial_id])


# ---------------------------------------------------------------------------
# Data


def _load_data(dataset, batch_size, seed, data_dir, download, probe_size, take):
    """Returns ``(train, validation, probe, num_classes, input_shape, steps_per_epoch)``."""
    if isinstance(dataset, tuple) and len(dataset) == 2:
        (x_train, y_train), (x_val, y_val) = dataset
        x_train, y_train = np.asarray(x_train), np.asarray(y_train)
        x_val, y_val = np.asarray(x_val), np.asarray(y_val)
        num_classes = int(max(y_train.max(), y_val.max())) + 1
    elif isinstance(dataset, (str, os.PathLike)) and os.fspath(dataset) in data_lib.TFDS_NAMES:
        spec = data_lib.spec(os.fspath(dataset))
        kwargs = dict(data_dir=data_dir, download=download, seed=seed)
        train = data_lib.tfds_dataset(spec.name, "train", batch_size, True, take=take, **kwargs)
        val = data_lib.tfds_dataset(spec.name, "test", batch_size, False, **kwargs)
        px, py = [], []
        for xb, yb in train:
            px.append(xb.numpy())
            py.append(yb.numpy())
            if sum(len(b) for b in py) >= probe_size:
                break
        probe = (np.concatenate(px)[:probe_size], np.concatenate(py)[:probe_size])
        # TFDS datasets know their size; the schedule needs steps per epoch.
        steps = int(train.cardinality())
        if steps < 1:
            raise ValueError(
                f"Could not tell the number of batches per epoch of {spec.name!r}. "
                f"Received: cardinality={steps}"
            )
        return train, val, probe, spec.num_classes, spec.input_shape, steps
    else:
        x_train, y_train = data_lib.load(dataset, "train")
        x_val, y_val = data_lib.load(dataset, "test")
        if y_train is None:
            raise ValueError(f"The data set has no labels (array 'y'). Received: dataset={dataset!r}")
        if os.fspath(dataset) == "digits":
            num_classes = data_lib.spec("digits").num_classes
        else:
            num_classes = int(np.max(y_train)) + 1
            # A .npz file has one split: hold out a fixed 20% for validation.
            order = np.random.default_rng(seed).permutation(len(x_train))
            cut = max(1, len(order) // 5)
            x_val, y_val = x_train[order[:cut]], y_train[order[:cut]]
            x_train, y_train = x_train[order[cut:]], y_train[order[cut:]]
    if take is not None:
        x_train, y_train = x_train[:take], y_train[:take]
    probe = (x_train[:probe_size], y_train[:probe_size])
    steps = max(1, math.ceil(len(x_train) / batch_size))
    return (x_train, y_train), (x_val, y_val), probe, num_classes, tuple(x_train.shape[1:]), steps


# ---------------------------------------------------------------------------
# The search


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

    `search` gives it `DropoutHyperModel.grid_points`, which visits every
    position before a second rate, so a search cut short by ``max_trials``
    still compares positions. Each new trial takes the first point that no
    trial has taken yet: a reloaded search goes on where it stopped and never
    runs a point twice (an interrupted trial is rerun by keras-tuner with its
    own values).

    Args:
        points: Dicts of hyperparameter values, in the order to try them.
        **kwargs: `keras_tuner.Oracle` arguments.
    """

    def __init__(self, points, **kwargs):
        super().__init__(**kwargs)
        self.points = [dict(p) for p in points]

    def populate_space(self, trial_id):
        taken = [t.hyperparameters.values for i, t in self.trials.items() if i != trial_id]
        for point in self.points:
            if not any(all(values.get(k) == v for k, v in point.items()) for values in taken):
                return {"status": keras_tuner.engine.trial.TrialStatus.RUNNING, "values": dict(point)}
        if self.ongoing_trials:
            return {"status": keras_tuner.engine.trial.TrialStatus.IDLE, "values": None}
        return {"status": keras_tuner.engine.trial.TrialStatus.STOPPED, "values": None}


def _oracle(name, max_trials, epochs, seed, max_consecutive_failed_trials, points=()):
    common = dict(
        objective=keras_tuner.Objective(OBJECTIVE, "max"),
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


def _role():
    tuner_id = os.environ.get("KERASTUNER_TUNER_ID")
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "single"
    return "chief" if tuner_id == "chief" else "worker"


def _prepare_project(project_dir, config, overwrite, role):
    config_path = os.path.join(project_dir, CONFIG_FILE)
    # Temp files of a concurrent chief/worker writing the config do not count.
    present = [n for n in os.listdir(project_dir) if not n.startswith(".tmp-")] if os.path.isdir(project_dir) else []
    if present:
        if not os.path.isfile(config_path):
            raise ValueError(
                f"The search folder {project_dir!r} exists and holds files that keras-vs did not "
                "write; refusing to touch them. Choose another directory or project name. "
                f"Received: project_dir={project_dir!r}"
            )
        with open(config_path) as f:
            old = json.load(f)
        if overwrite and role != "worker":
            shutil.rmtree(project_dir)
        elif old != _json_safe(config):
            diff = sorted(k for k in set(old) | set(config) if old.get(k) != _json_safe(config).get(k))
            details = ", ".join(f"{k}: {old.get(k)!r} -> {_json_safe(config).get(k)!r}" for k in diff)
            raise ValueError(
                f"The search in {project_dir!r} was started with different settings ({details}). "
                "Rerun with the same settings to resume it, choose another project name "
                "(keras-vs tune: --project), or pass overwrite=True (keras-vs tune: --restart) "
                f"to start again. Received: {details}"
            )
    os.makedirs(project_dir, exist_ok=True)
    if not os.path.isfile(config_path):
        write_atomic(config_path, _dump(config))


def _check_int(name, value, minimum=1, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"Expected {name} to be an integer >= {minimum}. Received: {name}={value!r}")
    return int(value)


def _point_text(values):
    text = values["dropout_position"]
    rate = values.get("dropout_rate", values.get("uout_beta"))
    return text + (f" {values['dropout_type']} {rate:g}" if rate is not None else "")


def default_project_name(model, dataset, oracle):
    """``"<model>-<dataset>-<oracle>"`` with unsafe characters replaced."""
    model_name = model if isinstance(model, str) else getattr(model, "name", "model")
    dataset_name = (
        os.path.splitext(os.path.basename(os.fspath(dataset)))[0]
        if isinstance(dataset, (str, os.PathLike))
        else "arrays"
    )
    text = f"{model_name}-{dataset_name}-{oracle}"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in text)


def search(
    model=DEFAULT_MODEL,
    dataset=DEFAULT_DATASET,
    *,
    oracle=DEFAULT_ORACLE,
    max_trials=DEFAULT_MAX_TRIALS,
    epochs=DEFAULT_EPOCHS,
    batch_size=DEFAULT_BATCH_SIZE,
    seed=0,
    positions=None,
    types=("bernoulli", "uout"),
    rates=DEFAULT_RATES,
    betas=DEFAULT_BETAS,
    learning_rate=None,
    weight_decay=None,
    directory=DEFAULT_DIRECTORY,
    project_name=None,
    overwrite=False,
    strategy="auto",
    data_dir=None,
    download=False,
    take=None,
    probe_size=DEFAULT_PROBE_SIZE,
    max_consecutive_failed_trials=3,
    callbacks=(),
    verbose=1,
    fit_verbose=None,
    export=True,
    model_options=None,
    loss=None,
    optimizer=None,
    from_logits=None,
):
    """Searches dropout position, type and rate; records variance shift per trial.

    One seed fixes the oracle's choices and, in every trial, the initial
    weights, dropout masks and data order: on CPU two runs of the default
    search print the same table. GPU kernels may still change the last
    digits between runs; call `tf.config.experimental.enable_op_determinism()`
    first for bitwise repeatable trials there (slower).

    Args:
        model: A zoo name (`zoo.list_models`) or a user's `keras.Model` (its
            dropouts are moved with `keras_vs.rewrite`; see
            `tuner.DropoutHyperModel`).
        dataset: ``"digits"``, ``"cifar10"``, ``"cifar100"``,
            ``"imagenet2012"``, a ``.npz`` file with ``x`` and ``y`` (20% held
            out for validation), or ``((x_train, y_train), (x_val, y_val))``.
        oracle: ``"random"``, ``"bayesian"``, ``"hyperband"`` or ``"grid"``.
        max_trials: Trials to run (not used by Hyperband, whose budget is
            ``epochs``).
        epochs: Epochs per trial.
        batch_size: Global batch size.
        seed: Seeds the oracle's sampling and every trial's weights, dropout
            masks and data order.
        positions, types, rates, betas: The search space (see
            `tuner.DropoutHyperModel`).
        learning_rate, weight_decay: Override the paper's recipe (the
            learning rate is given at batch size 128 and scaled linearly), or
            the optimizer's own.
        directory: Parent folder of the search folder.
        project_name: Search folder name; defaults to
            ``"<model>-<dataset>-<oracle>"``.
        overwrite: Delete an earlier search of the same folder instead of
            resuming it (only a folder keras-vs wrote is ever deleted).
        strategy: ``"auto"``, ``"none"``, ``"mirrored"``, ``"tpu"`` or
            ``"multi_worker"`` (see `tuner.distribute.get_strategy`), a
            `tf.distribute.Strategy` (TensorFlow) or a
            `keras.distribution.Distribution` such as ``DataParallel`` (JAX:
            set as Keras' global distribution for the search, then restored).
        data_dir, download: Passed to TensorFlow Datasets.
        take: Use only the first ``take`` training examples.
        probe_size: Training examples used to measure the variance shift and
            the inconsistency.
        max_consecutive_failed_trials: Stop after this many failed trials in
            a row.
        callbacks: Extra Keras callbacks for every trial, deep-copied per
            trial as keras-tuner does; a `keras.callbacks.TensorBoard` logs
            each trial to ``<log_dir>/<trial_id>/execution0``. They run after
            the variance-shift callback, so a CSVLogger or TensorBoard
            records ``variance_shift/*`` too.
        verbose: keras-tuner's progress display and the one-line summary
            per trial (0 silences both).
        fit_verbose: ``verbose`` of each trial's `keras.Model.fit`; None
            follows ``verbose``, as keras-tuner passes its own to ``fit``.
        export: Write the result files and the best model.
        model_options: Extra zoo builder arguments, e.g. ``{"width": 4}``
            (see `tuner.DropoutHyperModel`).
        loss, optimizer, from_logits: The training setup (see
            `tuner.training`): a user model keeps its own loss, metrics and
            optimizer when compiled; a zoo network uses the paper's recipe.

    Returns:
        A `SearchResult`.

    Example:

    >>> result = search("densenet-bc-22-4", "digits", max_trials=1, epochs=1,
    ...                 take=64, directory=tmp, verbose=0)  # doctest: +SKIP
    >>> result.rows[0]["status"]  # doctest: +SKIP
    'COMPLETED'
    """
    if oracle not in ORACLES:
        raise ValueError(f"Unknown oracle. Expected one of {', '.join(ORACLES)}. Received: oracle={oracle!r}")
    max_trials = _check_int("max_trials", max_trials)
    epochs = _check_int("epochs", epochs)
    batch_size = _check_int("batch_size", batch_size)
    probe_size = _check_int("probe_size", probe_size)
    take = _check_int("take", take, allow_none=True)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"Expected seed to be an integer. Received: seed={seed!r}")
    role = _role()
    if isinstance(strategy, str):
        strategy_obj = distribute.get_strategy(strategy)
    else:
        strategy_obj = strategy
    train, val, probe, num_classes, input_shape, steps = _load_data(
        dataset, batch_size, seed, data_dir, download, probe_size, take
    )
    train, val, steps = distribute.even_batches(strategy_obj, train, val, batch_size, steps)
    hypermodel = DropoutHyperModel(
        model,
        num_classes=num_classes,
        input_shape=input_shape,
        positions=positions,
        types=types,
        rates=rates,
        betas=betas,
        epochs=epochs,
        steps_per_epoch=steps,
        batch_size=batch_size,
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        model_options=model_options,
        loss=loss,
        optimizer=optimizer,
        from_logits=from_logits,
    )
    project_name = project_name or default_project_name(model, dataset, oracle)
    directory = os.fspath(directory)
    project_dir = os.path.join(directory, project_name)
    config = {
        "model": model if isinstance(model, str) else f"user model {model.name!r}",
        "dataset": dataset if isinstance(dataset, str) else (
            os.fspath(dataset) if isinstance(dataset, os.PathLike) else "arrays"),
        "oracle": oracle,
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": int(seed),
        "positions": list(hypermodel.positions),
        "types": list(hypermodel.types),
        "rates": list(hypermodel.rates),
        "betas": list(hypermodel.betas),
        "learning_rate": hypermodel.recipe.learning_rate,
        "weight_decay": hypermodel.recipe.weight_decay,
        "take": take,
        "probe_size": probe_size,
    }
    if hypermodel.model_options:  # absent otherwise: earlier searches still resume
        config["model_options"] = hypermodel.model_options
    if not hypermodel.training.is_recipe_default():
        config["training"] = hypermodel.training.config()  # likewise absent for the zoo's recipe
    points = hypermodel.grid_points()
    if verbose > 0 and role != "worker":
        setup = hypermodel.training.describe()
        print(f"[keras-vs] every trial: loss {setup['loss']}, optimizer {setup['optimizer']}",
              flush=True)
    if oracle == "grid" and max_trials < len(points):
        warnings.warn(
            f"the grid has {len(points)} points and max_trials={max_trials} runs the first "
            f"{max_trials} (every position before a second rate): "
            + ", ".join(_point_text(p) for p in points[:max_trials]),
            stacklevel=2,
        )
    _prepare_project(project_dir, config, overwrite, role)
    tuner = DropoutTuner(
        _oracle(oracle, max_trials, epochs, int(seed), max_consecutive_failed_trials, points),
        hypermodel,
        probe=probe,
        epochs=epochs,
        batch_size=batch_size,
        seed=int(seed),
        fit_verbose=verbose if fit_verbose is None else fit_verbose,
        summaries=verbose > 0,
        directory=directory,
        project_name=project_name,
        distribution_strategy=distribute.tuner_strategy(strategy_obj),
        overwrite=False,
    )
    with distribute.distributed(strategy_obj):
        tuner.search(train, val, callbacks=list(callbacks), verbose=verbose)
    if role == "worker":
        return SearchResult([], None, project_dir, {}, list(tuner.ran), role)
    rows = collect_rows(tuner.oracle, tuner.project_dir)
    best = _best(rows)
    files = {}
    if export:
        files = export_results(tuner, rows, best, config, project_dir)
    return SearchResult(rows, best, project_dir, files, list(tuner.ran), role, tuner)


def collect_rows(oracle, project_dir):
    """Result rows of every trial an oracle knows, in trial order."""
    rows = []
    for trial_id in sorted(oracle.trials):
        trial = oracle.trials[trial_id]
        record = read_trial_file(os.path.join(project_dir, f"trial_{trial_id}"))
        rows.append(trial_row(trial, record))
    return rows


def _best(rows):
    done = [r for r in rows if r["status"] == "COMPLETED" and r.get(OBJECTIVE) is not None]
    if not done:
        return None
    # Ties go to the earlier trial: the order is reproducible.
    return max(done, key=lambda r: (r[OBJECTIVE], -int(r["trial_id"])))


def export_results(tuner, rows, best, config, project_dir):
    """Writes results.csv/.json/.png and best_model.keras (atomically)."""
    paths = {kind: os.path.join(project_dir, name) for kind, name in zip(("csv", "json", "png", "model"), RESULT_FILES)}
    write_atomic(paths["csv"], _csv_text(rows))
    write_atomic(paths["json"], _dump({"config": config, "best": best, "trials": rows}))
    plot_results(rows, paths["png"], title=f"{config['model']} on {config['dataset']}")
    if best is None:
        paths.pop("model")
        return paths
    model = tuner.load_model(tuner.oracle.trials[best["trial_id"]])
    # Keras builds the optimizer of a loaded compiled model: build it here
    # too, so the saved state matches and loading warns about nothing.
    if model.optimizer is not None and not model.optimizer.built:
        strategy = tuner.distribution_strategy
        with strategy.scope() if strategy is not None else contextlib.nullcontext():
            model.optimizer.build(model.trainable_variables)
    with atomic_path(paths["model"]) as tmp:
        model.save(tmp)
    return paths
