"""The paper's CIFAR-10/100 experiments (PAPER.md section 6) on a machine that has the data.

Four tables, named by what they hold, with the paper's layout:

- ``baseline``: no dropout; one row per net, columns C10 / C100.
- ``positions``: dropout rate 0.5 in position (a) ``before_bn`` and (b)
  ``before_conv``; one row per net, columns C10 (a), C10 (b), C100 (a),
  C100 (b), each "test error → after BN re-estimation".
- ``head``: one dropout before the classifier at rates 0.1/0.2/0.3/0.5 (the
  0.0 column is the ``baseline`` row's); one row per net and data set.
- ``uout`` (section 4): Uout in position (b) with beta 0.1/0.2/0.3/0.5.

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

import csv
import dataclasses
import glob
import math
import os
import time

from absl import flags

from experiments import common

FLAGS = flags.FLAGS


@dataclasses.dataclass(frozen=True)
class Table:
    """One table of the paper: what to train for each net and data set."""

    positions: tuple
    rates: tuple = (0.5,)
    types: tuple = ("bernoulli",)
    betas: tuple = (0.5,)
    about: str = ""


TABLES = {
    "baseline": Table(("none",), about="no dropout"),
    "positions": Table(("before_bn", "before_conv"), (0.5,),
                       about="rate 0.5 at (a) and (b), before → after BN re-estimation"),
    "head": Table(("head",), (0.1, 0.2, 0.3, 0.5), about="one dropout before the classifier"),
    "uout": Table(("before_conv",), types=("uout",), betas=(0.1, 0.2, 0.3, 0.5),
                  about="Uout at (b)"),
}


@dataclasses.dataclass(frozen=True)
class Net:
    """A paper network: its row name and the reference's batch size and rate at that batch."""

    label: str
    batch_size: int = 128
    learning_rate: float = 0.1


# The paper's four networks; epochs, schedule and weight decay come from
# `tuner.RECIPES` by family (TRAINING.md: DenseNet trains at batch 64, lr 0.1).
NETS = {
    "preresnet-110": Net("PreResNet"),
    "resnext-29-8x64d": Net("ResNeXt"),
    "wrn-28-10": Net("WRN"),
    "densenet-bc-100-12": Net("DenseNet", 64),
}
DATASETS = ("cifar10", "cifar100")
SHORT = {"cifar10": "C10", "cifar100": "C100"}
CIFAR_TRAIN = 50_000
SEEDS = (0, 1, 2, 3, 4)
# PAPER.md section 6, test error %: C10 then C100 per row.
PAPER = {
    "baseline": {"PreResNet": (5.02, 23.73), "ResNeXt": (3.77, 17.78), "WRN": (3.97, 19.17),
                 "DenseNet": (4.72, 22.58)},
    "positions": {"PreResNet": ("8.42 → 6.42", "5.85 → 5.77", "32.45 → 26.57", "25.50 → 25.20"),
                  "ResNeXt": ("4.43 → 3.96", "4.09 → 3.93", "19.04 → 18.24", "19.33 → 19.09"),
                  "WRN": ("4.59 → 4.20", "3.81 → 3.71", "21.08 → 20.70", "19.48 → 19.15"),
                  "DenseNet": ("8.70 → 6.82", "5.63 → 5.29", "31.45 → 26.98", "25.00 → 23.92")},
    "head": {("PreResNet", "cifar10"): (5.02, 4.96, 5.01, 4.94, 5.03),
             ("ResNeXt", "cifar10"): (3.77, 3.89, 3.69, 3.78, 3.78),
             ("WRN", "cifar10"): (3.97, 3.90, 4.00, 3.93, 3.84),
             ("DenseNet", "cifar10"): (4.72, 4.67, 4.73, 4.75, 4.87),
             ("PreResNet", "cifar100"): (23.73, 23.43, 23.65, 23.45, 23.76),
             ("ResNeXt", "cifar100"): (17.78, 17.77, 17.99, 17.97, 18.26),
             ("WRN", "cifar100"): (19.17, 19.17, 19.23, 19.19, 19.25),
             ("DenseNet", "cifar100"): (22.58, 21.86, 22.41, 22.41, 23.49)},
}
COLUMNS = ("dataset",) + common.STUDY_COLUMNS + ("best_test_accuracy", "best_epoch")


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
    t = TABLES[table]
    return common.grid_size(t.positions, t.rates, t.types, t.betas)


def _project_dir(directory, table, net, dataset, seed):
    # The folder `common.dropout_study` gives the search of one seed.
    return os.path.join(directory, f"cifar-{table}-{net}-{dataset}-seed{seed}")


