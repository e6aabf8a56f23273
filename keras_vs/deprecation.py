"""The warning of a keras-vs name that is removed in the next release.

Every deprecated spelling in keras_vs, zoo and tuner warns with
`KerasVsDeprecationWarning`, a `DeprecationWarning`, so that users filter it as
any other, and the test suite makes it an error (pytest.ini): keras-vs' own
code and tests call a deprecated name only inside ``pytest.warns``.

Example:

>>> import warnings
>>> issubclass(KerasVsDeprecationWarning, DeprecationWarning)
True
"""

__all__ = ["KerasVsDeprecationWarning"]


class KerasVsDeprecationWarning(DeprecationWarning):
    """A keras-vs name (function, keyword, attribute) that goes in the next release."""
