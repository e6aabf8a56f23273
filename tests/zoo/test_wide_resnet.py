"""Wide ResNet builder: depth and width, WRN's own dropout placement."""

import pytest

import zoo


@pytest.mark.parametrize("depth", [16.0, 12, 4, None])
def test_invalid_depth_is_rejected_with_the_value(depth):
    with pytest.raises(ValueError, match=f"Received: depth={depth!r}"):
        zoo.wide_resnet(depth, 1)


@pytest.mark.parametrize("width", [0, 1.5, True])
def test_invalid_width_is_rejected_with_the_value(width):
    with pytest.raises(ValueError, match=f"Received: width={width!r}"):
        zoo.wide_resnet(10, width)


def test_stage_widths_are_16k_32k_64k():
    model = zoo.wide_resnet(10, 3)
    assert [model.get_layer(f"stage{s}_block1_conv2").filters for s in (1, 2, 3)] == [48, 96, 192]


def test_width_one_keeps_the_first_shortcut_identity():
    names = {l.name for l in zoo.wide_resnet(10, 1).layers}
    assert "stage1_block1_shortcut_conv" not in names
    assert "stage2_block1_shortcut_conv" in names


def test_wider_first_stage_projects_the_pre_activated_input(graph):
    model = zoo.wide_resnet(10, 2)
    assert graph.producer(model, "stage1_block1_shortcut_conv") == "stage1_block1_relu1"


def test_wrn_own_placement_is_between_the_convs(graph):
    model = zoo.wide_resnet(16, 1, dropout=zoo.DropoutPlan(0.3, "before_conv"))
    drops = graph.dropout_names(model)
    assert len(drops) == 6
    for drop in drops:
        prefix = drop[: -len("_dropout")]
        assert graph.producer(model, drop) == f"{prefix}_relu2"
        assert graph.consumers(model, drop) == [f"{prefix}_conv2"]


def test_after_conv_drops_the_branch_before_the_add(graph):
    model = zoo.wide_resnet(10, 1, dropout=zoo.DropoutPlan(0.3, "after_conv"))
    drops = graph.dropout_names(model)
    assert len(drops) == 3
    for drop in drops:
        prefix = drop[: -len("_dropout")]
        assert graph.producer(model, drop) == f"{prefix}_conv2"
        assert graph.consumers(model, drop) == [f"{prefix}_add"]


def test_raw_input_shortcut_is_an_option(graph):
    model = zoo.wide_resnet(10, 2, shortcut_input="input")
    assert graph.producer(model, "stage1_block1_shortcut_conv") == "stem_conv"


def test_depth_counts_the_shortcut_convs_unlike_preresnet():
    wrn = zoo.wide_resnet(10, 1)
    pre = zoo.preresnet(8)
    assert [(l.name, type(l)) for l in wrn.layers] == [(l.name, type(l)) for l in pre.layers]
    assert wrn.count_params() == pre.count_params()
