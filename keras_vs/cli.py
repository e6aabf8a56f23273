"""The ``keras-vs`` command: ``keras-vs COMMAND [--flags] [ARGS]``.

Each subcommand is registered with `command` and declares the absl flags it
reads; ``keras-vs --help`` lists the subcommands and ``keras-vs COMMAND
--help`` the flags of one. Keras is imported only when a command runs, so help
is instant.
"""

import dataclasses
import json
import os
import sys
import textwrap

from absl import app, flags
from absl import logging as absl_logging

PROG = "keras-vs"
FLAGS = flags.FLAGS


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


@dataclasses.dataclass(frozen=True)
class Command:
    name: str
    summary: str
    run: object
    flag_names: tuple
    usage_args: str = ""


_COMMANDS = {}


def command(name, summary, flag_names=(), usage_args=""):
    """Registers ``fn(args) -> int | None`` as ``keras-vs NAME``.

    Args:
        name: Subcommand name.
        summary: One-line description shown by ``keras-vs --help``.
        flag_names: Names of the absl flags the command reads.
        usage_args: Positional arguments for the usage line, e.g. ``"MODEL"``.

    Returns:
        A decorator that registers the function and returns it unchanged.
    """

    def register(fn):
        for flag_name in flag_names:
            if flag_name not in FLAGS:
                raise KeyError(f"Command {name!r} names undefined flag --{flag_name}")
        _COMMANDS[name] = Command(name, summary, fn, tuple(flag_names), usage_args)
        return fn

    return register


def commands():
    """Returns the registered subcommands, by name."""
    return dict(_COMMANDS)


def _float_list(name, text_values):
    try:
        return [float(v) for v in text_values]
    except ValueError:
        raise CliError(
            f"--{name} expects a comma-separated list of numbers. "
            f"Received: --{name}={','.join(text_values)}"
        ) from None


# ---------------------------------------------------------------------------
# Flags shared by commands.
flags.DEFINE_bool("json", False, "Print machine-readable JSON instead of a table.")
flags.DEFINE_integer("seed", 0, "Random seed.")
if "unsafe" not in FLAGS:
    flags.DEFINE_bool(
        "unsafe",
        False,
        "Allow loading Lambda layers (arbitrary Python code): only for files you trust.",
    )

# ``theory``
flags.DEFINE_list("rates", ["0.1", "0.3", "0.5", "0.7"], "Dropout rates to check.")
flags.DEFINE_list("betas", ["0.1", "0.2", "0.3", "0.5"], "Uout betas to check.")
flags.DEFINE_integer("samples", 200_000, "Monte Carlo samples per unit.", lower_bound=100)
flags.DEFINE_integer("width", 16, "Fan-in d of the Dense layer (case b).", lower_bound=1)
flags.DEFINE_float("mean", 0.0, "Mean c of the inputs.")
flags.DEFINE_float("rho", 0.3, "Correlation between inputs (case b).", lower_bound=0.0, upper_bound=1.0)


@command(
    "theory",
    "Predicted vs measured variance shift of Dropout, Uout and Dropout->Dense.",
    ("rates", "betas", "samples", "width", "mean", "rho", "seed", "json"),
)
def _theory(args):
    if args:
        raise CliError(f"'theory' takes no positional arguments. Received: {args}")
    rates = _float_list("rates", FLAGS.rates)
    betas = _float_list("betas", FLAGS.betas)
    try:
        from keras_vs import theory as theory_lib

        theory_lib.dropout_shift(rates)
        theory_lib.uout_shift(betas)
    except ValueError as e:
        raise CliError(str(e)) from None
    rows = _theory_rows(rates, betas)
    if FLAGS.json:
        print(json.dumps(rows, indent=2))
        return 0
    import keras

    print(
        f"Variance shift Var_test/Var_train (1 = none): closed form vs "
        f"{FLAGS.samples:,} samples x {FLAGS.width} units through real layers "
        f"(backend {keras.backend.backend()}, mean={FLAGS.mean}, seed={FLAGS.seed})."
    )
    header = f"{'layers':<24} {'setting':<22} {'predicted':>9} {'measured':>9} {'error':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['layers']:<24} {r['setting']:<22} {r['predicted']:>9.4f} "
            f"{r['measured']:>9.4f} {100 * r['relative_error']:>7.2f}%"
        )
    return 0


