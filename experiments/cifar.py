"""The paper's CIFAR-10/100 experiments on a machine that has the data.

Four tables (`experiments.cifar_tables`), named by what they hold, with the
paper's layout: ``baseline`` (no dropout), ``positions`` (rate 0.5 at (a)
``before_bn`` and (b) ``before_conv``, before and after BN re-estimation),
``head`` (one dropout before the classifier at rates 0.1-0.5) and ``uout``
(Uout at (b), beta 0.1-0.5).

One command trains one row (a net on both data sets) with the reference
recipe (`tuner.recipe`: torch's SGD with coupled weight decay, the
reference's epochs, schedule and batch size), resumably, through
`tuner.search`, then measures every trained model like
``experiments.positions``. Test error is recorded for the final model (as
measured and re-estimated) and for the best epoch (the reference's
``best_acc``). The data comes from TensorFlow Datasets (``--data_dir``;
prepare it with ``tfds build cifar10 --data_dir DIR`` where there is
internet).

Usage:

    python -m experiments.cifar --print_commands [--estimate_steps=50]
    python -m experiments.cifar --table=positions --nets=wrn-28-10 --seeds=0,1,2,3,4 \\
        --data_dir=DIR --out=results/cifar
    python -m experiments.cifar --collect --out=results/cifar
"""

import dataclasses
import glob
import os
import time

from absl import flags

from experiments import common
from experiments import study as study_lib
from tuner.config import DataConfig, TrainingConfig
from experiments.cifar_tables import (
    COLUMNS,
    DATASETS,
    NETS,
    SEEDS,
    SHORT,
    TABLES,
    Net,
    figure,
    paper_table,
    report,
)

__all__ = [
    "CIFAR_TRAIN",
    "best_epochs",
    "commands",
    "define_flags",
    "device",
    "estimate_epoch_seconds",
    "main",
    "recipe",
    "run",
    "trials",
]

FLAGS = flags.FLAGS
CIFAR_TRAIN = 50_000


def define_flags():
    """Defines the command-line flags (only when run as a script)."""
    flags.DEFINE_enum("table", "positions", list(TABLES), "Which table to run.")
    flags.DEFINE_list("nets", list(NETS), "Zoo networks (the paper's four by default).")
    flags.DEFINE_list("datasets", list(DATASETS), "cifar10 and/or cifar100.")
    flags.DEFINE_list("seeds", [str(s) for s in SEEDS], "Seeds (the paper averages 5).")
    flags.DEFINE_integer("epochs", None, "Epochs (default: the recipe's).", lower_bound=1)
    flags.DEFINE_integer("batch_size", None, "Batch size (default: the recipe's).", lower_bound=1)
    flags.DEFINE_string("data_dir", None, "TensorFlow Datasets folder.")
    flags.DEFINE_bool("download", False, "Let TFDS download the data.")
    flags.DEFINE_integer("take", None, "Use only this many training examples (smoke runs).", lower_bound=1)
    flags.DEFINE_integer("measure_steps", None, "Batches used to measure and re-estimate (all if unset).",
                         lower_bound=1)
    flags.DEFINE_string("directory", common.DEFAULT_DIRECTORY, "Folder of the (resumable) searches.")
    flags.DEFINE_string("out", "results/cifar", "Output folder.")
    flags.DEFINE_bool("print_commands", False, "Print the command lines of the full reproduction and exit.")
    flags.DEFINE_integer("estimate_steps", 0, "With --print_commands: time this many training steps of "
                         "each net on this machine's backend and extrapolate the run time.", lower_bound=0)
    flags.DEFINE_bool("collect", False, "Write and print the paper's tables from the CSV files in --out.")
    flags.DEFINE_integer("verbose", 1, "keras-tuner progress (0: quiet).")


def recipe(net, epochs=None, batch_size=None):
    """``(epochs, batch_size, learning_rate at batch 128)`` of a net's reference recipe.

    Epochs come from the family's `tuner.RECIPES`; nets outside the paper's
    four (e.g. small zoo configs for smoke runs) train at batch 128, lr 0.1.
    """
    import zoo
    from tuner import recipe as recipe_lib

    spec = NETS.get(net, Net(net))
    default_epochs = recipe_lib.RECIPES[zoo.entry(net).family].epochs
    # tuner scales the rate linearly from batch 128; the reference gives it at its own batch.
    return epochs or default_epochs, batch_size or spec.batch_size, spec.learning_rate * 128 / spec.batch_size


def trials(table):
    """Models trained per (net, data set, seed) for a table."""
    return study_lib.grid_size(TABLES[table].space)


