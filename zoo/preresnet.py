"""Pre-activation ResNet for CIFAR (He et al., "Identity Mappings in Deep
Residual Networks", 2016), layer for layer as pytorch-classification's
``models/cifar/preresnet.py``."""

import keras

from zoo import common

_BLOCKS = ("basic", "bottleneck")
# What a projection shortcut reads: the raw block input (pytorch-classification's
# PreResNet) or the block's BN-ReLU output (He et al.'s code, and the WRN reference).
SHORTCUT_INPUTS = ("input", "preact")


def preact_block(x, filters, strides, prefix, plan, bottleneck=False, shortcut_input="input"):
    """One pre-activation residual block; returns its output tensor.

    Basic: BN-ReLU-conv3x3-BN-ReLU-conv3x3. Bottleneck: BN-ReLU-conv1x1-
    BN-ReLU-conv3x3-BN-ReLU-conv1x1 with 4x expansion. The shortcut is the
    identity, or a 1x1 convolution without BN when the shape changes, of the
    raw block input (``shortcut_input="input"``) or of the pre-activated one
    (``"preact"``). "before_bn" dropout goes right before the last BN,
    "before_conv" dropout right before the last conv, "after_conv" dropout
    right after the last conv, before the add.
    """
    out_filters = filters * 4 if bottleneck else filters
    preact = common.batch_norm(x, f"{prefix}_bn1")
    preact = common.relu(preact, f"{prefix}_relu1")
    if strides != 1 or common.num_channels(x) != out_filters:
        shortcut = common.conv2d(
            x if shortcut_input == "input" else preact,
            out_filters,
            1,
            f"{prefix}_shortcut_conv",
            strides=strides,
        )
    else:
        shortcut = x
    if bottleneck:
        y = common.conv2d(preact, filters, 1, f"{prefix}_conv1")
        y = common.batch_norm(y, f"{prefix}_bn2")
        y = common.relu(y, f"{prefix}_relu2")
        y = common.conv2d(y, filters, 3, f"{prefix}_conv2", strides=strides)
        last = 3
    else:
        y = common.conv2d(preact, filters, 3, f"{prefix}_conv1", strides=strides)
        last = 2
    y = plan.apply(y, "before_bn", prefix)
    y = common.batch_norm(y, f"{prefix}_bn{last}")
    y = common.relu(y, f"{prefix}_relu{last}")
    y = plan.apply(y, "before_conv", prefix)
    y = common.conv2d(
        y, out_filters, 1 if bottleneck else 3, f"{prefix}_conv{last}"
    )
    y = plan.apply(y, "after_conv", prefix)
    return keras.layers.Add(name=f"{prefix}_add")([shortcut, y])


def preact_network(
    builder,
    blocks_per_stage,
    widths,
    bottleneck,
    num_classes,
    input_shape,
    plan,
    include_top,
    classifier_activation,
    name,
    shortcut_input,
    bias_init,
):
    """Stem conv, three stages of pre-activation blocks, final BN-ReLU, head.

    Shared by PreResNet and Wide ResNet, which differ only in widths, in how
    their depth is counted and in their references' shortcut input and
    classifier bias.
    """
    common.check_choice(builder, "shortcut_input", shortcut_input, SHORTCUT_INPUTS)
    num_classes = common.check_head(builder, include_top, num_classes, plan)
    inputs = common.model_input(builder, input_shape)
    x = common.conv2d(inputs, 16, 3, "stem_conv")
    for stage, width in enumerate(widths, start=1):
        for block in range(1, blocks_per_stage + 1):
            x = preact_block(
                x,
                width,
                2 if stage > 1 and block == 1 else 1,
                f"stage{stage}_block{block}",
                plan,
                bottleneck=bottleneck,
                shortcut_input=shortcut_input,
            )
    x = common.batch_norm(x, "post_bn")
    x = common.relu(x, "post_relu")
    outputs = common.head(
        x, include_top, num_classes, classifier_activation, plan, bias_init=bias_init
    )
    return keras.Model(inputs, outputs, name=name)


def preresnet(
    depth,
    block="basic",
    *,
    num_classes=10,
    input_shape=None,
    dropout_rate=0.0,
    dropout_position="none",
    dropout_type="bernoulli",
    include_top=True,
    classifier_activation="softmax",
    shortcut_input="input",
    name=None,
):
    """Builds a pre-activation ResNet for 32x32 images.

    Stem conv3x3 with 16 filters, three stages of widths 16/32/64 (x4 output
    for bottleneck blocks) whose first block strides by 2 from stage 2 on,
    final BN-ReLU, global average pooling and a dense classifier initialised
    as torch's ``nn.Linear``. Projection shortcuts read the raw block input,
    as the reference (``residual = self.downsample(x)``). The original
    architecture has no dropout.

    Args:
        depth: Number of weighted layers: 6n + 2 for basic blocks (20, 56,
            110, ...), 9n + 2 for bottleneck blocks (29, 164, ...).
        block: ``"basic"`` or ``"bottleneck"``.
        num_classes: Classifier outputs.
        input_shape: Image shape, default ``(32, 32, 3)``.
        dropout_rate: Drop rate (beta for ``dropout_type="uout"``). 0 builds
            no dropout layer.
        dropout_position: ``"none"``, ``"before_bn"`` (before the last BN
            of every block), ``"before_conv"`` (before the last conv of
            every block), ``"after_conv"`` (after the last conv of every
            block, before the add) or ``"head"`` (after pooling, before the
            classifier).
        dropout_type: ``"bernoulli"`` (`keras.layers.Dropout`) or ``"uout"``
            (`keras_vs.Uout`).
        include_top: Whether to add pooling and the classifier; without it
            the model returns the final feature map.
        classifier_activation: Activation of the classifier (``None`` for
            logits).
        shortcut_input: ``"input"`` (the reference: projections read the raw
            block input) or ``"preact"`` (He et al.'s code: they read the
            block's BN-ReLU output). Same parameters, different function.
        name: Model name, default ``"preresnet-{depth}"``.

    Returns:
        A functional `keras.Model`.

    Example:

    >>> model = preresnet(20, num_classes=10)
    >>> model.get_layer("stage2_block1_shortcut_conv").strides
    (2, 2)
    """
    builder = "preresnet"
    block = common.check_choice(builder, "block", block, _BLOCKS)
    bottleneck = block == "bottleneck"
    n = common.check_depth(
        builder, depth, 9 if bottleneck else 6, 2, hint=f" for block={block!r}"
    )
    plan = common.DropoutPlan(builder, dropout_rate, dropout_position, dropout_type)
    return preact_network(
        builder,
        n,
        (16, 32, 64),
        bottleneck,
        num_classes,
        input_shape,
        plan,
        include_top,
        classifier_activation,
        name or f"preresnet-{depth}",
        shortcut_input,
        "torch",
    )


preresnet20 = common.variant(
    preresnet, "preresnet-20", "PreResNet-20, basic blocks (small).", depth=20, block="basic"
)
preresnet110 = common.variant(
    preresnet, "preresnet-110", "PreResNet-110, basic blocks.", depth=110, block="basic"
)
preresnet164 = common.variant(
    preresnet,
    "preresnet-164",
    "PreResNet-164, bottleneck blocks.",
    depth=164,
    block="bottleneck",
)
preresnet11_bottleneck = common.variant(
    preresnet,
    "preresnet-11-bottleneck",
    "PreResNet-11, bottleneck blocks (small).",
    depth=11,
    block="bottleneck",
)
