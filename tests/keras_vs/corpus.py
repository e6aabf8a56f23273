"""A corpus of real-world-shaped Keras models for testing every keras-vs tool.

One table (timm-style): ``REGISTRY`` maps a name to an `Entry` with the
builder, its flags and a function that makes a small NumPy input batch.
Every model is built in-process without pretrained weights, on small inputs,
and has at least one dropout that feeds a BatchNormalization (sometimes
hidden inside a custom layer), so the tools always have something to find.

    import corpus
    corpus.list_models("app_*")
    model = corpus.build("mask_lstm")          # seeded, BN statistics calibrated
    x = corpus.REGISTRY["mask_lstm"].sample(16)

Flags:
    has_bn: the model holds BatchNormalization layers (possibly hidden).
    needs_tf: needs the TensorFlow backend (string inputs, TextVectorization).
    requires: modules the builder needs beyond Keras (``HUB``: keras-hub, which
        pulls in TensorFlow; ``TF_LAYERS``: Keras' lookup layers); skipped where
        one is not installed.
    mc_dropout: holds a dropout called with ``training=True`` (MC dropout);
        ``mc_layers`` names those dropouts.
    nonfloat_input: an input is integer or string.
    classifier: a single-output softmax classifier over ``num_classes``.
    slow: takes several seconds per tool.
    keras_fails_on_jax: tools Keras itself cannot run on the model on JAX.
    slow_on_jax: big graphs that JAX runs eagerly op by op (tens of seconds a
        tool); marked `slow_on_jax`, which CI's JAX runs deselect.
    finds: dropouts that feed a BN and must be reported by find_disharmony;
        ``"a|b"`` accepts either name (``b`` often the custom layer hiding ``a``).
        Empty: no dropout feeds a BN (a keras-hub task keeps only what it has).
    reload: the model is saved to ``.keras`` and loaded back the way a user
        in a fresh process gets it (see `build`): auto-named layers included.
    batch: the fixed batch size of a stateful model (0: any).
    not_called: BNs that a layer owns but never calls (no input, so nothing
        to measure or re-estimate): the tools must say so, not fail.
    fit_labels: ``(n, rng) -> y`` for a class with its own `compile` and loss
        (keras-hub tasks): `fit` is tested with that compile's defaults on
        these labels instead of an MSE on random targets.
"""

import dataclasses
import fnmatch
import string

import keras
import numpy as np
from keras import layers as L
from keras import ops

from keras_vs import graph, runner

NUM_CLASSES = 10
PACKAGE = "keras_vs_corpus"


@dataclasses.dataclass(frozen=True)
class Entry:
    name: str
    builder: object
    inputs: object  # (n, rng) -> NumPy batch matching the model's inputs
    has_bn: bool = True
    needs_tf: bool = False
    requires: tuple = ()
    mc_dropout: bool = False
    mc_layers: tuple = ()
    finds: tuple = ("head_dropout",)
    nonfloat_input: bool = False
    classifier: bool = True
    slow: bool = False
    # Tools Keras itself cannot run on this model on JAX (not keras-vs' doing).
    keras_fails_on_jax: tuple = ()
    slow_on_jax: bool = False
    # Why a tool may refuse this model with a ValueError naming a layer
    # (empty: no tool may; a refusal would be a keras-vs bug hidden).
    refuses: str = ""
    reload: bool = False
    batch: int = 0
    not_called: tuple = ()
    fit_labels: object = None
    description: str = ""

    def sample(self, n=16, seed=0):
        """A NumPy input batch of ``n`` examples (deterministic in ``seed``)."""
        return self.inputs(n, np.random.default_rng(seed))

    def labels(self, n=16, seed=0):
        """Integer class labels for a classifier."""
        return np.random.default_rng(seed + 1).integers(0, NUM_CLASSES, size=(n,))


REGISTRY = {}


def register(name, inputs, **flags):
    """Decorator: adds a builder to `REGISTRY` under ``name``."""

    def wrap(fn):
        if name in REGISTRY:
            raise ValueError(f"Duplicate corpus model {name!r}")
        REGISTRY[name] = Entry(name, fn, inputs, description=(fn.__doc__ or "").strip(), **flags)
        return fn

    return wrap


def list_models(pattern="*"):
    return [n for n in REGISTRY if fnmatch.fnmatch(n, pattern)]


def build(name, seed=0, calibrate=True):
    """Builds a corpus model, seeded. With ``calibrate`` every BN's moving
    statistics are set from one training-mode pass (dropout on) over a batch
    that is not the test batch: realistic statistics that carry the variance
    shift, where fresh ones (0 and 1) would let an untrained deep net's signal
    die out.

    An entry with ``reload`` is then saved to ``.keras`` and loaded back as a
    user in a fresh process gets it. Keras names an unnamed layer from a
    per-session counter (``multiply``, ``multiply_1``, ...) that a fresh
    process starts at zero, so there a loaded model's ``multiply`` and a
    ``Multiply()`` a tool makes afterwards get the same name.
    ``keras.backend.clear_session()`` resets those counters: called before the
    model is built (so that it is saved with a fresh process's names) and
    again before it is loaded (so that the loaded model shares the tools' name
    space exactly as in a fresh process), it emulates one in-process."""
    entry = REGISTRY[name]
    if entry.reload:
        keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = entry.builder()
    if calibrate:
        calibrate_bn_statistics(model, entry.sample(entry.batch or 32, seed=seed + 1000))
    if entry.reload:
        model = reload(model)
    return model


def reload(model):
    """``model`` saved to ``.keras`` and loaded back after a `clear_session`
    (a fresh process's layer-name counters; see `build`)."""
    import os
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        keras.backend.clear_session()
        return keras.saving.load_model(path, safe_mode=False)


def bn_layers(model):
    """Every BN layer in ``model``: nested, wrapped or hidden in custom layers."""
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if isinstance(layer, L.BatchNormalization)]


def calibrate_bn_statistics(model, x):
    """Moving statistics := the batch statistics of one training-mode pass."""
    bns = bn_layers(model)
    momenta = [bn.momentum for bn in bns]
    try:
        for bn in bns:
            bn.momentum = 0.0
        if keras.backend.backend() == "jax" and graph.supports_jit(model):
            # Eagerly, JAX compiles every (op, shape) it meets, ~0.05-0.1 s each
            # here: 38 s for MobileNetV3Small's training-mode pass, 3 s as one program.
            runner.state_writer(model, model.non_trainable_variables, training=True)(x)
        else:
            model(x, training=True)
    finally:
        for bn, momentum in zip(bns, momenta):
            bn.momentum = momentum


def num_bn_layers(model):
    """Distinct BN layers in ``model`` (hidden ones included), by their moving variances."""
    return len({id(v) for v in model.weights if v.path.endswith("moving_variance")})


# ---------------------------------------------------------------------------
# Input makers.


def images(shape):
    def make(n, rng):
        return rng.uniform(0.0, 1.0, (n, *shape)).astype("float32")

    return make


def vectors(dim):
    def make(n, rng):
        return rng.normal(0.0, 1.0, (n, dim)).astype("float32")

    return make


