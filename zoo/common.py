"""Pieces shared by every zoo family: layers with the reference settings,
argument validation, and the one place where dropout positions are decided.

The reference implementation (bearpaw/pytorch-classification, which the
paper's recipes come from) is PyTorch code, so the Keras layers here take
PyTorch's settings rather than Keras' defaults: BatchNormalization momentum 0.9
and epsilon 1e-5, convolutions without bias initialised He-normal on fan-out
and padded symmetrically (``padding=1``), classifiers initialised as
``nn.Linear`` (or as the reference overrides it).
"""

import math
import numbers

import keras

import keras_vs
from keras_vs import vocab

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

# The one vocabulary (keras_vs.vocab); the old names stay as aliases.
POSITIONS = vocab.DROPOUT_POSITIONS
DROPOUT_TYPES = vocab.DROPOUT_TYPES
# Classifier initialisers: "torch" is nn.Linear's default U(-1/sqrt(fan_in),
# 1/sqrt(fan_in)) (kernel and bias alike), "he_normal" is
# init.kaiming_normal's N(0, 2/fan_in), "zeros" a zero bias.
CLASSIFIER_INITS = ("torch", "he_normal", "zeros")


def channel_axis():
    """Returns the channel axis of the current image data format."""
    return -1 if keras.config.image_data_format() == "channels_last" else 1


def conv2d(x, filters, kernel_size, name, strides=1, groups=1):
    """A bias-free, He-normal (fan-out) ``Conv2D`` applied to ``x``.

    Padded as torch's ``padding=kernel_size // 2``: a strided conv with a
    kernel larger than 1 gets an explicit ``ZeroPadding2D`` (named
    ``{name}_pad``) and ``"valid"`` padding, because Keras' ``"same"`` with
    stride 2 pads only bottom/right and would shift the output one pixel
    from a 1x1 strided shortcut.
    """
    padding = "same"
    if strides != 1 and kernel_size > 1:
        x = keras.layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    return keras.layers.Conv2D(
        filters,
        kernel_size,
        strides=strides,
        padding=padding,
        groups=groups,
        use_bias=False,
        kernel_initializer=keras.initializers.VarianceScaling(
            2.0, "fan_out", "untruncated_normal"
        ),
        name=name,
    )(x)


def batch_norm(x, name):
    """``BatchNormalization`` with PyTorch's momentum and epsilon."""
    return keras.layers.BatchNormalization(
        axis=channel_axis(), momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name
    )(x)


def relu(x, name):
    return keras.layers.Activation("relu", name=name)(x)


def num_channels(x):
    return int(x.shape[channel_axis()])


def invalid(builder, arg, value, expected):
    """Builds the ``ValueError`` every zoo builder raises for a bad argument."""
    return ValueError(
        f"Invalid value received for argument `{arg}` of {builder}. "
        f"Expected {expected}. Received: {arg}={value!r}"
    )


