"""Argument checks shared by every package: one wording for one mistake.

Example:

>>> integer("steps", 3)
3
>>> integer("steps", None, allow_none=True) is None
True
"""

import numbers

__all__ = ["first_line", "integer"]


def integer(name, value, *, minimum=1, allow_none=False):
    """`value` as an int, or a ValueError echoing ``name=value``.

    Args:
        name: The argument's name, as the caller wrote it.
        value: What was received; a bool is not an integer here.
        minimum: The smallest value allowed (1: a positive integer).
        allow_none: Whether None is allowed (and returned as None).

    Returns:
        ``int(value)``, or None when `value` is None and `allow_none`.
    """
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(
            f"Expected {name} to be {kind}{' or None' if allow_none else ''}. "
            f"Received: {name}={value!r}"
        )
    return int(value)


def first_line(error, limit=300):
    """The first non-blank line of an exception's message, prefixed by its type.

    Args:
        error: The exception.
        limit: Longer lines are cut to this many characters (ending in ``...``).

    Returns:
        ``"Type: first line"``, or ``"Type"`` for an empty message.

    Example:

    >>> first_line(ValueError("bad shape"))
    'ValueError: bad shape'
    """
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[0] if lines else ""
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__
