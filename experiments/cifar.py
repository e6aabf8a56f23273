"""The paper's CIFAR-10/100 experiments (PAPER.md section 6) on a machine that has the data.

Four tables, named by what they hold (PAPER.md lists them without numbers):

- ``baseline``: no dropout.
- ``positions``: dropout rate 0.5 in position (a) ``before_bn`` and (b)
  ``before_conv``, test error before and after BN re-estimation.
- ``head``: one dropout before the classifier at rates 0.1/0.2/0.3/0.5.
- ``uout`` (section 4): Uout in position (b) with beta 0.1/0.2/0.3/0.5.

Each run trains with the paper's recipe for the family (SGD momentum 0.9,
its epochs, step schedule, weight decay and batch size), resumably, through
`tuner.search`, then measures every trained model like
``experiments.positions``. The data comes from TensorFlow Datasets
(``--data_dir``; prepare it with ``tfds build cifar10 --data_dir DIR``
where there is internet).

Usage:

    python -m experiments.cifar --print_commands [--estimate_steps=20]
    python -m experiments.cifar --table=positions --nets=wrn-28-10 --datasets=cifar10 \\
        --seeds=0,1,2,3,4 --data_dir=DIR --out=results/cifar
"""

import dataclasses
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
                       about="rate 0.5 at (a) and (b), before/after BN re-estimation"),
    "head": Table(("head",), (0.1, 0.2, 0.3, 0.5), about="one dropout before the classifier"),
    "uout": Table(("before_conv",), types=("uout",), betas=(0.1, 0.2, 0.3, 0.5),
                  about="Uout at (b)"),
}
# The paper's four networks and their training recipe (epochs, batch size,
# learning rate at that batch size); optimiser, schedule and weight decay
# come from `tuner.RECIPES` by family.
NETS = {
    "preresnet-110": (164, 128, 0.1),
    "resnext-29-8x64d": (300, 128, 0.1),
    "wrn-28-10": (200, 128, 0.1),
    "densenet-bc-100-12": (300, 64, 0.1),
}
CIFAR_TRAIN = 50_000
SEEDS = (0, 1, 2, 3, 4)


def define_flags():
    """Defines the command-line flags (only when run as a script)."""
    flags.DEFINE_enum("table", "positions", list(TABLES), "Which table to run.")
    flags.DEFINE_list("nets", list(NETS), "Zoo networks (the paper's four by default).")
    flags.DEFINE_list("datasets", ["cifar10", "cifar100"], "cifar10 and/or cifar100.")
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
                         "each net here and extrapolate the run time.", lower_bound=0)
    flags.DEFINE_integer("verbose", 1, "keras-tuner progress (0: quiet).")



def recipe(net, epochs=None, batch_size=None):
    """``(epochs, batch_size, learning_rate at batch 128)`` of a net's paper recipe.

    Nets outside the paper's four (e.g. small zoo configs for smoke runs) get
    the PreResNet recipe's 164 epochs, batch 128 and learning rate 0.1.
    """
    default_epochs, default_batch, lr = NETS.get(net, (164, 128, 0.1))
    batch = batch_size or default_batch
    # tuner scales the rate linearly from batch 128; the recipe gives it at its own batch.
    return epochs or default_epochs, batch, lr * 128 / default_batch


def trials(table):
    """Models trained per (net, data set, seed) for a table."""
    t = TABLES[table]
    return common.grid_size(t.positions, t.rates, t.types, t.betas)


def run(table, net, dataset, seeds, *, epochs=None, batch_size=None, **kwargs):
    """Trains and measures one table for one net and data set.

    Args:
        table: A `TABLES` name.
        net: Zoo name.
        dataset: ``"cifar10"`` or ``"cifar100"``.
        seeds: Seeds.
        epochs, batch_size: Override the recipe.
        **kwargs: Passed to `experiments.common.dropout_study` (data_dir,
            download, take, measure_steps, directory, verbose).

    Returns:
        ``(rows, per_bn)``.
    """
    if table not in TABLES:
        raise ValueError(f"Unknown table. Expected one of {', '.join(TABLES)}. Received: table={table!r}")
    if dataset not in ("cifar10", "cifar100"):
        raise ValueError(f"Expected cifar10 or cifar100. Received: dataset={dataset!r}")
    t = TABLES[table]
    epochs, batch_size, lr = recipe(net, epochs, batch_size)
    return common.dropout_study(
        net, dataset, positions=t.positions, rates=t.rates, types=t.types, betas=t.betas,
        seeds=seeds, epochs=epochs, batch_size=batch_size, learning_rate=lr,
        project_prefix=f"cifar-{table}-{net}", **kwargs,
    )


