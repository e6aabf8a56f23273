"""Pre-activation ResNet for CIFAR (He et al., "Identity Mappings in Deep
Residual Networks", 2016), layer for layer as pytorch-classification's
``models/cifar/preresnet.py``."""

from zoo import _checks, common
from zoo._preact import SHORTCUT_INPUTS, PreactBody

__all__ = ["preresnet", "preresnet11_bottleneck", "preresnet20", "preresnet110", "preresnet164"]

_BLOCKS = ("basic", "bottleneck")


@common.with_common_args_doc
def preresnet(
    depth,
    block="basic",
    *,
    num_classes=10,
    input_shape=None,
    dropout_rate=0.0,
    beta=0.0,
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
    as torch's ``nn.Linear``. Projection shortcuts are 1x1 convs without BN
    that read the raw block input, as the reference
    (``residual = self.downsample(x)``). The original architecture has no
    dropout.

    Args:
        depth: Number of weighted layers: 6n + 2 for basic blocks (20, 56,
            110, ...), 9n + 2 for bottleneck blocks (29, 164, ...).
        block: ``"basic"`` or ``"bottleneck"``.
        {common_args}
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
    block = _checks.check_choice(builder, "block", block, _BLOCKS)
    bottleneck = block == "bottleneck"
    n = _checks.check_depth(builder, depth, 9 if bottleneck else 6, 2, hint=f" for block={block!r}")
    _checks.check_choice(builder, "shortcut_input", shortcut_input, SHORTCUT_INPUTS)
    body = PreactBody(n, (16, 32, 64), bottleneck, shortcut_input)
    return common.network(
        builder, body, name or f"preresnet-{depth}",
        num_classes=num_classes, input_shape=input_shape, include_top=include_top,
        classifier_activation=classifier_activation, dropout_rate=dropout_rate, beta=beta,
        dropout_position=dropout_position, dropout_type=dropout_type,
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
