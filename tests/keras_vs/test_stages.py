"""keras_vs.graph.stages: cutting a Functional graph into stages at chosen operations."""

import keras

from keras_vs.graph import ModelGraph
from keras_vs.graph import stages


def _graph():
    x = keras.Input((3,))
    d1, bn, d2 = keras.layers.Dense(4), keras.layers.BatchNormalization(), keras.layers.Dense(2)
    h = d1(x)
    y = d2(bn(h))
    side = keras.layers.Dense(5)(x)  # not needed for y
    return ModelGraph(keras.Model(x, [y, side])).root, (x, h, y, side), bn


def test_a_boundary_runs_one_stage_after_its_input():
    view, (x, h, y, side), bn = _graph()
    cut = stages.stages_of(view, lambda op: op is bn)
    assert (cut.level[id(x)], cut.level[id(h)], cut.level[id(y)], cut.level[id(side)]) == (0, 0, 1, 0)


def test_needed_nodes_are_those_the_tensors_depend_on_in_graph_order():
    view, (x, h, y, side), bn = _graph()
    needed = stages.needed_nodes(view, [y])
    assert [n.operation.__class__.__name__ for n in needed] == ["Dense", "BatchNormalization", "Dense"]
    assert stages.needed_nodes(view, [x]) == []


def test_a_stage_takes_what_earlier_stages_computed_and_gives_what_later_ones_read():
    view, (x, h, y, side), bn = _graph()
    cut = stages.stages_of(view, lambda op: op is bn)
    nodes = stages.needed_nodes(view, [y])
    last = stages.last_reads(nodes, cut.stage)
    assert last[id(h)] == 1
    assert stages.stage_io(nodes, cut.stage, 0, [], last) == ([x], [h])
    assert stages.stage_io(nodes, cut.stage, 1, [y], last) == ([h], [y])
    assert stages.stage_io(nodes, cut.stage, 2, [], last) == ([], [])


def test_per_example_bytes_is_the_largest_activation():
    view, (x, h, y, side), bn = _graph()
    assert stages.per_example_bytes(stages.needed_nodes(view, [y])) == 4 * 4
    free = keras.Input((None,))
    unknown = ModelGraph(keras.Model(free, keras.layers.ReLU()(free))).root
    assert stages.per_example_bytes(unknown.nodes) is None
