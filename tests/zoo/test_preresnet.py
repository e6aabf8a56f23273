"""PreResNet builder: depths, blocks, shortcuts and dropout placement."""

import keras
import pytest

import zoo


@pytest.mark.parametrize(
    "depth, block", [(21, "basic"), (8.0, "basic"), (2, "basic"), (21, "bottleneck"), ("20", "basic")]
)
def test_invalid_depth_is_rejected_with_the_value(depth, block):
    with pytest.raises(ValueError, match=f"Received: depth={depth!r}"):
        zoo.preresnet(depth, block=block)


def test_unknown_block_is_rejected():
    with pytest.raises(ValueError, match="Received: block='wide'"):
        zoo.preresnet(20, block="wide")


@pytest.mark.parametrize("depth, block, n", [(20, "basic", 3), (11, "bottleneck", 1), (29, "bottleneck", 3)])
def test_depth_sets_blocks_per_stage(depth, block, n):
    names = {layer.name for layer in zoo.preresnet(depth, block=block).layers}
    for stage in (1, 2, 3):
        assert f"stage{stage}_block{n}_add" in names
        assert f"stage{stage}_block{n + 1}_add" not in names


def test_basic_blocks_project_only_where_the_shape_changes():
    model = zoo.preresnet(20)
    shortcuts = sorted(l.name for l in model.layers if "shortcut" in l.name)
    assert shortcuts == ["stage2_block1_shortcut_conv", "stage3_block1_shortcut_conv"]
    assert model.get_layer("stage3_block1_shortcut_conv").kernel_size == (1, 1)


def test_bottleneck_expands_four_times_and_projects_the_first_block():
    model = zoo.preresnet(11, block="bottleneck")
    assert model.get_layer("stage1_block1_shortcut_conv").filters == 64
    assert model.get_layer("stage3_block1_conv3").filters == 256
    assert model.get_layer("stage3_block1_conv2").strides == (2, 2)


def test_pre_activation_order_and_final_bn_relu(graph):
    model = zoo.preresnet(20)
    assert graph.producer(model, "stage1_block1_bn1") == "stem_conv"
    assert graph.producer(model, "stage1_block1_conv1") == "stage1_block1_relu1"
    assert graph.producer(model, "post_bn") == "stage3_block3_add"
    assert graph.producer(model, "avg_pool") == "post_relu"


@pytest.mark.parametrize(
    "block, position, before, after",
    [
        ("basic", "before_bn", "conv1", "bn2"),
        ("basic", "before_conv", "relu2", "conv2"),
        ("bottleneck", "before_bn", "conv2", "bn3"),
        ("bottleneck", "before_conv", "relu3", "conv3"),
        ("basic", "after_conv", "conv2", "add"),
        ("bottleneck", "after_conv", "conv3", "add"),
    ],
)
def test_dropout_sits_at_its_position_in_every_block(graph, block, position, before, after):
    depth = 20 if block == "basic" else 11
    model = zoo.preresnet(depth, block=block, dropout=zoo.DropoutPlan(0.2, position))
    drops = graph.dropout_names(model)
    assert len(drops) == (9 if block == "basic" else 3)
    for drop in drops:
        prefix = drop[: -len("_dropout")]
        assert graph.producer(model, drop) == f"{prefix}_{before}"
        assert graph.consumers(model, drop) == [f"{prefix}_{after}"]


def test_projection_shortcut_reads_the_raw_block_input_as_the_reference(graph):
    # preresnet.py: residual = self.downsample(x), x being the block input.
    model = zoo.preresnet(20)
    assert graph.producer(model, "stage2_block1_shortcut_conv") == "stage1_block3_add"
    assert graph.producer(model, "stage3_block1_shortcut_conv") == "stage2_block3_add"
    bottleneck = zoo.preresnet(11, block="bottleneck")
    assert graph.producer(bottleneck, "stage1_block1_shortcut_conv") == "stem_conv"


def test_he_et_al_shortcut_reads_the_pre_activation(graph):
    model = zoo.preresnet(20, shortcut_input="preact")
    assert graph.producer(model, "stage2_block1_shortcut_conv") == "stage2_block1_relu1"
    assert model.name == "preresnet-20"
    assert model.count_params() == zoo.preresnet(20).count_params()


def test_shortcut_input_changes_the_function_not_the_parameters():
    import numpy as np

    keras.utils.set_random_seed(0)
    raw = zoo.preresnet(20, input_shape=(8, 8, 3))
    preact = zoo.preresnet(20, input_shape=(8, 8, 3), shortcut_input="preact")
    preact.set_weights(raw.get_weights())
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    a = keras.ops.convert_to_numpy(raw(x, training=False))
    b = keras.ops.convert_to_numpy(preact(x, training=False))
    assert not np.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("value", ["raw", None, 1])
def test_unknown_shortcut_input_is_rejected(value):
    with pytest.raises(ValueError, match=f"Received: shortcut_input={value!r}"):
        zoo.preresnet(20, shortcut_input=value)


def test_has_no_dropout_by_default():
    model = zoo.preresnet(20)
    assert not any(isinstance(l, keras.layers.Dropout) for l in model.layers)
