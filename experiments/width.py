"""Variance shift against network width: the paper's Wide ResNet argument (its case b).

Case (b) predicts that dropout before a conv shifts the following BN less
when d·cos²θ of the conv's kernel is large, which wide layers make likely.
For WRN-depth-k at each width k this trains the network without dropout,
with dropout before every block's last BN (case a) and before every block's
last conv (case b, WRN's own placement), and records the measured statistic
next to the measured mean d·cos²θ of the trained conv kernels. A second table
gives the mean d·cos²θ of small trained networks of all four families without
dropout, next to the paper's Table 1. Writes ``width.csv``, ``width_cos2.csv``,
``width.md`` and ``width.png``.

Usage:

    python -m experiments.width --out=results/width
"""

import dataclasses

import numpy as np
from absl import flags

from experiments import common
from experiments import study as study_lib
from tuner.space import SearchSpace

__all__ = [
    "COLUMNS",
    "COS2_COLUMNS",
    "PAPER_D_COS2",
    "define_flags",
    "family_statistics",
    "figure",
    "kernel_statistics",
    "main",
    "report",
    "run",
]

FLAGS = flags.FLAGS


def define_flags():
    """Defines the command-line flags (only when run as a script)."""
    flags.DEFINE_list("widths", ["1", "2", "4", "8"], "Widening factors k of WRN-depth-k.")
    flags.DEFINE_integer("depth", 10, "WRN depth (6n + 4).", lower_bound=10)
    flags.DEFINE_float("rate", 0.5, "Dropout rate.")
    flags.DEFINE_list("seeds", ["0"], "Seeds.")
    flags.DEFINE_list(
        "families", ["preresnet-20", "resnext-11-2x4d", "wrn-10-1", "densenet-bc-22-4"],
        "Zoo networks trained without dropout for the d·cos²θ table (empty to skip).",
    )
    common.define_training_flags(out="results/width")


# The paper's Table 1: mean d·cos²θ over conv layers, networks trained without dropout (C10, C100).
PAPER_D_COS2 = {"preresnet": (2.9, 2.6), "resnext": (14.8, 14.7), "wide_resnet": (52.7, 44.3),
                "densenet": (3.8, 3.4)}
COLUMNS = study_lib.STUDY_COLUMNS + ("width", "d_cos2_convs", "d_cos2_after_dropout", "fan_in_after_dropout")
COS2_COLUMNS = ("model", "family", "seed", "test_accuracy", "d_cos2_init", "d_cos2_convs", "conv_layers",
                "paper_c10", "paper_c100")


def _convs(model):
    """The model's Conv2D layers."""
    import keras

    return [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]


def kernel_statistics(model, row=None):
    """Mean d·cos²θ of a model's conv kernels, overall and for convs that follow a dropout.

    Args:
        model: A trained model.
        row: Unused (the `experiments.study.dropout_study` hook signature).

    Returns:
        A dict with ``d_cos2_convs`` (mean over conv layers of the mean over
        output units), ``conv_layers``, ``d_cos2_after_dropout`` and
        ``fan_in_after_dropout`` (None without a dropout -> conv -> BN pair).

    Example:

    >>> import zoo
    >>> stats = kernel_statistics(zoo.get("wrn-10-1", input_shape=(8, 8, 1)))
    >>> stats["conv_layers"], stats["d_cos2_after_dropout"]
    (9, None)
    """
    import keras_vs

    def mean_d_cos2(layer):
        """d·cos²θ of ``layer``'s kernel, averaged over its output units."""
        return float(np.nanmean(keras_vs.theory.cos2_theta(layer).d_cos2))

    convs = _convs(model)
    on_path = set()
    for finding in keras_vs.find_disharmony(model):
        if finding.kind == "through_linear":
            on_path.update(finding.path)
    after = [layer for layer in convs if layer.name in on_path]
    return {
        "d_cos2_convs": float(np.mean([mean_d_cos2(c) for c in convs])) if convs else None,
        "conv_layers": len(convs),
        "d_cos2_after_dropout": float(np.mean([mean_d_cos2(c) for c in after])) if after else None,
        "fan_in_after_dropout": (
            float(np.mean([keras_vs.theory.cos2_theta(c).d for c in after])) if after else None
        ),
    }