def _theory_rows(rates, betas):
    from keras_vs import simulate

    return simulate.shift_rows(
        rates, betas, widths=(FLAGS.width,), samples=FLAGS.samples, mean=FLAGS.mean,
        rho=FLAGS.rho, seed=FLAGS.seed,
    )


# ---------------------------------------------------------------------------
# ``measure``
if "data" not in FLAGS:
    flags.DEFINE_string("data", None, "Data set name (e.g. digits) or a .npz file with x (and y).")
if "split" not in FLAGS:
    flags.DEFINE_enum("split", "train", ["train", "test"], "Data split.")
if "batch_size" not in FLAGS:
    flags.DEFINE_integer("batch_size", 128, "Batch size.", lower_bound=1)
if "steps" not in FLAGS:
    flags.DEFINE_integer("steps", None, "Number of batches to use (all if unset).", lower_bound=1)
if "plot" not in FLAGS:
    flags.DEFINE_string("plot", None, "Write the statistic against BN index to this image file.")


@command(
    "measure",
    "Per-BN variance shift and train/inference inconsistency of a saved model.",
    ("data", "split", "batch_size", "steps", "plot", "json", "unsafe"),
    "MODEL",
)
def _measure(args):
    if len(args) != 1:
        raise CliError(f"'measure' takes one MODEL path (a .keras file). Received: {args}")
    path = args[0]
    if not FLAGS.data:
        raise CliError("--data is required (a data set name such as digits, or a .npz file).")
    if FLAGS.plot:
        folder = os.path.dirname(os.path.abspath(FLAGS.plot))
        if not os.path.isdir(folder):
            raise CliError(f"The folder for --plot does not exist. Received: --plot={FLAGS.plot}")
    import keras

    import keras_vs  # noqa: F401  (registers keras-vs layers for loading)
    from keras_vs import data as data_lib
    from keras_vs import shift

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        # Each helper model compiles its own predict function; TF's retracing
        # notice about that is noise on a command line.
        tf.get_logger().setLevel("ERROR")
    model = load_model_file(path, FLAGS.unsafe)
    try:
        x, y = data_lib.load(FLAGS.data, FLAGS.split)
        data = x if y is None else (x, y)
        result = shift.measure_variance_shift(model, data, FLAGS.steps, batch_size=FLAGS.batch_size)
        inconsistency = None
        if len(model.outputs) == 1:
            inconsistency = shift.prediction_inconsistency(
                model, data, FLAGS.steps, batch_size=FLAGS.batch_size
            )
    except ValueError as e:
        raise CliError(str(e)) from None
    report = _measure_report(path, result, inconsistency)
    if FLAGS.plot and len(result):
        _plot_shift(result, FLAGS.plot, title=f"{model.name} on {FLAGS.data} ({FLAGS.split})")
    if FLAGS.json:
        print(json.dumps(report, indent=2))
        return 0
    print(
        f"Variance shift of {path} on {FLAGS.data} ({FLAGS.split}, "
        f"{result.num_examples} examples): max(real/moving, moving/real), 1 = none."
    )
    if not len(result):
        print("The model has no BatchNormalization layer.")
    else:
        header = f"{'#':>3} {'BN layer':<36} {'moving var':>11} {'real var':>11} {'shift':>8}"
        print(header)
        print("-" * len(header))
        for row in report["layers"]:
            print(
                f"{row['index']:>3} {row['name']:<36} {row['moving_var']:>11.4g} "
                f"{row['real_var']:>11.4g} {row['shift']:>8.4f}"
            )
        print(f"max {result.max():.4f}, mean {result.mean():.4f}")
    if inconsistency is not None:
        line = f"training vs inference mode: {100 * inconsistency.disagreement:.2f}% of predictions differ"
        if inconsistency.train_mode_accuracy is not None:
            line += (
                f"; accuracy {100 * inconsistency.train_mode_accuracy:.2f}% (training mode) vs "
                f"{100 * inconsistency.inference_accuracy:.2f}% (inference mode)"
            )
        print(line)
    if FLAGS.plot and len(result):
        print(f"wrote {FLAGS.plot}")
    return 0


