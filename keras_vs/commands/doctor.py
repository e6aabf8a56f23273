"""``keras-vs doctor MODEL --data=...``: why the BNs are shifted, and which fix helps, measured."""

import json
import os
import types

from absl import flags

from keras_vs.cli import PROG, CliError, Command
from keras_vs.commands import common

__all__ = ["COMMAND", "report_figure", "write_report"]

REPORT_EXTENSIONS = (".html", ".md")


def _define_flags(fv):
    common.define_data(fv)
    flags.DEFINE_string(
        "validation_data", None,
        "Labelled held-out data: NAME[:SPLIT] (split 'test' when not given) or a .npz file. "
        "Not given: the last --validation_split of --data (NumPy data only).", flag_values=fv)
    flags.DEFINE_float("validation_split", 0.2, "Fraction of --data held out without "
                       "--validation_data (the last examples, unshuffled).", flag_values=fv)
    flags.DEFINE_integer("fine_tune_epochs", 0, "Also try fine-tuning this many epochs (the model's "
                         "own loss and optimizer settings), as it is and after each rewrite policy "
                         "that changes it, each then re-estimated. 0: no fine-tuning.",
                         lower_bound=0, flag_values=fv)
    common.define_output(fv, "the recommended model (nothing when the recommendation is to keep it)")
    flags.DEFINE_string("report", None, "Also write a report with a figure: PATH.html or PATH.md "
                        "(the figure then goes to PATH.svg).", flag_values=fv)
    common.define_json(fv)
    common.define_unsafe(fv)


def _validation(fv):
    if not fv.validation_data:
        return None
    name, _, split = fv.validation_data.partition(":")
    if not name.lower().endswith(".npz") and not split:
        split = "test"
    ns = types.SimpleNamespace(data=name, split=split or "train", batch_size=fv.batch_size,
                               data_dir=fv.data_dir, download=fv.download)
    return common.load_data(ns)


def _limited(data, fv):
    """--steps batches of NumPy data (a tf.data pipeline is taken whole: its own length)."""
    if not fv.steps or not isinstance(data, tuple):
        return data
    n = fv.steps * fv.batch_size
    return data[0][:n], data[1][:n]


def _check_flags(fv, path):
    if fv.output:
        common.check_output(fv.output, path, fv.overwrite)
    if fv.report:
        if not fv.report.lower().endswith(REPORT_EXTENSIONS):
            raise CliError(f"--report must end in {' or '.join(REPORT_EXTENSIONS)}. "
                           f"Received: --report={fv.report}")
        if not os.path.isdir(os.path.dirname(os.path.abspath(fv.report))):
            raise CliError(f"The folder for --report does not exist. Received: --report={fv.report}")


def _run(args, fv):
    if len(args) != 1:
        raise CliError(f"'doctor' takes one MODEL path (a .keras file). Received: {args}")
    path = args[0]
    _check_flags(fv, path)
    data = _limited(common.load_data(fv), fv)
    validation = _validation(fv)
    try:  # the compile settings name the metric and drive fine-tuning
        model = common.load_model_file(path, fv.unsafe, compile=True)
    except CliError:  # e.g. a loss Keras cannot rebuild: accuracy, no fine-tuning
        model = common.load_model_file(path, fv.unsafe, compile=False)
    common.quiet_tensorflow()
    from keras_vs.doctor import doctor

    try:
        report = doctor(model, data, validation, validation_split=fv.validation_split,
                        fine_tune_epochs=fv.fine_tune_epochs, batch_size=fv.batch_size,
                        apply=bool(fv.output))
    except ValueError as e:
        raise CliError(common.flat(e)) from None
    written = None
    if fv.output and report.model is not None:
        common.save_model_file(report.model, fv.output)
        written = fv.output
    if fv.report:
        write_report(report, fv.report, f"{os.path.basename(path)} on {fv.data}")
    if fv.json:
        out = report.as_dict()
        out.update(model=path, data=fv.data, output=written, report=fv.report)
        print(json.dumps(out, indent=2))
        return 0
    _print(report, path, fv, written)
    return 0


def _print(report, path, fv, written):
    print(f"{PROG} doctor {path} on {fv.data}: {report.split}.")
    if len(report.attribution):
        print("Variance shift per BN, split into parts whose ratios multiply to real/moving; each "
              "shown as max(a/b, b/a), 1 = none:")
        header = f"{'BN layer':<32} {'shift':>9} {'statistics':>11} {'dropout':>9} {'upstream':>9}"
        print(header)
        print("-" * len(header))
        for a in report.attribution.values():
            print(f"{a.bn:<32} {a.shift:>9.4g} {a.part('statistics'):>11.4g} "
                  f"{a.part('dropout'):>9.4g} {a.part('upstream'):>9.4g}")
    for finding in report.findings:
        print(f"- {finding}")
    first = report.candidates[0]
    print(f"Candidate fixes, {first.metric} on the held-out data ({report.confidence:.0%} "
          "bootstrap intervals; difference from keep, paired):")
    for c in report.candidates:
        diff = "" if c.fix == "keep" else f"  diff [{c.diff_low:+.4f}, {c.diff_high:+.4f}]"
        print(f"  {c.fix:<22} {c.value:.4f} [{c.low:.4f}, {c.high:.4f}]{diff}")
    print(f"recommendation: {report.reason}")
    if fv.output:
        print(f"wrote {written} (verified: {first.metric} {report.verified:.4f} on the held-out data)"
              if written else f"nothing written to {fv.output}: the recommendation is to keep the model")
    if fv.report:
        print(f"wrote {fv.report}")