def check_int(builder, arg, value, minimum=1):
    """Returns ``value`` as ``int`` if it is an integer >= ``minimum``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral)
        or value < minimum
    ):
        raise invalid(builder, arg, value, f"an integer >= {minimum}")
    return int(value)


def check_depth(builder, depth, step, offset, minimum_n=1, hint=""):
    """Returns ``n`` for a depth of the form ``step * n + offset``, n >= 1."""
    if (
        isinstance(depth, bool)
        or not isinstance(depth, numbers.Integral)
        or depth < step * minimum_n + offset
        or (depth - offset) % step
    ):
        examples = ", ".join(str(step * n + offset) for n in (1, 2, 3))
        raise invalid(
            builder,
            "depth",
            depth,
            f"depth = {step}n + {offset} with n >= {minimum_n}{hint} "
            f"(e.g. {examples})",
        )
    return (int(depth) - offset) // step


def check_choice(builder, arg, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise invalid(builder, arg, value, f"one of {choices}")
    return value


def model_input(builder, input_shape):
    """Validates ``input_shape`` (rank 3, known channels) and returns an Input."""
    if input_shape is None:
        input_shape = (32, 32, 3) if channel_axis() == -1 else (3, 32, 32)
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    ok = shape is not None and len(shape) == 3
    if ok:
        channels = shape[channel_axis()]
        for dim in shape:
            if dim is not None and (
                isinstance(dim, bool) or not isinstance(dim, numbers.Integral) or dim < 1
            ):
                ok = False
        ok = ok and channels is not None
    if not ok:
        raise invalid(
            builder,
            "input_shape",
            input_shape,
            "a tuple of 3 positive integers (height, width, channels), spatial "
            "sizes may be None, in the image data format "
            f"{keras.config.image_data_format()!r}",
        )
    return keras.Input(shape=shape, name="input")


class DropoutPlan:
    """Where a model gets dropout, decided once for every family.

    Builders call `apply` at each place the paper may put dropout, naming
    the place: ``"before_bn"`` right before the last BN of a block,
    ``"before_conv"`` right before the last conv of a block, ``"after_conv"``
    right after the last conv of a block, before the merge (residual add or
    concatenation), ``"head"`` after global pooling. Only the place matching
    ``position`` gets a layer.

    A rate (or beta) of 0 builds no dropout layer at all, whatever the
    position: the model is then the same graph as with ``position="none"``,
    so a search over rates can include 0 without a special case. A positive
    rate with ``position="none"`` is rejected because it would be silently
    ignored.

    Args:
        builder: Name of the calling builder, for error messages.
        rate: Drop rate for ``"bernoulli"`` (in [0, 1)), beta for ``"uout"``
            (in [0, 1]).
        position: One of `POSITIONS`.
        dropout_type: One of `DROPOUT_TYPES`.
    """

    def __init__(self, builder, rate, position, dropout_type):
        self.position = check_choice(builder, "dropout_position", position, POSITIONS)
        self.dropout_type = check_choice(
            builder, "dropout_type", dropout_type, DROPOUT_TYPES
        )
        upper_ok = (lambda r: r <= 1.0) if dropout_type == "uout" else (lambda r: r < 1.0)
        if (
            isinstance(rate, bool)
            or not isinstance(rate, numbers.Real)
            or not (0.0 <= float(rate) and upper_ok(float(rate)))
        ):
            expected = (
                "a float in [0, 1] (Uout's beta)"
                if dropout_type == "uout"
                else "a float in [0, 1)"
            )
            raise invalid(builder, "dropout_rate", rate, expected)
        self.rate = float(rate)
        if self.position == "none" and self.rate > 0:
            raise ValueError(
                f"Invalid arguments for {builder}: dropout_position='none' builds "
                "no dropout layer, so a positive dropout_rate would be ignored. "
                "Pass dropout_rate=0.0 or choose one of "
                f"{POSITIONS[1:]}. Received: dropout_rate={rate!r}, "
                f"dropout_position={position!r}"
            )

    @property
    def active(self):
        return self.position != "none" and self.rate > 0

    def apply(self, x, position, prefix):
        """Returns ``x`` through a new dropout layer if ``position`` is the
        planned one, otherwise ``x`` unchanged."""
        if position not in POSITIONS[1:]:
            raise ValueError(f"Unknown dropout position. Received: position={position!r}")
        if not self.active or position != self.position:
            return x
        name = f"{prefix}_dropout"
        if self.dropout_type == "uout":
            return keras_vs.Uout(beta=self.rate, name=name)(x)
        return keras.layers.Dropout(self.rate, name=name)(x)


def check_head(builder, include_top, num_classes, plan):
    """Validates the classifier arguments; returns ``num_classes`` as int."""
    if not isinstance(include_top, bool):
        raise invalid(builder, "include_top", include_top, "True or False")
    if include_top:
        num_classes = check_int(builder, "num_classes", num_classes)
    elif plan.position == "head":
        raise ValueError(
            f"Invalid arguments for {builder}: dropout_position='head' puts "
            "dropout before the classifier, which include_top=False removes. "
            f"Received: include_top={include_top!r}, dropout_position='head'"
        )
    return num_classes


def classifier_initializer(kind, fan_in):
    """A Keras initializer for one of `CLASSIFIER_INITS` at ``fan_in`` inputs."""
    if kind == "torch":
        bound = 1.0 / math.sqrt(fan_in)
        return keras.initializers.RandomUniform(-bound, bound)
    if kind == "he_normal":
        return keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal")
    if kind == "zeros":
        return keras.initializers.Zeros()
    raise ValueError(
        f"Unknown classifier initializer. Expected one of {CLASSIFIER_INITS}. "
        f"Received: kind={kind!r}"
    )


def head(
    x,
    include_top,
    num_classes,
    classifier_activation,
    plan,
    kernel_init="torch",
    bias_init="torch",
):
    """Global average pool, optional head dropout and the dense classifier.

    With ``include_top=False`` the feature map is returned unpooled, as
    ``keras.applications`` models do. ``kernel_init`` and ``bias_init`` name
    the reference's classifier initialisation (`CLASSIFIER_INITS`); the
    default is torch's ``nn.Linear`` default.
    """
    if not include_top:
        return x
    fan_in = num_channels(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = plan.apply(x, "head", "head")
    return keras.layers.Dense(
        num_classes,
        activation=classifier_activation,
        kernel_initializer=classifier_initializer(kernel_init, fan_in),
        bias_initializer=classifier_initializer(bias_init, fan_in),
        name="predictions",
    )(x)


def variant(builder, name, doc, **config):
    """Returns a thin named variant of ``builder`` with ``config`` fixed.

    The variant accepts every keyword of ``builder``; its model is named
    ``name`` unless an architecture argument of ``config`` is overridden (the
    name would then lie) or ``name=`` is given. ``variant.config`` holds the
    fixed arguments for the registry and its docs.
    """

    def build(**kwargs):
        arguments = {**config, **kwargs}
        if not any(k in config for k in kwargs):
            arguments.setdefault("name", name)
        return builder(**arguments)

    build.__name__ = build.__qualname__ = name.replace("-", "_")
    build.__doc__ = (
        f"{doc}\n\nBuilds `{builder.__name__}` with "
        + ", ".join(f"{k}={v!r}" for k, v in config.items())
        + f"; every other keyword argument of `{builder.__name__}` is accepted.\n"
    )
    build.__module__ = builder.__module__
    build.config = dict(config)
    build.family = builder.__name__
    build.model_name = name
    return build