def _measure_report(path, result, inconsistency):
    import numpy as np

    layers = [
        {
            "index": i,
            "name": name,
            "moving_var": float(np.mean(result.moving_var[name])),
            "real_var": float(np.mean(result.real_var[name])),
            "shift": float(value),
        }
        for i, (name, value) in enumerate(result.items(), start=1)
    ]
    report = {
        "model": path,
        "data": FLAGS.data,
        "split": FLAGS.split,
        "num_examples": result.num_examples,
        "layers": layers,
        "max": float(result.max()) if len(result) else None,
        "mean": float(result.mean()) if len(result) else None,
        "inconsistency": None,
    }
    if inconsistency is not None:
        report["inconsistency"] = dataclasses.asdict(inconsistency)
    return report


def _plot_shift(result, path, title):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    index = range(1, len(result) + 1)
    ax.plot(index, list(result.values()), marker="o", markersize=3)
    ax.axhline(1.0, color="gray", linewidth=0.8, linestyle="--")
    ax.set_xlabel("BN layer index (shallow to deep)")
    ax.set_ylabel("max(real/moving, moving/real)")
    ax.set_title(title)
    fig.tight_layout()
    from keras_vs import files

    try:
        files.save_figure(fig, path)
    except ValueError as e:
        raise CliError(f"Could not write the plot ({e}). Received: --plot={path}") from None


# ---------------------------------------------------------------------------
# Model files, shared by ``analyze``, ``rewrite`` and ``measure``.
MODEL_EXTENSIONS = (".keras", ".h5", ".hdf5")


