"""Model zoo: the paper's CIFAR networks with every dropout position.

Four families (`preresnet`, `resnext`, `wide_resnet`, `densenet`) share the
keyword arguments ``num_classes``, ``input_shape``, ``dropout`` (a
`DropoutPlan`: Bernoulli ``rate`` or Uout ``beta``, at a ``position`` of
`keras_vs.vocab.DROPOUT_POSITIONS`), ``include_top`` and
``classifier_activation``, which they hand to the generic builder
`zoo.common.network`. Each builds the reference code's function
(pytorch-classification, ``models/cifar``) layer for layer.

Named variants are registered with `register` beside their definition; the
registry drives `get`, `list_models`, the ``zoo.<variant>`` names below, the
docs (`registry_markdown`) and the parametrised tests. Adding a model is one
decorated function in its family's module.

The families' modules are private (``zoo._densenet`` ...), so that
``zoo.densenet`` is only ever the builder function; `zoo.common` holds the
building blocks they share.

Example:

>>> import zoo
>>> model = zoo.get("wrn-10-1", dropout=zoo.DropoutPlan(0.3, "head"))
>>> uout = zoo.get("wrn-10-1", dropout=zoo.DropoutPlan(position="head", type="uout", beta=0.1))
>>> "wrn-16-4" in zoo.list_models("wrn-*")
True
"""

# Importing a family's module registers its variants.
from zoo._densenet import densenet
from zoo._dropout import DropoutPlan
from zoo._preresnet import preresnet
from zoo._resnext import resnext
from zoo._wide_resnet import wide_resnet
from zoo.common import DROPOUT_TYPES, POSITIONS
from zoo.registry import (
    ModelEntry,
    entries,
    entry,
    get,
    list_models,
    register,
    registry_markdown,
)

# The registered variants (zoo.wrn_16_4, ...), exported from the one table.
_VARIANTS = {e.builder.__name__: e.builder for e in entries()}
globals().update(_VARIANTS)

__all__ = [
    "DROPOUT_TYPES",
    "DropoutPlan",
    "ModelEntry",
    "POSITIONS",
    "densenet",
    "entries",
    "entry",
    "get",
    "list_models",
    "preresnet",
    "register",
    "registry_markdown",
    "resnext",
    "wide_resnet",
    *sorted(_VARIANTS),
]