def tokens(length, vocab, zero_pad=True):
    def make(n, rng):
        x = rng.integers(1, vocab, size=(n, length)).astype("int32")
        if zero_pad:  # padded tails, so that masks matter
            for i in range(n):
                x[i, rng.integers(length // 2, length + 1):] = 0
        return x

    return make


WORDS = ["alpha", "beta", "gamma", "delta", "eps", "zeta", "eta", "theta", "iota", "kappa"]


def sentences(n, rng):
    return np.array(
        [" ".join(rng.choice(WORDS, size=rng.integers(2, 7))) for _ in range(n)], dtype=object
    ).reshape(n, 1)


def string_tokens(n, rng):
    return rng.choice(WORDS + ["unseen"], size=(n, 6)).astype(object)


# ---------------------------------------------------------------------------
# Shared pieces.


def dropout_bn_head(x, rate=0.3, name="head"):
    """The head most wrappers use: Dropout -> BN -> Dense softmax."""
    x = L.Dropout(rate, name=f"{name}_dropout")(x)
    x = L.BatchNormalization(name=f"{name}_bn")(x)
    return L.Dense(NUM_CLASSES, activation="softmax", name=f"{name}_logits")(x)


def wrap_backbone(backbone, shape, name="wrapped"):
    """``backbone`` as a nested model, pooled, under a Dropout -> BN -> Dense head."""
    inputs = keras.Input(shape, name="image")
    x = L.GlobalAveragePooling2D(name="pool")(backbone(inputs))
    return keras.Model(inputs, dropout_bn_head(x), name=name)


# ---------------------------------------------------------------------------
# keras.applications: every family with BN, no weights, small inputs.

SMALL = (32, 32, 3)
INCEPTION = (75, 75, 3)
XCEPTION = (71, 71, 3)


def _app(fn, shape, **kwargs):
    base = fn(include_top=False, weights=None, input_shape=shape, pooling="avg", **kwargs)
    inputs = keras.Input(shape, name="image")
    return keras.Model(inputs, dropout_bn_head(base(inputs)), name=f"wrapped_{base.name}")


@register("app_mobilenet", images(SMALL))
def app_mobilenet():
    """keras.applications.MobileNet (alpha 0.25) nested under a Dropout -> BN head."""
    return _app(keras.applications.MobileNet, SMALL, alpha=0.25)


@register("app_mobilenet_v2", images(SMALL))
def app_mobilenet_v2():
    """MobileNetV2 (alpha 0.35) nested under a Dropout -> BN head."""
    return _app(keras.applications.MobileNetV2, SMALL, alpha=0.35)


@register("app_mobilenet_v3_small", images(SMALL))
def app_mobilenet_v3_small():
    """MobileNetV3Small (Multiply/hard-swish operator nodes, Rescaling) under a head."""
    return _app(keras.applications.MobileNetV3Small, SMALL, alpha=0.75)


# Families with a generic builder are built small through it (the family's own
# block code and layer names, a few blocks): keras.src is not public API, so a
# missing builder falls back to the full public model (slower, same checks).


def _family(module, builder, public, **kwargs):
    import importlib

    try:
        fn = getattr(importlib.import_module(f"keras.src.applications.{module}"), builder)
    except (ImportError, AttributeError):
        fn = None
    if fn is None:
        return public()
    return fn(include_top=False, weights=None, input_shape=SMALL, pooling="avg", **kwargs)


def _wrap_app(base, shape=SMALL):
    inputs = keras.Input(shape, name="image")
    return keras.Model(inputs, dropout_bn_head(base(inputs)), name=f"wrapped_{base.name}")


def _resnet_stacks(version):
    from keras.src.applications import resnet

    if version == 1:
        def stack_fn(x):
            x = resnet.stack_residual_blocks_v1(x, 16, 2, stride1=1, name="conv2")
            return resnet.stack_residual_blocks_v1(x, 32, 2, name="conv3")
    else:
        def stack_fn(x):
            x = resnet.stack_residual_blocks_v2(x, 16, 2, name="conv2")
            return resnet.stack_residual_blocks_v2(x, 32, 2, stride1=1, name="conv3")
    return stack_fn


@register("app_resnet", images(SMALL))
def app_resnet():
    """The ResNet family (v1 bottleneck blocks, keras' generic ResNet builder,
    two stages of two blocks) under a Dropout -> BN head."""
    base = _family("resnet", "ResNet", lambda: keras.applications.ResNet50(
        include_top=False, weights=None, input_shape=SMALL, pooling="avg"),
        stack_fn=_resnet_stacks(1), preact=False, use_bias=True, name="resnet_small")
    return _wrap_app(base)


@register("app_resnet_v2", images(SMALL))
def app_resnet_v2():
    """The ResNetV2 family (pre-activation blocks, post-BN at the end) under a head."""
    base = _family("resnet", "ResNet", lambda: keras.applications.ResNet50V2(
        include_top=False, weights=None, input_shape=SMALL, pooling="avg"),
        stack_fn=_resnet_stacks(2), preact=True, use_bias=True, name="resnetv2_small")
    return _wrap_app(base)


@register("app_densenet", images(SMALL))
def app_densenet():
    """The DenseNet family (generic builder, one conv block per dense block)."""
    base = _family("densenet", "DenseNet", lambda: keras.applications.DenseNet121(
        include_top=False, weights=None, input_shape=SMALL, pooling="avg"),
        blocks=[1, 2, 1, 1], name="densenet_small")
    return _wrap_app(base)


@register("app_efficientnet", images(SMALL), finds=("block4b_drop", "block6b_drop"),
          slow_on_jax=True)
def app_efficientnet():
    """The EfficientNet family as it is, with its top (width 0.25, depth 0.5):
    its drop-connect Dropouts feed the next block's BN through a conv, its top
    Dropout feeds the classifier."""
    import importlib

    try:
        fn = importlib.import_module("keras.src.applications.efficientnet").EfficientNet
    except (ImportError, AttributeError):
        return keras.applications.EfficientNetB0(
            weights=None, input_shape=SMALL, classes=NUM_CLASSES)
    return fn(0.25, 0.5, 32, weights=None, input_shape=SMALL, classes=NUM_CLASSES,
              name="efficientnet_small")


@register("app_efficientnet_v2", images(SMALL), finds=("block4b_drop", "block6d_drop"),
          slow_on_jax=True)
def app_efficientnet_v2():
    """The EfficientNetV2 family (B0 block table at width 0.25, depth 0.5) as it
    is, with its top; drop-connect Dropouts inside."""
    import copy
    import importlib

    try:
        module = importlib.import_module("keras.src.applications.efficientnet_v2")
        fn, table = module.EfficientNetV2, module.DEFAULT_BLOCKS_ARGS["efficientnetv2-b0"]
    except (ImportError, AttributeError, KeyError):
        return keras.applications.EfficientNetV2B0(
            weights=None, input_shape=SMALL, classes=NUM_CLASSES)
    return fn(0.25, 0.5, 32, blocks_args=copy.deepcopy(table), weights=None,
              input_shape=SMALL, classes=NUM_CLASSES, name="efficientnetv2_small")


@register("app_nasnet", images(SMALL), slow_on_jax=True)
def app_nasnet():
    """The NASNet family (generic builder: one cell per stage, 96 penultimate
    filters) under a Dropout -> BN head."""
    base = _family("nasnet", "NASNet", lambda: keras.applications.NASNetMobile(
        include_top=False, weights=None, input_shape=SMALL, pooling="avg"),
        penultimate_filters=96, num_blocks=1, stem_block_filters=8,
        default_size=32, name="nasnet_small")
    return _wrap_app(base)


@register("app_xception", images(XCEPTION), slow=True, slow_on_jax=True)
def app_xception():
    """Xception at its minimum 71x71 under a Dropout -> BN head."""
    return _app(keras.applications.Xception, XCEPTION)


@register("app_inception_v3", images(INCEPTION), slow=True, slow_on_jax=True)
def app_inception_v3():
    """InceptionV3 at its minimum 75x75 under a Dropout -> BN head."""
    return _app(keras.applications.InceptionV3, INCEPTION)


@register("app_inception_resnet_v2", images(INCEPTION), slow=True, slow_on_jax=True)
def app_inception_resnet_v2():
    """The InceptionResNetV2 family at 75x75: its stem, reduction blocks and
    scaled-residual blocks (CustomScaleLayer), one of each block type instead
    of 10/20/10, under a Dropout -> BN head. Falls back to the full model."""
    import importlib

    try:
        irv2 = importlib.import_module("keras.src.applications.inception_resnet_v2")
        conv, block = irv2.conv2d_bn, irv2.inception_resnet_block
    except (ImportError, AttributeError):
        return _app(keras.applications.InceptionResNetV2, INCEPTION)
    inputs = keras.Input(INCEPTION, name="image")
    x = conv(inputs, 32, 3, strides=2, padding="valid")
    x = conv(x, 32, 3, padding="valid")
    x = conv(x, 64, 3)
    x = L.MaxPooling2D(3, strides=2)(x)
    x = conv(x, 80, 1, padding="valid")
    x = conv(x, 192, 3, padding="valid")
    x = L.MaxPooling2D(3, strides=2)(x)
    b1 = conv(conv(x, 48, 1), 64, 5)
    b2 = conv(conv(conv(x, 64, 1), 96, 3), 96, 3)
    bp = conv(L.AveragePooling2D(3, strides=1, padding="same")(x), 64, 1)
    x = L.Concatenate(name="mixed_5b")([conv(x, 96, 1), b1, b2, bp])
    x = block(x, scale=0.17, block_type="block35", block_idx=1)
    b0 = conv(x, 384, 3, strides=2, padding="valid")
    b1 = conv(conv(conv(x, 256, 1), 256, 3), 384, 3, strides=2, padding="valid")
    x = L.Concatenate(name="mixed_6a")([b0, b1, L.MaxPooling2D(3, strides=2)(x)])
    x = block(x, scale=0.1, block_type="block17", block_idx=1)
    b0 = conv(conv(x, 256, 1), 384, 3, strides=2, padding="valid")
    b1 = conv(conv(x, 256, 1), 288, 3, strides=2, padding="valid")
    b2 = conv(conv(conv(x, 256, 1), 288, 3), 320, 3, strides=2, padding="valid")
    x = L.Concatenate(name="mixed_7a")([b0, b1, b2, L.MaxPooling2D(3, strides=2)(x)])
    x = block(x, scale=0.2, block_type="block8", block_idx=1)
    x = block(x, scale=1.0, activation=None, block_type="block8", block_idx=10)
    x = conv(x, 1536, 1, name="conv_7b")
    base = keras.Model(inputs, L.GlobalAveragePooling2D(name="avg_pool")(x),
                       name="inception_resnet_v2_small")
    return _wrap_app(base, INCEPTION)



# ---------------------------------------------------------------------------
# keras-hub backbones built from config, offline.

HUB = ("keras_hub",)
# On JAX these backbones run eagerly in 20-70 s per tool (every tool passed on
# JAX, 2026-11-27): CI's JAX runs skip them (marker `slow_on_jax`) and cover
# keras-hub through ResNet, CSPNet and ViT, to keep `.ci/run` under its limit.
HUB_SLOW_ON_JAX = dict(slow_on_jax=True)
# Keras' lookup, hashing and text layers need TensorFlow installed, on every backend.
TF_LAYERS = ("tensorflow",)


def _hub():
    import keras_hub

    return keras_hub.models


@register("hub_resnet", images(SMALL), requires=HUB)
def hub_resnet():
    """keras-hub ResNetBackbone (pre-activation basic blocks) under a head."""
    backbone = _hub().ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 128], stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2], block_type="basic_block",
        use_pre_activation=True, image_shape=SMALL,
    )
    return wrap_backbone(backbone, SMALL, name="hub_resnet")