def _one_line(error):
    """The first line of an exception's message, prefixed by its type."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _check_extension(path, what):
    ext = os.path.splitext(path)[1].lower()
    if ext not in MODEL_EXTENSIONS:
        raise CliError(
            f"{what} must be a {', '.join(MODEL_EXTENSIONS)} file. Received: {what}={path!r}"
        )


def load_model_file(path, unsafe=False):
    """Loads a `.keras` or legacy `.h5` model for a command.

    Keras' safe mode is on unless `unsafe`: a file with a Lambda layer is
    refused instead of running the code stored in it.

    Args:
        path: The MODEL argument.
        unsafe: Allow Lambda deserialisation (the ``--unsafe`` flag).

    Returns:
        The loaded `keras.Model` (not compiled).

    Raises:
        CliError: One line naming the file, for anything that is not a
            loadable Keras model.
    """
    if not os.path.exists(path):
        raise CliError(f"No such model file. Received: MODEL={path!r}")
    if os.path.isdir(path):
        raise CliError(f"MODEL is a folder, not a model file. Received: MODEL={path!r}")
    _check_extension(path, "MODEL")
    import zipfile

    if path.lower().endswith(".keras") and not zipfile.is_zipfile(path):
        raise CliError(f"Not a Keras model file (a .keras file is a zip archive). Received: MODEL={path!r}")
    import keras

    import keras_vs  # noqa: F401  (registers keras-vs layers for loading)

    try:
        model = keras.saving.load_model(path, compile=False, safe_mode=not unsafe)
    except Exception as e:  # noqa: BLE001  (any loader failure is a user error here)
        if not unsafe and "safe_mode" in str(e):
            raise CliError(
                "The model contains a Lambda layer (stored Python code); refusing to load it "
                f"in safe mode. Pass --unsafe only if you trust the file. Received: MODEL={path!r}"
            ) from None
        raise CliError(f"Could not load {path!r} as a Keras model ({_one_line(e)})") from None
    if not isinstance(model, keras.Model):
        raise CliError(
            f"The file holds a {type(model).__name__}, not a Keras model. Received: MODEL={path!r}"
        )
    return model


def _check_output(out, model_path, overwrite):
    """Refuses an OUT that is the input, exists (without --overwrite) or cannot be written."""
    _check_extension(out, "OUT")
    if os.path.exists(out):
        if os.path.exists(model_path) and (
            os.path.samefile(out, model_path)
            or os.path.realpath(out) == os.path.realpath(model_path)
        ):
            raise CliError(f"OUT is the input model: keras-vs never overwrites it. Received: OUT={out!r}")
        if os.path.isdir(out):
            raise CliError(f"OUT is a folder. Received: OUT={out!r}")
        if not overwrite:
            raise CliError(f"OUT already exists; pass --overwrite to replace it. Received: OUT={out!r}")
    folder = os.path.dirname(os.path.abspath(out))
    if not os.path.isdir(folder):
        raise CliError(f"The folder for OUT does not exist. Received: OUT={out!r}")


def save_model_file(model, out):
    """Saves `model` to `out` atomically: a temporary file in the same folder, then a rename.

    Args:
        model: The `keras.Model` to save.
        out: A ``.keras`` or ``.h5`` path (the format follows the extension).
    """
    from keras_vs import files

    verbosity = absl_logging.get_verbosity()
    try:
        # The user chose the format: Keras' "HDF5 is legacy" warning is noise.
        absl_logging.set_verbosity(absl_logging.ERROR)
        with files.atomic_path(out) as tmp:
            model.save(tmp, overwrite=True)
    except Exception as e:  # noqa: BLE001
        raise CliError(f"Could not write the model ({_one_line(e)}). Received: OUT={out!r}") from None
    finally:
        absl_logging.set_verbosity(verbosity)


def _quiet_tensorflow():
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.get_logger().setLevel("ERROR")


# ---------------------------------------------------------------------------
# ``analyze``
@command(
    "analyze",
    "List every dropout that feeds a BatchNormalization in a saved model.",
    ("json", "unsafe"),
    "MODEL",
)
def _analyze(args):
    if len(args) != 1:
        raise CliError(f"'analyze' takes one MODEL path (.keras or .h5). Received: {args}")
    path = args[0]
    model = load_model_file(path, FLAGS.unsafe)
    from keras_vs import analysis

    try:
        findings = analysis.find_disharmony(model)
    except ValueError as e:  # e.g. a subclassed model without a layer graph
        raise CliError(" ".join(str(e).split())) from None
    if FLAGS.json:
        rows = [
            {"dropout": f.dropout, "bn": f.bn, "kind": f.kind, "rate": f.rate, "path": list(f.path)}
            for f in findings
        ]
        print(json.dumps({"model": path, "findings": rows}, indent=2))
        return 0
    if not findings:
        print(f"No disharmony in {path}: no dropout feeds a BatchNormalization layer.")
        return 0
    direct = sum(f.kind == analysis.DIRECT for f in findings)
    print(
        f"{len(findings)} dropout -> BN pair(s) in {path} "
        f"({direct} direct, {len(findings) - direct} through a conv/dense layer):"
    )
    rows = [(str(i), f.dropout, f.bn, f.kind, f"{f.rate:g}", " -> ".join(f.path))
            for i, f in enumerate(findings, start=1)]
    header = ("#", "dropout", "bn", "kind", "rate", "path")
    widths = [max(len(r[c]) for r in rows + [header]) for c in range(5)]
    fmt = "{:>%d}  {:<%d}  {:<%d}  {:<%d}  {:>%d}  {}" % tuple(widths)
    print(fmt.format(*header))
    print("-" * (sum(widths) + 10 + len("path")))
    for r in rows:
        print(fmt.format(*r))
    print(f"Fix it with: {PROG} rewrite {path} --policy=after_bn|head|uout|remove -o OUT")
    return 0


# ---------------------------------------------------------------------------
# ``rewrite``
if "policy" not in FLAGS:
    flags.DEFINE_enum("policy", None, ["after_bn", "head", "uout", "remove"],
                      "How to fix each dropout that feeds a BN.")
if "output" not in FLAGS:
    flags.DEFINE_string("output", None, "Where to write the new model (.keras or .h5); short form -o.", short_name="o")
if "rate" not in FLAGS:
    flags.DEFINE_float("rate", None, "Rate of the moved or inserted dropouts (after_bn, head).")
if "beta" not in FLAGS:
    flags.DEFINE_float("beta", None, "Beta of the Uout layers (uout; default 0.1).")
if "dry_run" not in FLAGS:
    flags.DEFINE_bool("dry_run", False, "Print the plan and write nothing.")
if "overwrite" not in FLAGS:
    flags.DEFINE_bool("overwrite", False, "Replace OUT if it exists (never the input model).")


@command(
    "rewrite",
    "Fix dropout-before-BN in a saved model and write the new model.",
    ("policy", "output", "rate", "beta", "dry_run", "overwrite", "unsafe", "json"),
    "MODEL -o OUT",
)
def _rewrite(args):
    if len(args) != 1:
        raise CliError(f"'rewrite' takes one MODEL path (.keras or .h5). Received: {args}")
    path = args[0]
    if FLAGS.policy is None:
        raise CliError("--policy is required: after_bn, head, uout or remove.")
    out = FLAGS.output
    if not FLAGS.dry_run:
        if not out:
            raise CliError("-o/--output is required (or pass --dry_run to only print the plan).")
        _check_output(out, path, FLAGS.overwrite)
    model = load_model_file(path, FLAGS.unsafe)
    _quiet_tensorflow()
    import keras_vs as kvs

    options = {k: getattr(FLAGS, k) for k in ("rate", "beta") if getattr(FLAGS, k) is not None}
    try:
        changes = kvs.plan(model, FLAGS.policy, **options)
        if not FLAGS.dry_run:
            new = kvs.rewrite(model, FLAGS.policy, **options)
    except ValueError as e:  # bad options, or a layer keras-vs cannot rebuild
        raise CliError(" ".join(str(e).split())) from None
    if not FLAGS.dry_run:
        save_model_file(new, out)
    if FLAGS.json:
        report = {
            "model": path,
            "policy": FLAGS.policy,
            "changes": [dataclasses.asdict(c) for c in changes],
            "output": None if FLAGS.dry_run else out,
        }
        print(json.dumps(report, indent=2))
        return 0
    print(changes)
    if FLAGS.dry_run:
        print("dry run: nothing written")
    else:
        print(f"wrote {out}")
    return 0


# ---------------------------------------------------------------------------
# ``tune``
_TUNE_FLAGS = (
    ("model", lambda: flags.DEFINE_string(
        "model", "wrn-10-1", "Zoo network to search (see `zoo.list_models`), or a .keras file of "
        "your own model (its dropouts are moved with the rewrite policies).")),
    ("dataset", lambda: flags.DEFINE_string(
        "dataset", "digits", "digits (offline), cifar10, cifar100, imagenet2012 (TensorFlow "
        "Datasets) or a .npz file with x and y (20% held out for validation).")),
    ("oracle", lambda: flags.DEFINE_enum(
        "oracle", "grid", ["random", "bayesian", "hyperband", "grid"], "keras-tuner search algorithm.")),
    ("max_trials", lambda: flags.DEFINE_integer(
        "max_trials", 10, "Trials to run (grid: at most the grid's size; hyperband: unused).", lower_bound=1)),
    ("epochs", lambda: flags.DEFINE_integer(
        "epochs", 8, "Epochs per trial; the recipe's learning-rate milestones scale with it.", lower_bound=1)),
    ("positions", lambda: flags.DEFINE_list(
        "positions", None, "Dropout positions to search (zoo: none,before_bn,before_conv,head; "
        "own model: original,after_bn,head,remove). Default: all.")),
    ("types", lambda: flags.DEFINE_list("types", ["bernoulli", "uout"], "Dropout types to search.")),
    ("rate_choices", lambda: flags.DEFINE_list(
        "rate_choices", ["0.2", "0.5"], "Bernoulli dropout rates to search.")),
    ("beta_choices", lambda: flags.DEFINE_list("beta_choices", ["0.5"], "Uout betas to search.")),
    ("learning_rate", lambda: flags.DEFINE_float(
        "learning_rate", None, "Initial SGD learning rate at batch size 128 (default: the paper's "
        "recipe for the model family, 0.1); scaled linearly with --batch_size.", lower_bound=0.0)),
    ("weight_decay", lambda: flags.DEFINE_float(
        "weight_decay", None, "SGD weight decay (default: the recipe's).", lower_bound=0.0)),
    ("directory", lambda: flags.DEFINE_string(
        "directory", "keras_vs_tune", "Parent folder of the search folder.")),
    ("project", lambda: flags.DEFINE_string(
        "project", None, "Search folder name inside --directory (default: MODEL-DATASET-ORACLE). "
        "Rerunning with the same flags resumes the search there.")),
    ("restart", lambda: flags.DEFINE_bool(
        "restart", False, "Delete this search's earlier trials and start again (only a folder "
        "keras-vs wrote is deleted).")),
    ("strategy", lambda: flags.DEFINE_enum(
        "strategy", "auto", ["auto", "none", "mirrored", "tpu", "multi_worker"],
        "tf.distribute strategy per trial; auto: TPU -> TPUStrategy, GPUs -> MirroredStrategy.")),
    ("data_dir", lambda: flags.DEFINE_string("data_dir", None, "TensorFlow Datasets data folder.")),
    ("download", lambda: flags.DEFINE_bool(
        "download", False, "Let TensorFlow Datasets download and prepare a missing data set.")),
    ("take", lambda: flags.DEFINE_integer(
        "take", None, "Train on only the first N examples (quick runs).", lower_bound=1)),
)
for _name, _define in _TUNE_FLAGS:
    if _name not in FLAGS:
        _define()


@command(
    "tune",
    "Search dropout position, type and rate (keras-tuner), with the variance shift of each trial.",
    tuple(name for name, _ in _TUNE_FLAGS) + ("batch_size", "seed", "json"),
)
def _tune(args):
    """``keras-vs tune``: with no flags, a 10-trial grid over every dropout
    position (Bernoulli 0.2/0.5, Uout 0.5, none) of WRN-10-1 on the offline
    digits set, 8 epochs each. Prints the results table and writes
    results.csv, results.json, results.png and best_model.keras into
    --directory/--project. Rerunning the same command resumes the search;
    with KERASTUNER_TUNER_ID/KERASTUNER_ORACLE_IP/KERASTUNER_ORACLE_PORT set
    the process is a keras-tuner chief or worker."""
    if args:
        raise CliError(f"'tune' takes no positional arguments. Received: {args}")
    rates = _float_list("rate_choices", FLAGS.rate_choices)
    betas = _float_list("beta_choices", FLAGS.beta_choices)
    model = FLAGS.model
    # The CLI is the top of the stack: it may reach up into the tuner package.
    import tuner
    import zoo

    _quiet_tensorflow()
    if model.lower().endswith(MODEL_EXTENSIONS) or os.path.exists(model):
        model = load_model_file(model)  # safe mode: no stored Python code runs
    elif model not in zoo.list_models():
        raise CliError(
            f"Unknown model. Expected a zoo name ({', '.join(zoo.list_models())}) or a .keras "
            f"file. Received: --model={model}"
        )
    try:
        result = tuner.search(
            model,
            FLAGS.dataset,
            oracle=FLAGS.oracle,
            max_trials=FLAGS.max_trials,
            epochs=FLAGS.epochs,
            batch_size=FLAGS.batch_size,
            seed=FLAGS.seed,
            positions=FLAGS.positions,
            types=FLAGS.types,
            rates=rates,
            betas=betas,
            learning_rate=FLAGS.learning_rate,
            weight_decay=FLAGS.weight_decay,
            directory=FLAGS.directory,
            project_name=FLAGS.project,
            overwrite=FLAGS.restart,
            strategy=FLAGS.strategy,
            data_dir=FLAGS.data_dir,
            download=FLAGS.download,
            take=FLAGS.take,
            verbose=0 if FLAGS.json else 1,
        )
    except (ValueError, FileNotFoundError) as e:
        raise CliError(str(e)) from None
    except RuntimeError as e:
        # keras-tuner stops a search after too many failed trials in a row.
        raise CliError(
            f"the search stopped: {str(e).splitlines()[0]} See the trials' keras_vs.json files "
            f"under {os.path.join(FLAGS.directory, FLAGS.project or '')}"
        ) from None
    if result.role == "worker":
        print(f"worker done: ran trials {', '.join(result.ran) or 'none'} in {result.project_dir}")
        return 0
    if FLAGS.json:
        print(json.dumps({"project_dir": result.project_dir, "best": result.best,
                          "files": result.files, "trials": result.rows}, indent=2))
        return 0
    print()
    print(f"Search {result.project_dir}: {len(result.rows)} trial(s); max shift = max over BN layers "
          "of max(real/moving, moving/real) variance, 1 = none; train acc in training vs "
          "inference mode on training examples.")
    print(result.table())
    if result.best is not None:
        b = result.best
        what = b["position"] + (f", {b['type']} {b['rate']:g}" if b["type"] != "-" else "")
        print(f"best: trial {b['trial_id']} ({what}), val_accuracy {b['val_accuracy']:.4f}")
    for path in result.files.values():
        print(f"wrote {path}")
    return 0


# ---------------------------------------------------------------------------
def _usage():
    lines = [
        f"usage: {PROG} COMMAND [--flags] [ARGS]",
        "",
        "Find, measure and fix the Dropout/BatchNormalization variance shift.",
        "",
        "commands:",
    ]
    for cmd in sorted(_COMMANDS.values(), key=lambda c: c.name):
        lines.append(f"  {cmd.name:<12} {cmd.summary}")
    lines += ["", f"Run '{PROG} COMMAND --help' for the flags of one command."]
    return "\n".join(lines)


def _command_help(cmd):
    lines = [f"usage: {PROG} {cmd.name} [--flags] {cmd.usage_args}".rstrip(), "", cmd.summary, ""]
    if cmd.flag_names:
        lines.append("flags:")
    for name in cmd.flag_names:
        flag = FLAGS[name]
        default = flag.default_as_str or "''"
        lines.append(f"  --{name}: {flag.help}")
        lines.append(textwrap.indent(f"(default: {default})", "      "))
    return "\n".join(lines)


def _reject_foreign_flags(cmd):
    # Flags are global in absl; one that only another command reads is
    # almost certainly a mistake, so say so instead of ignoring it.
    ours = {name for c in _COMMANDS.values() for name in c.flag_names}
    foreign = sorted(
        name for name in ours if FLAGS[name].present and name not in cmd.flag_names
    )
    if foreign:
        raise CliError(
            f"flag(s) {', '.join('--' + n for n in foreign)} do not apply to "
            f"'{cmd.name}'. Run '{PROG} {cmd.name} --help' for its flags."
        )


def _run_command(cmd, argv):
    try:
        _reject_foreign_flags(cmd)
        status = cmd.run(list(argv[1:]))
    except CliError as e:
        print(f"{PROG} {cmd.name}: error: {e}", file=sys.stderr)
        return 1
    return 0 if status is None else status


def main(argv=None):
    """Entry point of the ``keras-vs`` console script.

    Args:
        argv: Full argument vector (``argv[0]`` is the program); defaults to
            ``sys.argv``.

    Returns:
        Does not return: exits with the command's status.
    """
    # TensorFlow's C++ start-up banner is noise on a command line; a user's
    # own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = list(sys.argv if argv is None else argv)
    args = argv[1:]
    if not args or args[0] in ("-h", "--help", "--helpshort", "--helpfull", "help"):
        print(_usage(), file=sys.stdout if args else sys.stderr)
        sys.exit(0 if args else 2)
    if args[0] == "--version":
        from keras_vs import __version__

        print(f"{PROG} {__version__}")
        sys.exit(0)
    cmd = _COMMANDS.get(args[0])
    if cmd is None:
        print(
            f"{PROG}: unknown command {args[0]!r}. Commands: "
            f"{', '.join(sorted(_COMMANDS))}. Run '{PROG} --help'.",
            file=sys.stderr,
        )
        sys.exit(2)
    if any(a in ("-h", "--help", "--helpshort", "--helpfull") for a in args[1:]):
        print(_command_help(cmd))
        sys.exit(0)
    app.run(lambda remaining: _run_command(cmd, remaining), argv=[f"{PROG} {cmd.name}"] + args[1:])


if __name__ == "__main__":
    main()
