"""Pre-activation residual blocks and stages: the body PreResNet and Wide
ResNet share (they differ only in widths, in how their depth is counted, in
what a projection shortcut reads and in the classifier bias)."""

import dataclasses

import keras

from zoo import common

__all__ = ["SHORTCUT_INPUTS", "PreactBody", "preact_block"]

# What a projection shortcut reads: the raw block input (pytorch-classification's
# PreResNet) or the block's BN-ReLU output (He et al.'s code, and the WRN reference).
SHORTCUT_INPUTS = ("input", "preact")


def _shortcut(x, preact, out_filters, strides, prefix, shortcut_input):
    """The identity, or a 1x1 projection without BN where the shape changes."""
    if strides == 1 and common.num_channels(x) == out_filters:
        return x
    return common.conv2d(
        x if shortcut_input == "input" else preact,
        out_filters,
        1,
        f"{prefix}_shortcut_conv",
        strides=strides,
    )


def preact_block(x, filters, strides, prefix, plan, bottleneck=False, shortcut_input="input"):
    """One pre-activation residual block.

    Basic: BN-ReLU-conv3x3-BN-ReLU-conv3x3. Bottleneck: BN-ReLU-conv1x1-
    BN-ReLU-conv3x3-BN-ReLU-conv1x1 with 4x expansion. "before_bn" dropout
    goes right before the last BN, "before_conv" dropout right before the
    last conv, "after_conv" dropout right after the last conv, before the add.

    Args:
        x: Block input.
        filters: Width of the block (its output is 4x that for bottlenecks).
        strides: Stride of the first 3x3 conv and of the projection.
        prefix: Layer name prefix, e.g. ``"stage2_block1"``.
        plan: The model's `zoo.common.DropoutPlan`.
        bottleneck: Whether the block is a bottleneck block.
        shortcut_input: What a projection reads, one of `SHORTCUT_INPUTS`.

    Returns:
        The block's output tensor.
    """
    out_filters = filters * 4 if bottleneck else filters
    preact = common.batch_norm(x, f"{prefix}_bn1")
    preact = common.relu(preact, f"{prefix}_relu1")
    shortcut = _shortcut(x, preact, out_filters, strides, prefix, shortcut_input)
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
    y = common.conv2d(y, out_filters, 1 if bottleneck else 3, f"{prefix}_conv{last}")
    y = plan.apply(y, "after_conv", prefix)
    return keras.layers.Add(name=f"{prefix}_add")([shortcut, y])


@dataclasses.dataclass(frozen=True)
class PreactBody:
    """Stem conv3x3(16), three stages of pre-activation blocks, final BN-ReLU.

    The first block of stages 2 and 3 strides by 2. Called as
    ``body(inputs, plan)`` by `zoo.common.network`.

    Attributes:
        blocks_per_stage: Blocks in each stage.
        widths: Block width of each of the three stages.
        bottleneck: Whether the blocks are bottleneck blocks.
        shortcut_input: What a projection reads, one of `SHORTCUT_INPUTS`.
    """

    blocks_per_stage: int
    widths: tuple
    bottleneck: bool
    shortcut_input: str

    def __call__(self, inputs, plan):
        """Returns the final feature map of ``inputs`` under the dropout ``plan``."""
        x = common.conv2d(inputs, 16, 3, "stem_conv")
        for stage, width in enumerate(self.widths, start=1):
            for block in range(1, self.blocks_per_stage + 1):
                x = preact_block(
                    x,
                    width,
                    2 if stage > 1 and block == 1 else 1,
                    f"stage{stage}_block{block}",
                    plan,
                    bottleneck=self.bottleneck,
                    shortcut_input=self.shortcut_input,
                )
        x = common.batch_norm(x, "post_bn")
        return common.relu(x, "post_relu")