def best_epochs(project_dir):
    """``{(position, type, rate): (best test accuracy, its epoch)}`` of a search's trials.

    A TFDS search validates on the test split after every epoch, so the
    best ``val_accuracy`` of a trial's history is the reference's ``best_acc``.
    """
    from tuner import driver

    found = {}
    for trial_dir in sorted(glob.glob(os.path.join(project_dir, "trial_*"))):
        record = driver.read_trial_file(trial_dir)
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


def run(table, net, dataset, seeds, *, epochs=None, batch_size=None, directory=common.DEFAULT_DIRECTORY,
        **kwargs):
    """Trains and measures one table for one net and data set.

    Args:
        table: A `TABLES` name.
        net: Zoo name.
        dataset: ``"cifar10"`` or ``"cifar100"``.
        seeds: Seeds.
        epochs, batch_size: Override the recipe.
        directory: Parent folder of the searches.
        **kwargs: Passed to `experiments.common.dropout_study` (data_dir,
            download, take, measure_steps, verbose).

    Returns:
        ``(rows, per_bn)``; rows have `COLUMNS`.
    """
    if table not in TABLES:
        raise ValueError(f"Unknown table. Expected one of {', '.join(TABLES)}. Received: table={table!r}")
    if dataset not in DATASETS:
        raise ValueError(f"Expected cifar10 or cifar100. Received: dataset={dataset!r}")
    t = TABLES[table]
    epochs, batch_size, lr = recipe(net, epochs, batch_size)
    rows, per_bn = common.dropout_study(
        net, dataset, positions=t.positions, rates=t.rates, types=t.types, betas=t.betas,
        seeds=seeds, epochs=epochs, batch_size=batch_size, learning_rate=lr, directory=directory,
        project_prefix=f"cifar-{table}-{net}", **kwargs,
    )
    best = {seed: best_epochs(_project_dir(directory, table, net, dataset, seed)) for seed in seeds}
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
# Reports


def _error(rows, key):
    values = [100 * (1 - float(r[key])) for r in rows if r.get(key) not in (None, "")]
    return common.mean_std(values)[0] if values else math.nan


def _cell(value, digits=2):
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def report(rows, table, net, dataset, epochs):
    """Markdown: test error (final, best epoch, BN re-estimated), mean ± std over seeds."""
    def errors(group, key):
        return common.format_mean_std([100 * (1 - r[key]) for r in group if r.get(key) is not None], 2)

    cells = []
    for (position, dropout_type, rate), group in common.group_rows(rows, ("position", "type", "rate")).items():
        cells.append({
            "position": position, "type": dropout_type, "rate": f"{rate:g}", "seeds": len(group),
            "error": errors(group, "test_accuracy"), "best": errors(group, "best_test_accuracy"),
            "recal": errors(group, "recalibrated_accuracy"),
            "shift": common.format_mean_std([r["shift_max"] for r in group], 3),
            "gap": common.format_mean_std([r["train_gap"] for r in group], 4),
        })
    return (
        f"# {net} on {dataset}: table '{table}' ({TABLES[table].about}), {epochs} epochs\n\n"
        + common.markdown_table(
            cells, ["position", "type", "rate", "seeds", "error", "best", "recal", "shift", "gap"],
            ["position", "type", "rate (Uout: beta)", "seeds", "test error %, final",
             "test error %, best epoch", "test error %, final, BN re-estimated", "max shift",
             "train acc gap (train - inference mode)"],
        )
    )


def read_rows(out, table, net, dataset):
    """The rows a run wrote to ``out`` (an empty list if it has not run)."""
    path = os.path.join(out, f"cifar-{table}-{net}-{dataset}.csv")
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["rate"] = float(row["rate"] or 0.0)
    return rows


