"""``keras-vs tune``: the dropout search on the command line (`tuner.search`).

Registered with the ``keras-vs`` script through the ``keras_vs.commands``
entry-point group (setup.py), so the plugin never imports the tuner. Keras,
keras-tuner and the zoo are imported only when the command runs.
"""

import contextlib
import json
import os
import sys

from absl import flags

from keras_vs import vocab
from keras_vs.cli import CliError, Command, UsageError
from keras_vs.commands import common
from tuner import config
from tuner import space

__all__ = ["COMMAND", "DTYPE_POLICIES"]

# What --dtype_policy takes (Keras' names).
DTYPE_POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")


def _define_flags(fv):
    def define(kind, name, default, help_text, **kwargs):
        if kind == "enum":
            flags.DEFINE_enum(name, default, kwargs.pop("enum_values"), help_text, flag_values=fv)
        else:
            getattr(flags, f"DEFINE_{kind}")(name, default, help_text, flag_values=fv, **kwargs)

    _define_search_flags(define)
    _define_training_flags(define)
    _define_run_flags(define)
    common.define_json(fv)
    common.define_unsafe(fv)


def _define_search_flags(define):
    """What is searched: the model, the data, the oracle and the space."""
    define("string", "model", config.DEFAULT_MODEL, "Zoo network to search (see "
           "zoo.list_models()), or a .keras file of your own model: its dropouts are moved with "
           "the rewrite policies, and its own loss, metrics and optimizer (when saved compiled) "
           "train every trial.")
    define("string", "data", config.DEFAULT_DATASET, "digits (offline), cifar10, cifar100, "
           "imagenet2012 (TensorFlow Datasets) or a .npz file with x and y (20% held out for "
           "validation); the --data of measure and recalibrate.")
    define("string", "dataset", None, "Deprecated: the old name of --data, still accepted.")
    define("enum", "oracle", config.DEFAULT_ORACLE, "keras-tuner search algorithm. grid visits "
           "every position before a second rate.", enum_values=list(vocab.ORACLES))
    define("enum", "objective", config.OBJECTIVE, "What the oracle maximises and the best trial is "
           "ranked by: the validation accuracy with the BN statistics as trained, or after precise "
           "BN re-estimation on the training data (every trial records both).",
           enum_values=list(config.OBJECTIVES))
    define("integer", "max_trials", config.DEFAULT_MAX_TRIALS, "Trials to run (grid: at most the "
           "grid's size; hyperband: unused).", lower_bound=1)
    define("integer", "seed", 0, "Seeds the oracle and every trial's weights, dropout masks and "
           "data order.")
    define("list", "positions", None, "Dropout positions to search (zoo: "
           f"{','.join(vocab.DROPOUT_POSITIONS)}; own model: {','.join(vocab.MODEL_POSITIONS)}). "
           "Default: all.")
    define("list", "types", list(vocab.DROPOUT_TYPES), "Dropout types to search.")
    define("list", "rate_choices", [f"{r:g}" for r in space.DEFAULT_RATES],
           "Bernoulli dropout rates to search.")
    define("list", "beta_choices", [f"{b:g}" for b in space.DEFAULT_BETAS], "Uout betas to search.")


def _define_training_flags(define):
    """How each trial trains (`tuner.TrainingConfig`)."""
    define("integer", "epochs", config.DEFAULT_EPOCHS, "Epochs per trial; the recipe's "
           "learning-rate milestones scale with it.", lower_bound=1)
    define("integer", "batch_size", config.DEFAULT_BATCH_SIZE, "Global batch size.", lower_bound=1)
    define("enum", "dtype_policy", None, "Keras dtype policy of every trial's zoo model (zoo.get's "
           "dtype_policy): mixed_bfloat16 or mixed_float16 train in mixed precision, variables "
           "and BN statistics in float32. Default: float32. A .keras model keeps the policies it "
           "was saved with.", enum_values=list(DTYPE_POLICIES))
    define("string", "loss", None, "Keras loss of every trial, e.g. "
           "sparse_categorical_crossentropy. Default: a saved model's own; otherwise sparse "
           "categorical cross-entropy on probabilities or logits, as the model's output says.")
    define("bool", "from_logits", None, "Whether the model outputs logits, for the default loss "
           "(default: a softmax output means probabilities).")
    define("string", "optimizer", None, "'recipe' (the paper's SGD recipe) or a Keras optimizer "
           "name, e.g. adam. Default: a saved model's own optimizer; the recipe otherwise.")
    define("float", "learning_rate", None, "Initial learning rate: of the recipe (given at batch "
           "size 128, scaled linearly with --batch_size; default 0.1), or of the optimizer.",
           lower_bound=0.0)
    define("float", "weight_decay", None, "Weight decay of the recipe or the optimizer.",
           lower_bound=0.0)


