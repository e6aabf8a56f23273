"""``keras-vs theory``: the closed-form shift next to a simulation through real layers."""

import json

from absl import flags

from keras_vs.cli import CliError, Command, UsageError
from keras_vs.commands import common

__all__ = ["COMMAND"]


def _define_flags(fv):
    flags.DEFINE_list("rates", ["0.1", "0.3", "0.5", "0.7"], "Dropout rates to check.", flag_values=fv)
    flags.DEFINE_list("betas", ["0.1", "0.2", "0.3", "0.5"], "Uout betas to check.", flag_values=fv)
    flags.DEFINE_integer("samples", 200_000, "Monte Carlo samples per unit.", lower_bound=100,
                         flag_values=fv)
    flags.DEFINE_integer("width", 16, "Fan-in d of the Dense layer (case b).", lower_bound=1,
                         flag_values=fv)
    flags.DEFINE_float("mean", 0.0, "Mean c of the inputs.", flag_values=fv)
    flags.DEFINE_float("rho", 0.3, "Correlation between inputs (case b).", lower_bound=0.0,
                       upper_bound=1.0, flag_values=fv)
    flags.DEFINE_integer("seed", 0, "Random seed.", flag_values=fv)
    common.define_json(fv)


def _run(args, fv):
    if args:
        raise UsageError(f"'theory' takes no positional arguments. Received: {args}")
    rates = common.float_list("rates", fv.rates)
    betas = common.float_list("betas", fv.betas)
    from keras_vs import theory as theory_lib

    try:
        theory_lib.dropout_shift(rates)
        theory_lib.uout_shift(betas)
    except ValueError as e:
        raise UsageError(common.flat(e)) from None
    import keras

    from keras_vs import simulate

    rows = simulate.shift_rows(rates, betas, widths=(fv.width,), samples=fv.samples, mean=fv.mean,
                               rho=fv.rho, seed=fv.seed)
    if fv.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(
        f"Variance shift Var_test/Var_train (1 = none): closed form vs "
        f"{fv.samples:,} samples x {fv.width} units through real layers "
        f"(backend {keras.backend.backend()}, mean={fv.mean}, seed={fv.seed})."
    )
    header = f"{'layers':<24} {'setting':<22} {'predicted':>9} {'measured':>9} {'error':>8}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['layers']:<24} {r['setting']:<22} {r['predicted']:>9.4f} "
            f"{r['measured']:>9.4f} {100 * r['relative_error']:>7.2f}%"
        )
    return 0


COMMAND = Command(
    name="theory",
    summary="Predicted vs measured variance shift of Dropout, Uout and Dropout->Dense.",
    define_flags=_define_flags,
    run=_run,
)