def family_statistics(model, row):
    """`kernel_statistics` of a trained model, plus the mean d·cos²θ of its initial kernels.

    The initial value comes from a clone of the architecture with fresh
    weights (the zoo's He fan-out initialisation, seeded by the row's seed).
    """
    import keras

    stats = kernel_statistics(model)
    keras.utils.set_random_seed(row["seed"])
    stats["d_cos2_init"] = kernel_statistics(keras.models.clone_model(model))["d_cos2_convs"]
    return stats


def run(widths, dataset, *, depth=10, rate=0.5, seeds=(0,), families=(), training=None, data=None, study=None):
    """Trains every width and position, then the family networks without dropout.

    Args:
        widths: Widening factors.
        dataset: Data set name.
        depth: WRN depth.
        rate: Dropout rate of the two dropout positions.
        seeds: Seeds.
        families: Zoo names for the d·cos²θ table.
        training, data, study: `tuner.TrainingConfig`, `tuner.DataConfig`
            and `experiments.study.StudyConfig` of every
            `experiments.study.dropout_study` (this sets the study's
            ``project_prefix`` and ``analyse``).

    Returns:
        ``(rows, cos2_rows)``.
    """
    import zoo

    for name in families:  # fail before hours of training, not after
        zoo.entry(name)
    study_config = study or study_lib.StudyConfig()
    records = dict(training=training, data=data)
    rows = []
    for width in widths:
        found, _ = study_lib.dropout_study(
            "wrn-10-1", dataset, seeds=seeds, model_options={"depth": depth, "width": width},
            space=SearchSpace(positions=("none", "before_bn", "before_conv"), types=("bernoulli",), rates=(rate,)),
            study=dataclasses.replace(study_config, project_prefix=f"width-wrn-{depth}-{width}",
                                      analyse=kernel_statistics),
            **records,
        )
        rows += [{**r, "width": width} for r in found]
    cos2_rows = []
    for name in families:
        found, _ = study_lib.dropout_study(
            name, dataset, seeds=seeds, space=SearchSpace(positions=("none",), types=("bernoulli",), rates=(rate,)),
            study=dataclasses.replace(study_config, project_prefix=f"width-family-{name}",
                                      analyse=family_statistics),
            **records,
        )
        family = zoo.entry(name).family
        paper = PAPER_D_COS2.get(family, (None, None))
        cos2_rows += [{**r, "family": family, "paper_c10": paper[0], "paper_c100": paper[1]} for r in found]
    return rows, cos2_rows


def _width_table(rows):
    """Shift against width: one line per k, mean ± std over seeds."""
    cells = []
    for (width,), group in common.group_rows(rows, ("width",)).items():
        by = {p: [r for r in group if r["position"] == p] for p in ("none", "before_bn", "before_conv")}

        def cell(position, key, digits):
            """Mean ± std over seeds of ``key`` at ``position``."""
            return common.format_mean_std([r.get(key) for r in by[position]], digits)

        cells.append({
            "width": width,
            "d_cos2": cell("none", "d_cos2_convs", 2),
            "acc_none": cell("none", "test_accuracy", 4),
            "acc_a": cell("before_bn", "test_accuracy", 4),
            "shift_a": cell("before_bn", "shift_direct", 3),
            "closed_a": cell("before_bn", "expected_direct_measured_c", 3),
            "acc_b": cell("before_conv", "test_accuracy", 4),
            "shift_b": cell("before_conv", "shift_through_linear", 3),
            "d_cos2_b": cell("before_conv", "d_cos2_after_dropout", 2),
            "fan_in_b": cell("before_conv", "fan_in_after_dropout", 0),
        })
    headers = [
        "k", "d·cos²θ, all convs (no dropout)", "test acc, no dropout", "test acc, (a)",
        "shift at BNs after (a)", "closed form (a), measured c", "test acc, (b)", "shift at BNs after (b)",
        "d·cos²θ of convs after dropout (b)", "their fan-in d",
    ]
    columns = ["width", "d_cos2", "acc_none", "acc_a", "shift_a", "closed_a", "acc_b", "shift_b", "d_cos2_b",
               "fan_in_b"]
    return common.markdown_table(cells, columns, headers)


