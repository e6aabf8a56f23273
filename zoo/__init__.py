"""Model zoo: the paper's CIFAR networks with every dropout position.

Four families (`preresnet`, `resnext`, `wide_resnet`, `densenet`) share the
arguments ``num_classes``, ``input_shape``, ``dropout_rate`` (Bernoulli drop
rate), ``beta`` (Uout's noise), ``dropout_position`` (``"none"``,
``"before_bn"``, ``"before_conv"``, ``"after_conv"``, ``"head"``:
`keras_vs.vocab.DROPOUT_POSITIONS`), ``dropout_type`` (``"bernoulli"``,
``"uout"``), ``include_top``, ``classifier_activation`` and ``name``. Each
builds the reference code's function (pytorch-classification,
``models/cifar``) layer for layer. Named configurations live in a registry.

The families' modules are private (``zoo._densenet`` ...), so that
``zoo.densenet`` is only ever the builder function; `zoo.common` holds the
building blocks they share.

Example:

>>> import zoo
>>> model = zoo.get("wrn-10-1", dropout_rate=0.3, dropout_position="head")
>>> uout = zoo.get("wrn-10-1", dropout_type="uout", beta=0.1, dropout_position="head")
>>> "wrn-16-4" in zoo.list_models("wrn-*")
True
"""

from zoo._densenet import (
    densenet,
    densenet_10_4,
    densenet_40_12,
    densenet_bc_22_4,
    densenet_bc_100_12,
    densenet_bc_190_40,
)
from zoo._preresnet import preresnet, preresnet11_bottleneck, preresnet20, preresnet110, preresnet164
from zoo._resnext import resnext, resnext_11_2x4d, resnext_29_8x64d, resnext_29_16x64d
from zoo._wide_resnet import wide_resnet, wrn_10_1, wrn_16_4, wrn_16_8, wrn_28_10
from zoo.common import DROPOUT_TYPES, POSITIONS
from zoo.registry import ModelEntry, entries, entry, get, list_models, registry_markdown

__all__ = [
    "DROPOUT_TYPES",
    "POSITIONS",
    "ModelEntry",
    "densenet",
    "densenet_10_4",
    "densenet_40_12",
    "densenet_bc_22_4",
    "densenet_bc_100_12",
    "densenet_bc_190_40",
    "entries",
    "entry",
    "get",
    "list_models",
    "preresnet",
    "preresnet11_bottleneck",
    "preresnet20",
    "preresnet110",
    "preresnet164",
    "registry_markdown",
    "resnext",
    "resnext_11_2x4d",
    "resnext_29_8x64d",
    "resnext_29_16x64d",
    "wide_resnet",
    "wrn_10_1",
    "wrn_16_4",
    "wrn_16_8",
    "wrn_28_10",
]
