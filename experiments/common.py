"""What the experiment scripts share: flags, statistics, tables, files, figures.

The dropout study itself (training and measuring every setting) is
`experiments.study`.
"""

import csv
import io
import math
import os

import numpy as np

from keras_vs.files import save_figure, write_atomic

__all__ = [
    "DEFAULT_DIRECTORY",
    "csv_text",
    "define_training_flags",
    "format_mean_std",
    "group_rows",
    "markdown_table",
    "mean_std",
    "parse_floats",
    "parse_ints",
    "pyplot",
    "quiet",
    "run_script",
    "training_options",
    "write_outputs",
]

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
    """The finite values as floats (None and NaN dropped)."""
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
    """A table cell: blank for None or NaN, 6 significant digits for floats."""
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

    from tuner import config

    flags.DEFINE_string("dataset", config.DEFAULT_DATASET, "Data set (digits, a .npz file, or a TFDS name).")
    flags.DEFINE_integer("epochs", config.DEFAULT_EPOCHS, "Epochs per model.", lower_bound=1)
    flags.DEFINE_integer("batch_size", config.DEFAULT_BATCH_SIZE, "Batch size.", lower_bound=1)
    flags.DEFINE_integer("take", None, "Use only this many training examples.", lower_bound=1)
    flags.DEFINE_string("directory", DEFAULT_DIRECTORY, "Folder of the (resumable) searches.")
    flags.DEFINE_string("out", out, "Output folder.")
    flags.DEFINE_integer("verbose", 1, "keras-tuner progress (0: quiet).")


def training_options():
    """The values of `define_training_flags` (but ``--dataset`` and ``--out``) as the records of
    `experiments.study.dropout_study`: ``{"training": ..., "data": ..., "study": ...}``."""
    from absl import flags

    from experiments.study import StudyConfig
    from tuner.config import DataConfig, TrainingConfig

    f = flags.FLAGS
    return dict(training=TrainingConfig(epochs=f.epochs, batch_size=f.batch_size), data=DataConfig(take=f.take),
                study=StudyConfig(directory=f.directory, verbose=f.verbose))


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
        """absl's entry point: no positional arguments, then ``main()`` quietly."""
        if len(argv) > 1:
            raise app.UsageError(f"Unexpected arguments. Received: {argv[1:]}")
        quiet()
        main()

    try:
        app.run(run)
    except (ValueError, FileNotFoundError) as e:
        sys.exit(f"error: {e}")