def _family_table(cos2_rows):
    """Mean d·cos²θ of the trained family networks, next to the paper's Table 1."""
    fam = []
    for (model,), group in common.group_rows(cos2_rows, ("model",)).items():
        fam.append({
            "model": model,
            "family": group[0]["family"],
            "d_cos2": common.format_mean_std([r["d_cos2_convs"] for r in group], 2),
            "init": common.format_mean_std([r.get("d_cos2_init") for r in group], 2),
            "convs": group[0]["conv_layers"],
            "acc": common.format_mean_std([r["test_accuracy"] for r in group], 4),
            "paper": f"{group[0]['paper_c10']} / {group[0]['paper_c100']}",
        })
    return common.markdown_table(
        fam, ["model", "family", "convs", "acc", "init", "d_cos2", "paper"],
        ["model", "family", "conv layers", "test acc", "d·cos²θ at initialisation",
         "d·cos²θ trained (here)", "paper, full nets trained on CIFAR (C10 / C100)"],
    )


def report(rows, cos2_rows, dataset, epochs, rate):
    """The Markdown report: shift against width, and d·cos²θ per family."""
    text = (
        f"# Variance shift against width on {dataset} ({epochs} epochs, dropout rate {rate:g})\n\n"
        "(a): dropout right before every block's last BN; (b): before every block's last conv. "
        f"Shift: the paper's statistic at the BNs the dropouts feed; closed form for (a) "
        f"at zero mean: {1 / (1 - rate):.3f}.\n\n"
        + _width_table(rows)
    )
    if cos2_rows:
        text += (
            "\n## Mean d·cos²θ of trained conv kernels, no dropout (paper's Table 1 next to it)\n\n"
            + _family_table(cos2_rows)
        )
    return text


def figure(rows):
    """Shift at the fed BNs and test accuracy against width, per position."""
    plt = common.pyplot()
    fig, (ax_shift, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.8))
    widths = sorted({r["width"] for r in rows})
    for position, key, label in (
        ("before_bn", "shift_direct", "(a) before BN"),
        ("before_conv", "shift_through_linear", "(b) before conv"),
    ):
        sel = [r for r in rows if r["position"] == position]
        ax_shift.plot(widths, [common.mean_std([r[key] for r in sel if r["width"] == w])[0] for w in widths],
                      marker="o", label=label)
    for position in ("none", "before_bn", "before_conv"):
        sel = [r for r in rows if r["position"] == position]
        ax_acc.plot(widths, [common.mean_std([r["test_accuracy"] for r in sel if r["width"] == w])[0]
                             for w in widths], marker="o", label=position)
    for ax in (ax_shift, ax_acc):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("widening factor k")
        ax.legend(fontsize=8)
    ax_shift.axhline(1.0, color="gray", linewidth=0.8, linestyle="--")
    ax_shift.set_ylabel("statistic at the BNs the dropouts feed")
    ax_acc.set_ylabel("test accuracy")
    fig.tight_layout()
    return fig


def main():
    """Runs the study over --widths and --families and writes its files."""
    rows, cos2_rows = run(
        common.parse_ints("widths", FLAGS.widths),
        FLAGS.dataset,
        depth=FLAGS.depth,
        rate=FLAGS.rate,
        seeds=common.parse_ints("seeds", FLAGS.seeds),
        families=tuple(FLAGS.families),
        **common.training_options(),
    )
    text = report(rows, cos2_rows, FLAGS.dataset, FLAGS.epochs, FLAGS.rate)
    paths = common.write_outputs(
        FLAGS.out,
        "width",
        csv_files=[("width.csv", rows, COLUMNS), ("width_cos2.csv", cos2_rows, COS2_COLUMNS)],
        markdown=text,
        figure=figure(rows),
    )
    print(text)
    print("wrote " + ", ".join(paths))


if __name__ == "__main__":
    define_flags()
    common.run_script(main)
