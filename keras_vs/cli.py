"""The ``keras-vs`` command: ``keras-vs COMMAND [--flags] [ARGS]``.

One script, commands owned by their packages. The plugin's own commands
(analyze, rewrite, measure, recalibrate, theory) live in `keras_vs.commands`;
other packages add theirs through the ``keras_vs.commands`` entry-point group
(setup.py: ``tune = tuner.cli:COMMAND``), so the plugin never imports them.
Run from a source tree without installed metadata, the group is read from the
tree's ``setup.py`` (`keras_vs.entry_points` reads every group).

Each command defines its absl flags when it runs, in a `flags.FlagValues` of
its own, and imports Keras only then: ``keras-vs --help`` and ``keras-vs
COMMAND --help`` start without Keras or TensorFlow.

Exit status: 0 done, 1 the command failed, 2 a bad command line. Every error
is one line, ``keras-vs COMMAND: error: ...``.
"""

import dataclasses
import importlib.util
import os
import re
import sys
import tempfile
import textwrap
import typing
import warnings

from absl import flags

from keras_vs import entry_points

__all__ = [
    "CliError",
    "Command",
    "UsageError",
    "command_targets",
    "commands",
    "load_command",
    "main",
    "parse",
    "quiet_native_logs",
    "run",
    "usage",
]

PROG = "keras-vs"
GROUP = "keras_vs.commands"
EXIT_FAILED = 1
EXIT_USAGE = 2
HELP_FLAGS = ("-h", "--help", "--helpshort", "--helpfull")
# The plugin's own commands; other packages register through GROUP.
BUILTIN = {
    "analyze": "keras_vs.commands.analyze:COMMAND",
    "doctor": "keras_vs.commands.doctor:COMMAND",
    "measure": "keras_vs.commands.measure:COMMAND",
    "recalibrate": "keras_vs.commands.recalibrate:COMMAND",
    "rewrite": "keras_vs.commands.rewrite:COMMAND",
    "theory": "keras_vs.commands.theory:COMMAND",
}


class CliError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""


class UsageError(CliError):
    """A bad command line (unknown flag, bad flag value): exit status 2."""


@dataclasses.dataclass(frozen=True)
class Command:
    """A ``keras-vs`` command.

    Attributes:
        name: The command word, e.g. ``"analyze"``.
        summary: One line for ``keras-vs --help``.
        define_flags: ``define_flags(flag_values)`` defines the command's
            absl flags on the `flags.FlagValues` it is given.
        run: ``run(args, flag_values) -> int | None``: the positional
            arguments and the parsed flags; raises `CliError` to fail.
        usage_args: Positional arguments for the usage line, e.g. ``"MODEL"``.
        description: More text for ``keras-vs COMMAND --help``.
    """

    name: str
    summary: str
    define_flags: typing.Callable
    run: typing.Callable
    usage_args: str = ""
    description: str = ""

    def flag_values(self):
        """A new `flags.FlagValues` holding this command's flags (unparsed)."""
        fv = flags.FlagValues()
        self.define_flags(fv)
        return fv


# ---------------------------------------------------------------------------
# Discovery


def command_targets():
    """Where each command lives, ``{name: "module:attribute"}``.

    Built-in commands first, then the installed ``keras_vs.commands`` entry
    points, then those declared in the source tree's setup.py; the first
    declaration of a name wins.
    """
    targets = dict(BUILTIN)
    for name, target in entry_points.targets(GROUP).items():
        targets.setdefault(name, target)
    return dict(sorted(targets.items()))


def load_command(name, target):
    """Imports a command's module and returns its `Command`.

    Raises:
        CliError: The module cannot be imported or holds no `Command` named
            ``name``.
    """
    try:
        value = entry_points.load(target, "COMMAND")
    except Exception as e:  # noqa: BLE001  (any failure of a provider is reported, not raised)
        raise CliError(
            f"command {name!r} could not be loaded from {target} ({type(e).__name__}: {e})"
        ) from None
    if not isinstance(value, Command) or value.name != name:
        raise CliError(f"{target} is not a keras-vs Command named {name!r}. Received: {value!r}")
    return value


def commands():
    """Every command that loads, by name (those that fail to load are left out)."""
    out = {}
    for name, target in command_targets().items():
        try:
            out[name] = load_command(name, target)
        except CliError:
            continue
    return out


# ---------------------------------------------------------------------------
# Help


def format_flags(fv, indent="  "):
    """absl-style help for the flags of ``fv``: ``--[no]bool``, no default line for None."""
    lines = []
    for name in sorted(n for n in fv if fv[n].name == n):
        flag = fv[name]
        text = f"-{flag.short_name},--" if flag.short_name else "--"
        text += f"[no]{name}: " if flag.boolean else f"{name}: "
        text += flag.help or ""
        if flag.default_as_str:
            text += f"\n(default: {flag.default_as_str})"
        if flag.parser.syntactic_help:
            text += f"\n({flag.parser.syntactic_help})"
        lines.append(flags.text_wrap(text, indent=indent + "  ", firstline_indent=indent))
    return "\n".join(lines)


def command_help(cmd):
    """The text of ``keras-vs COMMAND --help``."""
    lines = [f"usage: {PROG} {cmd.name} [--flags] {cmd.usage_args}".rstrip(), "", cmd.summary]
    if cmd.description:
        lines += ["", textwrap.fill(" ".join(cmd.description.split()), width=80)]
    fv = cmd.flag_values()
    if any(True for _ in fv):
        lines += ["", "flags:", format_flags(fv)]
    return "\n".join(lines)


