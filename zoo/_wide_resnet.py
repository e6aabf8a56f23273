"""Wide ResNet for CIFAR (Zagoruyko and Komodakis, "Wide Residual
Networks", 2016), layer for layer as pytorch-classification's
``models/cifar/wrn.py``."""

from zoo import _checks, common
from zoo.registry import register
from zoo._preact import SHORTCUT_INPUTS, PreactBody

__all__ = ["wide_resnet"]  # the named variants: `zoo.list_models()`


@common.with_common_args_doc
def wide_resnet(
    depth,
    width,
    *,
    shortcut_input="preact",
    name=None,
    **common_args,
):
    """Builds a Wide ResNet WRN-depth-width for 32x32 images.

    Pre-activation basic blocks (BN-ReLU-conv3x3-BN-ReLU-conv3x3) in three
    stages of widths 16k/32k/64k after a 16-filter stem conv, 1x1 projection
    shortcuts without BN that read the block's BN-ReLU output (as the
    reference: ``x = relu1(bn1(x))`` before ``convShortcut(x)``), final
    BN-ReLU, global average pooling and a dense classifier initialised as
    torch's ``nn.Linear`` with a zero bias (as the reference). The original
    architecture puts dropout between the two convs of every block, after
    the second ReLU: ``zoo.DropoutPlan(0.3, "before_conv")`` here (the
    authors used rate 0.3).

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

    >>> from zoo import DropoutPlan
    >>> model = wide_resnet(10, 1, dropout=DropoutPlan(0.3, "before_conv"))
    >>> model.get_layer("stage1_block1_dropout").rate
    0.3
    """
    builder = "wide_resnet"
    n = _checks.check_depth(builder, depth, 6, 4)
    width = _checks.check_int(builder, "width", width)
    _checks.check_choice(builder, "shortcut_input", shortcut_input, SHORTCUT_INPUTS)
    body = PreactBody(n, (16 * width, 32 * width, 64 * width), False, shortcut_input)
    family = common.Family(builder, body, f"wrn-{depth}-{width}", bias_init="zeros")
    return common.network(family, name=name, **common_args)


# The registered variants (`zoo.list_models("wrn-*")`).


@register(wide_resnet, "wrn-10-1", {10: 77_850, 100: 83_700}, "derived", small=True)
def wrn_10_1(depth=10, width=1, **overrides):
    """WRN-10-1 (small)."""
    return wide_resnet(depth, width, **overrides)


@register(wide_resnet, "wrn-16-4", {10: 2_748_890, 100: 2_772_020})
def wrn_16_4(depth=16, width=4, **overrides):
    """WRN-16-4."""
    return wide_resnet(depth, width, **overrides)


@register(wide_resnet, "wrn-16-8", {10: 10_961_370, 100: 11_007_540})
def wrn_16_8(depth=16, width=8, **overrides):
    """WRN-16-8."""
    return wide_resnet(depth, width, **overrides)


@register(wide_resnet, "wrn-28-10", {10: 36_479_194, 100: 36_536_884})
def wrn_28_10(depth=28, width=10, **overrides):
    """WRN-28-10."""
    return wide_resnet(depth, width, **overrides)
