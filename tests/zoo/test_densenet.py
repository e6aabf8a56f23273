"""DenseNet builder: growth, bottleneck, compression and stem defaults."""

import pytest

import keras_vs
import zoo


@pytest.mark.parametrize(
    "depth, bottleneck", [(21, True), (7, True), (11, False), (40.0, False), (3, False)]
)
def test_invalid_depth_is_rejected_with_the_value(depth, bottleneck):
    with pytest.raises(ValueError, match=f"Received: depth={depth!r}"):
        zoo.densenet(depth, 4, bottleneck=bottleneck)


@pytest.mark.parametrize(
    "arg, value",
    [
        ("compression", 0.0),
        ("compression", 1.5),
        ("compression", "half"),
        ("growth_rate", 0),
        ("stem_filters", -1),
        ("bottleneck", 1),
    ],
)
def test_invalid_arguments_are_rejected_with_the_value(arg, value):
    kwargs = {"depth": 10, "growth_rate": 4, "bottleneck": False, arg: value}
    with pytest.raises(ValueError, match=f"Received: {arg}={value!r}"):
        zoo.densenet(**kwargs)


@pytest.mark.parametrize("bottleneck, stem", [(True, 8), (False, 16)])
def test_default_stem_is_2k_with_bottleneck_else_16(bottleneck, stem):
    depth = 10 if bottleneck else 7
    model = zoo.densenet(depth, 4, bottleneck=bottleneck)
    assert model.get_layer("stem_conv").filters == stem


def test_channels_grow_by_k_and_transitions_compress_with_floor():
    model = zoo.densenet(22, 5, compression=0.5)  # stem 10, 3 layers per stage
    assert model.get_layer("stage1_block3_concat").output.shape[-1] == 25
    assert model.get_layer("transition1_conv").filters == 12
    assert model.get_layer("stage2_block3_concat").output.shape[-1] == 27
    assert model.get_layer("transition2_conv").filters == 13


def test_bottleneck_layer_is_bn_relu_conv1x1_bn_relu_conv3x3(graph):
    model = zoo.densenet(10, 4)
    chain = ["stage1_block1_bn1", "stage1_block1_relu1", "stage1_block1_conv1",
             "stage1_block1_bn2", "stage1_block1_relu2", "stage1_block1_conv2"]
    for before, after in zip(chain, chain[1:]):
        assert graph.producer(model, after) == before
    assert model.get_layer("stage1_block1_conv1").filters == 16


def test_transitions_halve_the_resolution():
    model = zoo.densenet(10, 4, input_shape=(16, 16, 3))
    assert model.get_layer("transition2_pool").output.shape[1:3] == (4, 4)


@pytest.mark.parametrize(
    "bottleneck, position, after",
    [(True, "before_bn", "bn2"), (True, "before_conv", "conv2"),
     (False, "before_bn", "bn1"), (False, "before_conv", "conv1")],
)
def test_dropout_acts_on_the_branch_of_every_dense_layer(graph, bottleneck, position, after):
    depth = 10 if bottleneck else 7
    model = zoo.densenet(depth, 4, bottleneck=bottleneck, dropout=zoo.DropoutPlan(0.2, position))
    drops = graph.dropout_names(model)
    assert len(drops) == 3
    for drop in drops:
        prefix = drop[: -len("_dropout")]
        assert graph.consumers(model, drop) == [f"{prefix}_{after}"]
        # The concatenation carries the undropped input forward.
        assert graph.producer(model, drop) not in graph.consumers(model, drop)
    assert "transition1_dropout" not in {l.name for l in model.layers}


@pytest.mark.parametrize("bottleneck, conv", [(True, "conv2"), (False, "conv1")])
def test_after_conv_drops_the_3x3_output_before_the_concat(graph, bottleneck, conv):
    # The reference's --drop: F.dropout(conv(...)) then torch.cat((x, out), 1).
    depth = 10 if bottleneck else 7
    model = zoo.densenet(depth, 4, bottleneck=bottleneck,
                         dropout=zoo.DropoutPlan(0.2, "after_conv"))
    drops = graph.dropout_names(model)
    assert len(drops) == 3
    for drop in drops:
        prefix = drop[: -len("_dropout")]
        assert graph.producer(model, drop) == f"{prefix}_{conv}"
        assert graph.consumers(model, drop) == [f"{prefix}_concat"]
    assert not any(name.startswith("transition") for name in drops)


def test_after_conv_reaches_every_later_bn_of_the_stage_and_the_transition():
    model = zoo.densenet(22, 4, dropout=zoo.DropoutPlan(0.2, "after_conv"))
    direct = {}
    for f in keras_vs.find_disharmony(model):
        if f.kind == "direct":
            direct.setdefault(f.dropout, set()).add(f.bn)
    assert direct["stage1_block1_dropout"] == {
        "stage1_block2_bn1", "stage1_block3_bn1", "transition1_bn"
    }
    assert direct["stage2_block3_dropout"] == {"transition2_bn"}
    assert direct["stage3_block2_dropout"] == {"stage3_block3_bn1", "post_bn"}