def _define_run_flags(define):
    """Where the search goes, how it is distributed, which examples it reads, what it prints."""
    define("string", "directory", config.DEFAULT_DIRECTORY, "Parent folder of the search folder.")
    define("string", "project", None, "Search folder name inside --directory (default: "
           "MODEL-DATASET-ORACLE). Rerunning with the same flags resumes the search there; a "
           "folder holding the search of another model or other data (fingerprints of the "
           "weights, architecture and arrays) is refused.")
    define("bool", "restart", False, "Delete this search's earlier trials and start again (only a "
           "folder keras-vs wrote is deleted).")
    define("enum", "strategy", "auto", "Distribution of each trial: tf.distribute on TensorFlow "
           "(auto: TPU -> TPUStrategy, GPUs -> MirroredStrategy), keras.distribution.DataParallel "
           "over the local devices on JAX (mirrored; auto: several GPUs/TPUs).",
           enum_values=list(vocab.STRATEGIES))
    define("string", "data_dir", None, "TensorFlow Datasets data folder.")
    define("bool", "download", False, "Let TensorFlow Datasets download and prepare a missing "
           "data set.")
    define("integer", "take", None, "Train on only the first N examples (quick runs).",
           lower_bound=1)
    define("integer", "fit_verbose", None, "verbose of each trial's model.fit: 0 silent, 1 "
           "progress bar, 2 one line per epoch (default: 1 on a terminal, 2 into a file or "
           "pipe, 0 with --json).", lower_bound=0, upper_bound=2)


def _load_user_model(path, unsafe):
    """A user's model file, compiled as saved when it was (keeps its training setup)."""
    return common.load_model_file(path, unsafe, compile=True)


def _is_model_file(text):
    return text.lower().endswith(common.MODEL_EXTENSIONS) or os.path.exists(text)


def _fit_verbose(fv):
    if fv.fit_verbose is not None:
        return fv.fit_verbose
    if fv.json:
        return 0
    return 1 if sys.stdout.isatty() else 2  # progress bars only where they redraw


def _data_flag(fv):
    """--data, or the deprecated --dataset (with a note); both given must agree."""
    if fv.dataset is None:
        return
    if fv["data"].present and fv.data != fv.dataset:
        raise UsageError(f"--dataset is the old name of --data: give one. Received: "
                         f"--data={fv.data} --dataset={fv.dataset}")
    print(f"keras-vs tune: warning: --dataset is deprecated; use --data={fv.dataset}",
          file=sys.stderr)
    fv.data = fv.dataset


def _run(args, fv):
    if args:
        raise UsageError(f"'tune' takes no positional arguments. Received: {args}")
    _data_flag(fv)
    rates = common.float_list("rate_choices", fv.rate_choices)
    betas = common.float_list("beta_choices", fv.beta_choices)
    model, model_file = fv.model, None
    if _is_model_file(model):
        if fv.dtype_policy is not None:
            raise UsageError(
                "--dtype_policy applies to zoo models: a .keras model computes in the dtype "
                f"policies it was saved with. Received: --dtype_policy={fv.dtype_policy} "
                f"--model={model}"
            )
        model, model_file = _load_user_model(model, fv.unsafe), model
    common.quiet_tensorflow()
    import zoo

    if isinstance(model, str) and model not in zoo.list_models():
        raise UsageError(
            f"Unknown model. Expected a zoo name ({', '.join(zoo.list_models())}) or a .keras "
            f"file. Received: --model={model}"
        )
    # With --json, stdout holds the JSON alone: anything printed on the way
    # (e.g. TerminateOnNaN's notice) goes to stderr.
    quiet = contextlib.redirect_stdout(sys.stderr) if fv.json else contextlib.nullcontext()
    try:
        with quiet:
            result = _search(model, model_file, fv, rates, betas)
    except (ValueError, FileNotFoundError) as e:
        raise CliError(common.flat(e)) from None
    except RuntimeError as e:
        # keras-tuner stops a search after too many failed trials in a row.
        raise CliError(
            f"the search stopped: {str(e).splitlines()[0]} See the trials' keras_vs.json files "
            f"under {os.path.join(fv.directory, fv.project or '')}"
        ) from None
    if result.role == "worker":
        print(f"worker done: ran trials {', '.join(result.ran) or 'none'} in {result.project_dir}")
        return 0
    _report(result, fv)
    return 0


