"""ResNeXt for CIFAR (Xie et al., "Aggregated Residual Transformations for
Deep Neural Networks", 2017), layer for layer as pytorch-classification's
``models/cifar/resnext.py``."""

import dataclasses

import keras

from zoo import _checks, common
from zoo.registry import register

__all__ = ["resnext"]  # the named variants: `zoo.list_models()`


def _shortcut(x, out_filters, strides, prefix):
    """The identity, or conv1x1 plus BN where the shape changes."""
    if strides == 1 and common.num_channels(x) == out_filters:
        return x
    shortcut = common.conv2d(x, out_filters, 1, f"{prefix}_shortcut_conv", strides=strides)
    return common.batch_norm(shortcut, f"{prefix}_shortcut_bn")


def _block(x, group_width, out_filters, cardinality, strides, prefix, plan):
    """One post-activation ResNeXt bottleneck block; returns its output.

    conv1x1-BN-ReLU, grouped conv3x3 (``cardinality`` groups, carries the
    stride)-BN-ReLU, conv1x1-BN, added to the shortcut, then ReLU.
    "before_bn" dropout goes right before the third BN, "before_conv"
    dropout right before the third conv. "after_conv" dropout goes right
    after the third conv, which here is the same place as "before_bn" (the
    block's last conv feeds its last BN before the add).
    """
    y = common.conv2d(x, group_width, 1, f"{prefix}_conv1")
    y = common.batch_norm(y, f"{prefix}_bn1")
    y = common.relu(y, f"{prefix}_relu1")
    y = common.conv2d(y, group_width, 3, f"{prefix}_conv2", strides=strides, groups=cardinality)
    y = common.batch_norm(y, f"{prefix}_bn2")
    y = common.relu(y, f"{prefix}_relu2")
    y = plan.apply(y, "before_conv", prefix)
    y = common.conv2d(y, out_filters, 1, f"{prefix}_conv3")
    y = plan.apply(y, "after_conv", prefix)
    y = plan.apply(y, "before_bn", prefix)
    y = common.batch_norm(y, f"{prefix}_bn3")
    shortcut = _shortcut(x, out_filters, strides, prefix)
    y = keras.layers.Add(name=f"{prefix}_add")([shortcut, y])
    return common.relu(y, f"{prefix}_out")


@dataclasses.dataclass(frozen=True)
class _Body:
    """Stem conv3x3(64)-BN-ReLU and three stages of ResNeXt blocks (the
    first block of stages 2 and 3 strides by 2), as `resnext` describes."""

    blocks_per_stage: int
    cardinality: int
    base_width: int
    widen_factor: int

    def __call__(self, inputs, plan):
        """Returns the final feature map of ``inputs`` under the dropout ``plan``."""
        x = common.conv2d(inputs, 64, 3, "stem_conv")
        x = common.batch_norm(x, "stem_bn")
        x = common.relu(x, "stem_relu")
        for stage in range(1, 4):
            scale = 2 ** (stage - 1)
            for block in range(1, self.blocks_per_stage + 1):
                x = _block(
                    x,
                    self.cardinality * self.base_width * scale,
                    64 * self.widen_factor * scale,
                    self.cardinality,
                    2 if stage > 1 and block == 1 else 1,
                    f"stage{stage}_block{block}",
                    plan,
                )
        return x


@common.with_common_args_doc
def resnext(
    depth,
    cardinality,
    base_width,
    *,
    widen_factor=4,
    name=None,
    **common_args,
):
    """Builds a CIFAR ResNeXt-depth (cardinality x base_width d).

    Stem conv3x3(64)-BN-ReLU, three stages of post-activation bottleneck
    blocks whose grouped 3x3 conv has ``cardinality * base_width * 2**s``
    channels and whose outputs have ``64 * widen_factor * 2**s`` channels
    (s = 0, 1, 2; 256/512/1024 for the reference widen factor 4; projection
    shortcuts are conv1x1 plus BN), global average pooling and a dense
    classifier initialised as the reference (kernel He-normal on fan-in,
    zero bias). The original architecture has no dropout (the reference
    accepts a ``dropRate`` and ignores it). ``"after_conv"`` dropout is in
    the same place as ``"before_bn"``: the last conv feeds the last BN.

    Args:
        depth: 9n + 2 (11, 20, 29, ...).
        cardinality: Number of groups of the 3x3 convolutions.
        base_width: Channels per group in the first stage (the "d").
        widen_factor: Output width multiplier, 4 in the reference.
        {common_args}
        name: Model name, default ``"resnext-{depth}-{cardinality}x{base_width}d"``.

    Returns:
        A functional `keras.Model`.

    Example:

    >>> model = resnext(11, 2, 4)
    >>> model.get_layer("stage1_block1_conv2").groups
    2
    """
    builder = "resnext"
    body = _Body(
        _checks.check_depth(builder, depth, 9, 2),
        _checks.check_int(builder, "cardinality", cardinality),
        _checks.check_int(builder, "base_width", base_width),
        _checks.check_int(builder, "widen_factor", widen_factor),
    )
    default_name = f"resnext-{depth}-{cardinality}x{base_width}d"
    family = common.Family(builder, body, default_name, "he_normal", "zeros")
    return common.network(family, name=name, **common_args)


# The registered variants (`zoo.list_models("resnext-*")`).


@register(resnext, "resnext-29-8x64d", {10: 34_426_698, 100: 34_518_948})
def resnext_29_8x64d(depth=29, cardinality=8, base_width=64, **overrides):
    """ResNeXt-29 (8x64d)."""
    return resnext(depth, cardinality, base_width, **overrides)


@register(resnext, "resnext-29-16x64d", {10: 68_155_210, 100: 68_247_460})
def resnext_29_16x64d(depth=29, cardinality=16, base_width=64, **overrides):
    """ResNeXt-29 (16x64d)."""
    return resnext(depth, cardinality, base_width, **overrides)


@register(resnext, "resnext-11-2x4d", {10: 69_706, 100: 92_836}, "derived", small=True)
def resnext_11_2x4d(depth=11, cardinality=2, base_width=4, widen_factor=1, **overrides):
    """ResNeXt-11 (2x4d), widen factor 1 (small)."""
    return resnext(depth, cardinality, base_width, widen_factor=widen_factor, **overrides)
