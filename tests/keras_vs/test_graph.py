"""`keras_vs.graph`: reading a model tree into views and edges, walking it,
and rebuilding it with per-edge actions."""

import keras
import numpy as np
import pytest
from keras import layers as L

from keras_vs import graph
from keras_vs.graph import Action, GraphError, ModelGraph, NewLayer


def _fork():
    """x -> drop -> {bn (output 0), fc (output 1)}."""
    x = L.Input((4,), name="x")
    d = L.Dropout(0.5, name="drop")(x)
    return keras.Model(x, [L.BatchNormalization(name="bn")(d), L.Dense(2, name="fc")(d)])


def _nested():
    inner = keras.Sequential([L.Input((4,)), L.Dense(4, name="in_fc")], name="inner")
    mid_in = L.Input((4,))
    mid = keras.Model(mid_in, inner(L.ReLU(name="mid_relu")(mid_in)), name="mid")
    x = L.Input((4,))
    return keras.Model(x, L.BatchNormalization(name="bn")(mid(x)), name="outer")


def _node(view, name):
    (node,) = [n for n in view.nodes if n.operation.name == name]
    return node


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.uniform(0.5, 1.5, v.shape).astype(v.dtype))
    return model


X = np.random.default_rng(1).normal(size=(2, 4)).astype("float32")


def test_has_graph_for_functional_and_built_sequential():
    assert graph.has_graph(_fork())
    assert graph.has_graph(keras.Sequential([L.Input((2,)), L.Dense(1)]))


def test_has_graph_is_false_for_unbuilt_sequential_and_layers():
    assert not graph.has_graph(keras.Sequential([L.Dense(1)]))
    assert not graph.has_graph(L.Dense(1))


def test_unbuilt_sequential_gets_a_clear_error():
    with pytest.raises(GraphError, match="is not built.*Received: model=Sequential 'lazy'"):
        ModelGraph(keras.Sequential([L.Dense(1)], name="lazy"))


def test_non_model_is_echoed():
    with pytest.raises(GraphError, match="Received: model="):
        ModelGraph("model.keras")


def test_nested_models_become_views_with_hierarchical_prefixes():
    g = ModelGraph(_nested())
    assert [v.prefix for v in g.views] == ["", "mid/", "mid/inner/"]
    assert g.views[2].qualname(g.views[2].model.get_layer("in_fc")) == "mid/inner/in_fc"


def test_a_nested_model_called_twice_is_one_view_with_two_calls():
    inner_in = L.Input((4,))
    inner = keras.Model(inner_in, L.Dense(4)(inner_in), name="inner")
    x = L.Input((4,))
    g = ModelGraph(keras.Model(x, inner(inner(x))))
    (child,) = g.views[1:]
    assert len(child.calls) == 2 and len(g.root.children) == 2


def test_nodes_are_in_topological_order():
    g = ModelGraph(_fork())
    names = [n.operation.name for n in g.root.nodes]
    assert names.index("drop") < names.index("bn") and names.index("drop") < names.index("fc")


def test_a_forking_tensor_has_one_out_edge_per_consumer():
    g = ModelGraph(_fork())
    drop = _node(g.root, "drop")
    consumers = sorted(e.consumer_name for e in g.root.out_edges(drop.outputs[0]))
    assert consumers == ["bn", "fc"]


def test_model_outputs_are_out_edges_with_a_slot():
    g = ModelGraph(_fork())
    fc = _node(g.root, "fc")
    (edge,) = g.root.out_edges(fc.outputs[0])
    assert (edge.node, edge.slot, edge.consumer_name) == (None, 1, "<output 1>")


def test_in_edges_count_a_tensor_read_twice_once():
    x = L.Input((4,))
    model = keras.Model(x, L.Add(name="add")([x, x]))
    g = ModelGraph(model)
    assert len(g.root.in_edges(_node(g.root, "add"))) == 1


def test_producer_of_a_model_input_is_none():
    g = ModelGraph(_fork())
    assert g.root.producer(g.root.inputs[0]) is None
    drop = _node(g.root, "drop")
    assert g.root.producer(drop.outputs[0]) is drop


