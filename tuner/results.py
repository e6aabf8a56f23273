"""The results of a search: one row per trial, as a table, CSV, JSON, a figure and a `SearchResult`.

A row is a flat dict: the trial's id and keras-tuner number, its status, the
dropout it tried, and its metrics (validation accuracy with the BN
statistics as trained and after precise re-estimation, the variance shift
of its BN layers, its accuracy on training examples in training and in
inference mode). The ``rate`` column holds the trial's amount of dropout:
the drop rate of a Bernoulli trial, the beta of a Uout trial (its ``type``
column says which), 0 for a trial without dropout.

Example:

>>> row = {"trial_id": "0", "trial_number": 1, "status": "FAILED", "position": "head",
...        "type": "uout", "rate": 0.5, "message": "diverged"}
>>> summary_line(row)
'[keras-vs] Trial #1 (trial_id 0: head, uout 0.5): FAILED diverged'
"""

import contextlib
import csv
import dataclasses
import io
import math
import numbers
import os

import numpy as np

from keras_vs.files import atomic_path, save_figure, write_atomic
from tuner import project as project_lib
from tuner import space as space_lib
from tuner.config import OBJECTIVE, RECALIBRATED_OBJECTIVE, check_objective

__all__ = [
    "SearchResult",
    "best_row",
    "collect_rows",
    "export_results",
    "format_table",
    "plot_results",
    "summary_line",
    "trial_row",
]

_METRICS = (
    OBJECTIVE, RECALIBRATED_OBJECTIVE, "val_loss", "variance_shift_max", "variance_shift_mean",
    "train_mode_accuracy", "inference_accuracy", "inconsistency_gap", "disagreement",
)
_CSV_FIELDS = (
    ("trial_id", "trial_number", "status", "position", "type", "rate") + _METRICS
    + ("tuner_id", "seconds", "message")
)


def trial_row(trial, record=None):
    """One results row (a flat dict) for a keras-tuner `Trial`.

    Args:
        trial: The keras-tuner `Trial`.
        record: Its ``keras_vs.json`` record (`tuner.project.read_trial_file`),
            for the metrics of a trial the oracle holds none of, the process
            that ran it and the time it took.

    Returns:
        A dict.
    """
    position, dropout_type, amount = space_lib.point(trial.hyperparameters.values)
    row = {
        "trial_id": trial.trial_id,
        "trial_number": int(trial.trial_id) + 1,  # keras-tuner's "Trial #N": "00" is Trial #1
        "status": str(trial.status),
        "position": position,
        "type": dropout_type or "-",
        "rate": 0.0 if amount is None else float(amount),
    }
    for name in _METRICS:
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
    """The results table as text.

    Args:
        rows: Result rows (`trial_row`).

    Returns:
        A header, a rule and one line per trial; ``-`` marks a missing value.
    """
    header = (
        f"{'trial':>5} {'id':>3} {'status':<9} {'position':<11} {'type':<9} {'rate':>5} "
        f"{'val acc':>7} {'recal. BN':>9} {'max shift':>9} {'train acc: train mode':>21} {'inference':>9}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{'#' + str(r['trial_number']):>5} {r['trial_id']:>3} {r['status']:<9} "
            f"{str(r['position']):<11} {r['type']:<9} "
            f"{_cell(r, 'rate', '{:g}'):>5} {_cell(r, OBJECTIVE, '{:.4f}'):>7} "
            f"{_cell(r, RECALIBRATED_OBJECTIVE, '{:.4f}'):>9} "
            f"{_cell(r, 'variance_shift_max', '{:.3f}'):>9} "
            f"{_cell(r, 'train_mode_accuracy', '{:.4f}'):>21} {_cell(r, 'inference_accuracy', '{:.4f}'):>9}"
        )
    return "\n".join(lines)


def summary_line(row):
    """A one-line summary of a finished trial, as printed after each trial.

    Args:
        row: Its result row (`trial_row`).

    Returns:
        ``"[keras-vs] Trial #N (trial_id ...): ..."``: its accuracy and shift, or why it failed.
    """
    what = f"{row['position']}" + (f", {row['type']} {row['rate']:g}" if row["type"] != "-" else "")
    name = f"[keras-vs] Trial #{row['trial_number']} (trial_id {row['trial_id']}: {what})"
    if row["status"] != "COMPLETED":
        return f"{name}: {row['status']} {row.get('message') or ''}".rstrip()
    text = f"{name}: val_accuracy {row[OBJECTIVE]:.4f}"
    if row.get(RECALIBRATED_OBJECTIVE) is not None:
        text += f" ({row[RECALIBRATED_OBJECTIVE]:.4f} after BN re-estimation)"
    if row.get("variance_shift_max") is not None:
        text += f", max variance shift {row['variance_shift_max']:.3f}"
    text += (
        f", train-set accuracy {row['train_mode_accuracy']:.4f} (training mode) vs "
        f"{row['inference_accuracy']:.4f} (inference mode)"
    )
    if row.get("seconds") is not None:
        text += f" [{row['seconds']:.1f}s]"
    return text