@register("hub_densenet", images(SMALL), requires=HUB, **HUB_SLOW_ON_JAX)
def hub_densenet():
    """keras-hub DenseNetBackbone under a head."""
    backbone = _hub().DenseNetBackbone(
        stackwise_num_repeats=[2, 2], growth_rate=8, image_shape=SMALL
    )
    return wrap_backbone(backbone, SMALL, name="hub_densenet")


@register("hub_mobilenet", images(SMALL), requires=HUB, **HUB_SLOW_ON_JAX)
def hub_mobilenet():
    """keras-hub MobileNetBackbone: its BNs sit inside custom block layers."""
    return wrap_backbone(_hub_mobilenet_backbone(), SMALL, name="hub_mobilenet")


def _hub_mobilenet_backbone():
    return _hub().MobileNetBackbone(
        stackwise_expansion=[[16], [32, 32]], stackwise_num_blocks=[1, 2],
        stackwise_num_filters=[[16], [24, 24]], stackwise_kernel_size=[[3], [3, 3]],
        stackwise_num_strides=[[2], [2, 1]], stackwise_se_ratio=[[None], [0.25, 0.25]],
        stackwise_activation=[["relu"], ["hard_swish", "hard_swish"]],
        stackwise_padding=[[1], [1, 1]], output_num_filters=32, depthwise_filters=8,
        depthwise_stride=1, depthwise_residual=False, last_layer_filter=32,
        squeeze_and_excite=0.5, image_shape=SMALL,
    )


@register("hub_efficientnet", images(SMALL), finds=("block2b_drop", "head_dropout"), requires=HUB,
          **HUB_SLOW_ON_JAX)
def hub_efficientnet():
    """keras-hub EfficientNetBackbone, v1 blocks: drop-connect Dropouts before
    the next block's conv -> BN, in the graph."""
    return wrap_backbone(_hub_efficientnet_backbone(), SMALL, name="hub_efficientnet")


def _hub_efficientnet_backbone():
    return _hub().EfficientNetBackbone(
        stackwise_width_coefficients=[1.0, 1.0], stackwise_depth_coefficients=[1.0, 1.0],
        stackwise_kernel_sizes=[3, 3], stackwise_num_repeats=[1, 2],
        stackwise_input_filters=[16, 16], stackwise_output_filters=[16, 24],
        stackwise_expansion_ratios=[1, 4], stackwise_squeeze_and_excite_ratios=[0.25, 0.25],
        stackwise_strides=[1, 2], stackwise_block_types=["v1", "v1"],
        input_shape=SMALL,  # num_features: the default 1280 (keras-hub's get_config omits it)
    )


@register("hub_efficientnet_v2", images(SMALL), finds=("block2b_drop|block2b_", "head_dropout"),
          requires=HUB, **HUB_SLOW_ON_JAX)
