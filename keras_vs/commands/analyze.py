"""``keras-vs analyze MODEL``: every dropout that feeds a BN, direct pairs apart
from pairs through a conv/dense layer, each with the shift the theory predicts."""

import json
import math

from absl import flags

from keras_vs import vocab
from keras_vs.cli import PROG, CliError, Command, UsageError
from keras_vs.commands import common

__all__ = ["COMMAND"]

_SECTIONS = {
    vocab.DIRECT: "direct: dropout right before the BN (the paper's case a)",
    vocab.THROUGH_LINEAR: "through a conv/dense layer (the paper's case b)",
    vocab.OPAQUE: "inside a layer keras-vs cannot look into",
    vocab.RECURRENT: "inside a recurrent layer's cells (its dropout and recurrent_dropout; "
                     "rewrites keep it)",
}


def _define_flags(fv):
    flags.DEFINE_float(
        "rho", 0.3,
        "Correlation between a dropout's inputs assumed by the prediction for pairs through a "
        "conv/dense layer (the paper's case b).",
        lower_bound=0.0, upper_bound=1.0, flag_values=fv,
    )
    common.define_json(fv)
    common.define_unsafe(fv)


def _layer(model, qualified_name):
    """The layer named ``outer/inner/name`` (nested models), or None."""
    layer = model
    for part in qualified_name.split("/"):
        try:
            layer = layer.get_layer(part)
        except (ValueError, AttributeError):
            return None
    return layer


def _variance_factor(layer, rate):
    """``1/p``: how much the layer multiplies E[x²] in training, or None if unknown."""
    import keras

    from keras_vs.layers import Uout

    if isinstance(layer, Uout):
        return 1.0 + rate**2 / 3.0
    if isinstance(layer, keras.layers.AlphaDropout):
        return None
    if isinstance(layer, (keras.layers.Dropout, keras.layers.GaussianDropout)) and rate < 1:
        return 1.0 / (1.0 - rate)  # GaussianDropout's noise has variance rate / (1 - rate)
    return None


def predict(model, finding, rho):
    """The predicted shift of one finding, in `measure`'s units (>= 1, 1 = none).

    Zero-mean inputs; case (a) is ``Var_train / Var_test = 1/p``, case (b) the
    paper's formula with the mean ``d·cos²θ`` of the first conv/dense layer on
    the path and correlation ``rho``.

    Returns:
        ``(predicted shift or None, d·cos²θ or None)``.
    """
    import numpy as np

    from keras_vs import theory

    factor = _variance_factor(_layer(model, finding.dropout), finding.rate)
    if factor is None or finding.kind not in (vocab.DIRECT, vocab.THROUGH_LINEAR):
        return None, None
    rate = 1.0 - 1.0 / factor  # the Bernoulli rate with the same variance factor
    if finding.kind == vocab.DIRECT:
        return 1.0 / theory.dropout_shift(rate), None
    for name in finding.path[1:-1]:
        layer = _layer(model, name)
        if layer is None or not hasattr(layer, "kernel"):
            continue
        try:
            d_cos2 = float(np.nanmean(theory.cos2_theta(layer).d_cos2))
        except ValueError:
            continue
        if not math.isfinite(d_cos2):
            break
        return 1.0 / theory.linear_shift(rate, d_cos2, rho), d_cos2
    return None, None


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


def _table(rows, kind):
    """The lines of one section: through-linear pairs add d·cos²θ; recurrent
    layers show their two rates instead of a prediction."""
    if kind == vocab.RECURRENT:
        header = ["#", "layer", "bn", "dropout", "recurrent_dropout", "path"]
        body = [[str(r["index"]), r["dropout"], r["bn"], f"{r['rate']:g}",
                 _fmt(r["recurrent_dropout"], "g"), " -> ".join(r["path"])] for r in rows]
    else:
        with_d = kind == vocab.THROUGH_LINEAR
        # A Uout's noise is its beta, GaussianNoise's its stddev: the cell names it.
        header = ["#", "dropout", "bn", "rate"] + (["d·cos²θ"] if with_d else []) + ["predicted", "path"]
        body = [
            [str(r["index"]), r["dropout"], r["bn"],
             f"{r['rate']:g}" if r["parameter"] == "rate" else f"{r['parameter']}={r['rate']:g}"]
            + ([_fmt(r["d_cos2"], ".2f")] if with_d else [])
            + [_fmt(r["predicted_shift"], ".3f"), " -> ".join(r["path"])]
            for r in rows
        ]
    widths = [max(len(line[c]) for line in body + [header]) for c in range(len(header) - 1)]
    lines = []
    for line in [header] + body:
        cells = [
            cell.rjust(w) if c in (0, 3) or header[c] in ("d·cos²θ", "predicted", "recurrent_dropout")
            else cell.ljust(w)
            for c, (cell, w) in enumerate(zip(line, widths))
        ]
        lines.append("    " + "  ".join(cells + [line[-1]]))
    return lines


