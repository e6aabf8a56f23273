"""ResNeXt for CIFAR (Xie et al., "Aggregated Residual Transformations for
Deep Neural Networks", 2017), layer for layer as pytorch-classification's
``models/cifar/resnext.py``."""

import keras

from zoo import common


def resnext_block(x, group_width, out_filters, cardinality, strides, prefix, plan):
    """One post-activation ResNeXt bottleneck block; returns its output.

    conv1x1-BN-ReLU, grouped conv3x3 (``cardinality`` groups, carries the
    stride)-BN-ReLU, conv1x1-BN, added to the shortcut (identity, or conv1x1
    plus BN when the shape changes), then ReLU. "before_bn" dropout goes
    right before the third BN, "before_conv" dropout right before the third
    conv. "after_conv" dropout goes right after the third conv, which here
    is the same place as "before_bn" (the block's last conv feeds its last
    BN before the add).
    """
    y = common.conv2d(x, group_width, 1, f"{prefix}_conv1")
    y = common.batch_norm(y, f"{prefix}_bn1")
    y = common.relu(y, f"{prefix}_relu1")
    y = common.conv2d(
        y, group_width, 3, f"{prefix}_conv2", strides=strides, groups=cardinality
    )
    y = common.batch_norm(y, f"{prefix}_bn2")
    y = common.relu(y, f"{prefix}_relu2")
    y = plan.apply(y, "before_conv", prefix)
    y = common.conv2d(y, out_filters, 1, f"{prefix}_conv3")
    y = plan.apply(y, "after_conv", prefix)
    y = plan.apply(y, "before_bn", prefix)
    y = common.batch_norm(y, f"{prefix}_bn3")
    if strides != 1 or common.num_channels(x) != out_filters:
        shortcut = common.conv2d(
            x, out_filters, 1, f"{prefix}_shortcut_conv", strides=strides
        )
        shortcut = common.batch_norm(shortcut, f"{prefix}_shortcut_bn")
    else:
        shortcut = x
    y = keras.layers.Add(name=f"{prefix}_add")([shortcut, y])
    return common.relu(y, f"{prefix}_out")


def resnext(
    depth,
    cardinality,
    base_width,
    *,
    widen_factor=4,
    num_classes=10,
    input_shape=None,
    dropout_rate=0.0,
    dropout_position="none",
    dropout_type="bernoulli",
    include_top=True,
    classifier_activation="softmax",
    name=None,
):
    """Builds a CIFAR ResNeXt-depth (cardinality x base_width d).

    Stem conv3x3(64)-BN-ReLU, three stages of post-activation bottleneck
    blocks whose grouped 3x3 conv has ``cardinality * base_width * 2**s``
    channels and whose outputs have ``64 * widen_factor * 2**s`` channels
    (s = 0, 1, 2; 256/512/1024 for the reference widen factor 4), global
    average pooling and a dense classifier initialised as the reference
    (kernel He-normal on fan-in, zero bias). The original architecture has
    no dropout (the reference accepts a ``dropRate`` and ignores it).

    Args:
        depth: 9n + 2 (11, 20, 29, ...).
        cardinality: Number of groups of the 3x3 convolutions.
        base_width: Channels per group in the first stage (the "d").
        widen_factor: Output width multiplier, 4 in the reference.
        num_classes: Classifier outputs.
        input_shape: Image shape, default ``(32, 32, 3)``.
        dropout_rate: Drop rate (beta for ``dropout_type="uout"``). 0 builds
            no dropout layer.
        dropout_position: ``"none"``, ``"before_bn"``, ``"before_conv"``,
            ``"after_conv"`` (the same place as ``"before_bn"`` here) or
            ``"head"`` (see `zoo.preresnet`).
        dropout_type: ``"bernoulli"`` or ``"uout"``.
        include_top: Whether to add pooling and the classifier.
        classifier_activation: Activation of the classifier (``None`` for
            logits).
        name: Model name, default ``"resnext-{depth}-{cardinality}x{base_width}d"``.

    Returns:
        A functional `keras.Model`.

    Example:

    >>> model = resnext(11, 2, 4)
    >>> model.get_layer("stage1_block1_conv2").groups
    2
    """
    builder = "resnext"
    n = common.check_depth(builder, depth, 9, 2)
    cardinality = common.check_int(builder, "cardinality", cardinality)
    base_width = common.check_int(builder, "base_width", base_width)
    widen_factor = common.check_int(builder, "widen_factor", widen_factor)
    plan = common.DropoutPlan(builder, dropout_rate, dropout_position, dropout_type)
    num_classes = common.check_head(builder, include_top, num_classes, plan)
    inputs = common.model_input(builder, input_shape)
    x = common.conv2d(inputs, 64, 3, "stem_conv")
    x = common.batch_norm(x, "stem_bn")
    x = common.relu(x, "stem_relu")
    for stage in range(1, 4):
        scale = 2 ** (stage - 1)
        for block in range(1, n + 1):
            x = resnext_block(
                x,
                cardinality * base_width * scale,
                64 * widen_factor * scale,
                cardinality,
                2 if stage > 1 and block == 1 else 1,
                f"stage{stage}_block{block}",
                plan,
            )
    outputs = common.head(
        x,
        include_top,
        num_classes,
        classifier_activation,
        plan,
        kernel_init="he_normal",
        bias_init="zeros",
    )
    return keras.Model(
        inputs, outputs, name=name or f"resnext-{depth}-{cardinality}x{base_width}d"
    )


resnext_11_2x4d = common.variant(
    resnext,
    "resnext-11-2x4d",
    "ResNeXt-11 (2x4d), widen factor 1 (small).",
    depth=11,
    cardinality=2,
    base_width=4,
    widen_factor=1,
)
resnext_29_8x64d = common.variant(
    resnext,
    "resnext-29-8x64d",
    "ResNeXt-29 (8x64d).",
    depth=29,
    cardinality=8,
    base_width=64,
)
resnext_29_16x64d = common.variant(
    resnext,
    "resnext-29-16x64d",
    "ResNeXt-29 (16x64d).",
    depth=29,
    cardinality=16,
    base_width=64,
)
