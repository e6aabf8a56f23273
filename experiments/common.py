"""What the experiments share: tables, figures, statistics and the dropout study.

`dropout_study` is the paper's protocol on top of `tuner.search`: train a
network for each dropout setting and seed (a resumable grid search, so an
interrupted study picks up where it stopped), then measure every trained
model the way PAPER.md sections 2-3 describe: the variance-shift statistic
of every BN on the training data, the train-mode/inference-mode accuracy on
the training data, test accuracy, and test accuracy after BN re-estimation.
"""

import csv
import io
import math
import os

import numpy as np

import keras_vs
from keras_vs import data as data_lib
from keras_vs import theory
from keras_vs.files import save_figure, write_atomic

DEFAULT_DIRECTORY = "keras_vs_experiments"


def parse_floats(name, values):
    """Parses a list flag of numbers, echoing the flag on error."""
    try:
        return tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"--{name} expects numbers. Received: --{name}={','.join(map(str, values))}") from None


def parse_ints(name, values):
    """Parses a list flag of integers, echoing the flag on error."""
    try:
        return tuple(int(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"--{name} expects integers. Received: --{name}={','.join(map(str, values))}") from None


def _finite(values):
    return [float(v) for v in values if v is not None and math.isfinite(v)]


def mean_std(values):
    """``(mean, sample std)`` of the finite values (std 0 for one value; NaNs if none)."""
    finite = _finite(values)
    if not finite:
        return math.nan, math.nan
    std = float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0
    return float(np.mean(finite)), std


def format_mean_std(values, digits=3):
    """``"0.981 ± 0.004"`` (or ``"-"`` when there is nothing to average)."""
    mean, std = mean_std(values)
    if math.isnan(mean):
        return "-"
    if len(_finite(values)) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _text(value):
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def csv_text(rows, columns):
    """Rows (dicts) as CSV text with the given columns."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_text(row.get(c)) for c in columns])
    return out.getvalue()


def markdown_table(rows, columns, headers=None):
    """Rows (dicts of already formatted cells) as a Markdown table."""
    headers = headers or columns
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    for row in rows:
        lines.append("| " + " | ".join(_text(row.get(c)) or "-" for c in columns) + " |")
    return "\n".join(lines) + "\n"


def write_outputs(out_dir, name, *, csv_files=(), markdown="", figure=None):
    """Writes an experiment's files atomically into ``out_dir``.

    Args:
        out_dir: Output folder (created).
        name: Base name: ``name.md``, ``name.png``.
        csv_files: ``(file_name, rows, columns)`` triples.
        markdown: Text of ``name.md`` (skipped when empty).
        figure: A matplotlib figure for ``name.png`` (closed afterwards).

    Returns:
        The written paths.
    """
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    for file_name, rows, columns in csv_files:
        path = os.path.join(out_dir, file_name)
        write_atomic(path, csv_text(rows, columns))
        paths.append(path)
    if markdown:
        path = os.path.join(out_dir, f"{name}.md")
        write_atomic(path, markdown)
        paths.append(path)
    if figure is not None:
        path = os.path.join(out_dir, f"{name}.png")
        save_figure(figure, path)
        paths.append(path)
    return paths


def define_training_flags(out):
    """Defines the flags of the experiments that train on a named data set.

    Args:
        out: Default output folder.
    """
    from absl import flags

    flags.DEFINE_string("dataset", "digits", "Data set (digits, a .npz file, or a TFDS name).")
    flags.DEFINE_integer("epochs", 8, "Epochs per model.", lower_bound=1)
    flags.DEFINE_integer("batch_size", 128, "Batch size.", lower_bound=1)
    flags.DEFINE_integer("take", None, "Use only this many training examples.", lower_bound=1)
    flags.DEFINE_string("directory", DEFAULT_DIRECTORY, "Folder of the (resumable) searches.")
    flags.DEFINE_string("out", out, "Output folder.")
    flags.DEFINE_integer("verbose", 1, "keras-tuner progress (0: quiet).")


def training_options():
    """The values of `define_training_flags` as `dropout_study` keyword arguments."""
    from absl import flags

    f = flags.FLAGS
    return dict(dataset=f.dataset, epochs=f.epochs, batch_size=f.batch_size, take=f.take,
                directory=f.directory, verbose=f.verbose)


def quiet():
    """Silences TensorFlow's and absl's info and retracing warnings."""
    import logging

    from absl import logging as absl_logging

    absl_logging.set_verbosity(absl_logging.ERROR)
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def pyplot():
    """matplotlib's pyplot on the non-interactive Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


# ---------------------------------------------------------------------------
# The dropout study


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


def study_data(dataset, *, batch_size=128, seed=0, take=None, data_dir=None, download=False):
    """``(train, test)`` for measuring trained models, without augmentation.

    BN re-estimation repeats passes until the statistics stop changing, so
    the training data is read as the test data is: no random crops or flips.

    Args:
        dataset: ``"digits"``, a ``.npz`` file, or a TFDS name.
        batch_size: Batch size of the TFDS pipelines.
        seed: Seed of the TFDS pipelines.
        take: Only the first ``take`` training examples (as the search).
        data_dir, download: Passed to TensorFlow Datasets.

    Returns:
        Two ``(x, y)`` tuples, or two `tf.data.Dataset` for a TFDS set.
    """
    if dataset in data_lib.TFDS_NAMES:
        kwargs = dict(batch_size=batch_size, training=False, data_dir=data_dir, download=download, seed=seed)
        return (
            data_lib.tfds_dataset(dataset, "train", take=take, **kwargs),
            data_lib.tfds_dataset(dataset, "test", **kwargs),
        )
    train = data_lib.load(dataset, "train")
    test = data_lib.load(dataset, "test")
    if take is not None:
        train = (train[0][:take], train[1][:take])
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


def grid_size(positions, rates, types=("bernoulli",), betas=()):
    """Models one seed of a study trains: one per position without dropout, else one per rate/beta.

    Example:

    >>> grid_size(("none", "before_bn", "head"), rates=(0.1, 0.5))
    5
    """
    size = 0
    for position in positions:
        if position == "none":
            size += 1
        else:
            size += len(rates) * ("bernoulli" in types) + len(betas) * ("uout" in types)
    return size


STUDY_COLUMNS = (
    "model", "seed", "position", "type", "rate", "test_accuracy", "recalibrated_accuracy",
    "shift_max", "shift_mean", "shift_direct", "expected_direct", "expected_direct_measured_c",
    "shift_through_linear",
    "shift_max_recalibrated",
    "train_mode_accuracy", "train_inference_accuracy", "train_gap", "disagreement", "seconds",
)
PER_BN_COLUMNS = ("model", "seed", "position", "type", "rate", "index", "bn", "statistic", "direct")


def dropout_study(
    model,
    dataset,
    *,
    positions,
    rates,
    seeds,
    types=("bernoulli",),
    betas=(0.5,),
    epochs=8,
    batch_size=128,
    learning_rate=None,
    directory=DEFAULT_DIRECTORY,
    project_prefix=None,
    model_options=None,
    take=None,
    data_dir=None,
    download=False,
    measure_steps=None,
    analyse=None,
    verbose=1,
):
    """Trains every dropout setting for every seed and measures it as the paper does.

    Args:
        model: A zoo name (e.g. ``"wrn-10-1"``).
        dataset: ``"digits"``, a ``.npz`` file or a TFDS name.
        positions, rates, types, betas: The grid (see `tuner.search`);
            ``"none"`` trains the network without dropout once per seed.
        seeds: One search per seed; the seed fixes weights, masks and order.
        epochs, batch_size, learning_rate: Training (paper's recipe, scaled).
        directory: Parent folder of the searches (resumed when rerun).
        project_prefix: Search folder prefix, default the model name.
        model_options: Extra zoo builder arguments (e.g. ``{"width": 4}``).
        take: Use only the first ``take`` training examples.
        data_dir, download: Passed to TensorFlow Datasets.
        measure_steps: Batches used to measure and re-estimate (all if None).
        analyse: Optional ``fn(model, row) -> dict`` adding columns per
            trained model.
        verbose: keras-tuner progress (0 silences it).

    Returns:
        ``(rows, per_bn)``: one row per trained model (`STUDY_COLUMNS`) and
        one row per (model, BN layer) (`PER_BN_COLUMNS`).

    Example:

    >>> rows, per_bn = dropout_study("wrn-10-1", "digits", positions=("none", "head"),
    ...                              rates=(0.5,), seeds=(0,), epochs=1)  # doctest: +SKIP
    """
    import tuner

    project_prefix = project_prefix or model
    rows, per_bn = [], []
    for seed in seeds:
        result = tuner.search(
            model,
            dataset,
            oracle="grid",
            max_trials=grid_size(positions, rates, types, betas),
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            positions=positions,
            types=types,
            rates=rates,
            betas=betas,
            learning_rate=learning_rate,
            directory=directory,
            project_name=f"{project_prefix}-{dataset}-seed{seed}",
            take=take,
            data_dir=data_dir,
            download=download,
            model_options=model_options,
            verbose=verbose,
            export=False,
        )
        train, test = study_data(
            dataset, batch_size=batch_size, seed=seed, take=take, data_dir=data_dir, download=download
        )
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
            row.update(_measure(trained, train, test, measure_steps, batch_size, row, per_bn))
            if analyse is not None:
                row.update(analyse(trained, row))
            rows.append(row)
    return rows, per_bn


def _measure(model, train, test, steps, batch_size, row, per_bn):
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


def group_rows(rows, keys):
    """Groups rows by the values of ``keys``, in first-seen order."""
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row[k] for k in keys), []).append(row)
    return groups


def run_script(main):
    """Runs an experiment's ``main()`` under absl flags, quietly.

    A positional argument is a usage error; a bad flag value or missing data
    exits with one line (no traceback).
    """
    import sys

    from absl import app

    def run(argv):
        if len(argv) > 1:
            raise app.UsageError(f"Unexpected arguments. Received: {argv[1:]}")
        quiet()
        main()

    try:
        app.run(run)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
