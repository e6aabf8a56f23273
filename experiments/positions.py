"""Dropout position x rate on real data at CPU scale (the paper's Fig. 4/5 and its rate-0.5 table).

For each small zoo network, each position ("none", "before_bn",
"before_conv", "head"), each rate and each seed: train with the paper's
recipe (scaled to the epochs run), then measure test accuracy, the
variance-shift statistic of every BN on the training data, the
train-mode/inference-mode accuracy on the training data, and test accuracy
after `keras_vs.recalibrate_bn`. Writes ``positions.csv`` (one row per
trained model), ``positions_per_bn.csv``, ``positions.md`` (mean ± std over
seeds) and ``positions.png``.

Usage:

    python -m experiments.positions --out=results/positions
"""

from absl import flags

from experiments import common
from experiments import study as study_lib
from tuner.space import SearchSpace

__all__ = [
    "SUMMARY",
    "define_flags",
    "figure",
    "main",
    "report",
    "run",
    "summary",
]

FLAGS = flags.FLAGS


def define_flags():
    """Defines the command-line flags (only when run as a script)."""
    flags.DEFINE_list("models", ["wrn-10-1", "densenet-bc-22-4"], "Zoo networks.")
    flags.DEFINE_list("positions", ["none", "before_bn", "before_conv", "head"], "Dropout positions.")
    flags.DEFINE_list("rates", ["0.1", "0.3", "0.5"], "Bernoulli rates (rate 0 is position none).")
    flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
    common.define_training_flags(out="results/positions")


SUMMARY = (
    ("test_accuracy", "test acc", 4),
    ("recalibrated_accuracy", "test acc, BN re-estimated", 4),
    ("shift_max", "max shift", 3),
    ("shift_direct", "shift at direct pairs", 3),
    ("expected_direct", "closed form, c = 0", 3),
    ("expected_direct_measured_c", "closed form, measured c", 3),
    ("train_mode_accuracy", "train acc, train mode", 4),
    ("train_inference_accuracy", "train acc, inference", 4),
)


def run(models, dataset, *, space, seeds, training=None, data=None, study=None):
    """Runs the study for every model.

    Args:
        models: Zoo names.
        dataset: Data set name.
        space: A `tuner.SearchSpace` of zoo positions and rates.
        seeds: Seeds.
        training, data, study: `tuner.TrainingConfig`, `tuner.DataConfig` and
            `experiments.study.StudyConfig` (see `experiments.study.dropout_study`).

    Returns:
        ``(rows, per_bn)`` as `experiments.study.dropout_study`.
    """
    rows, per_bn = [], []
    for model in models:
        r, p = study_lib.dropout_study(model, dataset, seeds=seeds, space=space, training=training, data=data,
                                       study=study)
        rows += r
        per_bn += p
    return rows, per_bn


def summary(rows):
    """Mean ± std over seeds per (model, position, rate)."""
    out = []
    groups = common.group_rows(rows, ("model", "position", "type", "rate"))
    for (model, position, dropout_type, rate), group in groups.items():
        cell = {"model": model, "position": position, "rate": f"{rate:g}", "seeds": len(group)}
        for key, _, digits in SUMMARY:
            cell[key] = common.format_mean_std([g.get(key) for g in group], digits)
        out.append(cell)
    return out


def report(rows, dataset, epochs):
    """The Markdown report."""
    columns = ["model", "position", "rate", "seeds"] + [k for k, _, _ in SUMMARY]
    headers = ["model", "position", "rate", "seeds"] + [h for _, h, _ in SUMMARY]
    return (
        f"# Dropout position x rate on {dataset} ({epochs} epochs, mean ± std over seeds)\n\n"
        "Shift: the paper's statistic max(real/moving, moving/real) per BN on the training data; "
        "'shift at direct pairs' averages it over the BNs a dropout feeds directly, next to the "
        "closed form: 1/(1-rate) for zero-mean inputs, and ((c²+v)/(1-rate) - c²)/v with each "
        "channel's measured mean c and variance v at those BNs (averaged over channels as the "
        "statistic is). Train-set accuracy in training mode vs "
        "inference mode is the paper's inconsistency (Fig. 5).\n\n"
        + common.markdown_table(summary(rows), columns, headers)
    )


def figure(rows, per_bn):
    """Accuracy, recalibrated accuracy and max shift against rate; per-BN statistic at the largest rate."""
    plt = common.pyplot()
    models = list(dict.fromkeys(r["model"] for r in rows))
    fig, axes = plt.subplots(len(models), 3, figsize=(14, 3.6 * len(models)), squeeze=False)
    for axrow, model in zip(axes, models):
        mine = [r for r in rows if r["model"] == model]
        base = [r for r in mine if r["position"] == "none"]
        top = max((r["rate"] for r in mine), default=0.0)
        for position in dict.fromkeys(r["position"] for r in mine if r["position"] != "none"):
            sel = base + [r for r in mine if r["position"] == position]
            rates = sorted({r["rate"] for r in sel})

            def mean(key):
                """Mean over seeds of ``key`` at each rate."""
                return [common.mean_std([r[key] for r in sel if r["rate"] == x])[0] for x in rates]

            (line,) = axrow[0].plot(rates, mean("test_accuracy"), marker="o", label=position)
            axrow[0].plot(rates, mean("recalibrated_accuracy"), linestyle="--", color=line.get_color())
            axrow[1].plot(rates, mean("shift_max"), marker="o", label=position)
            bns = [b for b in per_bn if b["model"] == model and b["position"] == position
                   and b["rate"] == top and b["seed"] == min(r["seed"] for r in mine)]
            axrow[2].plot([b["index"] for b in bns], [b["statistic"] for b in bns], marker=".",
                          label=f"{position}, rate {top:g}")
        axrow[0].set_title(f"{model}: test accuracy (dashed: BN re-estimated)")
        axrow[0].set_xlabel("dropout rate")
        axrow[1].set_title("max variance shift over BNs")
        axrow[1].set_xlabel("dropout rate")
        axrow[2].set_title("statistic per BN (seed shown: lowest)")
        axrow[2].set_xlabel("BN index, shallow to deep")
        for ax in axrow:
            ax.legend(fontsize=7)
        for ax in axrow[1:]:
            ax.axhline(1.0, color="gray", linewidth=0.8, linestyle="--")
    fig.tight_layout()
    return fig


def main():
    """Runs the study with the flags' settings and writes its files."""
    space = SearchSpace(positions=tuple(FLAGS.positions), types=("bernoulli",),
                        rates=common.parse_floats("rates", FLAGS.rates))
    rows, per_bn = run(FLAGS.models, FLAGS.dataset, space=space, seeds=common.parse_ints("seeds", FLAGS.seeds),
                       **common.training_options())
    text = report(rows, FLAGS.dataset, FLAGS.epochs)
    paths = common.write_outputs(
        FLAGS.out,
        "positions",
        csv_files=[
            ("positions.csv", rows, study_lib.STUDY_COLUMNS),
            ("positions_per_bn.csv", per_bn, study_lib.PER_BN_COLUMNS),
        ],
        markdown=text,
        figure=figure(rows, per_bn),
    )
    print(text)
    print("wrote " + ", ".join(paths))


if __name__ == "__main__":
    define_flags()
    common.run_script(main)
