"""Wide ResNet for CIFAR (Zagoruyko and Komodakis, "Wide Residual
Networks", 2016), layer for layer as pytorch-classification's
``models/cifar/wrn.py``."""

from zoo import _checks, common
from zoo._preact import SHORTCUT_INPUTS, PreactBody

__all__ = ["wide_resnet", "wrn_10_1", "wrn_16_4", "wrn_16_8", "wrn_28_10"]


@common.with_common_args_doc
def wide_resnet(
    depth,
    width,
    *,
    num_classes=10,
    input_shape=None,
    dropout_rate=0.0,
    beta=0.0,
    dropout_position="none",
    dropout_type="bernoulli",
    include_top=True,
    classifier_activation="softmax",
    shortcut_input="preact",
    name=None,
):
    """Builds a Wide ResNet WRN-depth-width for 32x32 images.

    Pre-activation basic blocks (BN-ReLU-conv3x3-BN-ReLU-conv3x3) in three
    stages of widths 16k/32k/64k after a 16-filter stem conv, 1x1 projection
    shortcuts without BN that read the block's BN-ReLU output (as the
    reference: ``x = relu1(bn1(x))`` before ``convShortcut(x)``), final
    BN-ReLU, global average pooling and a dense classifier initialised as
    torch's ``nn.Linear`` with a zero bias (as the reference). The original
    architecture puts dropout between the two convs of every block, after
    the second ReLU: ``dropout_position="before_conv"`` here (the authors
    used rate 0.3).

    Args:
        depth: 6n + 4 (10, 16, 22, 28, 40, ...); the count includes the
            projection shortcuts, as the WRN paper does.
        width: Widening factor k >= 1.
        {common_args}
        shortcut_input: ``"preact"`` (the reference) or ``"input"`` (the
            raw block input, as `zoo.preresnet`'s default).
        name: Model name, default ``"wrn-{depth}-{width}"``.

    Returns:
        A functional `keras.Model`.

    Example:

    >>> model = wide_resnet(10, 1, dropout_rate=0.3, dropout_position="before_conv")
    >>> model.get_layer("stage1_block1_dropout").rate
    0.3
    """
    builder = "wide_resnet"
    n = _checks.check_depth(builder, depth, 6, 4)
    width = _checks.check_int(builder, "width", width)
    _checks.check_choice(builder, "shortcut_input", shortcut_input, SHORTCUT_INPUTS)
    body = PreactBody(n, (16 * width, 32 * width, 64 * width), False, shortcut_input)
    return common.network(
        builder, body, name or f"wrn-{depth}-{width}", bias_init="zeros",
        num_classes=num_classes, input_shape=input_shape, include_top=include_top,
        classifier_activation=classifier_activation, dropout_rate=dropout_rate, beta=beta,
        dropout_position=dropout_position, dropout_type=dropout_type,
    )


wrn_10_1 = common.variant(wide_resnet, "wrn-10-1", "WRN-10-1 (small).", depth=10, width=1)
wrn_16_4 = common.variant(wide_resnet, "wrn-16-4", "WRN-16-4.", depth=16, width=4)
wrn_16_8 = common.variant(wide_resnet, "wrn-16-8", "WRN-16-8.", depth=16, width=8)
wrn_28_10 = common.variant(wide_resnet, "wrn-28-10", "WRN-28-10.", depth=28, width=10)