def _project_dir(directory, table, net, dataset, seed):
    """The folder `study_lib.dropout_study` gives the search of one seed."""
    return os.path.join(directory, f"cifar-{table}-{net}-{dataset}-seed{seed}")


def best_epochs(project_dir):
    """``{(position, type, rate): (best test accuracy, its epoch)}`` of a search's trials.

    A TFDS search validates on the test split after every epoch, so the
    best ``val_accuracy`` of a trial's history is the reference's ``best_acc``.
    """
    from tuner import project

    found = {}
    for trial_dir in sorted(glob.glob(os.path.join(project_dir, "trial_*"))):
        record = project.read_trial_file(trial_dir)
        history = (record or {}).get("history", {}).get("val_accuracy")
        if not history:
            continue
        hp = record["hyperparameters"]
        position = hp.get("dropout_position")
        dropout_type = hp.get("dropout_type") if position not in ("none", "remove") else None
        rate = {"bernoulli": hp.get("dropout_rate"), "uout": hp.get("uout_beta")}.get(dropout_type)
        best = max(range(len(history)), key=history.__getitem__)
        found[(position, dropout_type or "-", 0.0 if rate is None else float(rate))] = (history[best], best + 1)
    return found


def run(table, net, dataset, seeds, *, epochs=None, batch_size=None, data=None, study=None):
    """Trains and measures one table for one net and data set.

    Args:
        table: A `TABLES` name.
        net: Zoo name.
        dataset: ``"cifar10"`` or ``"cifar100"``.
        seeds: Seeds.
        epochs, batch_size: Override the recipe.
        data: A `tuner.DataConfig` (``take``, ``data_dir``, ``download``).
        study_config: An `experiments.study_lib.StudyConfig` (folder of the
            searches, ``measure_steps``, ``verbose``; the search folders'
            prefix is set here).

    Returns:
        ``(rows, per_bn)``; rows have `COLUMNS`.
    """
    if table not in TABLES:
        raise ValueError(f"Unknown table. Expected one of {', '.join(TABLES)}. Received: table={table!r}")
    if dataset not in DATASETS:
        raise ValueError(f"Expected cifar10 or cifar100. Received: dataset={dataset!r}")
    epochs, batch_size, lr = recipe(net, epochs, batch_size)
    study = dataclasses.replace(study or study_lib.StudyConfig(), project_prefix=f"cifar-{table}-{net}")
    rows, per_bn = study_lib.dropout_study(
        net, dataset, seeds=seeds, space=TABLES[table].space, data=data, study=study,
        training=TrainingConfig(epochs=epochs, batch_size=batch_size, learning_rate=lr),
    )
    best = {seed: best_epochs(_project_dir(study.directory, table, net, dataset, seed)) for seed in seeds}
    for row in rows:
        row["dataset"] = dataset
        accuracy, epoch = best[row["seed"]].get((row["position"], row["type"], row["rate"]), (None, None))
        row["best_test_accuracy"], row["best_epoch"] = accuracy, epoch
    return rows, per_bn


# ---------------------------------------------------------------------------
# Time estimate


def device():
    """The backend and accelerator training runs on here, in words."""
    import keras

    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        d = jax.devices()[0]
        return f"jax on {d.platform} ({getattr(d, 'device_kind', d.platform)})"
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_logical_devices("GPU")
        return f"tensorflow on {gpus[0].name if gpus else 'CPU'}"
    if backend == "torch":
        import torch

        return f"torch on {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU'}"
    return backend


def estimate_epoch_seconds(net, num_classes, batch_size, steps):
    """Seconds of one CIFAR training epoch of ``net`` here: median step × steps per epoch.

    Times ``steps`` training steps on random 32x32 images under the
    reference recipe's optimizer, on the backend in use, after two warm-up
    steps (compilation).
    """
    import keras
    import numpy as np

    import zoo
    from tuner import recipe as recipe_lib

    per_epoch = -(-CIFAR_TRAIN // batch_size)
    model = zoo.get(net, num_classes=num_classes)
    r = recipe_lib.RECIPES[zoo.entry(net).family]
    model.compile(optimizer=recipe_lib.optimizer(r, r.epochs, per_epoch, batch_size),
                  loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch_size, 32, 32, 3)).astype("float32")
    y = rng.integers(0, num_classes, batch_size)
    for _ in range(2):
        model.train_on_batch(x, y)  # compile and warm up
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)  # returns NumPy values: waits for the device
        times.append(time.perf_counter() - start)
    keras.backend.clear_session()
    return float(np.median(times)) * per_epoch


