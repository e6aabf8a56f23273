"""Shared zoo pieces: validation, reference layer settings, the generic builder."""

import textwrap

import keras
import numpy as np
import pytest

import keras_vs
import zoo
from zoo import common, registry

POSITIONS = zoo.POSITIONS[1:]  # every position that builds a layer


def dropout_layers(model):
    return [
        layer
        for layer in model.layers
        if isinstance(layer, (keras.layers.Dropout, keras_vs.Uout))
    ]


def test_positive_rate_with_position_none_is_rejected():
    with pytest.raises(ValueError, match="position='none'"):
        zoo.wide_resnet(10, 1, dropout=zoo.DropoutPlan(0.3))


@pytest.mark.parametrize("dropout_type", zoo.DROPOUT_TYPES)
@pytest.mark.parametrize("position", POSITIONS)
def test_rate_zero_builds_the_same_graph_as_no_dropout(position, dropout_type):
    plain = zoo.wide_resnet(10, 1)
    zero = zoo.wide_resnet(10, 1, dropout=zoo.DropoutPlan(position=position, type=dropout_type))
    assert dropout_layers(zero) == []
    assert [layer.name for layer in zero.layers] == [layer.name for layer in plain.layers]


def test_head_position_needs_the_classifier():
    with pytest.raises(ValueError, match="include_top=False"):
        zoo.wide_resnet(10, 1, include_top=False, dropout=zoo.DropoutPlan(0.2, "head"))


def test_include_top_false_returns_the_final_feature_map():
    model = zoo.wide_resnet(10, 1, include_top=False, input_shape=(16, 16, 3))
    assert model.output.shape == (None, 4, 4, 64)
    assert model.layers[-1].name == "post_relu"


@pytest.mark.parametrize("num_classes", [0, -3, 2.5, True, "10"])
def test_bad_num_classes_is_rejected(num_classes):
    with pytest.raises(ValueError, match="Received: num_classes="):
        zoo.densenet(10, 2, bottleneck=False, num_classes=num_classes)


@pytest.mark.parametrize(
    "input_shape", [(32, 32), (32, 32, None), (32, 0, 3), "32x32x3", 32, (8, 8, 3, 1)]
)
def test_bad_input_shape_is_rejected(input_shape):
    with pytest.raises(ValueError, match="Received: input_shape="):
        zoo.resnext(11, 2, 4, input_shape=input_shape)


def test_unknown_spatial_size_is_accepted():
    model = zoo.wide_resnet(10, 1, input_shape=(None, None, 3))
    out = model(np.zeros((1, 12, 20, 3), "float32"), training=False)
    assert tuple(out.shape) == (1, 10)


@pytest.mark.parametrize("builder", [zoo.preresnet20, zoo.resnext_11_2x4d, zoo.densenet_10_4])
def test_batch_norms_use_reference_momentum_and_epsilon(builder):
    bns = [
        layer
        for layer in builder().layers
        if isinstance(layer, keras.layers.BatchNormalization)
    ]
    assert bns
    assert {(bn.momentum, bn.epsilon) for bn in bns} == {(0.9, 1e-5)}


@pytest.mark.parametrize("builder", [zoo.wrn_10_1, zoo.resnext_11_2x4d, zoo.densenet_bc_22_4])
def test_convs_are_bias_free_he_normal_fan_out(builder):
    convs = [
        layer for layer in builder().layers if isinstance(layer, keras.layers.Conv2D)
    ]
    assert convs
    for conv in convs:
        assert not conv.use_bias
        init = conv.kernel_initializer.get_config()
        assert (init["scale"], init["mode"], init["distribution"]) == (
            2.0,
            "fan_out",
            "untruncated_normal",
        )


def test_he_fan_out_init_has_the_reference_standard_deviation():
    keras.utils.set_random_seed(0)
    model = zoo.wide_resnet(10, 4)
    conv = model.get_layer("stage3_block1_conv2")  # 3x3, 256 -> 256
    std = float(np.std(keras.ops.convert_to_numpy(conv.kernel)))
    assert std == pytest.approx(np.sqrt(2.0 / (3 * 3 * 256)), rel=0.02)


@pytest.mark.parametrize(
    "dropout_type, amount, cls, attribute",
    [("bernoulli", "rate", keras.layers.Dropout, "rate"), ("uout", "beta", keras_vs.Uout, "beta")],
)
def test_dropout_type_picks_the_layer_class_and_its_amount(dropout_type, amount, cls, attribute):
    plan = zoo.DropoutPlan(position="head", type=dropout_type, **{amount: 0.25})
    model = zoo.wide_resnet(10, 1, dropout=plan)
    (layer,) = dropout_layers(model)
    assert type(layer) is cls
    assert layer.name == "head_dropout"
    assert getattr(layer, attribute) == 0.25


def test_variant_keeps_its_name_unless_an_architecture_argument_changes():
    assert zoo.wrn_10_1().name == "wrn-10-1"
    assert zoo.wrn_10_1(num_classes=3).name == "wrn-10-1"
    assert zoo.wrn_10_1(width=2).name == "wrn-10-2"
    assert zoo.wrn_10_1(name="mine").name == "mine"


