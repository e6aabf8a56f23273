"""`keras_vs.match`: one match per model, typed records the analysis and the policies share."""

import dataclasses

import keras
import pytest
from keras import layers as L

import keras_vs as kvs
from keras_vs import analysis
from keras_vs import match as match_lib
from keras_vs.graph.call_site import CallSite


def _fork():
    x = keras.Input((4,))
    d = L.Dropout(0.3, name="drop")(x)
    a = L.BatchNormalization(name="bn")(d)
    b = L.BatchNormalization(name="bn2")(L.Dense(4, name="fc")(d))
    return keras.Model(x, [L.Add()([a, b]), L.Activation("relu", name="relu")(d)])


def test_a_dropout_call_records_each_out_edge_and_the_bns_it_reaches():
    m = match_lib.match(_fork())
    (drop,) = m.dropouts
    assert (drop.name, drop.rate, drop.forced) == ("drop", 0.3, False)
    assert isinstance(drop.site, CallSite) and drop.layer.name == "drop"
    by_consumer = {e.edge.consumer_name: e for e in drop.edges}
    assert set(by_consumer) == {"bn", "fc", "relu"}
    assert [(r.name, r.kind, r.path) for r in by_consumer["bn"].reaches] == [("bn", "direct", ("drop", "bn"))]
    assert [(r.name, r.kind) for r in by_consumer["fc"].reaches] == [("bn2", "through_linear")]
    assert by_consumer["relu"].reaches == () and by_consumer["relu"].outputs == {"relu"}
    assert by_consumer["bn"].feeds_bn_directly and not by_consumer["fc"].feeds_bn_directly


def test_match_records_are_frozen():
    (drop,) = match_lib.match(_fork()).dropouts
    with pytest.raises(dataclasses.FrozenInstanceError):
        drop.rate = 0.5
    with pytest.raises(dataclasses.FrozenInstanceError):
        drop.edges[0].reaches = ()


def test_a_direct_path_wins_over_a_through_linear_one_to_the_same_bn():
    x = keras.Input((4,))
    d = L.Dropout(0.3, name="drop")(x)
    y = L.BatchNormalization(name="bn")(L.Add()([d, L.Dense(4)(d)]))
    (drop,) = match_lib.match(keras.Model(x, y)).dropouts
    assert {(r.name, r.kind) for r in drop.reaches} == {("bn", "direct"), ("bn", "through_linear")}
    assert [(f.bn, f.kind) for f in kvs.find_disharmony(keras.Model(x, y))] == [("bn", "direct")]


def test_reach_stops_at_blocking_normalizations():
    x = keras.Input((4,))
    y = L.BatchNormalization(name="bn")(L.LayerNormalization()(L.Dropout(0.3)(x)))
    (drop,) = match_lib.match(keras.Model(x, y)).dropouts
    assert drop.reaches == ()


def test_mc_dropout_calls_are_matched_but_not_editable():
    x = keras.Input((4,))
    y = L.BatchNormalization(name="bn")(L.Dropout(0.3, name="mc")(x, training=True))
    m = match_lib.match(keras.Model(x, y))
    assert [d.forced for d in m.dropouts] == [True] and m.editable == ()


def test_every_call_of_a_shared_layer_has_one_source():
    drop = L.Dropout(0.3, name="shared")
    x = keras.Input((4,))
    y = L.Add()([L.BatchNormalization()(drop(x)), L.BatchNormalization()(drop(x))])
    first, second = match_lib.match(keras.Model(x, y)).dropouts
    assert first.site != second.site and first.source == second.source


def test_hidden_pairs_name_the_custom_layer_and_the_visible_source():
    class Block(keras.layers.Layer):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.bn = L.BatchNormalization(name="inner_bn")

        def call(self, x, training=None):
            return self.bn(x, training=training)

    x = keras.Input((4,))
    m = match_lib.match(keras.Model(x, Block(name="block")(L.Dropout(0.2, name="d")(x))))
    (pair,) = m.hidden
    assert (pair.dropout, pair.bn, pair.inside) == ("d", "block/inner_bn", "block")
    assert pair.source == m.dropouts[0].source


def test_pairs_tie_each_finding_to_its_source_and_find_disharmony_reports_them():
    model = _fork()
    m = match_lib.match(model)
    pairs = analysis.pairs(m)
    assert [p.finding for p in pairs] == kvs.find_disharmony(model)
    assert {p.source for p in pairs} == {m.dropouts[0].source}


def test_call_sites_read_a_call_without_nodes():
    m = match_lib.match(_fork())
    sites = {s.name: s for s in m.graph.root.call_sites()}
    fc = sites["fc"]
    assert fc.layer.name == "fc" and len(fc.outputs) == 1
    (edge,) = fc.inputs
    assert edge.consumer == fc and m.graph.root.producer_site(edge.tensor) == sites["drop"]
    assert sites["drop"].output_slot(edge.tensor) == 0
    assert fc.child is None and not fc.training_forced
    assert m.graph.position(sites["drop"]) < m.graph.position(fc)
