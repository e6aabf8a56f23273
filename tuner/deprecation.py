"""The flat keywords that became record fields: accepted for one release, with a warning.

`tuner.search`, `tuner.DropoutHyperModel` and `experiments.study.dropout_study`
take their settings as frozen records (`tuner.SearchSpace`,
`tuner.TrainingConfig`, ...). Until the next release each still takes the
old keywords through ``**deprecated``: `records` maps every one to its
record field by a table, warns (`KerasVsDeprecationWarning`) naming that field, and
builds the record from them. A record and its old keywords together are
refused. This module goes with the old keywords.

Example:

>>> import warnings
>>> from tuner.config import TrainingConfig
>>> with warnings.catch_warnings(record=True):
...     warnings.simplefilter("always")
...     made = records("f", {"training": None}, {"training": TrainingConfig()},
...                    {"epochs": 3}, {"epochs": "training.epochs"})
>>> made["training"].epochs
3
"""

import dataclasses
import warnings

from keras_vs.deprecation import KerasVsDeprecationWarning

__all__ = ["records"]


def records(function, given, defaults, old, table, stacklevel=3):
    """The records of a call, from the records given and the deprecated keywords.

    Args:
        function: The public name of the caller, for messages (e.g. ``"tuner.search"``).
        given: ``{keyword: record or None}`` as passed.
        defaults: ``{keyword: record}`` used where none is given; also fixes
            each keyword's record class.
        old: The deprecated keywords received (the caller's ``**deprecated``).
        table: ``{old keyword: "keyword.field"}``, or ``"keyword"`` for an old
            name of the whole record.
        stacklevel: Points the warning at the caller's caller.

    Returns:
        ``{keyword: record}`` for every keyword of ``defaults``.

    Raises:
        TypeError: A keyword that is neither a record nor in ``table``.
        ValueError: A record of the wrong class, or one given together with
            old keywords of its fields.
    """
    for name in old:
        if name not in table:
            raise TypeError(f"{function}() got an unexpected keyword argument {name!r}")
    made = dict(given)
    fields = {}
    for name, value in old.items():
        keyword, _, field = table[name].partition(".")
        new = f"{keyword}={_spelling(type(defaults[keyword]))}({field}=...)" if field else f"{keyword}="
        warnings.warn(
            f"{function}({name}=...) is deprecated and will be removed in the next release: "
            f"pass {new} instead.",
            KerasVsDeprecationWarning,
            stacklevel=stacklevel,
        )
        if not field:
            _refuse_both(function, keyword, given, [name])
            made[keyword] = value
        else:
            fields.setdefault(keyword, {})[field] = value
    for keyword, values in fields.items():
        _refuse_both(function, keyword, made, sorted(values))
        made[keyword] = dataclasses.replace(defaults[keyword], **values)
    for keyword, record in made.items():
        kind = type(defaults[keyword])
        if record is None:
            made[keyword] = defaults[keyword]
        elif not isinstance(record, kind):
            raise ValueError(
                f"Expected {keyword} to be a {_spelling(kind)}. "
                f"Received: {keyword}={record!r}"
            )
    return made


def _refuse_both(function, keyword, given, names):
    if given.get(keyword) is not None:
        raise ValueError(
            f"{function}: pass {', '.join(names)} inside {keyword}, not next to it. "
            f"Received: {keyword}={given[keyword]!r}"
        )


def _spelling(kind):
    """How users name a record class: ``tuner.TrainingConfig``, ``experiments.study.StudyConfig``."""
    module = "tuner" if kind.__module__.startswith("tuner.") else kind.__module__
    return f"{module}.{kind.__name__}"
