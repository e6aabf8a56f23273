"""Named model configurations: ``@register`` beside each variant fills one
table, which drives `get`, `list_models`, the ``zoo.*`` exports, the docs
(`registry_markdown`) and the parametrised tests.

Each entry pairs a thin named variant (a family builder with its
architecture arguments fixed) with the model's trainable-parameter counts
for 10 and 100 classes. ``source="paper"`` counts are the reference counts of
the ten CIFAR networks of the paper's experiments, as built by
pytorch-classification's ``models/cifar`` (checked against independent
implementations); ``source="derived"`` counts belong to the small test
configs and were worked out by hand from the same layer formulas (conv
kernels without bias, BN gamma and beta, classifier with bias).
"""

import dataclasses
import difflib
import fnmatch
import functools
import inspect

import keras

__all__ = ["ModelEntry", "entries", "entry", "get", "list_models", "register", "registry_markdown"]

SOURCES = ("paper", "derived")


@dataclasses.dataclass(frozen=True)
class ModelEntry:
    """One registered configuration.

    Attributes:
        name: Registry name, also the built model's name.
        builder: Thin named variant; ``builder(**overrides)`` builds it.
        params: Trainable-parameter count by number of classes (10 and 100).
        source: ``"paper"`` (reference count) or ``"derived"``.
        small: Whether the config is small enough for the fast test suite.
    """

    name: str
    builder: object
    params: dict
    source: str
    small: bool = False

    @property
    def family(self):
        """Name of the family builder, e.g. ``"wide_resnet"``."""
        return self.builder.family

    @property
    def config(self):
        """The architecture arguments the entry fixes."""
        return dict(self.builder.config)

    @property
    def summary(self):
        """The first sentence of the variant's docstring."""
        return (self.builder.__doc__ or "").strip().splitlines()[0]


# name -> ModelEntry, in registration order (the family modules register on import).
_BY_NAME = {}


def register(family, name, params, source="paper", small=False):
    """Registers the named variant it decorates; one call beside each definition.

    The decorated function builds the variant: its keyword defaults are the
    architecture arguments it fixes (the entry's ``config``) and it passes
    every other keyword on to ``family``. The model is named ``name`` unless
    an architecture argument is overridden (the name would then lie) or
    ``name=`` is given.

    Args:
        family: The family builder, e.g. `zoo.wide_resnet`.
        name: Registry name, e.g. ``"wrn-16-4"``; unique.
        params: Trainable parameters by number of classes, ``{10: n, 100: m}``.
        source: ``"paper"`` (reference count) or ``"derived"`` (worked out).
        small: Whether the config is small enough for the fast test suite.

    Returns:
        The decorator; it returns the registered variant (``.config``,
        ``.family`` and ``.model_name`` attached).

    Example:

    >>> @register(zoo.wide_resnet, "wrn-10-2", {10: 0, 100: 0}, "derived")  # doctest: +SKIP
    ... def wrn_10_2(depth=10, width=2, **overrides):
    ...     '''WRN-10-2.'''
    ...     return zoo.wide_resnet(depth, width, **overrides)
    """
    if name in _BY_NAME:
        raise ValueError(f"zoo registry: a model of this name exists. Received: name={name!r}")
    if source not in SOURCES or set(params) != {10, 100}:
        raise ValueError(
            f"zoo registry: expected source in {SOURCES} and params for 10 and 100 classes. "
            f"Received: source={source!r}, params={params!r}"
        )

    def decorate(build):
        variant = _named_variant(family, name, build)
        _BY_NAME[name] = ModelEntry(name, variant, dict(params), source, small)
        return variant

    return decorate


def _named_variant(family, name, build):
    """``build`` naming its model ``name`` unless its architecture changes."""
    config = {
        p.name: p.default
        for p in inspect.signature(build).parameters.values()
        if p.default is not inspect.Parameter.empty
    }

    @functools.wraps(build)
    def variant(**overrides):
        if not any(k in config for k in overrides):
            overrides.setdefault("name", name)
        return build(**overrides)

    variant.__doc__ = (
        f"{(build.__doc__ or '').strip()}\n\nBuilds `{family.__name__}` with "
        + ", ".join(f"{k}={v!r}" for k, v in config.items())
        + f"; every other keyword argument of `{family.__name__}` is accepted.\n"
    )
    variant.config, variant.family, variant.model_name = config, family.__name__, name
    return variant


