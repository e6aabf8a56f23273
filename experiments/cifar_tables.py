"""The paper's CIFAR-10/100 tables: what each holds, the paper's own numbers,
and each table in the paper's layout from the CSV files `experiments.cifar`
writes (one per table, net and data set).

- ``baseline``: no dropout; one row per net, columns C10 / C100.
- ``positions``: dropout rate 0.5 in position (a) ``before_bn`` and (b)
  ``before_conv``; one row per net, columns C10 (a), C10 (b), C100 (a),
  C100 (b), each "test error → after BN re-estimation".
- ``head``: one dropout before the classifier at rates 0.1/0.2/0.3/0.5 (the
  0.0 column is the ``baseline`` row's); one row per net and data set.
- ``uout``: Uout in position (b) with beta 0.1/0.2/0.3/0.5.
"""

import csv
import dataclasses
import math
import os

from experiments import common, study
from tuner.space import SearchSpace

__all__ = [
    "COLUMNS",
    "DATASETS",
    "NETS",
    "PAPER",
    "SEEDS",
    "SHORT",
    "TABLES",
    "Net",
    "Table",
    "figure",
    "paper_table",
    "read_rows",
    "report",
]


@dataclasses.dataclass(frozen=True)
class Table:
    """One table of the paper: what to train for each net and data set."""

    positions: tuple
    rates: tuple = (0.5,)
    types: tuple = ("bernoulli",)
    betas: tuple = (0.5,)
    about: str = ""

    @property
    def space(self):
        """The `tuner.SearchSpace` this table trains."""
        return SearchSpace(positions=self.positions, types=self.types, rates=self.rates, betas=self.betas)


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
# `tuner.RECIPES` by family (pytorch-classification's TRAINING.md: DenseNet
# trains at batch 64, lr 0.1).
NETS = {
    "preresnet-110": Net("PreResNet"),
    "resnext-29-8x64d": Net("ResNeXt"),
    "wrn-28-10": Net("WRN"),
    "densenet-bc-100-12": Net("DenseNet", 64),
}
DATASETS = ("cifar10", "cifar100")
SHORT = {"cifar10": "C10", "cifar100": "C100"}
SEEDS = (0, 1, 2, 3, 4)
# The paper's CIFAR results, test error % (mean of 5 seeds): C10 then C100 per row.
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
COLUMNS = ("dataset",) + study.STUDY_COLUMNS + ("best_test_accuracy", "best_epoch")



def _error(rows, key):
    """Mean test error % of ``rows`` from accuracy column ``key`` (NaN if none)."""
    values = [100 * (1 - float(r[key])) for r in rows if r.get(key) not in (None, "")]
    return common.mean_std(values)[0] if values else math.nan


def _cell(value, digits=2):
    """A number with ``digits`` decimals, ``"-"`` for NaN."""
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def report(rows, table, net, dataset, epochs):
    """Markdown: test error (final, best epoch, BN re-estimated), mean ± std over seeds."""
    def errors(group, key):
        """Test error % of ``group`` from accuracy column ``key``, mean ± std."""
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


def _baseline_layout(out, nets, label):
    """No dropout: one row per net, columns C10 / C100 ("final (best epoch)")."""
    headers = ["net", "C10", "C100"]
    lines = [[label[n]] + [_final_best(read_rows(out, "baseline", n, d)) for d in DATASETS] for n in nets]
    paper = [[k, *(f"{e:.2f}" for e in v)] for k, v in PAPER["baseline"].items()]
    return headers, lines, paper


def _positions_layout(out, nets, label):
    """Rate 0.5 at (a) and (b): one row per net, "final → re-estimated" per data set and position."""
    positions = TABLES["positions"].positions
    headers = ["net"] + [f"{SHORT[d]} ({p})" for d in DATASETS for p in ("a", "b")]
    lines = []
    for n in nets:
        cells = [
            _before_after([r for r in read_rows(out, "positions", n, d) if r["position"] == p])
            for d in DATASETS for p in positions
        ]
        lines.append([label[n]] + cells)
    return headers, lines, [[k, *v] for k, v in PAPER["positions"].items()]


def _by_value_layout(out, table, nets, label):
    """``head`` (rates, 0.0 from the baseline) or ``uout`` (betas): one row per net and data set."""
    head = table == "head"
    values = TABLES[table].rates if head else TABLES[table].betas
    headers = ["net", "data set"] + (["0.0"] if head else []) + [f"{v:g}" for v in values]
    lines = []
    for n in nets:
        for d in DATASETS:
            rows = read_rows(out, table, n, d)
            if head:
                cells = [_final_best(read_rows(out, "baseline", n, d))]
                cells += [_final_best([r for r in rows if r["rate"] == v]) for v in values]
            else:
                cells = [_before_after([r for r in rows if r["rate"] == v]) for v in values]
            lines.append([label[n], SHORT[d]] + cells)
    paper = [[k[0], SHORT[k[1]], *(f"{e:.2f}" for e in v)] for k, v in PAPER[table].items()] if head else []
    return headers, lines, paper


def paper_table(out, table, nets):
    """The paper's layout of ``table`` from the CSV files in ``out``, then the paper's own numbers.

    Cells are mean test error % over the seeds run: final model (best epoch
    in parentheses) for ``baseline`` and ``head``; final → BN re-estimated
    for ``positions`` and ``uout``.

    Args:
        out: Folder of the runs' CSV files.
        table: A `TABLES` name.
        nets: Zoo names, one row (or one per data set) each.

    Returns:
        Markdown text.
    """
    label = {net: NETS[net].label if net in NETS else net for net in nets}
    if table == "baseline":
        headers, lines, paper = _baseline_layout(out, nets, label)
    elif table == "positions":
        headers, lines, paper = _positions_layout(out, nets, label)
    else:
        headers, lines, paper = _by_value_layout(out, table, nets, label)
    text = f"## {table}: {TABLES[table].about}, test error %\n\n" + _markdown(headers, lines)
    paper = [line for line in paper if line[0] in label.values()]
    if paper:
        text += "\nThe paper (Li et al., CVPR 2019; mean of 5 seeds):\n\n" + _markdown(headers, paper)
    return text


def _final_best(rows):
    """``"final (best epoch)"`` mean test error %, ``"-"`` if not run."""
    if not rows:
        return "-"
    return f"{_cell(_error(rows, 'test_accuracy'))} ({_cell(_error(rows, 'best_test_accuracy'))})"


def _before_after(rows):
    """``"final → BN re-estimated"`` mean test error %, ``"-"`` if not run."""
    if not rows:
        return "-"
    return f"{_cell(_error(rows, 'test_accuracy'))} → {_cell(_error(rows, 'recalibrated_accuracy'))}"


def _markdown(headers, lines):
    """Lists of cells under ``headers`` as a Markdown table."""
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
