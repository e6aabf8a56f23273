"""Pre-activation ResNet for CIFAR (He et al., "Identity Mappings in Deep
Residual Networks", 2016), layer for layer as pytorch-classification's
``models/cifar/preresnet.py``."""

from zoo import _checks, common
from zoo.registry import register
from zoo._preact import SHORTCUT_INPUTS, PreactBody

__all__ = ["preresnet"]  # the named variants: `zoo.list_models()`

_BLOCKS = ("basic", "bottleneck")


@common.with_common_args_doc
def preresnet(
    depth,
    block="basic",
    *,
    shortcut_input="input",
    name=None,
    **common_args,
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
    family = common.Family(builder, body, f"preresnet-{depth}")
    return common.network(family, name=name, **common_args)


# The registered variants (`zoo.list_models("preresnet-*")`).


@register(preresnet, "preresnet-110", {10: 1_730_522, 100: 1_736_372})
def preresnet110(depth=110, block="basic", **overrides):
    """PreResNet-110, basic blocks."""
    return preresnet(depth, block, **overrides)


@register(preresnet, "preresnet-164", {10: 1_703_258, 100: 1_726_388})
def preresnet164(depth=164, block="bottleneck", **overrides):
    """PreResNet-164, bottleneck blocks."""
    return preresnet(depth, block, **overrides)


@register(preresnet, "preresnet-20", {10: 272_282, 100: 278_132}, "derived", small=True)
def preresnet20(depth=20, block="basic", **overrides):
    """PreResNet-20, basic blocks (small)."""
    return preresnet(depth, block, **overrides)


@register(preresnet, "preresnet-11-bottleneck", {10: 126_746, 100: 149_876}, "derived", small=True)
def preresnet11_bottleneck(depth=11, block="bottleneck", **overrides):
    """PreResNet-11, bottleneck blocks (small)."""
    return preresnet(depth, block, **overrides)