def test_all_layers_yields_a_shared_layer_once():
    x = L.Input((4,))
    dense = L.Dense(4, name="shared")
    model = keras.Model(x, dense(dense(x)))
    names = [layer.name for _, layer in ModelGraph(model).all_layers()]
    assert names.count("shared") == 1


def test_taken_names_include_nested_layers_and_models():
    assert {"outer", "mid", "inner", "in_fc", "mid_relu", "bn"} <= ModelGraph(_nested()).taken_names()


def test_walk_enters_and_leaves_nested_models_and_reports_outputs():
    g = ModelGraph(_nested())
    seen, outputs = [], []

    def visit(view, node, state):
        seen.append(view.qualname(node.operation))
        return state

    graph.walk(g.root.out_edges(g.root.inputs[0]), visit,
               on_output=lambda view, slot, state: outputs.append(slot), state=())
    assert seen == ["mid/mid_relu", "mid/inner/in_fc", "bn"]
    assert outputs == [0]


def test_walk_sites_visits_call_sites_across_nested_models():
    g = ModelGraph(_nested())
    seen = []

    def visit(site, state):
        seen.append((site.name, site.view.prefix))
        return state

    graph.model_graph.walk_sites(g.root.out_edges(g.root.inputs[0]), visit, state=())
    assert seen == [("mid/mid_relu", "mid/"), ("mid/inner/in_fc", "mid/inner/"), ("bn", "")]


def test_call_sites_of_a_nested_model_call_lead_to_its_view():
    g = ModelGraph(_nested())
    (call,) = g.root.call_sites()[:1]
    assert call.name == "mid" and call.child.prefix == "mid/"
    assert call.child.calls[0][0] is g.root
    mid_relu = call.child.call_sites()[0]
    assert mid_relu.child is None and mid_relu.name == "mid/mid_relu"


def test_edges_name_their_consuming_call_site():
    g = ModelGraph(_fork())
    (drop,) = [s for s in g.root.call_sites() if s.name == "drop"]
    consumers = [e.consumer for e in drop.out_edges()]
    assert sorted(c.name for c in consumers) == ["bn", "fc"]
    assert [e.consumer for e in g.root.output_edges()] == [None, None]
    assert g.root.producer_site(g.root.inputs[0]) is None
    with pytest.raises(ValueError, match="Received: tensor="):
        drop.output_slot(g.root.inputs[0])


def test_walk_stops_where_visit_returns_none():
    g = ModelGraph(_fork())
    seen = []

    def visit(view, node, state):
        seen.append(node.operation.name)
        return None

    graph.walk(g.root.out_edges(g.root.inputs[0]), visit)
    assert seen == ["drop"]


def test_rebuild_without_actions_copies_layers_and_weights():
    model = _randomize(_fork())
    new = graph.rebuild(ModelGraph(model), {})
    assert new is not model and new.get_layer("fc") is not model.get_layer("fc")
    for a, b in zip(model.weights, new.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    for a, b in zip(model(X, training=False), new(X, training=False)):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(b), keras.ops.convert_to_numpy(a), atol=1e-6)


def test_rebuild_with_share_weights_reuses_the_layers():
    model = _fork()
    new = graph.rebuild(ModelGraph(model), {}, share_weights=True)
    assert new.get_layer("fc") is model.get_layer("fc")


def test_bypass_on_one_edge_of_a_fork_keeps_the_other():
    model = _fork()
    g = ModelGraph(model)
    drop = _node(g.root, "drop")
    (to_bn,) = [e for e in g.root.out_edges(drop.outputs[0]) if e.consumer_name == "bn"]
    new = graph.rebuild(g, {to_bn.key: (Action("bypass"),)})
    assert new.get_layer("bn").input.name == new.inputs[0].name
    assert new.get_layer("fc").input.name == new.get_layer("drop").output.name


