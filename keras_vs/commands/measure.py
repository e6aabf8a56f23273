"""``keras-vs measure MODEL --data=...``: per-BN variance shift and train/inference inconsistency."""

import dataclasses
import json
import os
import warnings

from absl import flags

from keras_vs.cli import PROG, CliError, Command, UsageError
from keras_vs.commands import common

__all__ = ["COMMAND"]

# Above this the BN statistics are worth re-estimating (networks trained
# without dropout measure 1.00-1.07 in the paper).
NOTABLE_SHIFT = 1.1


def _define_flags(fv):
    common.define_data(fv)
    flags.DEFINE_string("plot", None, "Write the shift of each BN layer to this image file "
                        "(.png, .svg, .pdf).", flag_values=fv)
    common.define_json(fv)
    common.define_unsafe(fv)


# What `measure --json` adds to each layer from `keras_vs.attribute_shift`.
_PART_KEYS = ("statistics_part", "dropout_part", "upstream_part", "train_var",
              "real_var_upstream_reestimated", "dominant", "explanation")


def _report(path, fv, result, inconsistency, parts=None):
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
    for row in layers:
        if parts is not None and row["name"] in parts:
            row.update((k, v) for k, v in parts[row["name"]].as_dict().items() if k in _PART_KEYS)
    report = {
        "model": path,
        "data": fv.data,
        "split": fv.split,
        "num_examples": result.num_examples,
        "layers": layers,
        "max": float(result.max()) if len(result) else None,
        "mean": float(result.mean()) if len(result) else None,
        "not_called": list(result.not_called),
        "inconsistency": None,
    }
    if inconsistency is not None:
        report["inconsistency"] = {**dataclasses.asdict(inconsistency), "gap": inconsistency.gap}
    return report


def _check_plot(plot, path):
    if not plot:
        return
    folder = os.path.dirname(os.path.abspath(plot))
    if not os.path.isdir(folder):
        raise CliError(f"The folder for --plot does not exist. Received: --plot={plot}")
    if os.path.exists(plot) and os.path.realpath(plot) == os.path.realpath(path):
        raise CliError(f"--plot is the input model. Received: --plot={plot}")


def _run(args, fv):
    if len(args) != 1:
        raise UsageError(f"'measure' takes one MODEL path (a .keras file). Received: {args}")
    path = args[0]
    _check_plot(fv.plot, path)
    data = common.load_data(fv)
    model = common.load_model_file(path, fv.unsafe)
    common.quiet_tensorflow()
    import keras_vs as kvs

    try:
        with warnings.catch_warnings(record=True) as caught:  # the report says it
            warnings.simplefilter("always")
            result = kvs.measure_variance_shift(model, data, fv.steps, batch_size=fv.batch_size)
        inconsistency = None
        if len(model.outputs) == 1 and (len(result) or result.not_called):  # BN: something to compare
            inconsistency = kvs.prediction_inconsistency(model, data, fv.steps, batch_size=fv.batch_size)
    except ValueError as e:
        raise CliError(common.flat(e)) from None
    for warning in caught:
        if "never called" not in str(warning.message):  # others as Python shows them
            warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
    report = _report(path, fv, result, inconsistency, _parts(kvs, model, data, fv, result))
    if fv.plot and len(result):
        from keras_vs.commands import plot

        try:
            plot.save_shift_figure(list(result), list(result.values()),
                                   f"{model.name} on {fv.data} ({fv.split})", fv.plot)
        except ValueError as e:
            raise CliError(f"Could not write the plot ({e}). Received: --plot={fv.plot}") from None
    if fv.json:
        print(json.dumps(report, indent=2))
        return 0
    _print_report(path, fv, result, inconsistency, report)
    if fv.plot and len(result):
        print(f"wrote {fv.plot}")
    return 0


def _parts(kvs, model, data, fv, result):
    """The attribution of the shift, for --json (two more passes and the exact re-estimation)."""
    if not fv.json or not len(result):
        return None
    try:
        with warnings.catch_warnings():  # measuring warned already
            warnings.simplefilter("ignore")
            return kvs.attribute_shift(model, data, fv.steps, batch_size=fv.batch_size)
    except ValueError as e:
        raise CliError(common.flat(e)) from None


def _print_report(path, fv, result, inconsistency, report):
    if not len(result) and not result.not_called:
        print(f"{path} has no BatchNormalization layer: no variance shift to measure.")
        return
    print(
        f"Variance shift of {path} on {fv.data} ({fv.split}, {result.num_examples} examples): "
        "max(real/moving, moving/real), 1 = none."
    )
    if not len(result):
        print("The model has no BatchNormalization layer.")
    else:
        header = f"{'#':>3} {'BN layer':<36} {'moving var':>11} {'real var':>11} {'shift':>8}"
        print(header)
        print("-" * len(header))
        for row in report["layers"]:
            print(f"{row['index']:>3} {row['name']:<36} {row['moving_var']:>11.4g} "
                  f"{row['real_var']:>11.4g} {row['shift']:>8.4f}")
        for name in result.not_called:
            print(f"{'-':>3} {name:<36} {'not called on the data: no input, not measured':>32}")
        print(f"max {result.max():.4f}, mean {result.mean():.4f}")
    if inconsistency is not None:
        line = f"training vs inference mode: {100 * inconsistency.disagreement:.2f}% of predictions differ"
        if inconsistency.train_mode_accuracy is not None:
            line += (
                f"; accuracy {100 * inconsistency.train_mode_accuracy:.2f}% (training mode) vs "
                f"{100 * inconsistency.inference_accuracy:.2f}% (inference mode)"
            )
        print(line)
    if len(result) and result.max() > NOTABLE_SHIFT:
        print(
            f"next: the BN moving statistics do not match what the layers see at inference. "
            f"Re-estimate them with {PROG} recalibrate {path} --data={fv.data} -o FIXED "
            f"(weights unchanged); why each BN is shifted (stale averages, dropout, or BNs above "
            f"it) and whether a fix helps on held-out data: {PROG} doctor {path} --data={fv.data}"
        )


COMMAND = Command(
    name="measure",
    summary="Per-BN variance shift and train/inference inconsistency of a saved model.",
    define_flags=_define_flags,
    run=_run,
    usage_args="MODEL",
    description=(
        "The paper's statistic: each BN's moving variance against the variance of its input at "
        "inference on --data, max(real/moving, moving/real), 1 = no shift."
    ),
)
