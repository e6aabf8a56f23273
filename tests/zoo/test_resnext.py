"""ResNeXt builder: grouped convs, widths, post-activation blocks."""

import pytest

import zoo


@pytest.mark.parametrize("depth", [29.0, 28, 2])
def test_invalid_depth_is_rejected_with_the_value(depth):
    with pytest.raises(ValueError, match=f"Received: depth={depth!r}"):
        zoo.resnext(depth, 8, 64)


@pytest.mark.parametrize("arg", ["cardinality", "base_width", "widen_factor"])
@pytest.mark.parametrize("value", [0, 2.0, False])
def test_invalid_widths_are_rejected_with_the_value(arg, value):
    kwargs = {"cardinality": 2, "base_width": 4, arg: value}
    with pytest.raises(ValueError, match=f"Received: {arg}={value!r}"):
        zoo.resnext(11, **kwargs)


def test_group_and_output_widths_follow_cardinality_and_widen_factor():
    model = zoo.resnext(11, 4, 2, widen_factor=2)
    convs = [model.get_layer(f"stage{s}_block1_conv2") for s in (1, 2, 3)]
    assert [c.filters for c in convs] == [8, 16, 32]
    assert {c.groups for c in convs} == {4}
    assert [model.get_layer(f"stage{s}_block1_conv3").filters for s in (1, 2, 3)] == [128, 256, 512]
    assert convs[1].strides == (2, 2)


def test_blocks_are_post_activation_with_bn_projection(graph):
    model = zoo.resnext(20, 2, 4)
    assert graph.producer(model, "stage1_block1_conv1") == "stem_relu"
    assert graph.producer(model, "stage1_block1_shortcut_bn") == "stage1_block1_shortcut_conv"
    assert graph.producer(model, "stage1_block2_out") == "stage1_block2_add"
    assert "stage1_block2_shortcut_conv" not in {l.name for l in model.layers}


@pytest.mark.parametrize(
    "position, before, after",
    [("before_bn", "conv3", "bn3"), ("before_conv", "relu2", "conv3"), ("after_conv", "conv3", "bn3")],
)
def test_dropout_sits_at_its_position_in_every_block(graph, position, before, after):
    model = zoo.resnext(11, 2, 4, dropout=zoo.DropoutPlan(0.2, position))
    drops = graph.dropout_names(model)
    assert len(drops) == 3
    for drop in drops:
        prefix = drop[: -len("_dropout")]
        assert graph.producer(model, drop) == f"{prefix}_{before}"
        assert graph.consumers(model, drop) == [f"{prefix}_{after}"]