def test_via_replaces_and_after_inserts_a_new_layer():
    model = _fork()
    g = ModelGraph(model)
    drop = _node(g.root, "drop")
    edges = {e.consumer_name: e for e in g.root.out_edges(drop.outputs[0])}
    relu = NewLayer(L.ReLU, {"name": "new_relu"})
    act = NewLayer(L.Activation, {"name": "new_tanh", "activation": "tanh"})
    new = graph.rebuild(g, {edges["bn"].key: (Action("via", relu),),
                            edges["fc"].key: (Action("after", act),)})
    assert new.get_layer("bn").input.name == new.get_layer("new_relu").output.name
    assert new.get_layer("new_relu").input.name == new.inputs[0].name
    assert new.get_layer("fc").input.name == new.get_layer("new_tanh").output.name
    assert new.get_layer("new_tanh").input.name == new.get_layer("drop").output.name


def test_rebuild_keeps_nested_sequential_models_sequential():
    new = graph.rebuild(ModelGraph(_nested()), {})
    assert isinstance(new.get_layer("mid").get_layer("inner"), keras.Sequential)


def test_lambda_layers_are_reused_not_deserialised():
    x = L.Input((4,))
    model = keras.Model(x, L.Lambda(lambda t: t * 3.0, name="triple")(x))
    new = graph.rebuild(ModelGraph(model), {})
    assert new.get_layer("triple") is model.get_layer("triple")
    np.testing.assert_allclose(new(X), 3.0 * X, rtol=1e-6)


class _NoConfig(L.Layer):
    def __init__(self, table, **kwargs):
        super().__init__(**kwargs)
        self.table = table

    def call(self, x):
        return x


def test_a_layer_without_config_is_named_before_anything_is_built():
    x = L.Input((4,))
    model = keras.Model(x, _NoConfig(object(), name="odd")(x))
    with pytest.raises(GraphError, match="Cannot rebuild layer 'odd' \\(_NoConfig\\).*share_weights"):
        graph.rebuild(ModelGraph(model), {})


def test_sharing_rebuilds_a_layer_without_config():
    x = L.Input((4,))
    model = keras.Model(x, _NoConfig(object(), name="odd")(x))
    new = graph.rebuild(ModelGraph(model), {}, share_weights=True)
    assert new.get_layer("odd") is model.get_layer("odd")


class _Renames(L.Layer):
    """Holds a BN; rebuilt from its config it takes another name, as
    keras-hub's DepthwiseConvBlock does (it appends "_0" to its own)."""

    def __init__(self, name=None, **kwargs):
        super().__init__(name=None if name is None else f"{name}_0", **kwargs)
        self.bn = L.BatchNormalization(name="inner_bn")

    def call(self, x, training=None):
        return self.bn(x, training=training)


class _Backbone(keras.Model):
    """A Functional subclass, as keras-hub backbones are (copied as Functional)."""

    def __init__(self, **kwargs):
        x = L.Input((4,))
        super().__init__(x, L.Dense(4, name="bb_fc")(x), **kwargs)


def _renaming_model():
    x = L.Input((4,))
    h = _Backbone(name="backbone")(x)
    return _randomize(keras.Model(x, _Renames(name="blk")(L.ReLU(name="relu")(h)), name="m"))


def test_layer_pairs_pair_a_copy_by_place_not_by_name():
    model = _renaming_model()
    model(X)  # builds the custom layer's BN
    copy = graph.copy(model)
    pairs = graph.layer_pairs(model, copy)
    blk, inner = model.layers[-1], model.layers[-1].bn
    paired = {id(a): b for a, b in pairs}
    assert paired[id(blk)].name != blk.name  # the copy renamed it; still found
    assert paired[id(inner)] is copy.layers[-1].bn
    assert isinstance(paired[id(model.get_layer("backbone"))], keras.Model)
    for a, b in pairs:
        for u, v in zip(a.weights, b.weights, strict=True):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(u), keras.ops.convert_to_numpy(v))


def test_layer_pairs_reject_a_model_that_is_not_a_copy():
    with pytest.raises(GraphError, match="Model 'outer' is not a copy of 'm'.*Received: model="):
        graph.layer_pairs(_renaming_model(), _nested())