def _csv_text(rows):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=_CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in _CSV_FIELDS})
    return out.getvalue()


def _curves(rows):
    """``{label: {rate: [completed rows]}}``: one curve per position and type.

    Only trials of one position and one type share a curve: a trial without
    dropout (no dropout, ``remove``, or the model as it is) is a curve of its
    own position, never joined to the others.
    """
    curves = {}
    for r in rows:
        if r["status"] == "COMPLETED":
            key = str(r["position"]) if r["type"] == "-" else f"{r['position']} / {r['type']}"
            curves.setdefault(key, {}).setdefault(r["rate"], []).append(r)
    return dict(sorted(curves.items()))


def _means(by_rate, name):
    """Mean of column ``name`` at each rate of a curve, in rate order (NaN where none)."""
    out = []
    for rate in sorted(by_rate):
        values = [r[name] for r in by_rate[rate] if r.get(name) is not None]
        out.append(float(np.mean(values)) if values else np.nan)
    return out


def plot_results(rows, path, title=""):
    """Writes accuracy and max variance shift against rate (Uout: beta), one line per position/type.

    Args:
        rows: Result rows (`trial_row`); only completed trials are drawn.
        path: The image file to write (atomically).
        title: The figure's title.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, (ax_acc, ax_shift) = plt.subplots(1, 2, figsize=(10, 4))
    curves = _curves(rows)
    for key, by_rate in curves.items():
        # A curve of one rate is a marker: a line would join nothing.
        style = {"marker": "o", "label": key, "linestyle": "-" if len(by_rate) > 1 else "none"}
        ax_acc.plot(sorted(by_rate), _means(by_rate, OBJECTIVE), **style)
        ax_shift.plot(sorted(by_rate), _means(by_rate, "variance_shift_max"), **style)
    if not curves:
        for ax in (ax_acc, ax_shift):
            ax.text(0.5, 0.5, f"no trial completed ({len(rows)} run)", ha="center", va="center",
                    transform=ax.transAxes)
    ax_acc.set_xlabel("dropout rate (Uout: beta)")
    ax_acc.set_ylabel("validation accuracy")
    ax_shift.set_xlabel("dropout rate (Uout: beta)")
    ax_shift.set_ylabel("max variance shift over BN layers")
    ax_shift.axhline(1.0, color="gray", linewidth=0.8, linestyle="--")
    if curves:
        ax_acc.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def collect_rows(oracle, project_dir):
    """Result rows of every trial an oracle knows, in trial order.

    Args:
        oracle: The search's keras-tuner `Oracle`.
        project_dir: The search folder (for each trial's record).

    Returns:
        A list of `trial_row` dicts.
    """
    rows = []
    for trial_id in sorted(oracle.trials):
        record = project_lib.read_trial_file(os.path.join(project_dir, f"trial_{trial_id}"))
        rows.append(trial_row(oracle.trials[trial_id], record))
    return rows


def best_row(rows, objective=OBJECTIVE):
    """The best trial's row.

    Args:
        rows: Result rows (`trial_row`).
        objective: The column to rank by, one of `tuner.config.OBJECTIVES`.

    Returns:
        The completed row of the highest ``objective`` (the earlier trial
        on a tie), or None if no trial completed with a value of it.
    """
    check_objective(objective)
    done = [r for r in rows if r["status"] == "COMPLETED" and r.get(objective) is not None]
    if not done:
        return None
    # Ties go to the earlier trial: the order is reproducible.
    return max(done, key=lambda r: (r[objective], -int(r["trial_id"])))


def export_results(tuner, rows, best, config, project_dir):
    """Writes results.csv/.json/.png and best_model.keras (atomically).

    Args:
        tuner: The `tuner.DropoutTuner` of the search (it rebuilds the best model).
        rows: The result rows.
        best: The best row (`best_row`), or None.
        config: The search's settings, recorded in results.json.
        project_dir: The search folder.

    Returns:
        ``{kind: path}`` of the files written (no ``"model"`` without a best row).
    """
    kinds = ("csv", "json", "png", "model")
    paths = {kind: os.path.join(project_dir, name) for kind, name in zip(kinds, project_lib.RESULT_FILES)}
    write_atomic(paths["csv"], _csv_text(rows))
    write_atomic(paths["json"], project_lib.json_text({"config": config, "best": best, "trials": rows}))
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
        objective: The column ``best`` was ranked by (`tuner.config.OBJECTIVES`).
    """

    rows: list
    best: object
    project_dir: str
    files: dict
    ran: list
    role: str
    tuner: object = dataclasses.field(default=None, repr=False)
    objective: str = OBJECTIVE

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
