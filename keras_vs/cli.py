"""The ``keras-vs`` command: ``keras-vs COMMAND [--flags] [ARGS]``.

Each subcommand is registered with `command` and declares the absl flags it
reads; ``keras-vs --help`` lists the subcommands and ``keras-vs COMMAND
--help`` the flags of one. Keras is imported only when a command runs, so help
is instant.
"""

import dataclasses
import json
import os
import sys
import textwrap

from absl import app, flags

PROG = "keras-vs"
FLAGS = flags.FLAGS


class CliError(Exception):
    """A user-facing error: printed as one line, exit status 1."""


@dataclasses.dataclass(frozen=True)
class Command:
    name: str
    summary: str
    run: object
    flag_names: tuple
    usage_args: str = ""


_COMMANDS = {}


def command(name, summary, flag_names=(), usage_args=""):
    """Registers ``fn(args) -> int | None`` as ``keras-vs NAME``.

    Args:
        name: Subcommand name.
        summary: One-line description shown by ``keras-vs --help``.
        flag_names: Names of the absl flags the command reads.
        usage_args: Positional arguments for the usage line, e.g. ``"MODEL"``.

    Returns:
        A decorator that registers the function and returns it unchanged.
    """

    def register(fn):
        for flag_name in flag_names:
            if flag_name not in FLAGS:
                raise KeyError(f"Command {name!r} names undefined flag --{flag_name}")
        _COMMANDS[name] = Command(name, summary, fn, tuple(flag_names), usage_args)
        return fn

    return register


def commands():
    """Returns the registered subcommands, by name."""
    return dict(_COMMANDS)


def _float_list(name, text_values):
    try:
        return [float(v) for v in text_values]
    except ValueError:
        raise CliError(
            f"--{name} expects a comma-separated list of numbers. "
            f"Received: --{name}={','.join(text_values)}"
        ) from None


# ---------------------------------------------------------------------------
# Flags shared by commands.
flags.DEFINE_bool("json", False, "Print machine-readable JSON instead of a table.")
flags.DEFINE_integer("seed", 0, "Random seed.")

# ``theory``
flags.DEFINE_list("rates", ["0.1", "0.3", "0.5", "0.7"], "Dropout rates to check.")
flags.DEFINE_list("betas", ["0.1", "0.2", "0.3", "0.5"], "Uout betas to check.")
flags.DEFINE_integer("samples", 200_000, "Monte Carlo samples per unit.", lower_bound=100)
flags.DEFINE_integer("width", 16, "Units per layer (fan-in d of the Dense layer).", lower_bound=1)
flags.DEFINE_float("mean", 0.0, "Mean c of the inputs.")
flags.DEFINE_float("rho", 0.3, "Correlation between inputs (case b).", lower_bound=0.0, upper_bound=1.0)