def usage():
    """The text of ``keras-vs --help``."""
    lines = [
        f"usage: {PROG} COMMAND [--flags] [ARGS]",
        "",
        "Find, measure and fix the Dropout/BatchNormalization variance shift.",
        "",
        "commands:",
    ]
    for name, target in command_targets().items():
        try:
            summary = load_command(name, target).summary
        except CliError as e:
            summary = f"(unavailable: {e})"
        lines.append(f"  {name:<12} {summary}")
    lines += [
        "",
        f"Run '{PROG} COMMAND --help' for the flags of one command, "
        f"'{PROG} --version' for the version.",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Running


def parse(cmd, argv):
    """Parses a command's arguments.

    Args:
        cmd: The `Command`.
        argv: The arguments after the command word.

    Returns:
        ``(positional arguments, parsed flags.FlagValues)``.

    Raises:
        UsageError: An unknown flag or a bad flag value.
    """
    fv = cmd.flag_values()
    try:
        rest = fv([f"{PROG} {cmd.name}", *argv])
    except flags.Error as e:
        text = " ".join(str(e).split())
        if isinstance(e, flags.UnrecognizedFlagError):
            text += f". Run '{PROG} {cmd.name} --help' for its flags."
        raise UsageError(text) from None
    return list(rest[1:]), fv


# TensorFlow's native start-up lines: absl writes them to the process's
# stderr before its logging is initialised, whatever TF_CPP_MIN_LOG_LEVEL
# says (oneDNN, cudart, CPU features; once per native library, so twice).
_NATIVE_BANNERS = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\)"
    r"|[IW]\d{4} \d\d:\d\d:[\d.]+ +\d+ \S+\.cc:\d+\]"
    r"|To enable the following instructions:)"
)


def quiet_native_logs():
    """Keeps TensorFlow's C++ start-up logs off a command's output.

    Only when the user has not set ``TF_CPP_MIN_LOG_LEVEL`` (their setting
    wins): sets it to 3 (the ``E0000 ... failed call to cuInit`` line of a
    machine without a GPU is an absl ERROR), and imports Keras once, with the
    process's stderr captured, so that the banners TensorFlow's libraries
    print while they load are dropped; any other line is passed on.
    """
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    if "keras" in sys.modules or importlib.util.find_spec("keras") is None:
        return
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (an embedded interpreter)
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import keras  # noqa: F401  (imports the backend: TensorFlow by default)
        except Exception:  # noqa: BLE001  (the command's own import reports it)
            pass
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        text = captured.read().decode("utf-8", errors="replace")
    kept = [line for line in text.splitlines() if line.strip() and not _NATIVE_BANNERS.match(line)]
    if kept:
        print("\n".join(kept), file=sys.stderr)


def _one_line_warnings(name):
    def format_warning(message, category, filename, lineno, line=None):
        return f"{PROG} {name}: warning: {' '.join(str(message).split())}\n"

    return format_warning


def run(argv=None):
    """Runs ``keras-vs`` and returns its exit status (see the module docstring).

    Args:
        argv: Full argument vector (``argv[0]`` is the program); defaults to
            ``sys.argv``.
    """
    argv = list(sys.argv if argv is None else argv)
    args = argv[1:]
    if not args or args[0] in HELP_FLAGS + ("help",):
        if len(args) > 1 and args[0] == "help":  # keras-vs help COMMAND
            return run([argv[0], args[1], "--help"])
        print(usage(), file=sys.stdout if args else sys.stderr)
        return 0 if args else EXIT_USAGE
    if args[0] == "--version":
        from keras_vs import __version__

        print(f"{PROG} {__version__}")
        return 0
    targets = command_targets()
    if args[0] not in targets:
        what = "flag" if args[0].startswith("-") else "command"
        print(
            f"{PROG}: error: unknown {what} {args[0]!r}. Expected a command: "
            f"{', '.join(targets)}. Run '{PROG} --help'.",
            file=sys.stderr,
        )
        return EXIT_USAGE
    name = args[0]
    rest = args[1:]
    before_separator = rest[: rest.index("--")] if "--" in rest else rest
    wants_help = any(a in HELP_FLAGS for a in before_separator)
    if not wants_help:
        quiet_native_logs()
    try:
        cmd = load_command(name, targets[name])
    except CliError as e:
        print(f"{PROG} {name}: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    if wants_help:
        print(command_help(cmd))
        return 0
    format_warning = warnings.formatwarning
    warnings.formatwarning = _one_line_warnings(name)
    try:
        positional, fv = parse(cmd, rest)
        status = cmd.run(positional, fv)
    except UsageError as e:
        print(f"{PROG} {name}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except CliError as e:
        print(f"{PROG} {name}: error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(f"{PROG} {name}: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = format_warning
    return 0 if status is None else int(status)


def main(argv=None):
    """Entry point of the ``keras-vs`` console script: exits with `run`'s status."""
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()  # absl logging: no "before flag parsing" notice
    try:
        status = run(argv)
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. `keras-vs tune --help | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        status = 0
    sys.exit(status)


if __name__ == "__main__":
    # Run as a file (Bazel's py_binary): use the package's module, not a copy.
    from keras_vs.cli import main as _main

    _main()
