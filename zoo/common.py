"""The building blocks every zoo family shares.

Layers with the reference settings, the model input, the classifier head,
the generic `network` builder each family calls with its own body, thin
named variants, and the documentation of the arguments all families share.

The reference implementation (bearpaw/pytorch-classification, which the
paper's recipes come from) is PyTorch code, so the Keras layers here take
PyTorch's settings rather than Keras' defaults: BatchNormalization momentum 0.9
and epsilon 1e-5, convolutions without bias initialised He-normal on fan-out
and padded symmetrically (``padding=1``), classifiers initialised as
``nn.Linear`` (or as the reference overrides it).
"""

import dataclasses
import math
import numbers
import re
import textwrap
import warnings

import keras

from keras_vs import vocab
from keras_vs.deprecation import KerasVsDeprecationWarning
from zoo._checks import check_int, invalid
from zoo._dropout import DropoutPlan, resolve

__all__ = [
    "BN_EPSILON",
    "BN_MOMENTUM",
    "CLASSIFIER_INITS",
    "COMMON_ARGS_DOC",
    "DROPOUT_TYPES",
    "DropoutPlan",
    "Family",
    "POSITIONS",
    "batch_norm",
    "channel_axis",
    "classifier_initializer",
    "conv2d",
    "head",
    "model_input",
    "network",
    "num_channels",
    "relu",
    "variant",
    "with_common_args_doc",
]

BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

# The one vocabulary (keras_vs.vocab); the zoo's names are aliases of it.
POSITIONS = vocab.DROPOUT_POSITIONS
DROPOUT_TYPES = vocab.DROPOUT_TYPES
# Classifier initialisers: "torch" is nn.Linear's default U(-1/sqrt(fan_in),
# 1/sqrt(fan_in)) (kernel and bias alike), "he_normal" is
# init.kaiming_normal's N(0, 2/fan_in), "zeros" a zero bias.
CLASSIFIER_INITS = ("torch", "he_normal", "zeros")

# The arguments every family builder shares, documented once: a builder's
# docstring holds the line "{common_args}" and `with_common_args_doc` fills it.
COMMON_ARGS_DOC = """\
        num_classes: Classifier outputs, default 10.
        input_shape: Image shape, default ``(32, 32, 3)`` (channels first
            under that image data format); spatial sizes may be None.
        dropout: A `zoo.DropoutPlan`: which dropout (Bernoulli ``rate`` or
            Uout ``beta``) goes where (``"none"``, ``"before_bn"``,
            ``"before_conv"``, ``"after_conv"`` or ``"head"``). None: no
            dropout. The flat keywords ``dropout_rate``, ``beta``,
            ``dropout_position`` and ``dropout_type`` still work for one
            release, with a DeprecationWarning.
        include_top: Whether to add pooling and the classifier (default
            True); without it the model returns the final feature map.
        classifier_activation: Activation of the classifier, default
            ``"softmax"`` (``None`` for logits)."""
_COMMON_ARGS_MARKER = re.compile(r"^([ \t]*)\{common_args\}$", re.MULTILINE)


def with_common_args_doc(builder):
    """Fills the ``{common_args}`` line of ``builder``'s docstring.

    Args:
        builder: A family builder whose Args section holds one line
            ``{common_args}``.

    Returns:
        ``builder`` itself, the line replaced by `COMMON_ARGS_DOC` at that
        line's indentation.
    """

    def indented(match):
        return textwrap.indent(textwrap.dedent(COMMON_ARGS_DOC), match.group(1))

    doc, count = _COMMON_ARGS_MARKER.subn(indented, builder.__doc__ or "")
    if count != 1:
        raise ValueError(
            "Expected one '{common_args}' line in the builder's docstring. "
            f"Received: builder={builder.__name__} with {count}"
        )
    builder.__doc__ = doc
    return builder


# -- layers with the reference settings -----------------------------------------


def channel_axis():
    """Returns the channel axis of the current image data format."""
    return -1 if keras.config.image_data_format() == "channels_last" else 1


def conv2d(x, filters, kernel_size, name, strides=1, groups=1):
    """Applies a bias-free, He-normal (fan-out) ``Conv2D`` to ``x``.

    A strided conv with a kernel larger than 1 gets an explicit
    ``ZeroPadding2D`` (named ``{name}_pad``) and ``"valid"`` padding, as
    torch's symmetric ``padding=kernel_size // 2``: Keras' ``"same"`` with
    stride 2 pads only bottom/right and would shift the output one pixel
    from a 1x1 strided shortcut.

    Args:
        x: Input tensor.
        filters: Output channels.
        kernel_size: Square kernel size.
        name: Layer name.
        strides: Stride.
        groups: Groups of a grouped convolution.

    Returns:
        The output tensor.
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
    """Applies ``BatchNormalization`` with PyTorch's momentum and epsilon."""
    return keras.layers.BatchNormalization(
        axis=channel_axis(), momentum=BN_MOMENTUM, epsilon=BN_EPSILON, name=name
    )(x)


def relu(x, name):
    """Applies a ReLU ``Activation`` layer named ``name``."""
    return keras.layers.Activation("relu", name=name)(x)


def num_channels(x):
    """Returns the number of channels of tensor ``x``."""
    return int(x.shape[channel_axis()])


