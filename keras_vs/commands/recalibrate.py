"""``keras-vs recalibrate MODEL --data=... -o OUT``: re-estimate every BN's moving statistics."""

import json
import warnings

from absl import flags

from keras_vs import vocab
from keras_vs.cli import PROG, CliError, Command, UsageError
from keras_vs.commands import common

__all__ = ["COMMAND"]


def _define_flags(fv):
    common.define_data(fv)
    common.define_output(fv, "the recalibrated model")
    flags.DEFINE_enum(
        "method", None, list(vocab.RECALIBRATION_METHODS),
        "How keras_vs.recalibrate_bn re-estimates the statistics: precise (one pass over the "
        "data) or exact (passes until every BN's statistics are exact). Default: the library's.",
        flag_values=fv,
    )
    flags.DEFINE_bool("measure", True, "Measure the largest variance shift before and after.",
                      flag_values=fv)
    common.define_unsafe(fv)
    common.define_json(fv)


def _max_shift(model, data, fv):
    import keras_vs as kvs

    with warnings.catch_warnings():  # recalibrating says it once
        warnings.filterwarnings("ignore", message=".*never called")
        result = kvs.measure_variance_shift(model, data, fv.steps, batch_size=fv.batch_size)
    return float(result.max()) if len(result) else None


def _run(args, fv):
    if len(args) != 1:
        raise UsageError(f"'recalibrate' takes one MODEL path (.keras or .h5). Received: {args}")
    path = args[0]
    common.check_output(fv.output, path, fv.overwrite)
    data = common.load_data(fv)
    # Compiled as saved, so that OUT can be evaluated or trained further as it is.
    try:
        model = common.load_model_file(path, fv.unsafe, compile=True)
    except CliError:
        model = common.load_model_file(path, fv.unsafe)
    common.quiet_tensorflow()
    import keras_vs as kvs

    options = {"batch_size": fv.batch_size}
    if fv.method is not None:
        options["method"] = fv.method
    try:
        before = _max_shift(model, data, fv) if fv.measure else None
        with warnings.catch_warnings(record=True) as caught:  # told as notes below
            warnings.simplefilter("always")
            fixed = kvs.recalibrate_bn(model, data, fv.steps, inplace=True, **options)
        after = _max_shift(fixed, data, fv) if fv.measure else None
    except ValueError as e:
        raise CliError(common.flat(e)) from None
    except TypeError as e:
        if "method" in str(e):
            raise CliError(f"This keras_vs.recalibrate_bn takes no method. Received: --method={fv.method}") from None
        raise
    common.save_model_file(fixed, fv.output)
    notes = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    for w in caught:
        if not issubclass(w.category, UserWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    report = {"model": path, "output": fv.output, "data": fv.data, "split": fv.split,
              "method": fv.method, "max_shift_before": before, "max_shift_after": after,
              "notes": notes}
    if fv.json:
        print(json.dumps(report, indent=2))
        return 0
    for note in notes:
        print(f"note: {note}")
    if fv.measure and before is not None:
        print(f"max variance shift on {fv.data} ({fv.split}): {before:.4f} before, {after:.4f} after "
              "(1 = none)")
    print(f"wrote {fv.output}: every BN's moving mean and variance re-estimated on {fv.data} "
          f"({fv.split}); weights, gamma and beta unchanged")
    print(f"whether it helps is an empirical question: {PROG} doctor {path} --data={fv.data} "
          "(scores it against keeping the model on held-out data)")
    note = common.load_note(fixed, fv.output)
    if note:
        print(note)
    return 0


COMMAND = Command(
    name="recalibrate",
    summary="Re-estimate every BN's moving statistics on data (the paper's BN re-estimation).",
    define_flags=_define_flags,
    run=_run,
    usage_args="MODEL -o OUT",
    description=(
        "Dropout off, every weight frozen: each BatchNormalization's moving mean and variance "
        "become those of its input at inference on --data (use the training data). The fix for "
        "a trained model with dropout before BN; OUT ending in .weights.h5 gets the weights only, "
        "loadable into the same architecture with model.load_weights(OUT)."
    ),
)