@command(
    "theory",
    "Predicted vs measured variance shift of Dropout, Uout and Dropout->Dense.",
    ("rates", "betas", "samples", "width", "mean", "rho", "seed", "json"),
)
def _theory(args):
    if args:
        raise CliError(f"'theory' takes no positional arguments. Received: {args}")
    rates = _float_list("rates", FLAGS.rates)
    betas = _float_list("betas", FLAGS.betas)
    try:
        from keras_vs import theory as theory_lib

        theory_lib.dropout_shift(rates)
        theory_lib.uout_shift(betas)
    except ValueError as e:
        raise CliError(str(e)) from None
    rows = _theory_rows(rates, betas)
    if FLAGS.json:
        print(json.dumps(rows, indent=2))
        return 0
    import keras

    print(
        f"Variance shift Var_test/Var_train (1 = none): closed form vs "
        f"{FLAGS.samples:,} samples x {FLAGS.width} units through real layers "
        f"(backend {keras.backend.backend()}, mean={FLAGS.mean}, seed={FLAGS.seed})."
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


def _theory_rows(rates, betas):
    import keras
    import numpy as np

    from keras_vs import simulate
    from keras_vs import theory as theory_lib
    from keras_vs.layers import Uout

    seed, width = FLAGS.seed, FLAGS.width
    x = simulate.correlated_inputs(FLAGS.samples, width, mean=FLAGS.mean, seed=seed)
    x_corr = simulate.correlated_inputs(
        FLAGS.samples, width, mean=FLAGS.mean, rho=FLAGS.rho, seed=seed + 1
    )
    dense = keras.layers.Dense(
        width,
        use_bias=False,
        kernel_initializer=keras.initializers.RandomNormal(0.05, 0.1, seed=seed),
    )
    dense.build((None, width))
    d_cos2 = theory_lib.cos2_theta(dense).d_cos2
    rows = []

    def add(layers, setting, predicted, measured):
        predicted, measured = float(np.mean(predicted)), float(np.mean(measured))
        rows.append(
            {
                "layers": layers,
                "setting": setting,
                "predicted": predicted,
                "measured": measured,
                "relative_error": measured / predicted - 1.0,
            }
        )

    for rate in rates:
        layer = keras.layers.Dropout(rate, seed=seed)
        add("Dropout", f"rate={rate:g}", theory_lib.dropout_shift(rate, FLAGS.mean),
            simulate.measured_shift(layer, x))
    for beta in betas:
        layer = Uout(beta, seed=seed)
        add("Uout", f"beta={beta:g}", theory_lib.uout_shift(beta, FLAGS.mean),
            simulate.measured_shift(layer, x))
    for rate in rates:
        layer = keras.layers.Dropout(rate, seed=seed)
        add(
            f"Dropout->Dense(d={width})",
            f"rate={rate:g} rho={FLAGS.rho:g}",
            theory_lib.linear_shift(rate, d_cos2, FLAGS.rho, FLAGS.mean),
            simulate.measured_shift(layer, x_corr, dense),
        )
    return rows


# ---------------------------------------------------------------------------
def _usage():
    lines = [
        f"usage: {PROG} COMMAND [--flags] [ARGS]",
        "",
        "Find, measure and fix the Dropout/BatchNormalization variance shift.",
        "",
        "commands:",
    ]
    for cmd in sorted(_COMMANDS.values(), key=lambda c: c.name):
        lines.append(f"  {cmd.name:<12} {cmd.summary}")
    lines += ["", f"Run '{PROG} COMMAND --help' for the flags of one command."]
    return "\n".join(lines)


def _command_help(cmd):
    lines = [f"usage: {PROG} {cmd.name} [--flags] {cmd.usage_args}".rstrip(), "", cmd.summary, ""]
    if cmd.flag_names:
        lines.append("flags:")
    for name in cmd.flag_names:
        flag = FLAGS[name]
        default = flag.default_as_str or "''"
        lines.append(f"  --{name}: {flag.help}")
        lines.append(textwrap.indent(f"(default: {default})", "      "))
    return "\n".join(lines)


def _reject_foreign_flags(cmd):
    # Flags are global in absl; one that only another command reads is
    # almost certainly a mistake, so say so instead of ignoring it.
    ours = {name for c in _COMMANDS.values() for name in c.flag_names}
    foreign = sorted(
        name for name in ours if FLAGS[name].present and name not in cmd.flag_names
    )
    if foreign:
        raise CliError(
            f"flag(s) {', '.join('--' + n for n in foreign)} do not apply to "
            f"'{cmd.name}'. Run '{PROG} {cmd.name} --help' for its flags."
        )


def _run_command(cmd, argv):
    try:
        _reject_foreign_flags(cmd)
        status = cmd.run(list(argv[1:]))
    except CliError as e:
        print(f"{PROG} {cmd.name}: error: {e}", file=sys.stderr)
        return 1
    return 0 if status is None else status


def main(argv=None):
    """Entry point of the ``keras-vs`` console script.

    Args:
        argv: Full argument vector (``argv[0]`` is the program); defaults to
            ``sys.argv``.

    Returns:
        Does not return: exits with the command's status.
    """
    # TensorFlow's C++ start-up banner is noise on a command line; a user's
    # own setting wins.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    argv = list(sys.argv if argv is None else argv)
    args = argv[1:]
    if not args or args[0] in ("-h", "--help", "--helpshort", "--helpfull", "help"):
        print(_usage(), file=sys.stdout if args else sys.stderr)
        sys.exit(0 if args else 2)
    if args[0] == "--version":
        from keras_vs import __version__

        print(f"{PROG} {__version__}")
        sys.exit(0)
    cmd = _COMMANDS.get(args[0])
    if cmd is None:
        print(
            f"{PROG}: unknown command {args[0]!r}. Commands: "
            f"{', '.join(sorted(_COMMANDS))}. Run '{PROG} --help'.",
            file=sys.stderr,
        )
        sys.exit(2)
    if any(a in ("-h", "--help", "--helpshort", "--helpfull") for a in args[1:]):
        print(_command_help(cmd))
        sys.exit(0)
    app.run(lambda remaining: _run_command(cmd, remaining), argv=[f"{PROG} {cmd.name}"] + args[1:])


if __name__ == "__main__":
    main()
