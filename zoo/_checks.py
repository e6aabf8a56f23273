"""Argument checks of the zoo builders: each error names the builder and the
argument and echoes the value ("Received: arg=value"), as Keras' own."""

import numbers

from keras_vs import checks

__all__ = ["check_choice", "check_depth", "check_int", "check_real", "invalid"]


def invalid(builder, arg, value, expected):
    """Returns the ``ValueError`` every zoo builder raises for a bad argument."""
    return ValueError(
        f"Invalid value received for argument `{arg}` of {builder}. "
        f"Expected {expected}. Received: {arg}={value!r}"
    )


def check_int(builder, arg, value, minimum=1):
    """Returns ``value`` as ``int`` if it is an integer >= ``minimum``."""
    try:
        return checks.integer(arg, value, minimum=minimum)
    except ValueError:
        raise invalid(builder, arg, value, f"an integer >= {minimum}") from None


def check_real(builder, arg, value, low, high, low_open=False, high_open=False, what=""):
    """Returns ``value`` as ``float`` if it is a real number in the interval.

    Args:
        builder: Name of the calling builder, for the message.
        arg: Argument name, for the message.
        value: The value to check (bools and NaN are rejected).
        low, high: Bounds of the interval.
        low_open, high_open: Whether a bound is excluded.
        what: Words appended to the expectation, e.g. ``" (Uout's beta)"``.

    Returns:
        ``float(value)``.
    """
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if ok:
        v = float(value)
        ok = (low < v if low_open else low <= v) and (v < high if high_open else v <= high)
    if not ok:
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise invalid(builder, arg, value, f"a float in {interval}{what}")
    return float(value)


def check_depth(builder, depth, step, offset, minimum_n=1, hint=""):
    """Returns ``n`` for a depth of the form ``step * n + offset``, n >= 1."""
    if (
        isinstance(depth, bool)
        or not isinstance(depth, numbers.Integral)
        or depth < step * minimum_n + offset
        or (depth - offset) % step
    ):
        examples = ", ".join(str(step * n + offset) for n in (1, 2, 3))
        raise invalid(
            builder,
            "depth",
            depth,
            f"depth = {step}n + {offset} with n >= {minimum_n}{hint} "
            f"(e.g. {examples})",
        )
    return (int(depth) - offset) // step


def check_choice(builder, arg, value, choices):
    """Returns ``value`` if it is one of the strings ``choices``."""
    if not isinstance(value, str) or value not in choices:
        raise invalid(builder, arg, value, f"one of {choices}")
    return value
