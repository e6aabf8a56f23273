"""DenseNet for CIFAR (Huang et al., "Densely Connected Convolutional
Networks", 2017), layer for layer as pytorch-classification's
``models/cifar/densenet.py``."""

import dataclasses

import keras

from zoo import _checks, common
from zoo.registry import register

__all__ = ["densenet"]  # the named variants: `zoo.list_models()`


def _dense_layer(x, growth_rate, bottleneck, prefix, plan):
    """One dense layer, concatenated to its input; returns the result.

    Basic: BN-ReLU-conv3x3(k). Bottleneck: BN-ReLU-conv1x1(4k)-BN-ReLU-
    conv3x3(k). A dense layer is the "block" of the dropout positions, and
    dropout acts on its branch only: with "after_conv" the dropped channels
    are what the concatenation carries on to every later BN of the stage,
    the transition BN and the final BN.
    """
    y = x
    last = 1
    if bottleneck:
        y = common.batch_norm(y, f"{prefix}_bn1")
        y = common.relu(y, f"{prefix}_relu1")
        y = common.conv2d(y, 4 * growth_rate, 1, f"{prefix}_conv1")
        last = 2
    y = plan.apply(y, "before_bn", prefix)
    y = common.batch_norm(y, f"{prefix}_bn{last}")
    y = common.relu(y, f"{prefix}_relu{last}")
    y = plan.apply(y, "before_conv", prefix)
    y = common.conv2d(y, growth_rate, 3, f"{prefix}_conv{last}")
    y = plan.apply(y, "after_conv", prefix)
    return keras.layers.Concatenate(axis=common.channel_axis(), name=f"{prefix}_concat")([x, y])


def _transition(x, filters, prefix):
    """BN-ReLU-conv1x1-average pool 2x2 between two dense stages."""
    x = common.batch_norm(x, f"{prefix}_bn")
    x = common.relu(x, f"{prefix}_relu")
    x = common.conv2d(x, filters, 1, f"{prefix}_conv")
    return keras.layers.AveragePooling2D(2, strides=2, name=f"{prefix}_pool")(x)


@dataclasses.dataclass(frozen=True)
class _Body:
    """Stem conv3x3, three dense stages joined by transitions, final BN-ReLU."""

    layers_per_stage: int
    growth_rate: int
    bottleneck: bool
    compression: float
    stem_filters: int

    def __call__(self, inputs, plan):
        """Returns the final feature map of ``inputs`` under the dropout ``plan``."""
        x = common.conv2d(inputs, self.stem_filters, 3, "stem_conv")
        for stage in range(1, 4):
            for layer in range(1, self.layers_per_stage + 1):
                prefix = f"stage{stage}_block{layer}"
                x = _dense_layer(x, self.growth_rate, self.bottleneck, prefix, plan)
            if stage < 3:
                filters = max(1, int(common.num_channels(x) * self.compression))
                x = _transition(x, filters, f"transition{stage}")
        x = common.batch_norm(x, "post_bn")
        return common.relu(x, "post_relu")


def _body(builder, depth, growth_rate, bottleneck, compression, stem_filters):
    """Validates the architecture arguments and returns the `_Body`."""
    if not isinstance(bottleneck, bool):
        raise _checks.invalid(builder, "bottleneck", bottleneck, "True or False")
    n = _checks.check_depth(
        builder, depth, 6 if bottleneck else 3, 4, hint=f" for bottleneck={bottleneck}"
    )
    growth_rate = _checks.check_int(builder, "growth_rate", growth_rate)
    compression = _checks.check_real(builder, "compression", compression, 0.0, 1.0, low_open=True)
    if stem_filters is None:
        stem_filters = 2 * growth_rate if bottleneck else 16
    stem_filters = _checks.check_int(builder, "stem_filters", stem_filters)
    return _Body(n, growth_rate, bottleneck, compression, stem_filters)