def test_variant_exposes_its_configuration():
    assert zoo.resnext_29_8x64d.config == {"depth": 29, "cardinality": 8, "base_width": 64}
    assert zoo.resnext_29_8x64d.family == "resnext"
    assert "cardinality=8" in zoo.resnext_29_8x64d.__doc__


def test_common_variant_is_deprecated_for_register():
    with pytest.warns(DeprecationWarning, match=r"@zoo\.register\(wide_resnet, 'wrn-10-3'"):
        wrn_10_3 = common.variant(zoo.wide_resnet, "wrn-10-3", "WRN-10-3.", depth=10, width=3)
    assert wrn_10_3.config == {"depth": 10, "width": 3}
    assert wrn_10_3(num_classes=2).name == "wrn-10-3"
    assert "wrn-10-3" not in zoo.list_models()


def test_positions_are_the_vocabulary_ones():
    from keras_vs import vocab

    assert zoo.POSITIONS is common.POSITIONS is vocab.DROPOUT_POSITIONS
    assert zoo.DROPOUT_TYPES is common.DROPOUT_TYPES is vocab.DROPOUT_TYPES
    assert "after_conv" in zoo.POSITIONS


@pytest.mark.parametrize("module", [zoo, common, registry])
def test_every_name_in_all_exists(module):
    missing = [name for name in module.__all__ if not hasattr(module, name)]
    assert missing == []


def test_common_args_doc_fills_the_marker_line_once():
    def builder():
        """Builds.

        Args:
            depth: Depth.
            {common_args}
            name: Name.
        """

    assert common.with_common_args_doc(builder) is builder
    lines = builder.__doc__.splitlines()
    assert "{common_args}" not in builder.__doc__
    # Every shared argument in the marker's place, at the marker line's indentation.
    depth = next(i for i, line in enumerate(lines) if line.strip() == "depth: Depth.")
    indent = lines[depth][: -len("depth: Depth.")]
    shared = textwrap.dedent(common.COMMON_ARGS_DOC).splitlines()
    assert lines[depth + 1 : depth + 1 + len(shared)] == [indent + line if line else line for line in shared]
    assert lines[depth + 1 + len(shared)].strip() == "name: Name."


def test_common_args_doc_needs_exactly_one_marker():
    def builder():
        """Builds, without a marker."""

    with pytest.raises(ValueError, match="Received: builder=builder with 0"):
        common.with_common_args_doc(builder)


@pytest.mark.parametrize("builder", [zoo.preresnet, zoo.resnext, zoo.wide_resnet, zoo.densenet])
def test_every_family_documents_the_shared_arguments(builder):
    import inspect

    doc = [line.strip() for line in builder.__doc__.splitlines()]
    shared = [line.strip() for line in common.COMMON_ARGS_DOC.splitlines()]
    start = doc.index(shared[0])
    assert doc[start : start + len(shared)] == shared
    assert "{common_args}" not in builder.__doc__
    # The shared arguments go on to the generic builder, each documented once.
    kinds = [p.kind for p in inspect.signature(builder).parameters.values()]
    assert kinds[-1] is inspect.Parameter.VAR_KEYWORD
    shared_args = [
        p.name for p in inspect.signature(common.network).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "name"
    ]
    assert shared_args == [
        "num_classes", "input_shape", "dropout", "include_top", "classifier_activation"
    ]
    for arg in shared_args:
        assert any(line.startswith(f"{arg}:") for line in shared), arg


@pytest.mark.parametrize("builder", [zoo.preresnet, zoo.resnext, zoo.wide_resnet, zoo.densenet])
def test_every_family_passes_the_shared_arguments_on(builder):
    model = {
        zoo.preresnet: lambda **kw: builder(20, **kw),
        zoo.resnext: lambda **kw: builder(11, 2, 4, widen_factor=1, **kw),
        zoo.wide_resnet: lambda **kw: builder(10, 1, **kw),
        zoo.densenet: lambda **kw: builder(10, 4, bottleneck=False, **kw),
    }[builder](
        num_classes=3, input_shape=(8, 8, 1), dropout=zoo.DropoutPlan(0.1, "head"),
        include_top=True, classifier_activation=None,
    )
    assert model.input.shape == (None, 8, 8, 1) and model.output.shape == (None, 3)
    assert model.get_layer("head_dropout").rate == 0.1
    assert model.get_layer("predictions").activation is keras.activations.linear


@pytest.mark.parametrize("name, build", [
    ("preresnet", lambda **kw: zoo.preresnet(20, **kw)),
    ("wide_resnet", lambda **kw: zoo.wrn_10_1(**kw)),
])
def test_a_family_rejects_an_unknown_keyword_by_its_own_name(name, build):
    with pytest.raises(TypeError, match=rf"{name}\(\) got an unexpected keyword argument 'num_cl"):
        build(num_class=3)