def commands(nets, datasets, seeds, data_dir="DIR", estimate_steps=0, out="results/cifar"):
    """The command lines of the full reproduction, one per table row, with an estimated time each.

    Returns:
        Rows with ``command``, ``table``, ``net``, ``models`` (trained per
        run), ``epoch_seconds`` (per data set) and ``hours`` (both None
        unless ``estimate_steps``).
    """
    rows = []
    per_epoch = {}
    for table in TABLES:
        for net in nets:
            epochs, batch, _ = recipe(net)
            hours = epoch_seconds = None
            if estimate_steps:
                epoch_seconds = {}
                for dataset in datasets:
                    key = (net, 100 if dataset == "cifar100" else 10)
                    if key not in per_epoch:
                        per_epoch[key] = estimate_epoch_seconds(net, key[1], batch, estimate_steps)
                    epoch_seconds[dataset] = per_epoch[key]
                hours = sum(epoch_seconds.values()) * epochs * trials(table) * len(seeds) / 3600
            rows.append({
                "table": table,
                "net": net,
                "models": trials(table) * len(seeds) * len(datasets),
                "epoch_seconds": epoch_seconds,
                "hours": hours,
                "command": (
                    f"python -m experiments.cifar --table={table} --nets={net} "
                    f"--datasets={','.join(datasets)} --seeds={','.join(map(str, seeds))} "
                    f"--data_dir={data_dir} --out={out}"
                ),
            })
    return rows


# ---------------------------------------------------------------------------
# The script


def _print_commands(seeds):
    """Prints the command line of every table row (timed with --estimate_steps)."""
    if FLAGS.estimate_steps:
        print(f"# timed on {device()}")
    rows = commands(FLAGS.nets, FLAGS.datasets, seeds, FLAGS.data_dir or "DIR", FLAGS.estimate_steps, FLAGS.out)
    for r in rows:
        if r["hours"] is None:
            when = "time: pass --estimate_steps"
        else:
            epoch = ", ".join(f"{SHORT[d]} {s:.1f} s" for d, s in r["epoch_seconds"].items())
            when = f"{r['hours']:.1f} h (one epoch: {epoch})"
        print(f"{r['command']}    # {r['models']} models, {when}")
    print(f"python -m experiments.cifar --collect --out={FLAGS.out}    # the paper's tables")


def _collect():
    """Writes and prints every table in the paper's layout from the CSV files in --out."""
    text = "\n".join(paper_table(FLAGS.out, table, FLAGS.nets) for table in TABLES)
    print(text)
    print("wrote " + ", ".join(common.write_outputs(FLAGS.out, "cifar-tables", markdown=text)))


def _train(net, dataset, seeds):
    """Trains and measures --table for one net and data set; writes its files."""
    rows, per_bn = run(
        FLAGS.table, net, dataset, seeds, epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
        data=DataConfig(take=FLAGS.take, data_dir=FLAGS.data_dir, download=FLAGS.download),
        study=study_lib.StudyConfig(directory=FLAGS.directory, measure_steps=FLAGS.measure_steps,
                                    verbose=FLAGS.verbose),
    )
    name = f"cifar-{FLAGS.table}-{net}-{dataset}"
    text = report(rows, FLAGS.table, net, dataset, recipe(net, FLAGS.epochs)[0])
    paths = common.write_outputs(
        FLAGS.out, name,
        csv_files=[(f"{name}.csv", rows, COLUMNS),
                   (f"{name}_per_bn.csv", per_bn, study_lib.PER_BN_COLUMNS)],
        markdown=text,
        figure=figure(rows, f"{net} on {dataset}: {FLAGS.table}"),
    )
    print(text)
    print("wrote " + ", ".join(paths))


def main():
    """Prints the commands, collects the tables, or trains --table for every net and data set."""
    seeds = common.parse_ints("seeds", FLAGS.seeds)
    for dataset in FLAGS.datasets:
        if dataset not in DATASETS:
            raise ValueError(f"Expected cifar10 or cifar100. Received: --datasets={','.join(FLAGS.datasets)}")
    if FLAGS.print_commands:
        _print_commands(seeds)
        return
    if FLAGS.collect:
        _collect()
        return
    for net in FLAGS.nets:
        for dataset in FLAGS.datasets:
            _train(net, dataset, seeds)
        # The row of the paper's table this command trains.
        text = paper_table(FLAGS.out, FLAGS.table, [net])
        print(text)
        print("wrote " + ", ".join(common.write_outputs(FLAGS.out, f"cifar-{FLAGS.table}-{net}", markdown=text)))


if __name__ == "__main__":
    define_flags()
    common.run_script(main)