def _default_name(depth, growth_rate, bottleneck, compression):
    """``densenet-bc-{depth}-{k}``, with ``b``/``c`` as bottleneck/compression apply."""
    kind = ("b" if bottleneck else "") + ("c" if compression < 1 else "")
    return f"densenet-{kind + '-' if kind else ''}{depth}-{growth_rate}"


@common.with_common_args_doc
def densenet(
    depth,
    growth_rate,
    bottleneck=True,
    compression=0.5,
    stem_filters=None,
    *,
    name=None,
    **common_args,
):
    """Builds a CIFAR DenseNet (DenseNet-BC by default).

    Stem conv3x3, three dense stages of n layers each joined by transitions
    (BN-ReLU-conv1x1 to ``floor(compression * channels)`` filters, average
    pool 2x2), final BN-ReLU, global average pooling and a dense classifier
    initialised as torch's ``nn.Linear``. The dropout positions treat each
    dense layer as a block; transitions get no dropout. The reference code
    (pytorch-classification's ``--drop``) puts dropout right after each
    dense layer's 3x3 conv, before the concatenation:
    ``zoo.DropoutPlan(rate, "after_conv")`` here. (The original Lua DenseNet also
    drops after the transition convs; no position here does that.)

    Args:
        depth: 6n + 4 with bottleneck layers (22, 40, 100, 190, ...),
            3n + 4 without (7, 10, 40, ...).
        growth_rate: Channels each dense layer adds (k).
        bottleneck: Whether dense layers have the 1x1 bottleneck conv.
        compression: Transition channel factor in (0, 1]; 1 means none.
        stem_filters: Stem conv filters; default ``2 * growth_rate`` with
            bottleneck layers, 16 without (as in the DenseNet paper).
        {common_args}
        name: Model name, default ``"densenet-bc-{depth}-{growth_rate}"``
            (``-b``, ``-c`` or no suffix letter as bottleneck and
            compression apply).

    Returns:
        A functional `keras.Model`.

    Example:

    >>> model = densenet(22, 4)
    >>> model.get_layer("transition1_conv").filters  # (2 * 4 + 3 * 4) // 2
    10
    """
    body = _body("densenet", depth, growth_rate, bottleneck, compression, stem_filters)
    default_name = _default_name(depth, growth_rate, bottleneck, body.compression)
    family = common.Family("densenet", body, default_name)
    return common.network(family, name=name, **common_args)


# The registered variants (`zoo.list_models("densenet-*")`).


@register(densenet, "densenet-bc-100-12", {10: 769_162, 100: 800_032})
def densenet_bc_100_12(depth=100, growth_rate=12, **overrides):
    """DenseNet-BC-100 (k = 12)."""
    return densenet(depth, growth_rate, **overrides)


@register(densenet, "densenet-bc-190-40", {10: 25_624_430, 100: 25_821_620})
def densenet_bc_190_40(depth=190, growth_rate=40, **overrides):
    """DenseNet-BC-190 (k = 40)."""
    return densenet(depth, growth_rate, **overrides)


@register(densenet, "densenet-40-12", {10: 1_019_722, 100: 1_060_132})
def densenet_40_12(depth=40, growth_rate=12, bottleneck=False, compression=1.0, **overrides):
    """DenseNet-40 (k = 12), basic layers, no compression, 16-filter stem."""
    return densenet(depth, growth_rate, bottleneck, compression, **overrides)


@register(densenet, "densenet-bc-22-4", {10: 8_714, 100: 10_874}, "derived", small=True)
def densenet_bc_22_4(depth=22, growth_rate=4, **overrides):
    """DenseNet-BC-22 with growth rate 4 (small)."""
    return densenet(depth, growth_rate, **overrides)


@register(densenet, "densenet-10-4", {10: 8_562, 100: 12_252}, "derived", small=True)
def densenet_10_4(depth=10, growth_rate=4, bottleneck=False, compression=1.0, **overrides):
    """DenseNet-10 with growth rate 4, basic layers, no compression (small)."""
    return densenet(depth, growth_rate, bottleneck, compression, **overrides)