def hub_efficientnet_v2():
    """keras-hub EfficientNetBackbone, fused/unfused V2 blocks: BN and dropout
    hidden inside custom FusedMBConvBlock/MBConvBlock layers."""
    backbone = _hub().EfficientNetBackbone(
        stackwise_width_coefficients=[1.0, 1.0], stackwise_depth_coefficients=[1.0, 1.0],
        stackwise_kernel_sizes=[3, 3], stackwise_num_repeats=[1, 2],
        stackwise_input_filters=[8, 16], stackwise_output_filters=[16, 24],
        stackwise_expansion_ratios=[1, 4], stackwise_squeeze_and_excite_ratios=[0.0, 0.25],
        stackwise_strides=[1, 2], stackwise_block_types=["fused", "unfused"],
        input_shape=SMALL,  # num_features: the default 1280 (keras-hub's get_config omits it)
    )
    return wrap_backbone(backbone, SMALL, name="hub_efficientnet_v2")


@register("hub_cspnet", images(SMALL), requires=HUB)
def hub_cspnet():
    """keras-hub CSPNetBackbone (dark stages, LeakyReLU, Pad operator nodes)."""
    backbone = _hub().CSPNetBackbone(
        stem_filters=16, stem_kernel_size=3, stem_strides=2, stackwise_depth=[1, 1],
        stackwise_strides=[1, 2], stackwise_num_filters=[16, 32],
        block_type="dark_block", stage_type="dark", image_shape=SMALL,
    )
    return wrap_backbone(backbone, SMALL, name="hub_cspnet")


@register("hub_xception", images(SMALL), requires=HUB, **HUB_SLOW_ON_JAX)
def hub_xception():
    """keras-hub XceptionBackbone under a head."""
    backbone = _hub().XceptionBackbone(
        stackwise_conv_filters=[[16, 32], [32, 64], [64, 64]],
        stackwise_pooling=[True, True, False], image_shape=SMALL,
    )
    return wrap_backbone(backbone, SMALL, name="hub_xception")


@register("hub_vit", images(SMALL), requires=HUB,
          refuses="keras-hub's ViTPatchingAndEmbedding cannot be rebuilt from its own get_config(), "
                  "so a tool that returns a new model raises GraphError naming it")
def hub_vit():
    """keras-hub ViTBackbone (LayerNorm only, dropout inside custom encoder
    layers); its class token goes through a Dropout -> BN head."""
    backbone = _hub().ViTBackbone(
        image_shape=SMALL, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32,
        mlp_dim=64, dropout_rate=0.1,
    )
    inputs = keras.Input(SMALL, name="image")
    x = backbone(inputs)[:, 0]  # a GetItem operator node
    return keras.Model(inputs, dropout_bn_head(x), name="hub_vit")


# ---------------------------------------------------------------------------
# keras-hub task models, as `from_preset` returns them (here from config, no
# weights): a tool must give back the task class, not a plain Functional.
# Each is saved and loaded first (``reload``), as a user gets it from a file.


def _hub_resnet_backbone():
    return _hub().ResNetBackbone(
        input_conv_filters=[64], input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 128], stackwise_num_blocks=[1, 1],
        stackwise_num_strides=[1, 2], block_type="basic_block",
        use_pre_activation=True, image_shape=SMALL,
    )


def _class_labels(n, rng):
    return rng.integers(0, NUM_CLASSES, size=(n,))


def _pixel_labels(n, rng):
    """One-hot per pixel over 3 classes (the segmenter's default loss is not sparse)."""
    return np.eye(3, dtype="float32")[rng.integers(0, 3, size=(n, *SMALL[:2]))]


def _box_labels(n, rng):
    """Two boxes a picture (yxyx, pixels), class labels 0-2."""
    corner = rng.uniform(0, SMALL[0] / 2, (n, 2, 2))
    size = rng.uniform(4, SMALL[0] / 2, (n, 2, 2))
    boxes = np.concatenate([corner, corner + size], axis=-1).astype("float32")
    return {"boxes": boxes, "labels": rng.integers(0, 3, size=(n, 2)).astype("float32")}


@register("hub_task_resnet", images(SMALL), requires=HUB, reload=True, finds=(),
          fit_labels=_class_labels)
def hub_task_resnet():
    """keras-hub ResNetImageClassifier (an `ImageClassifier`, compiled by its
    constructor; softmax head with a Dropout into the Dense): no dropout feeds
    a BN, the tools must still hand back the task."""
    return _hub().ResNetImageClassifier(
        _hub_resnet_backbone(), NUM_CLASSES, activation="softmax", dropout=0.2
    )


@register("hub_task_mobilenet", images(SMALL), requires=HUB, reload=True, finds=(),
          classifier=False, fit_labels=_class_labels, **HUB_SLOW_ON_JAX)
def hub_task_mobilenet():
    """keras-hub MobileNetImageClassifier (its own head: conv, Dense logits,
    no softmax) over the hub_mobilenet backbone; no dropout feeds a BN."""
    return _hub().MobileNetImageClassifier(_hub_mobilenet_backbone(), NUM_CLASSES,
                                           num_features=32)


@register("hub_task_efficientnet", images(SMALL), requires=HUB, reload=True,
          finds=("block2b_drop",), fit_labels=_class_labels, **HUB_SLOW_ON_JAX)
def hub_task_efficientnet():
    """keras-hub EfficientNetImageClassifier over the hub_efficientnet backbone
    (v1 blocks): its drop-connect Dropout feeds the next block's BN."""
    return _hub().EfficientNetImageClassifier(
        _hub_efficientnet_backbone(), NUM_CLASSES, activation="softmax", dropout=0.2
    )


@register("hub_task_deeplab", images(SMALL), requires=HUB, reload=True, finds=(),
          classifier=False, not_called=("post_bn",), fit_labels=_pixel_labels,
          **HUB_SLOW_ON_JAX)
def hub_task_deeplab():
    """keras-hub DeepLabV3ImageSegmenter over a small ResNet (spatial pyramid
    pooling at P3, the P2 low-level branch): per-pixel logits; BNs in custom
    layers and in nested functional backbones, no dropout feeding one. The
    ResNet's last BN (``post_bn``) is in the backbone it holds but on no path
    to the pyramid outputs DeepLab uses: never called."""
    backbone = _hub().DeepLabV3Backbone(
        _hub_resnet_backbone(), spatial_pyramid_pooling_key="P3", upsampling_size=2,
        dilation_rates=[2, 4], low_level_feature_key="P2", image_shape=SMALL,
    )
    return _hub().DeepLabV3ImageSegmenter(backbone, 3)


@register("hub_task_retinanet", images(SMALL), requires=HUB, reload=True, finds=(),
          classifier=False, not_called=("output_norm_P3", "post_bn"), fit_labels=_box_labels,
          **HUB_SLOW_ON_JAX)
def hub_task_retinanet():
    """keras-hub RetinaNetObjectDetector (two outputs, a dict) over a small
    ResNet, FPN levels 3-4 with ``use_fpn_batch_norm``: its FeaturePyramid
    builds an output BN per level but calls P3's never (only coarser levels
    go through one); the ResNet's ``post_bn`` is never called either."""
    backbone = _hub().RetinaNetBackbone(
        _hub_resnet_backbone(), min_level=3, max_level=4, use_p5=False,
        use_fpn_batch_norm=True, image_shape=SMALL,
    )
    return _hub().RetinaNetObjectDetector(backbone, 3, pre_logits_num_conv_layers=1)


# ---------------------------------------------------------------------------
# Operators and keras.ops calls between layers.


