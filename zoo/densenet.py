"""DenseNet for CIFAR (Huang et al., "Densely Connected Convolutional
Networks", 2017), layer for layer as pytorch-classification's
``models/cifar/densenet.py``."""

import numbers

import keras

from zoo import common


def dense_layer(x, growth_rate, bottleneck, prefix, plan):
    """One dense layer, concatenated to its input; returns the result.

    Basic: BN-ReLU-conv3x3(k). Bottleneck: BN-ReLU-conv1x1(4k)-BN-ReLU-
    conv3x3(k). A dense layer is the "block" of the dropout positions:
    "before_bn" dropout goes right before its last BN, "before_conv" dropout
    right before its last conv, "after_conv" dropout right after its 3x3
    conv, before the concatenation (the reference's ``--drop``). Dropout acts
    on the branch only; with "after_conv" the dropped channels are what the
    concatenation carries on to every later BN of the stage, the transition
    BN and the final BN.
    """
    y = x
    if bottleneck:
        y = common.batch_norm(y, f"{prefix}_bn1")
        y = common.relu(y, f"{prefix}_relu1")
        y = common.conv2d(y, 4 * growth_rate, 1, f"{prefix}_conv1")
        last = 2
    else:
        last = 1
    y = plan.apply(y, "before_bn", prefix)
    y = common.batch_norm(y, f"{prefix}_bn{last}")
    y = common.relu(y, f"{prefix}_relu{last}")
    y = plan.apply(y, "before_conv", prefix)
    y = common.conv2d(y, growth_rate, 3, f"{prefix}_conv{last}")
    y = plan.apply(y, "after_conv", prefix)
    return keras.layers.Concatenate(axis=common.channel_axis(), name=f"{prefix}_concat")(
        [x, y]
    )


def transition(x, filters, prefix):
    """BN-ReLU-conv1x1-average pool 2x2 between two dense stages."""
    x = common.batch_norm(x, f"{prefix}_bn")
    x = common.relu(x, f"{prefix}_relu")
    x = common.conv2d(x, filters, 1, f"{prefix}_conv")
    return keras.layers.AveragePooling2D(2, strides=2, name=f"{prefix}_pool")(x)


def densenet(
    depth,
    growth_rate,
    bottleneck=True,
    compression=0.5,
    stem_filters=None,
    *,
    num_classes=10,
    input_shape=None,
    dropout_rate=0.0,
    dropout_position="none",
    dropout_type="bernoulli",
    include_top=True,
    classifier_activation="softmax",
    name=None,
):
    """Builds a CIFAR DenseNet (DenseNet-BC by default).

    Stem conv3x3, three dense stages of n layers each joined by transitions
    (BN-ReLU-conv1x1 to ``floor(compression * channels)`` filters, average
    pool 2x2), final BN-ReLU, global average pooling and a dense classifier
    initialised as torch's ``nn.Linear``. The dropout positions treat each
    dense layer as a block; transitions get no dropout. The reference code
    (pytorch-classification's ``--drop``) puts dropout right after each
    dense layer's 3x3 conv, before the concatenation:
    ``dropout_position="after_conv"`` here. (The original Lua DenseNet also
    drops after the transition convs; no position here does that.)

    Args:
        depth: 6n + 4 with bottleneck layers (22, 40, 100, 190, ...),
            3n + 4 without (7, 10, 40, ...).
        growth_rate: Channels each dense layer adds (k).
        bottleneck: Whether dense layers have the 1x1 bottleneck conv.
        compression: Transition channel factor in (0, 1]; 1 means none.
        stem_filters: Stem conv filters; default ``2 * growth_rate`` with
            bottleneck layers, 16 without (as in the DenseNet paper).
        num_classes: Classifier outputs.
        input_shape: Image shape, default ``(32, 32, 3)``.
        dropout_rate: Drop rate (beta for ``dropout_type="uout"``). 0 builds
            no dropout layer.
        dropout_position: ``"none"``, ``"before_bn"``, ``"before_conv"``,
            ``"after_conv"`` (the reference's placement) or ``"head"`` (see
            `zoo.preresnet`).
        dropout_type: ``"bernoulli"`` or ``"uout"``.
        include_top: Whether to add pooling and the classifier.
        classifier_activation: Activation of the classifier (``None`` for
            logits).
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
    builder = "densenet"
    if not isinstance(bottleneck, bool):
        raise common.invalid(builder, "bottleneck", bottleneck, "True or False")
    n = common.check_depth(
        builder,
        depth,
        6 if bottleneck else 3,
        4,
        hint=f" for bottleneck={bottleneck}",
    )
    growth_rate = common.check_int(builder, "growth_rate", growth_rate)
    if (
        isinstance(compression, bool)
        or not isinstance(compression, numbers.Real)
        or not 0.0 < float(compression) <= 1.0
    ):
        raise common.invalid(builder, "compression", compression, "a float in (0, 1]")
    if stem_filters is None:
        stem_filters = 2 * growth_rate if bottleneck else 16
    stem_filters = common.check_int(builder, "stem_filters", stem_filters)
    plan = common.DropoutPlan(builder, dropout_rate, dropout_position, dropout_type)
    num_classes = common.check_head(builder, include_top, num_classes, plan)
    inputs = common.model_input(builder, input_shape)
    x = common.conv2d(inputs, stem_filters, 3, "stem_conv")
    for stage in range(1, 4):
        for layer in range(1, n + 1):
            x = dense_layer(x, growth_rate, bottleneck, f"stage{stage}_block{layer}", plan)
        if stage < 3:
            filters = max(1, int(common.num_channels(x) * compression))
            x = transition(x, filters, f"transition{stage}")
    x = common.batch_norm(x, "post_bn")
    x = common.relu(x, "post_relu")
    outputs = common.head(x, include_top, num_classes, classifier_activation, plan)
    kind = ("b" if bottleneck else "") + ("c" if compression < 1 else "")
    default_name = f"densenet-{kind + '-' if kind else ''}{depth}-{growth_rate}"
    return keras.Model(inputs, outputs, name=name or default_name)


densenet_bc_22_4 = common.variant(
    densenet,
    "densenet-bc-22-4",
    "DenseNet-BC-22 with growth rate 4 (small).",
    depth=22,
    growth_rate=4,
)
densenet_10_4 = common.variant(
    densenet,
    "densenet-10-4",
    "DenseNet-10 with growth rate 4, basic layers, no compression (small).",
    depth=10,
    growth_rate=4,
    bottleneck=False,
    compression=1.0,
)
densenet_bc_100_12 = common.variant(
    densenet, "densenet-bc-100-12", "DenseNet-BC-100 (k = 12).", depth=100, growth_rate=12
)
densenet_bc_190_40 = common.variant(
    densenet, "densenet-bc-190-40", "DenseNet-BC-190 (k = 40).", depth=190, growth_rate=40
)
densenet_40_12 = common.variant(
    densenet,
    "densenet-40-12",
    "DenseNet-40 (k = 12), basic layers, no compression, 16-filter stem.",
    depth=40,
    growth_rate=12,
    bottleneck=False,
    compression=1.0,
)