def _search(model, model_file, fv, rates, betas):
    """`tuner.search` with the records the flags make."""
    import tuner

    try:  # values that parse but are not allowed: a bad command line
        search_space = tuner.SearchSpace(positions=fv.positions, types=fv.types, rates=rates,
                                         betas=betas)
    except ValueError as e:
        raise UsageError(common.flat(e)) from None
    return tuner.search(
        model, fv.data,
        space=search_space,
        training=tuner.TrainingConfig(
            epochs=fv.epochs, batch_size=fv.batch_size, learning_rate=fv.learning_rate,
            weight_decay=fv.weight_decay, loss=fv.loss, optimizer=fv.optimizer,
            from_logits=fv.from_logits,
        ),
        data=tuner.DataConfig(take=fv.take, data_dir=fv.data_dir, download=fv.download),
        run=tuner.RunConfig(
            oracle=fv.oracle, max_trials=fv.max_trials, seed=fv.seed, objective=fv.objective,
            strategy=fv.strategy, verbose=0 if fv.json else 1, fit_verbose=_fit_verbose(fv),
        ),
        project=tuner.ProjectConfig(directory=fv.directory, name=fv.project, overwrite=fv.restart,
                                    model_file=model_file),
        model_options=None if fv.dtype_policy is None else {"dtype_policy": fv.dtype_policy},
    )


def _report(result, fv):
    """Prints the results (table, best trial, files; or JSON); fails when no trial completed."""
    if fv.json:
        print(json.dumps({"project_dir": result.project_dir, "best": result.best,
                          "files": result.files, "trials": result.rows}, indent=2))
    else:
        print()
        print(f"Search {result.project_dir}: {len(result.rows)} trial(s); max shift = max over BN "
              "layers of max(real/moving, moving/real) variance, 1 = none; train acc in training "
              "vs inference mode on training examples; recal. BN = val acc after precise BN "
              "re-estimation on the training data.")
        print(result.table())
        if result.best is not None:
            b = result.best
            what = b["position"] + (f", {b['type']} {b['rate']:g}" if b["type"] != "-" else "")
            print(f"best: Trial #{b['trial_number']} (trial_id {b['trial_id']}: {what}), "
                  f"{result.objective} {b[result.objective]:.4f}")
        for path in result.files.values():
            print(f"wrote {path}")
    if not any(r["status"] == "COMPLETED" for r in result.rows):
        raise CliError(
            f"no trial completed ({len(result.rows)} run); see the message column and the "
            f"trials' keras_vs.json files in {result.project_dir}"
        )


COMMAND = Command(
    name="tune",
    summary="Search dropout position, type and rate (keras-tuner), with the variance shift of "
    "each trial.",
    define_flags=_define_flags,
    run=_run,
    description=(
        "With no flags: a 10-trial grid over every dropout position (Bernoulli 0.2/0.5, Uout 0.5, "
        "none) of WRN-10-1 on the offline digits set, 8 epochs each. Prints the results table and "
        "writes results.csv, results.json, results.png and best_model.keras into "
        "--directory/--project; rerunning the same command resumes the search. With "
        "KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP and KERASTUNER_ORACLE_PORT set the process is "
        "a keras-tuner chief or worker."
    ),
)