@register("ops_arith", vectors(16), finds=("drop", "drop2"))
def ops_arith():
    """``y * 2.0``, ``x + y``, ``-y`` and ``1.0 - y`` between Dropout and BN."""
    inputs = keras.Input((16,), name="x")
    h = L.Dense(32, activation="relu", name="dense_in")(inputs)
    y = L.Dropout(0.4, name="drop")(h)
    y = y * 2.0
    y = h + y
    y = 1.0 - (-y)
    y = L.BatchNormalization(name="bn")(y)
    z = L.Dense(32, name="dense_mid")(y)
    z = L.Dropout(0.2, name="drop2")(z) / 3.0
    z = L.BatchNormalization(name="bn2")(z)
    return keras.Model(inputs, L.Dense(NUM_CLASSES, activation="softmax", name="logits")(z),
                       name="ops_arith")


@register("ops_keras_ops", images((8, 8, 3)), finds=("sdrop", "drop"))
def ops_keras_ops():
    """``keras.ops.mean``, slicing ``x[:, 1:]``, ``keras.ops.concatenate``,
    ``keras.ops.relu`` on the way from a SpatialDropout2D to a BN."""
    inputs = keras.Input((8, 8, 3), name="image")
    x = L.Conv2D(8, 3, padding="same", name="conv")(inputs)
    x = L.SpatialDropout2D(0.3, name="sdrop")(x)
    mean = ops.mean(x, axis=-1, keepdims=True)
    x = ops.concatenate([x[:, 1:], mean[:, 1:]], axis=-1)
    x = ops.relu(x)
    x = L.BatchNormalization(name="bn")(x)
    x = ops.mean(x, axis=(1, 2))
    x = L.Dropout(0.3, name="drop")(x)
    x = ops.expand_dims(x, 1)[:, 0]
    x = L.BatchNormalization(name="bn_head")(x)
    return keras.Model(inputs, L.Dense(NUM_CLASSES, activation="softmax", name="logits")(x),
                       name="ops_keras_ops")


@register("ops_gate", images((8, 8, 3)), finds=("drop", "head_dropout"))
def ops_gate():
    """Squeeze-excite gate with ``layers.Multiply`` and ``ops.sigmoid`` between
    a Dropout and a BN; a Dropout feeds both branches (a fork)."""
    inputs = keras.Input((8, 8, 3), name="image")
    x = L.Conv2D(8, 3, padding="same", name="conv")(inputs)
    x = L.Dropout(0.3, name="drop")(x)
    s = L.GlobalAveragePooling2D(keepdims=True, name="squeeze")(x)
    s = L.Conv2D(8, 1, name="excite")(s)
    x = L.Multiply(name="gate")([x, ops.sigmoid(s)])
    x = L.BatchNormalization(name="bn")(x)
    x = L.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, dropout_bn_head(x), name="ops_gate")


# ---------------------------------------------------------------------------
# Masks.


@register("mask_lstm", tokens(10, 50), nonfloat_input=True, finds=("drop_embed", "head_dropout"))
def mask_lstm():
    """Embedding(mask_zero=True) -> Dropout -> BN -> LSTM -> Dropout -> BN."""
    inputs = keras.Input((10,), dtype="int32", name="tokens")
    x = L.Embedding(50, 16, mask_zero=True, name="embed")(inputs)
    x = L.Dropout(0.3, name="drop_embed")(x)
    x = L.BatchNormalization(name="bn_embed")(x)
    x = L.LSTM(16, name="lstm")(x)
    return keras.Model(inputs, dropout_bn_head(x), name="mask_lstm")


@register("mask_bigru", tokens(10, 50), nonfloat_input=True, finds=("sdrop", "head_dropout"))
def mask_bigru():
    """Masked SpatialDropout1D -> BN -> Bidirectional(GRU) -> masked pooling."""
    inputs = keras.Input((10,), dtype="int32", name="tokens")
    x = L.Embedding(50, 16, mask_zero=True, name="embed")(inputs)
    x = L.SpatialDropout1D(0.2, name="sdrop")(x)
    x = L.BatchNormalization(name="bn_embed")(x)
    x = L.Bidirectional(L.GRU(8, return_sequences=True), name="bigru")(x)
    x = L.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(inputs, dropout_bn_head(x), name="mask_bigru")


# ---------------------------------------------------------------------------
# Adapted preprocessing.


@register("pre_normalization", vectors(6))
def pre_normalization():
    """Normalization adapted on data -> Dense -> Dropout -> BN."""
    norm = L.Normalization(name="norm")
    norm.adapt(np.random.default_rng(3).normal(2.0, 3.0, (64, 6)).astype("float32"))
    inputs = keras.Input((6,), name="x")
    x = L.Dense(16, activation="relu", name="dense")(norm(inputs))
    return keras.Model(inputs, dropout_bn_head(x), name="pre_normalization")


def _ids(n, rng):
    return rng.choice([3, 5, 7, 11, 13, 17, 19, 23, 99], size=(n, 4)).astype("int64")


# Keras' own `fit` cannot trace IntegerLookup on JAX ("Unable to automatically
# build the model ... 'str' object has no attribute '_error_repr'").
@register("pre_integer_lookup", _ids, nonfloat_input=True, requires=TF_LAYERS,
          keras_fails_on_jax=("fit",))
def pre_integer_lookup():
    """IntegerLookup adapted on ids -> Embedding -> Flatten -> Dropout -> BN."""
    lookup = L.IntegerLookup(name="lookup")
    lookup.adapt(np.array([3, 5, 7, 11, 13, 17, 19, 23, 3, 5], dtype="int64"))
    inputs = keras.Input((4,), dtype="int64", name="ids")
    x = lookup(inputs)
    x = L.Embedding(lookup.vocabulary_size(), 8, name="embed")(x)
    x = L.Flatten(name="flat")(x)
    return keras.Model(inputs, dropout_bn_head(x), name="pre_integer_lookup")


@register("pre_integer_multi_hot", _ids, nonfloat_input=True, finds=("drop", "head_dropout"),
          requires=TF_LAYERS, keras_fails_on_jax=("fit",))
def pre_integer_multi_hot():
    """IntegerLookup(output_mode="multi_hot") adapted -> Dropout -> BN -> Dense."""
    lookup = L.IntegerLookup(output_mode="multi_hot", name="lookup")
    lookup.adapt(np.array([3, 5, 7, 11, 13, 17, 19, 23], dtype="int64"))
    inputs = keras.Input((4,), dtype="int64", name="ids")
    x = ops.cast(lookup(inputs), "float32")  # multi-hot comes out as int64
    x = L.Dropout(0.2, name="drop")(x)
    x = L.BatchNormalization(name="bn")(x)
    x = L.Dense(16, activation="relu", name="dense")(x)
    return keras.Model(inputs, dropout_bn_head(x), name="pre_integer_multi_hot")


@register("pre_string_lookup", string_tokens, needs_tf=True, nonfloat_input=True,
          finds=("drop_embed", "head_dropout"))
def pre_string_lookup():
    """StringLookup adapted on words -> Embedding -> Dropout -> BN (strings in)."""
    lookup = L.StringLookup(name="lookup")
    lookup.adapt(np.array(WORDS, dtype=object))
    inputs = keras.Input((6,), dtype="string", name="words")
    x = L.Embedding(lookup.vocabulary_size(), 8, name="embed")(lookup(inputs))
    x = L.Dropout(0.3, name="drop_embed")(x)
    x = L.BatchNormalization(name="bn_embed")(x)
    x = L.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(inputs, dropout_bn_head(x), name="pre_string_lookup")


@register("pre_text_vectorization", sentences, needs_tf=True, nonfloat_input=True,
          finds=("drop_embed", "head_dropout"))