def _parameter(model, finding):
    """What a finding's rate is: "beta" (Uout), "stddev" (GaussianNoise) or "rate"."""
    from keras_vs import graph as graph_lib
    from keras_vs.layers import Uout

    import keras

    layer = _layer(model, finding.dropout)
    layer = None if layer is None else graph_lib.unwrap(layer)  # None: inside a custom layer
    if isinstance(layer, Uout):
        return "beta"
    return "stddev" if isinstance(layer, keras.layers.GaussianNoise) else "rate"


def _run(args, fv):
    if len(args) != 1:
        raise UsageError(f"'analyze' takes one MODEL path (.keras or .h5). Received: {args}")
    path = args[0]
    model = common.load_model_file(path, fv.unsafe)
    from keras_vs import analysis
    from keras_vs import graph as graph_lib

    try:
        findings = analysis.find_disharmony(model)
    except ValueError as e:  # e.g. a subclassed model without a layer graph
        raise CliError(common.flat(e)) from None
    rows = []
    for i, f in enumerate(findings, start=1):
        predicted, d_cos2 = predict(model, f, fv.rho)
        recurrent = None
        if f.kind == vocab.RECURRENT:
            recurrent = graph_lib.recurrent_dropout(_layer(model, f.dropout))[1]
        rows.append({"index": i, "dropout": f.dropout, "bn": f.bn, "kind": f.kind, "rate": f.rate,
                     "parameter": _parameter(model, f),
                     "path": list(f.path), "predicted_shift": predicted, "d_cos2": d_cos2,
                     "recurrent_dropout": recurrent, "note": f.note})
    if fv.json:
        print(json.dumps({"model": path, "rho": fv.rho, "findings": rows}, indent=2))
        return 0
    if not findings:
        print(f"No disharmony in {path}: no dropout feeds a BatchNormalization layer.")
        return 0
    counts = {kind: sum(r["kind"] == kind for r in rows) for kind in dict.fromkeys(r["kind"] for r in rows)}
    print(
        f"{len(rows)} dropout -> BN pair(s) in {path}: "
        + ", ".join(f"{n} {kind}" for kind, n in counts.items())
        + ". predicted = the theory's shift max(train/test variance), 1 = none "
        f"(zero-mean inputs; through a layer: its mean d·cos²θ and rho={fv.rho:g})."
    )
    kinds = [k for k in vocab.FINDING_KINDS if k in counts] + [k for k in counts if k not in vocab.FINDING_KINDS]
    for kind in kinds:
        print()
        print(f"  {_SECTIONS.get(kind, kind)}:")
        for line in _table([r for r in rows if r["kind"] == kind], kind):
            print(line)
    print()
    if vocab.RECURRENT in counts:
        print("Recurrent layers: every rewrite policy keeps them; set their dropout and "
              "recurrent_dropout to change them.")
    *others, last = [p for p in vocab.POLICIES if p != vocab.AFTER_BN]
    print(f"Fix it: {PROG} rewrite {path} --policy={vocab.AFTER_BN} -o OUT "
          f"(after_bn moves direct pairs only; or --policy={', '.join(others)} or {last}),")
    print(f"    or keep the layers and re-estimate the BN statistics: {PROG} recalibrate {path} "
          "--data=DATA -o FIXED")
    print(f"A measured shift far above the predicted one comes from stale moving averages or BNs "
          f"above; which fix helps on held-out data: {PROG} doctor {path} --data=DATA (a rewrite "
          "needs fine-tuning: add --fine_tune_epochs=2)")
    return 0


COMMAND = Command(
    name="analyze",
    summary="List every dropout that feeds a BatchNormalization in a saved model.",
    define_flags=_define_flags,
    run=_run,
    usage_args="MODEL",
    description=(
        "Direct pairs (the paper's case a) are listed apart from pairs through a conv/dense "
        "layer (case b); each has the variance shift the closed form predicts, in the units "
        "of 'keras-vs measure' (max(train/test variance), 1 = none)."
    ),
)