def estimate_seconds_per_step(net, num_classes, batch_size, steps):
    """Median seconds of one training step of ``net`` on random 32x32 images, on this machine."""
    import keras
    import numpy as np

    import zoo

    model = zoo.get(net, num_classes=num_classes)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch_size, 32, 32, 3)).astype("float32")
    y = rng.integers(0, num_classes, batch_size)
    model.train_on_batch(x, y)  # compile and warm up
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    keras.backend.clear_session()
    return float(np.median(times))


def commands(nets, datasets, seeds, data_dir="DIR", estimate_steps=0, out="results/cifar"):
    """The command lines of the full reproduction, with an estimated time each.

    Returns:
        Rows with ``command``, ``table``, ``net``, ``dataset``, ``models``
        (trained per run) and ``hours`` (None unless ``estimate_steps``).
    """
    rows = []
    per_step = {}
    for table in TABLES:
        for net in nets:
            epochs, batch, _ = recipe(net)
            for dataset in datasets:
                classes = 100 if dataset == "cifar100" else 10
                hours = None
                if estimate_steps:
                    key = (net, classes)
                    if key not in per_step:
                        per_step[key] = estimate_seconds_per_step(net, classes, batch, estimate_steps)
                    steps = -(-CIFAR_TRAIN // batch) * epochs
                    hours = per_step[key] * steps * trials(table) * len(seeds) / 3600
                rows.append({
                    "table": table,
                    "net": net,
                    "dataset": dataset,
                    "models": trials(table) * len(seeds),
                    "hours": hours,
                    "command": (
                        f"python -m experiments.cifar --table={table} --nets={net} "
                        f"--datasets={dataset} --seeds={','.join(map(str, seeds))} "
                        f"--data_dir={data_dir} --out={out}"
                    ),
                })
    return rows


def report(rows, table, net, dataset, epochs):
    """Markdown: test error before/after BN re-estimation, mean ± std over seeds."""
    cells = []
    for (position, dropout_type, rate), group in common.group_rows(rows, ("position", "type", "rate")).items():
        cells.append({
            "position": position,
            "type": dropout_type,
            "rate": f"{rate:g}",
            "seeds": len(group),
            "error": common.format_mean_std([100 * (1 - r["test_accuracy"]) for r in group], 2),
            "recal": common.format_mean_std([100 * (1 - r["recalibrated_accuracy"]) for r in group], 2),
            "shift": common.format_mean_std([r["shift_max"] for r in group], 3),
            "gap": common.format_mean_std([r["train_gap"] for r in group], 4),
        })
    return (
        f"# {net} on {dataset}: table '{table}' ({TABLES[table].about}), {epochs} epochs\n\n"
        + common.markdown_table(
            cells, ["position", "type", "rate", "seeds", "error", "recal", "shift", "gap"],
            ["position", "type", "rate (Uout: beta)", "seeds", "test error %",
             "test error %, BN re-estimated", "max shift", "train acc gap (train - inference mode)"],
        )
    )


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
    if FLAGS.print_commands:
        rows = commands(FLAGS.nets, FLAGS.datasets, seeds, FLAGS.data_dir or "DIR", FLAGS.estimate_steps, FLAGS.out)
        for r in rows:
            hours = f"{r['hours']:.1f} h" if r["hours"] is not None else "time: pass --estimate_steps"
            print(f"{r['command']}    # {r['models']} models, {hours}")
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
                csv_files=[(f"{name}.csv", rows, common.STUDY_COLUMNS),
                           (f"{name}_per_bn.csv", per_bn, common.PER_BN_COLUMNS)],
                markdown=text,
                figure=figure(rows, f"{net} on {dataset}: {FLAGS.table}"),
            )
            print(text)
            print("wrote " + ", ".join(paths))


if __name__ == "__main__":
    define_flags()
    common.run_script(main)