def pre_text_vectorization():
    """TextVectorization adapted on sentences -> Embedding(mask_zero) -> Dropout -> BN."""
    vectorize = L.TextVectorization(max_tokens=20, output_sequence_length=8, name="vectorize")
    vectorize.adapt(np.array([" ".join(WORDS[i:] + WORDS[:i]) for i in range(10)]))
    inputs = keras.Input((1,), dtype="string", name="text")
    x = L.Embedding(vectorize.vocabulary_size(), 8, mask_zero=True, name="embed")(
        vectorize(inputs)
    )
    x = L.Dropout(0.3, name="drop_embed")(x)
    x = L.BatchNormalization(name="bn_embed")(x)
    x = L.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(inputs, dropout_bn_head(x), name="pre_text_vectorization")


# ---------------------------------------------------------------------------
# Lambda and custom layers.


@register("lambda_layers", vectors(12), finds=("drop", "head_dropout"))
def lambda_layers():
    """Lambda layers (a Python lambda and a named function) between Dropout and BN."""
    inputs = keras.Input((12,), name="x")
    x = L.Dense(16, name="dense")(inputs)
    x = L.Dropout(0.3, name="drop")(x)
    x = L.Lambda(lambda t: t * 0.5 + 1.0, name="affine")(x)
    x = L.Lambda(_softsign, name="softsign")(x)
    x = L.BatchNormalization(name="bn")(x)
    return keras.Model(inputs, dropout_bn_head(x), name="lambda_layers")


@keras.saving.register_keras_serializable(package=PACKAGE)
def _softsign(t):
    return t / (1.0 + ops.abs(t))


@keras.saving.register_keras_serializable(package=PACKAGE)
class DropBNBlock(keras.layers.Layer):
    """Dense -> Dropout -> BN -> ReLU in one custom layer (its sub-layers hidden)."""

    def __init__(self, units, rate=0.3, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.rate = rate
        self.dense = L.Dense(units, name="dense")
        self.dropout = L.Dropout(rate, name="dropout")
        self.bn = L.BatchNormalization(name="bn")

    def build(self, input_shape):
        self.dense.build(input_shape)
        shape = self.dense.compute_output_shape(input_shape)
        self.bn.build(shape)

    def call(self, x, training=None):
        x = self.dense(x)
        x = self.dropout(x, training=training)
        x = self.bn(x, training=training)
        return ops.relu(x)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "rate": self.rate}


@keras.saving.register_keras_serializable(package=PACKAGE)
class NormAct(keras.layers.Layer):
    """BN -> ReLU in one custom layer: a plain Dropout before it feeds a hidden BN."""

    def __init__(self, momentum=0.99, **kwargs):
        super().__init__(**kwargs)
        self.momentum = momentum
        self.bn = L.BatchNormalization(momentum=momentum, name="bn")

    def build(self, input_shape):
        self.bn.build(input_shape)

    def call(self, x, training=None):
        return ops.relu(self.bn(x, training=training))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum}


@register("custom_block", vectors(12), finds=("block1", "block2"))
def custom_block():
    """Two registered custom layers that each hide Dense -> Dropout -> BN."""
    inputs = keras.Input((12,), name="x")
    x = DropBNBlock(16, 0.3, name="block1")(inputs)
    x = DropBNBlock(16, 0.2, name="block2")(x)
    return keras.Model(inputs, L.Dense(NUM_CLASSES, activation="softmax", name="logits")(x),
                       name="custom_block")


@register("custom_norm_act", vectors(12), finds=("drop", "drop2"))
def custom_norm_act():
    """A plain Dropout feeding a custom layer that hides a BN (reads as 'no BN'
    to a walker that stops at custom layers)."""
    inputs = keras.Input((12,), name="x")
    x = L.Dense(16, name="dense")(inputs)
    x = L.Dropout(0.4, name="drop")(x)
    x = NormAct(name="norm_act")(x)
    x = L.Dense(16, name="dense2")(x)
    x = L.Dropout(0.2, name="drop2")(x)
    x = NormAct(name="norm_act2")(x)
    return keras.Model(inputs, L.Dense(NUM_CLASSES, activation="softmax", name="logits")(x),
                       name="custom_norm_act")


# ---------------------------------------------------------------------------
# TimeDistributed.


@register("time_distributed", images((4, 8, 8, 3)), finds=("td_drop", "drop", "head_dropout"))
def time_distributed():
    """TimeDistributed(Conv2D) -> TimeDistributed(Dropout) -> TimeDistributed(BN),
    then a plain Dropout -> TimeDistributed(BN) -> LSTM."""
    inputs = keras.Input((4, 8, 8, 3), name="frames")
    x = L.TimeDistributed(L.Conv2D(8, 3, padding="same"), name="td_conv")(inputs)
    x = L.TimeDistributed(L.Dropout(0.3), name="td_drop")(x)
    x = L.TimeDistributed(L.BatchNormalization(), name="td_bn")(x)
    x = L.TimeDistributed(L.GlobalAveragePooling2D(), name="td_pool")(x)
    x = L.Dropout(0.2, name="drop")(x)
    x = L.TimeDistributed(L.BatchNormalization(), name="td_bn2")(x)
    x = L.LSTM(8, name="lstm")(x)
    return keras.Model(inputs, dropout_bn_head(x), name="time_distributed")


# ---------------------------------------------------------------------------
# Nested, shared, Sequential.


def _pair(n, rng):
    return [vectors(8)(n, rng), vectors(8)(n, rng)]


@register("nested_shared", _pair, finds=("sub_drop", "head_dropout"))
def nested_shared():
    """A submodel (Dense -> Dropout -> BN) called twice on two inputs (shared)."""
    sub_in = keras.Input((8,), name="sub_in")
    h = L.Dense(16, name="sub_dense")(sub_in)
    h = L.Dropout(0.3, name="sub_drop")(h)
    h = L.BatchNormalization(name="sub_bn")(h)
    tower = keras.Model(sub_in, L.ReLU(name="sub_relu")(h), name="tower")
    a = keras.Input((8,), name="left")
    b = keras.Input((8,), name="right")
    x = L.Concatenate(name="concat")([tower(a), tower(b)])
    return keras.Model([a, b], dropout_bn_head(x), name="nested_shared")


@register("nested_deep", images((8, 8, 3)), finds=("outer_drop", "inner_drop", "head_dropout"))
def nested_deep():
    """Sequential inside Functional inside Functional; the dropout sits in the
    outer model and the BN two levels down."""
    inner = keras.Sequential(
        [keras.Input((8, 8, 8)), L.BatchNormalization(name="inner_bn"), L.ReLU(name="inner_relu"),
         L.Conv2D(8, 3, padding="same", name="inner_conv"), L.Dropout(0.2, name="inner_drop"),
         L.BatchNormalization(name="inner_bn2")],
        name="inner",
    )
    mid_in = keras.Input((8, 8, 8), name="mid_in")
    mid = keras.Model(mid_in, L.Add(name="mid_add")([mid_in, inner(mid_in)]), name="middle")
    inputs = keras.Input((8, 8, 3), name="image")
    x = L.Conv2D(8, 3, padding="same", name="stem")(inputs)
    x = L.Dropout(0.3, name="outer_drop")(x)
    x = mid(x)
    x = L.GlobalAveragePooling2D(name="pool")(x)
    return keras.Model(inputs, dropout_bn_head(x), name="nested_deep")