# ---------------------------------------------------------------------------
# The report page and its figure.


def report_figure(report, title):
    """A matplotlib figure: each BN's three parts, and each candidate with its interval."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib import pyplot as plt

    from keras_vs.attribution import PARTS

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    names = list(report.attribution)
    index = np.arange(len(names))
    for i, part in enumerate(PARTS):
        values = [min(a.part(part), 1e6) for a in report.attribution.values()]
        left.bar(index + (i - 1) * 0.27, values, 0.27, label=f"{part} part")
    left.axhline(1.0, color="gray", linewidth=0.8, linestyle="--")
    if names:
        left.set_yscale("log")
        left.set_xticks(index)
        left.set_xticklabels(names, rotation=45, ha="right", fontsize=8)
        left.legend(fontsize=8)
    left.set_title("Shift per BN, by part (max(a/b, b/a), 1 = none)", fontsize=10)
    fixes = [c.fix for c in report.candidates]
    values = np.array([c.value for c in report.candidates])
    errors = np.array([[c.value - c.low for c in report.candidates],
                       [c.high - c.value for c in report.candidates]])
    right.errorbar(values, np.arange(len(fixes)), xerr=errors, fmt="o", capsize=3)
    right.set_yticks(np.arange(len(fixes)))
    right.set_yticklabels(fixes, fontsize=8)
    right.invert_yaxis()
    right.set_xlabel(f"{report.candidates[0].metric} on the held-out data "
                     f"({report.confidence:.0%} interval)")
    right.set_title(f"Candidate fixes (recommended: {report.recommendation})", fontsize=10)
    fig.suptitle(f"keras-vs doctor: {title}", fontsize=11)
    fig.tight_layout()
    return fig


def _markdown(report, title, figure):
    lines = [f"# keras-vs doctor: {title}", "", report.split, "", f"![parts and candidates]({figure})", "",
             "| BN | shift | statistics | dropout | upstream |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {a.bn} | {a.shift:.4g} | {a.part('statistics'):.4g} | {a.part('dropout'):.4g} "
              f"| {a.part('upstream'):.4g} |" for a in report.attribution.values()]
    lines += ["", *[f"- {f}" for f in report.findings], "",
              f"| fix | {report.candidates[0].metric} | interval | difference from keep |",
              "|---|---:|---|---|"]
    lines += [f"| {c.fix} | {c.value:.4f} | [{c.low:.4f}, {c.high:.4f}] | "
              f"[{c.diff_low:+.4f}, {c.diff_high:+.4f}] |" for c in report.candidates]
    lines += ["", f"**Recommendation**: {report.reason}", ""]
    return "\n".join(lines)


def write_report(report, path, title):
    """Writes the report to ``path`` (.html: the figure inline as SVG; .md: next to it as .svg)."""
    import html
    import io

    import matplotlib

    from keras_vs import files

    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig = report_figure(report, title)
        if path.lower().endswith(".md"):
            svg_path = os.path.splitext(path)[0] + ".svg"
            files.save_figure(fig, svg_path)
            text = _markdown(report, title, os.path.basename(svg_path))
        else:
            buffer = io.StringIO()
            fig.savefig(buffer, format="svg")
            from matplotlib import pyplot as plt

            plt.close(fig)
            body = _markdown(report, title, "")
            text = ("<!doctype html><meta charset='utf-8'><title>keras-vs doctor</title>"
                    f"<body>{buffer.getvalue()[buffer.getvalue().find('<svg'):]}"
                    f"<pre>{html.escape(body)}</pre></body>")
    files.write_atomic(path, text)


COMMAND = Command(
    name="doctor",
    summary="Why a trained model's BNs are shifted, and which fix helps, measured on held-out data.",
    define_flags=_define_flags,
    run=_run,
    usage_args="MODEL",
    description=(
        "Each BN's shift real/moving splits into three parts (channel-mean variances; each shown "
        "as max(a/b, b/a), 1 = none): statistics = training-mode variance of the BN's input vs its "
        "stored moving variance (stale or drifted averages); dropout = inference variance with "
        "every upstream BN re-estimated vs training mode (the paper's variance shift); upstream = "
        "inference variance with upstream BNs as stored vs re-estimated (inherited). Then each "
        "candidate fix (keep, recalibrate_precise, recalibrate_exact; with --fine_tune_epochs "
        "fine_tune and rewrite_<policy>) is scored with the model's compiled metric on held-out "
        "data with a paired bootstrap interval; a fix is recommended only when it beats keeping "
        "the model beyond that interval. --json prints layers [{bn, shift, statistics_part, "
        "dropout_part, upstream_part, ...}], candidates [{fix, metric, value, low, high, "
        "diff_low, diff_high}], recommendation. -o writes the recommended model only (nothing "
        "when the recommendation is to keep it; exit 0 either way)."
    ),
)