def _valid_shape(shape):
    """Whether ``shape`` is rank 3 with known channels and positive sizes."""
    if shape is None or len(shape) != 3 or shape[channel_axis()] is None:
        return False
    return all(
        dim is None
        or (isinstance(dim, numbers.Integral) and not isinstance(dim, bool) and dim >= 1)
        for dim in shape
    )


def model_input(builder, input_shape):
    """Validates ``input_shape`` and returns the model's ``keras.Input``."""
    if input_shape is None:
        input_shape = (32, 32, 3) if channel_axis() == -1 else (3, 32, 32)
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if not _valid_shape(shape):
        raise invalid(
            builder,
            "input_shape",
            input_shape,
            "a tuple of 3 positive integers (height, width, channels), spatial "
            "sizes may be None, in the image data format "
            f"{keras.config.image_data_format()!r}",
        )
    return keras.Input(shape=shape, name="input")


# -- classifier and the generic builder ------------------------------------------


def _check_top(builder, include_top, num_classes, plan):
    """Validates the classifier arguments; returns ``num_classes`` as int."""
    if not isinstance(include_top, bool):
        raise invalid(builder, "include_top", include_top, "True or False")
    if include_top:
        num_classes = check_int(builder, "num_classes", num_classes)
    elif plan.position == "head":
        raise ValueError(
            f"Invalid arguments for {builder}: a dropout plan at position 'head' puts "
            "dropout before the classifier, which include_top=False removes. "
            f"Received: include_top={include_top!r}, dropout={plan!r}"
        )
    return num_classes


def classifier_initializer(kind, fan_in):
    """Returns a Keras initializer for one of `CLASSIFIER_INITS` at ``fan_in`` inputs."""
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


def head(x, num_classes, classifier_activation, plan, kernel_init="torch", bias_init="torch"):
    """Global average pool, optional head dropout and the dense classifier.

    Args:
        x: The final feature map.
        num_classes: Classifier outputs.
        classifier_activation: Activation of the classifier.
        plan: The model's `DropoutPlan` (``"head"`` dropout goes here).
        kernel_init, bias_init: Initialisation of the classifier's kernel
            and bias, one of `CLASSIFIER_INITS`.

    Returns:
        The classifier's output tensor.
    """
    fan_in = num_channels(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = plan.apply(x, "head", "head")
    return keras.layers.Dense(
        num_classes,
        activation=classifier_activation,
        kernel_initializer=classifier_initializer(kernel_init, fan_in),
        bias_initializer=classifier_initializer(bias_init, fan_in),
        name="predictions",
        # Under a mixed policy, logits and softmax in float32 (Keras' guide).
        dtype=_classifier_policy(),
    )(x)


def _classifier_policy():
    """float32 under a mixed global policy (its variable dtype), else the global policy."""
    policy = keras.config.dtype_policy()
    if policy.compute_dtype != policy.variable_dtype:
        return policy.variable_dtype
    return None


@dataclasses.dataclass(frozen=True)
class Family:
    """What a family builder hands the generic builder: its own part of a model.

    Attributes:
        builder: Name of the family builder, for error messages.
        body: ``body(inputs, plan) -> feature map``, the family's layers.
        name: The model name when the caller gives none.
        kernel_init, bias_init: Classifier initialisation (`CLASSIFIER_INITS`).
    """

    builder: str
    body: object
    name: str
    kernel_init: str = "torch"
    bias_init: str = "torch"


@with_common_args_doc
def network(
    family,
    *,
    num_classes=10,
    input_shape=None,
    dropout=None,
    include_top=True,
    classifier_activation="softmax",
    name=None,
    **deprecated,
):
    """The generic builder: checks the shared arguments, then input, body and head.

    Every family builder ends here, passing its shared keyword arguments
    on. With ``include_top=False`` the body's feature map is the output,
    unpooled, as ``keras.applications`` models do.

    Args:
        family: The family's `Family` record (body, default name, classifier).
        {common_args}
        name: Model name; None: ``family.name``.
        **deprecated: The flat dropout keywords (`zoo._dropout.FLAT_KEYWORDS`),
            deprecated for ``dropout``.

    Returns:
        A functional `keras.Model`.
    """
    builder = family.builder
    plan = resolve(builder, dropout, deprecated)
    num_classes = _check_top(builder, include_top, num_classes, plan)
    inputs = model_input(builder, input_shape)
    x = family.body(inputs, plan)
    if include_top:
        x = head(x, num_classes, classifier_activation, plan, family.kernel_init, family.bias_init)
    return keras.Model(inputs, x, name=name or family.name)


def variant(builder, name, doc, **config):
    """Returns a thin named variant of ``builder`` with ``config`` fixed (deprecated).

    Deprecated: define the variant beside its family with `zoo.register`,
    which also enters it in the registry. The variant accepts every keyword
    of ``builder``; its model is named ``name`` unless an architecture
    argument of ``config`` is overridden (the name would then lie) or
    ``name=`` is given.

    Args:
        builder: A family builder.
        name: Registry name of the variant and of its models.
        doc: One-sentence summary, the first line of the variant's docstring.
        **config: The architecture arguments it fixes.

    Returns:
        The variant function; ``.config`` holds the fixed arguments,
        ``.family`` the builder's name and ``.model_name`` ``name``.
    """
    warnings.warn(
        "zoo.common.variant is deprecated; define the variant with "
        f"@zoo.register({builder.__name__}, {name!r}, {{10: ..., 100: ...}}) on a function "
        "whose keyword defaults fix its architecture.",
        KerasVsDeprecationWarning,
        stacklevel=2,
    )

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