@register("sequential_cnn", images((8, 8, 3)), finds=("drop1", "sdrop2"))
def sequential_cnn():
    """A plain Sequential CNN: Conv -> Dropout -> BN -> ReLU ... -> softmax."""
    return keras.Sequential(
        [
            keras.Input((8, 8, 3)),
            L.Conv2D(8, 3, padding="same", name="conv1"),
            L.Dropout(0.3, name="drop1"),
            L.BatchNormalization(name="bn1"),
            L.ReLU(name="relu1"),
            L.Conv2D(8, 3, padding="same", name="conv2"),
            L.SpatialDropout2D(0.2, name="sdrop2"),
            L.BatchNormalization(name="bn2"),
            L.ReLU(name="relu2"),
            L.GlobalAveragePooling2D(name="pool"),
            L.Dense(NUM_CLASSES, activation="softmax", name="logits"),
        ],
        name="sequential_cnn",
    )


@register("sequential_nested", vectors(10), finds=("blk_drop", "gdrop"))
def sequential_nested():
    """A Sequential holding a Sequential block with Dropout -> BN."""
    block = keras.Sequential(
        [keras.Input((16,)), L.Dropout(0.3, name="blk_drop"), L.BatchNormalization(name="blk_bn"),
         L.ReLU(name="blk_relu")],
        name="block",
    )
    return keras.Sequential(
        [keras.Input((10,)), L.Dense(16, name="dense"), block, L.Dense(16, name="dense2"),
         L.GaussianDropout(0.2, name="gdrop"), L.BatchNormalization(name="bn"),
         L.Dense(NUM_CLASSES, activation="softmax", name="logits")],
        name="sequential_nested",
    )


# ---------------------------------------------------------------------------
# MC dropout, multi-input / multi-output.


@register("mc_dropout", vectors(12), mc_dropout=True, mc_layers=("mc_drop",))
def mc_dropout():
    """MC dropout: a Dropout called with training=True feeds a BN (no shift:
    it is on at inference too); a plain Dropout feeds another BN."""
    inputs = keras.Input((12,), name="x")
    x = L.Dense(16, name="dense")(inputs)
    x = L.Dropout(0.3, name="mc_drop")(x, training=True)
    x = L.BatchNormalization(name="bn_mc")(x)
    x = L.Dense(16, activation="relu", name="dense2")(x)
    return keras.Model(inputs, dropout_bn_head(x), name="mc_dropout")


def _multi(n, rng):
    return {"image": images((8, 8, 3))(n, rng), "meta": vectors(5)(n, rng)}


@register("multi_io", _multi, classifier=False, finds=("img_drop", "meta_drop", "shared_drop"))
def multi_io():
    """Two inputs (dict), two outputs (class softmax and a regression); a
    Dropout feeds a BN on each branch and one feeds both heads."""
    image = keras.Input((8, 8, 3), name="image")
    meta = keras.Input((5,), name="meta")
    x = L.Conv2D(8, 3, padding="same", name="conv")(image)
    x = L.Dropout(0.2, name="img_drop")(x)
    x = L.BatchNormalization(name="img_bn")(x)
    x = L.GlobalAveragePooling2D(name="pool")(x)
    m = L.Dense(8, name="meta_dense")(meta)
    m = L.AlphaDropout(0.1, name="meta_drop")(m)
    m = L.BatchNormalization(name="meta_bn")(m)
    h = L.Concatenate(name="concat")([x, m])
    h = L.Dropout(0.3, name="shared_drop")(h)
    cls = L.BatchNormalization(name="cls_bn")(h)
    cls = L.Dense(NUM_CLASSES, activation="softmax", name="cls")(cls)
    reg = L.Dense(1, name="reg")(h)
    return keras.Model({"image": image, "meta": meta}, {"cls": cls, "reg": reg}, name="multi_io")


@register("multi_output_list", vectors(10), classifier=False, finds=("trunk_drop",))
def multi_output_list():
    """One input, a list of three outputs; dropout -> BN in a shared trunk."""
    inputs = keras.Input((10,), name="x")
    h = L.Dense(16, name="trunk")(inputs)
    h = L.Dropout(0.3, name="trunk_drop")(h)
    h = L.BatchNormalization(name="trunk_bn")(h)
    outs = [L.Dense(k, name=f"out{k}")(h) for k in (1, 2, 3)]
    return keras.Model(inputs, outs, name="multi_output_list")


# ---------------------------------------------------------------------------
# Functional subclasses and auto-named layers, saved and loaded (``reload``).


@keras.saving.register_keras_serializable(package=PACKAGE)
class TrainStepModel(keras.Model):
    """A functional subclass with its own `train_step` and `test_step` (as
    users write for custom training); built as ``TrainStepModel(inputs,
    outputs)``. The steps defer to Keras' own (the backends' signatures
    differ): the class is what must survive a tool."""

    def train_step(self, *args, **kwargs):
        return super().train_step(*args, **kwargs)

    def test_step(self, *args, **kwargs):
        return super().test_step(*args, **kwargs)


def _se_trunk(inputs):
    """Conv -> Dropout -> squeeze-excite (unnamed Multiply) -> BN -> unnamed
    Add: auto-named layers (``conv2d``, ``multiply``, ``add``, ...)."""
    x = L.Conv2D(8, 3, padding="same")(inputs)
    x = L.Dropout(0.3, name="drop")(x)
    s = L.GlobalAveragePooling2D(keepdims=True)(x)
    s = L.Conv2D(8, 1, activation="sigmoid")(s)
    y = L.Multiply()([x, s])
    y = L.BatchNormalization()(y)
    x = L.Add()([x, y])
    return L.GlobalAveragePooling2D()(x)


@register("subclass_train_step", images((8, 8, 3)), reload=True,
          finds=("drop", "head_dropout"))