# -- stride-2 padding: torch's padding=1 is symmetric --------------------------


@pytest.mark.parametrize(
    "builder, block, conv",
    [
        (lambda: zoo.preresnet(20), "stage2_block1", "conv1"),
        (lambda: zoo.preresnet(11, block="bottleneck"), "stage3_block1", "conv2"),
        (lambda: zoo.wide_resnet(10, 1), "stage2_block1", "conv1"),
        (lambda: zoo.resnext(11, 2, 4, widen_factor=1), "stage2_block1", "conv2"),
    ],
)
def test_strided_3x3_branch_is_aligned_with_the_1x1_shortcut(graph, builder, block, conv):
    """Output pixel (i, j) of both must read input pixel (2i, 2j).

    With a centre-tap kernel the strided 3x3 conv samples its input; the 1x1
    strided shortcut with an averaging kernel samples it too. Keras'
    "same" padding would put the 3x3 centre on (2i + 1, 2j + 1).
    """
    model = builder()
    pad = model.get_layer(f"{block}_{conv}_pad")
    strided = model.get_layer(f"{block}_{conv}")
    shortcut = model.get_layer(f"{block}_shortcut_conv")
    assert graph.producer(model, strided.name) == pad.name
    assert strided.padding == "valid" and pad.padding == ((1, 1), (1, 1))

    k = np.zeros(strided.kernel.shape, "float32")
    k[1, 1] = 1.0 / k.shape[2]  # centre tap, averaged over the group's inputs
    strided.kernel.assign(k)
    shortcut.kernel.assign(np.full(shortcut.kernel.shape, 1.0 / shortcut.kernel.shape[2], "float32"))
    image = np.random.default_rng(0).normal(size=(1, 6, 6, 1)).astype("float32")

    def through(layers, channels):
        x = np.repeat(image, channels, axis=-1)
        for layer in layers:
            x = layer(x)
        return keras.ops.convert_to_numpy(x)[..., 0]

    branch = through([pad, strided], strided.kernel.shape[2] * strided.groups)
    skip = through([shortcut], shortcut.kernel.shape[2])
    np.testing.assert_allclose(branch, image[:, ::2, ::2, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(skip, branch, rtol=1e-5, atol=1e-6)


def test_stride_one_convs_keep_same_padding():
    model = zoo.preresnet(20)
    pads = [l.name for l in model.layers if isinstance(l, keras.layers.ZeroPadding2D)]
    assert pads == ["stage2_block1_conv1_pad", "stage3_block1_conv1_pad"]
    assert model.get_layer("stage2_block1_conv2").padding == "same"


# -- classifier initialisation ------------------------------------------------


def _uniform_cdf(bound):
    return lambda v: np.clip((v + bound) / (2 * bound), 0.0, 1.0)


@pytest.mark.parametrize(
    "builder, fan_in, kernel, bias",
    [
        # nn.Linear's default: kernel and bias U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
        (lambda: zoo.preresnet(20, num_classes=100), 64, "uniform", "uniform"),
        (lambda: zoo.densenet(22, 4, num_classes=100), 23, "uniform", "uniform"),
        # wrn.py zeroes the Linear bias.
        (lambda: zoo.wide_resnet(10, 1, num_classes=100), 64, "uniform", "zeros"),
        # resnext.py: init.kaiming_normal(classifier.weight), bias zeroed.
        (lambda: zoo.resnext(11, 2, 4, widen_factor=1, num_classes=100), 256, "normal", "zeros"),
    ],
)
def test_classifier_is_initialised_as_the_reference(builder, fan_in, kernel, bias):
    from scipy import stats

    keras.utils.set_random_seed(0)
    dense = builder().get_layer("predictions")
    assert dense.kernel.shape[0] == fan_in
    w = keras.ops.convert_to_numpy(dense.kernel).ravel()
    b = keras.ops.convert_to_numpy(dense.bias)
    bound = 1.0 / np.sqrt(fan_in)
    if kernel == "uniform":
        assert np.abs(w).max() <= bound
        assert stats.kstest(w, _uniform_cdf(bound)).pvalue > 1e-3
    else:
        assert stats.kstest(w, stats.norm(0.0, np.sqrt(2.0 / fan_in)).cdf).pvalue > 1e-3
        assert np.abs(w).max() > 2 * np.sqrt(2.0 / fan_in)  # untruncated
    if bias == "zeros":
        np.testing.assert_array_equal(b, 0.0)
    else:
        assert np.abs(b).max() <= bound and np.abs(b).min() > 0
        assert stats.kstest(b, _uniform_cdf(bound)).pvalue > 1e-3


def test_glorot_would_fail_the_reference_kernel_check():
    # Guards the check above: Keras' default (Glorot uniform) is a different law.
    from scipy import stats

    w = keras.ops.convert_to_numpy(keras.initializers.GlorotUniform(seed=0)((64, 100))).ravel()
    assert stats.kstest(w, _uniform_cdf(1.0 / np.sqrt(64))).pvalue < 1e-3
