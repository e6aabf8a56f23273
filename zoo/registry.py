"""Named model configurations: one table drives `get`, `list_models`, the
docs (`registry_markdown`) and the parametrised tests.

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

import keras

from zoo._densenet import (
    densenet_10_4,
    densenet_40_12,
    densenet_bc_22_4,
    densenet_bc_100_12,
    densenet_bc_190_40,
)
from zoo._preresnet import preresnet11_bottleneck, preresnet20, preresnet110, preresnet164
from zoo._resnext import resnext_11_2x4d, resnext_29_8x64d, resnext_29_16x64d
from zoo._wide_resnet import wrn_10_1, wrn_16_4, wrn_16_8, wrn_28_10

__all__ = ["ModelEntry", "entries", "entry", "get", "list_models", "registry_markdown"]


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


def _entry(builder, params10, params100, source="paper", small=False):
    """A `ModelEntry` named after ``builder``'s model."""
    return ModelEntry(
        builder.model_name, builder, {10: params10, 100: params100}, source, small
    )


_TABLE = (
    # The paper's networks, with pytorch-classification's reference counts.
    _entry(preresnet110, 1_730_522, 1_736_372),
    _entry(preresnet164, 1_703_258, 1_726_388),
    _entry(resnext_29_8x64d, 34_426_698, 34_518_948),
    _entry(resnext_29_16x64d, 68_155_210, 68_247_460),
    _entry(wrn_16_4, 2_748_890, 2_772_020),
    _entry(wrn_16_8, 10_961_370, 11_007_540),
    _entry(wrn_28_10, 36_479_194, 36_536_884),
    _entry(densenet_bc_100_12, 769_162, 800_032),
    _entry(densenet_bc_190_40, 25_624_430, 25_821_620),
    _entry(densenet_40_12, 1_019_722, 1_060_132),
    # Small configs of every family and block type, for fast tests.
    _entry(preresnet20, 272_282, 278_132, "derived", small=True),
    _entry(preresnet11_bottleneck, 126_746, 149_876, "derived", small=True),
    _entry(resnext_11_2x4d, 69_706, 92_836, "derived", small=True),
    _entry(wrn_10_1, 77_850, 83_700, "derived", small=True),
    _entry(densenet_bc_22_4, 8_714, 10_874, "derived", small=True),
    _entry(densenet_10_4, 8_562, 12_252, "derived", small=True),
)
_BY_NAME = {entry.name: entry for entry in _TABLE}
if len(_BY_NAME) != len(_TABLE):
    raise RuntimeError("zoo registry: duplicate model names")


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
            ``num_classes=100, dropout_rate=0.3, dropout_position="head"``
            (Uout: ``dropout_type="uout", beta=0.1``); ``name=`` renames the
            model.

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
    for e in _TABLE:
        config = ", ".join(f"{k}={v!r}" for k, v in e.config.items())
        count = "reference" if e.source == "paper" else "derived (small)"
        lines.append(
            f"| `{e.name}` | `zoo.{e.family}` | {config} "
            f"| {e.params[10]:,} | {e.params[100]:,} | {count} |"
        )
    return "\n".join(lines) + "\n"