def subclass_train_step():
    """TrainStepModel (a functional subclass with its own train_step and
    test_step), compiled, with an SE trunk of auto-named layers and a
    Dropout -> BN head."""
    inputs = keras.Input((8, 8, 3))
    model = TrainStepModel(inputs, dropout_bn_head(_se_trunk(inputs)), name="train_step_model")
    model.compile(optimizer=keras.optimizers.SGD(1e-2), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


@register("functional_se_reloaded", images((8, 8, 3)), reload=True,
          finds=("drop", "head_dropout"))
def functional_se_reloaded():
    """The minimal reproduction: a plain Functional whose squeeze-excite block
    has an unnamed Multiply and an unnamed Add, saved and loaded."""
    inputs = keras.Input((8, 8, 3))
    return keras.Model(inputs, dropout_bn_head(_se_trunk(inputs)))


# ---------------------------------------------------------------------------
# The other preprocessing layers with adapted or non-variable state (the
# Normalization, IntegerLookup, StringLookup and TextVectorization entries are
# above): each -> Dense -> Dropout -> BN.


@register("pre_discretization", vectors(4), requires=TF_LAYERS)  # adapt() reads through tf.data
def pre_discretization():
    """Discretization adapted on data (its bin boundaries) -> Dense -> Dropout -> BN."""
    bins = L.Discretization(num_bins=5, epsilon=0.01, name="bins")
    bins.adapt(np.random.default_rng(4).normal(0.0, 1.0, (64, 4)).astype("float32"))
    inputs = keras.Input((4,), name="x")
    x = ops.cast(bins(inputs), "float32")
    x = L.Dense(16, activation="relu", name="dense")(x)
    return keras.Model(inputs, dropout_bn_head(x), name="pre_discretization")


def _small_ids(n, rng):
    return rng.integers(0, 8, size=(n, 3)).astype("int32")


@register("pre_category_encoding", _small_ids, nonfloat_input=True)
def pre_category_encoding():
    """CategoryEncoding(multi_hot) of integer ids -> Dense -> Dropout -> BN."""
    inputs = keras.Input((3,), dtype="int32", name="ids")
    x = L.CategoryEncoding(num_tokens=8, output_mode="multi_hot", name="encode")(inputs)
    x = L.Dense(16, activation="relu", name="dense")(x)
    return keras.Model(inputs, dropout_bn_head(x), name="pre_category_encoding")


@register("pre_hashing", string_tokens, needs_tf=True, nonfloat_input=True, requires=TF_LAYERS)
def pre_hashing():
    """Hashing(salt, multi_hot) of words -> Dense -> Dropout -> BN (strings in)."""
    inputs = keras.Input((6,), dtype="string", name="words")
    x = L.Hashing(num_bins=16, salt=7, output_mode="multi_hot", name="hash")(inputs)
    x = L.Dense(16, activation="relu", name="dense")(ops.cast(x, "float32"))
    return keras.Model(inputs, dropout_bn_head(x), name="pre_hashing")


def _id_pair(n, rng):
    return [rng.integers(0, 5, size=(n, 1)).astype("int64"),
            rng.integers(0, 7, size=(n, 1)).astype("int64")]


# Keras' own `fit` (no keras-vs callback) fails on JAX as for IntegerLookup
# ("Unable to automatically build the model ... '_error_repr'"; 2026-12, Keras 3.15).
@register("pre_hashed_crossing", _id_pair, nonfloat_input=True, requires=TF_LAYERS,
          keras_fails_on_jax=("fit",))
def pre_hashed_crossing():
    """HashedCrossing(one_hot) of two integer features -> Dense -> Dropout -> BN."""
    a = keras.Input((1,), dtype="int64", name="a")
    b = keras.Input((1,), dtype="int64", name="b")
    x = L.HashedCrossing(num_bins=16, output_mode="one_hot", name="cross")((a, b))
    x = L.Dense(16, activation="relu", name="dense")(ops.cast(x, "float32"))
    return keras.Model([a, b], dropout_bn_head(x), name="pre_hashed_crossing")


# ---------------------------------------------------------------------------
# Mixed precision: built under a global policy (restored afterwards).


def _mixed(policy):
    previous = keras.mixed_precision.global_policy()
    try:
        keras.mixed_precision.set_dtype_policy(policy)
        inputs = keras.Input((8, 8, 3), name="image")
        x = L.Conv2D(8, 3, padding="same", name="conv")(inputs)
        x = L.Dropout(0.3, name="drop")(x)
        x = L.BatchNormalization(name="bn")(x)
        x = L.ReLU(name="relu")(x)
        x = L.GlobalAveragePooling2D(name="pool")(x)
        x = L.Dropout(0.3, name="head_dropout")(x)
        x = L.BatchNormalization(name="head_bn")(x)
        # float32 softmax, as Keras' mixed-precision guide says
        outputs = L.Dense(NUM_CLASSES, activation="softmax", dtype="float32", name="head_logits")(x)
        return keras.Model(inputs, outputs, name=policy)
    finally:
        keras.mixed_precision.set_dtype_policy(previous)


@register("mixed_float16", images((8, 8, 3)), finds=("drop", "head_dropout"))
def mixed_float16():
    """A CNN built under the global policy ``mixed_float16`` (float32 softmax)."""
    return _mixed("mixed_float16")


@register("mixed_bfloat16", images((8, 8, 3)), finds=("drop", "head_dropout"))
def mixed_bfloat16():
    """A CNN built under the global policy ``mixed_bfloat16`` (float32 softmax)."""
    return _mixed("mixed_bfloat16")


# ---------------------------------------------------------------------------
# Recurrent: a stateful RNN, and dropout inside RNN cells.

STATEFUL_BATCH = 16


@register("rnn_stateful", images((6, 4)), batch=STATEFUL_BATCH, finds=("drop", "head_dropout"))
def rnn_stateful():
    """LSTM(stateful=True) at a fixed batch of 16 -> Dropout -> BN: its states
    are the model's state (not variables Keras saves); no tool may advance them."""
    inputs = keras.Input(batch_shape=(STATEFUL_BATCH, 6, 4), name="seq")
    x = L.LSTM(8, stateful=True, return_sequences=True, name="lstm")(inputs)
    x = L.Dropout(0.3, name="drop")(x)
    x = L.BatchNormalization(name="bn")(x)
    x = L.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(inputs, dropout_bn_head(x), name="rnn_stateful")


@register("rnn_dropout", images((6, 4)), finds=("lstm", "gru", "bi", "head_dropout"))
def rnn_dropout():
    """LSTM(dropout, recurrent_dropout) -> BN -> GRU(dropout) -> BN ->
    Bidirectional(SimpleRNN(dropout, recurrent_dropout)) -> BN: recurrent
    dropouts feeding BNs (finding kind "recurrent"), then a Dropout -> BN head."""
    inputs = keras.Input((6, 4), name="seq")
    x = L.LSTM(8, dropout=0.3, recurrent_dropout=0.2, return_sequences=True, name="lstm")(inputs)
    x = L.BatchNormalization(name="bn_lstm")(x)
    x = L.GRU(8, dropout=0.2, return_sequences=True, name="gru")(x)
    x = L.BatchNormalization(name="bn_gru")(x)
    x = L.Bidirectional(L.SimpleRNN(4, dropout=0.2, recurrent_dropout=0.1), name="bi")(x)
    x = L.BatchNormalization(name="bn_bi")(x)
    return keras.Model(inputs, dropout_bn_head(x), name="rnn_dropout")


# ---------------------------------------------------------------------------
# A BN that its layer owns but never calls.


@keras.saving.register_keras_serializable(package=PACKAGE)
class UnusedNorm(keras.layers.Layer):
    """Dense -> ReLU; owns (and builds) a BN that `call` never uses, as
    keras-hub's FeaturePyramid does for some levels."""

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        self.units = units
        self.dense = L.Dense(units, name="dense")
        self.norm = L.BatchNormalization(name="unused_bn")

    def build(self, input_shape):
        self.dense.build(input_shape)
        self.norm.build((*input_shape[:-1], self.units))

    def call(self, x):
        return ops.relu(self.dense(x))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@register("custom_unused_bn", vectors(12), finds=("drop", "head_dropout"),
          not_called=("unused_bn",))
def custom_unused_bn():
    """Dense -> Dropout -> BN, then a custom layer owning a BN it never calls,
    then a Dropout -> BN head."""
    inputs = keras.Input((12,), name="x")
    x = L.Dense(16, name="dense")(inputs)
    x = L.Dropout(0.3, name="drop")(x)
    x = L.BatchNormalization(name="bn")(x)
    x = UnusedNorm(16, name="owner")(x)
    return keras.Model(inputs, dropout_bn_head(x), name="custom_unused_bn")


# A sanity check on the table itself (cheap; no model is built).
assert len(REGISTRY) >= 30, len(REGISTRY)
assert all(set(n) <= set(string.ascii_lowercase + string.digits + "_") for n in REGISTRY)