def _lookup(name):
    """The entry of ``name``; unknown names raise with close matches."""
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(_BY_NAME), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown zoo model.{hint} Known models: {', '.join(sorted(_BY_NAME))}. "
            f"Received: name={name!r}"
        ) from None


def get(name, /, dtype_policy=None, **overrides):
    """Builds a registered model.

    Args:
        name: Registry name, e.g. ``"wrn-16-4"`` (see `list_models`).
        dtype_policy: The Keras dtype policy of the model and its layers,
            e.g. ``"mixed_bfloat16"`` or ``"mixed_float16"`` (None: the
            global policy, `keras.config.dtype_policy`). Under a mixed policy
            the classifier computes in float32, as Keras' mixed-precision
            guide advises; variables (BN statistics included) stay float32.
            The global policy is left as it was.
        **overrides: Keyword arguments of the family builder, e.g.
            ``num_classes=100, dropout=zoo.DropoutPlan(0.3, "head")``
            (Uout: ``zoo.DropoutPlan(position="head", type="uout", beta=0.1)``);
            ``name=`` renames the model.

    Returns:
        A new `keras.Model`, named ``name`` unless overridden.

    Example:

    >>> model = get("wrn-10-1", num_classes=100)
    >>> model.name
    'wrn-10-1'
    >>> get("wrn-10-1", dtype_policy="mixed_bfloat16").dtype_policy.name
    'mixed_bfloat16'
    """
    builder = _lookup(name).builder
    if dtype_policy is None:
        return builder(**overrides)
    policy = _check_policy(dtype_policy)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy)  # every layer (and the model) takes it when made
    try:
        return builder(**overrides)
    finally:
        keras.config.set_dtype_policy(previous)


def _check_policy(dtype_policy):
    """A `keras.DTypePolicy` from a name or policy; unknown names raise naming the value."""
    if isinstance(dtype_policy, keras.DTypePolicy):
        return dtype_policy
    if isinstance(dtype_policy, str):
        try:
            return keras.DTypePolicy(dtype_policy)
        except ValueError:
            pass
    raise ValueError(
        "Expected dtype_policy to be a Keras dtype policy or its name, e.g. 'float32', "
        f"'mixed_bfloat16' or 'mixed_float16'. Received: dtype_policy={dtype_policy!r}"
    )


def entry(name):
    """Returns the `ModelEntry` (config and parameter counts) of ``name``."""
    return _lookup(name)


def list_models(pattern="*"):
    """Returns the sorted registry names matching an fnmatch ``pattern``.

    Example:

    >>> list_models("wrn-16-*")
    ['wrn-16-4', 'wrn-16-8']
    """
    if not isinstance(pattern, str):
        raise ValueError(f"`pattern` must be a string. Received: pattern={pattern!r}")
    return sorted(n for n in _BY_NAME if fnmatch.fnmatchcase(n, pattern))


def entries(pattern="*"):
    """Returns the `ModelEntry` records whose names match ``pattern``."""
    return [_BY_NAME[n] for n in list_models(pattern)]


def registry_markdown():
    """Returns the registry as a Markdown table, for the docs."""
    lines = [
        "| name | builder | configuration | trainable, 10 classes "
        "| trainable, 100 classes | count |",
        "|---|---|---|---:|---:|---|",
    ]
    # The paper's networks first, then the small test configs.
    for e in sorted(_BY_NAME.values(), key=lambda e: e.small):
        config = ", ".join(f"{k}={v!r}" for k, v in e.config.items())
        count = "reference" if e.source == "paper" else "derived (small)"
        lines.append(
            f"| `{e.name}` | `zoo.{e.family}` | {config} "
            f"| {e.params[10]:,} | {e.params[100]:,} | {count} |"
        )
    return "\n".join(lines) + "\n"