def paper_table(out, table, nets):
    """The paper's layout of ``table`` from the CSV files in ``out``, then the paper's own numbers.

    Cells are mean test error % over the seeds run: final model (best epoch
    in parentheses) for ``baseline`` and ``head``; final → BN re-estimated
    for ``positions`` and ``uout``.
    """
    t = TABLES[table]
    label = {net: NETS[net].label if net in NETS else net for net in nets}
    if table == "baseline":
        headers = ["net", "C10", "C100"]
        lines = [[label[n]] + [_final_best(read_rows(out, table, n, d)) for d in DATASETS] for n in nets]
        paper = [[k, *(f"{e:.2f}" for e in v)] for k, v in PAPER[table].items()]
    elif table == "positions":
        headers = ["net"] + [f"{SHORT[d]} ({p})" for d in DATASETS for p in ("a", "b")]
        lines = [[label[n]] + [_before_after([r for r in read_rows(out, table, n, d) if r["position"] == p])
                               for d in DATASETS for p in t.positions] for n in nets]
        paper = [[k, *v] for k, v in PAPER[table].items()]
    else:
        values = t.rates if table == "head" else t.betas
        headers = ["net", "data set"] + (["0.0"] if table == "head" else []) + [f"{v:g}" for v in values]
        lines, paper = [], []
        for n in nets:
            for d in DATASETS:
                rows = read_rows(out, table, n, d)
                if table == "head":
                    cells = [_final_best(read_rows(out, "baseline", n, d))]
                    cells += [_final_best([r for r in rows if r["rate"] == v]) for v in values]
                else:
                    cells = [_before_after([r for r in rows if r["rate"] == v]) for v in values]
                lines.append([label[n], SHORT[d]] + cells)
        if table == "head":
            paper = [[k[0], SHORT[k[1]], *(f"{e:.2f}" for e in v)] for k, v in PAPER[table].items()]
    text = f"## {table}: {t.about}, test error %\n\n" + _markdown(headers, lines)
    paper = [line for line in paper if line[0] in label.values()]
    if paper:
        text += "\nThe paper (PAPER.md section 6, mean of 5 seeds):\n\n" + _markdown(headers, paper)
    return text


def _final_best(rows):
    if not rows:
        return "-"
    return f"{_cell(_error(rows, 'test_accuracy'))} ({_cell(_error(rows, 'best_test_accuracy'))})"


def _before_after(rows):
    if not rows:
        return "-"
    return f"{_cell(_error(rows, 'test_accuracy'))} → {_cell(_error(rows, 'recalibrated_accuracy'))}"


def _markdown(headers, lines):
    return common.markdown_table([dict(zip(headers, line)) for line in lines], headers)


def figure(rows, title):
    """Test error before and after BN re-estimation per setting (mean over seeds)."""
    plt = common.pyplot()
    groups = common.group_rows(rows, ("position", "type", "rate"))
    labels = [f"{p}\n{t} {r:g}" if t != "-" else p for p, t, r in groups]
    before = [common.mean_std([100 * (1 - r["test_accuracy"]) for r in g])[0] for g in groups.values()]
    after = [common.mean_std([100 * (1 - r["recalibrated_accuracy"]) for r in g])[0] for g in groups.values()]
    fig, ax = plt.subplots(figsize=(max(4, 1.6 * len(labels)), 3.6))
    xs = range(len(labels))
    ax.bar([x - 0.2 for x in xs], before, width=0.4, label="as trained")
    ax.bar([x + 0.2 for x in xs], after, width=0.4, label="BN re-estimated")
    ax.set_xticks(list(xs), labels, fontsize=8)
    ax.set_ylabel("test error %")
    ax.set_title(title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def main():
    seeds = common.parse_ints("seeds", FLAGS.seeds)
    for dataset in FLAGS.datasets:
        if dataset not in DATASETS:
            raise ValueError(f"Expected cifar10 or cifar100. Received: --datasets={','.join(FLAGS.datasets)}")
    if FLAGS.print_commands:
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
        return
    if FLAGS.collect:
        text = "\n".join(paper_table(FLAGS.out, table, FLAGS.nets) for table in TABLES)
        print(text)
        print("wrote " + ", ".join(common.write_outputs(FLAGS.out, "cifar-tables", markdown=text)))
        return
    for net in FLAGS.nets:
        for dataset in FLAGS.datasets:
            rows, per_bn = run(
                FLAGS.table, net, dataset, seeds, epochs=FLAGS.epochs, batch_size=FLAGS.batch_size,
                data_dir=FLAGS.data_dir, download=FLAGS.download, take=FLAGS.take,
                measure_steps=FLAGS.measure_steps, directory=FLAGS.directory, verbose=FLAGS.verbose,
            )
            name = f"cifar-{FLAGS.table}-{net}-{dataset}"
            text = report(rows, FLAGS.table, net, dataset, recipe(net, FLAGS.epochs)[0])
            paths = common.write_outputs(
                FLAGS.out, name,
                csv_files=[(f"{name}.csv", rows, COLUMNS),
                           (f"{name}_per_bn.csv", per_bn, common.PER_BN_COLUMNS)],
                markdown=text,
                figure=figure(rows, f"{net} on {dataset}: {FLAGS.table}"),
            )
            print(text)
            print("wrote " + ", ".join(paths))
        # The row of the paper's table this command trains.
        text = paper_table(FLAGS.out, FLAGS.table, [net])
        print(text)
        print("wrote " + ", ".join(common.write_outputs(FLAGS.out, f"cifar-{FLAGS.table}-{net}", markdown=text)))


if __name__ == "__main__":
    define_flags()
    common.run_script(main)
