"""`find_disharmony`: which dropouts feed which BNs, how, and by what path."""

import keras
import numpy as np
import pytest
from keras import layers as L

import keras_vs as kvs
from keras_vs import analysis
from keras_vs.graph import GraphError


def _pairs(model):
    return [(f.dropout, f.bn, f.kind) for f in kvs.find_disharmony(model)]


def test_dropout_straight_into_bn_is_direct():
    x = L.Input((4,))
    y = L.BatchNormalization(name="bn")(L.Dropout(0.5, name="drop")(x))
    assert _pairs(keras.Model(x, y)) == [("drop", "bn", "direct")]


@pytest.mark.parametrize(
    "linear",
    [lambda: L.Dense(4, name="lin"), lambda: L.EinsumDense("ab,bc->ac", 4, name="lin")],
)
def test_dense_between_makes_it_through_linear(linear):
    x = L.Input((4,))
    y = L.BatchNormalization(name="bn")(linear()(L.Dropout(0.5, name="drop")(x)))
    (finding,) = kvs.find_disharmony(keras.Model(x, y))
    assert (finding.kind, finding.path) == ("through_linear", ("drop", "lin", "bn"))


@pytest.mark.parametrize(
    "conv",
    [lambda: L.Conv2D(2, 3, padding="same", name="lin"),
     lambda: L.DepthwiseConv2D(3, padding="same", name="lin"),
     lambda: L.SeparableConv2D(2, 3, padding="same", name="lin"),
     lambda: L.Conv2DTranspose(2, 3, padding="same", name="lin")],
)
def test_convolutions_are_linear(conv):
    x = L.Input((5, 5, 2))
    y = L.BatchNormalization(name="bn")(conv()(L.Dropout(0.5, name="drop")(x)))
    assert _pairs(keras.Model(x, y)) == [("drop", "bn", "through_linear")]


def test_direct_path_wins_over_a_linear_one():
    x = L.Input((4,))
    d = L.Dropout(0.5, name="drop")(x)
    y = L.Add(name="add")([d, L.Dense(4, name="fc")(d)])
    (finding,) = kvs.find_disharmony(keras.Model(x, L.BatchNormalization(name="bn")(y)))
    assert (finding.kind, finding.path) == ("direct", ("drop", "add", "bn"))


def _image_paths():
    def add(d):
        return L.Add(name="mid")([d, d])

    def concat(d):
        return L.Concatenate(name="mid")([d, d])

    return {
        "add": add,
        "concatenate": concat,
        "activation": lambda d: L.Activation("relu", name="mid")(d),
        "relu": lambda d: L.ReLU(name="mid")(d),
        "max_pooling": lambda d: L.MaxPooling2D(2, name="mid")(d),
        "average_pooling": lambda d: L.AveragePooling2D(2, name="mid")(d),
        "reshape": lambda d: L.Reshape((6, 12), name="mid")(d),
        "flatten": lambda d: L.Flatten(name="mid")(d),
        "zero_padding": lambda d: L.ZeroPadding2D(1, name="mid")(d),
    }


@pytest.mark.parametrize("kind", sorted(_image_paths()))
def test_sees_through_merges_activations_pooling_and_reshapes(kind):
    x = L.Input((6, 6, 2))
    y = _image_paths()[kind](L.Dropout(0.5, name="drop")(x))
    (finding,) = kvs.find_disharmony(keras.Model(x, L.BatchNormalization(name="bn")(y)))
    assert (finding.kind, finding.path) == ("direct", ("drop", "mid", "bn"))


def test_path_lists_every_layer_name_in_order():
    x = L.Input((6, 6, 2))
    y = L.Dropout(0.5, name="drop")(x)
    y = L.Conv2D(2, 1, name="conv")(y)
    y = L.Activation("relu", name="relu")(y)
    y = L.MaxPooling2D(2, name="pool")(y)
    (finding,) = kvs.find_disharmony(keras.Model(x, L.BatchNormalization(name="bn")(y)))
    assert finding.path == ("drop", "conv", "relu", "pool", "bn")


def test_a_bn_stops_the_walk():
    x = L.Input((4,))
    y = L.BatchNormalization(name="bn1")(L.Dropout(0.5, name="drop")(x))
    y = L.BatchNormalization(name="bn2")(L.Dense(4)(y))
    assert _pairs(keras.Model(x, y)) == [("drop", "bn1", "direct")]


def test_layer_normalization_stops_the_walk():
    x = L.Input((4,))
    y = L.LayerNormalization(name="ln")(L.Dropout(0.5, name="drop")(x))
    assert _pairs(keras.Model(x, L.BatchNormalization(name="bn")(y))) == []


def test_dropout_after_the_last_bn_is_not_a_finding():
    x = L.Input((4,))
    y = L.Dropout(0.5)(L.BatchNormalization()(x))
    assert kvs.find_disharmony(keras.Model(x, L.Dense(2)(y))) == []


def test_one_dropout_feeding_two_bns_gives_two_findings():
    x = L.Input((4,))
    d = L.Dropout(0.5, name="drop")(x)
    model = keras.Model(x, [L.BatchNormalization(name="bn_a")(d),
                            L.BatchNormalization(name="bn_b")(L.Dense(3, name="fc")(d))])
    assert sorted(_pairs(model)) == [("drop", "bn_a", "direct"), ("drop", "bn_b", "through_linear")]


def test_shared_dropout_called_twice_is_one_finding_per_bn():
    x = L.Input((4,))
    drop = L.Dropout(0.5, name="drop")
    a = L.BatchNormalization(name="bn")(drop(x))
    y = drop(L.Dense(4, name="fc")(x))
    model = keras.Model(x, [a, L.BatchNormalization(name="bn_other")(y)])
    assert sorted(_pairs(model)) == [("drop", "bn", "direct"), ("drop", "bn_other", "direct")]


@pytest.mark.parametrize(
    "make, shape, rate",
    [
        (lambda: L.Dropout(0.3, name="drop"), (4, 3), 0.3),
        (lambda: L.SpatialDropout1D(0.3, name="drop"), (4, 3), 0.3),
        (lambda: L.SpatialDropout2D(0.25, name="drop"), (4, 4, 3), 0.25),
        (lambda: L.SpatialDropout3D(0.2, name="drop"), (2, 4, 4, 3), 0.2),
        (lambda: L.GaussianDropout(0.4, name="drop"), (4, 3), 0.4),
        (lambda: L.AlphaDropout(0.1, name="drop"), (4, 3), 0.1),
        (lambda: kvs.Uout(0.15, name="drop"), (4, 3), 0.15),
    ],
    ids=["Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
         "GaussianDropout", "AlphaDropout", "Uout"],
)
def test_every_dropout_like_layer_is_found_with_its_rate(make, shape, rate):
    x = L.Input(shape)
    y = L.BatchNormalization(name="bn")(make()(x))
    (finding,) = kvs.find_disharmony(keras.Model(x, y))
    assert (finding.dropout, finding.bn, finding.kind) == ("drop", "bn", "direct")
    assert finding.rate == pytest.approx(rate)


@pytest.mark.tf_only  # Keras allows synchronized=True on TensorFlow only
def test_synchronized_batch_normalization_is_a_bn():
    x = L.Input((4,))
    y = L.BatchNormalization(synchronized=True, name="sync_bn")(L.Dropout(0.5, name="drop")(x))
    assert _pairs(keras.Model(x, y)) == [("drop", "sync_bn", "direct")]


def test_dropout_inside_a_nested_model_feeds_a_bn_outside():
    inner_in = L.Input((4,))
    inner = keras.Model(inner_in, L.Dropout(0.5, name="drop")(L.Dense(4, name="fc")(inner_in)),
                        name="inner")
    x = L.Input((4,))
    y = L.BatchNormalization(name="bn")(L.ReLU(name="relu")(inner(x)))
    (finding,) = kvs.find_disharmony(keras.Model(x, y))
    assert (finding.dropout, finding.bn, finding.kind) == ("inner/drop", "bn", "direct")
    assert finding.path == ("inner/drop", "relu", "bn")


def test_dropout_outside_feeds_a_bn_two_levels_down():
    deep = keras.Sequential([L.Input((4,)), L.BatchNormalization(name="bn")], name="deep")
    mid_in = L.Input((4,))
    mid = keras.Model(mid_in, deep(L.Activation("tanh", name="tanh")(mid_in)), name="mid")
    x = L.Input((4,))
    model = keras.Model(x, mid(L.Dropout(0.5, name="drop")(x)))
    (finding,) = kvs.find_disharmony(model)
    assert (finding.dropout, finding.bn) == ("drop", "mid/deep/bn")
    assert finding.path == ("drop", "mid/tanh", "mid/deep/bn")


def test_nested_model_called_twice_leaves_through_each_call():
    inner_in = L.Input((4,))
    inner = keras.Model(inner_in, L.Dropout(0.5, name="drop")(inner_in), name="inner")
    x = L.Input((4,))
    a = L.BatchNormalization(name="bn_a")(inner(x))
    b = L.BatchNormalization(name="bn_b")(L.Dense(4, name="fc")(inner(L.ReLU()(x))))
    model = keras.Model(x, [a, b])
    assert sorted(_pairs(model)) == [("inner/drop", "bn_a", "direct"),
                                     ("inner/drop", "bn_b", "through_linear")]


def test_sequential_models_are_analysed():
    model = keras.Sequential([L.Input((4,)), L.Dense(4, name="fc"), L.Dropout(0.2, name="drop"),
                              L.BatchNormalization(name="bn")])
    assert _pairs(model) == [("drop", "bn", "direct")]


def test_findings_come_in_graph_order():
    x = L.Input((4,))
    y = L.BatchNormalization(name="bn1")(L.Dropout(0.1, name="first")(x))
    y = L.BatchNormalization(name="bn2")(L.Dropout(0.2, name="second")(y))
    assert [f.dropout for f in kvs.find_disharmony(keras.Model(x, y))] == ["first", "second"]


def test_finding_prints_one_readable_line():
    finding = kvs.Finding("drop", "bn", "through_linear", ("drop", "fc", "bn"), 0.5)
    assert str(finding) == "drop -> bn (through_linear, rate=0.5): drop -> fc -> bn"


def test_the_model_is_not_modified():
    x = L.Input((4,))
    model = keras.Model(x, L.BatchNormalization()(L.Dropout(0.5)(x)))
    x = np.random.default_rng(0).normal(size=(3, 4)).astype("float32")
    layers = [(layer.name, len(layer._inbound_nodes)) for layer in model.layers]
    weights = [w.copy() for w in model.get_weights()]
    expected = keras.ops.convert_to_numpy(model(x))
    kvs.find_disharmony(model)
    assert [(layer.name, len(layer._inbound_nodes)) for layer in model.layers] == layers
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(model(x)), expected)


class _Subclassed(keras.Model):
    def call(self, x):
        return x


def test_subclassed_model_is_a_clear_error():
    model = _Subclassed(name="mine")
    model(np.ones((1, 2)))
    with pytest.raises(GraphError, match="subclassed model.*Received: model=_Subclassed 'mine'"):
        kvs.find_disharmony(model)


def test_not_a_model_is_echoed():
    with pytest.raises(GraphError, match="Received: model=.*Dense"):
        kvs.find_disharmony(L.Dense(2))


def test_dropout_rate_of_uout_is_its_beta():
    assert analysis.dropout_rate(kvs.Uout(0.3)) == pytest.approx(0.3)
    assert analysis.dropout_rate(L.Dropout(0.4)) == pytest.approx(0.4)


def _rnn_into_bn(rnn, shape=(5, 3)):
    x = L.Input(shape)
    return keras.Model(x, L.BatchNormalization(name="bn")(rnn(x)))


def test_lstm_dropout_into_bn_is_a_recurrent_finding():
    model = _rnn_into_bn(L.LSTM(4, dropout=0.2, recurrent_dropout=0.3, name="lstm"))
    (finding,) = kvs.find_disharmony(model)
    assert (finding.dropout, finding.bn, finding.kind, finding.path) == (
        "lstm", "bn", "recurrent", ("lstm", "bn"))
    assert finding.rate == pytest.approx(0.2)  # the input dropout
    assert "recurrent_dropout=0.3" in finding.note


def test_gru_recurrent_dropout_alone_is_found_with_rate_zero():
    (finding,) = kvs.find_disharmony(_rnn_into_bn(L.GRU(4, recurrent_dropout=0.3, name="gru")))
    assert (finding.dropout, finding.kind, finding.rate) == ("gru", "recurrent", 0.0)
    assert "recurrent_dropout=0.3" in finding.note


def test_bidirectional_takes_the_largest_rate_of_its_two_directions():
    forward = L.GRU(4, dropout=0.1, return_sequences=True)
    backward = L.GRU(4, dropout=0.4, return_sequences=True, go_backwards=True)
    model = _rnn_into_bn(L.Bidirectional(forward, backward_layer=backward, name="bi"))
    (finding,) = kvs.find_disharmony(model)
    assert (finding.dropout, finding.kind) == ("bi", "recurrent")
    assert finding.rate == pytest.approx(0.4)


@pytest.mark.parametrize(
    "rnn, shape",
    [(lambda: L.SimpleRNN(4, dropout=0.2, name="rnn"), (5, 3)),
     (lambda: L.RNN([L.LSTMCell(4), L.GRUCell(4, dropout=0.2)], name="rnn"), (5, 3)),
     (lambda: L.ConvLSTM1D(2, 3, dropout=0.2, name="rnn"), (4, 6, 2))],
)
def test_other_recurrent_layers_with_dropout_are_found(rnn, shape):
    (finding,) = kvs.find_disharmony(_rnn_into_bn(rnn(), shape))
    assert (finding.dropout, finding.kind, finding.rate) == ("rnn", "recurrent", pytest.approx(0.2))


def test_recurrent_layer_without_dropout_is_not_found():
    model = _rnn_into_bn(L.LSTM(4, dropout=0.0, recurrent_dropout=0.0, name="lstm"))
    assert kvs.find_disharmony(model) == []


def test_recurrent_finding_sees_through_a_dense_layer():
    x = L.Input((5, 3))
    y = L.Dense(2, name="fc")(L.LSTM(4, dropout=0.2, name="lstm")(x))
    (finding,) = kvs.find_disharmony(keras.Model(x, L.BatchNormalization(name="bn")(y)))
    assert (finding.kind, finding.path) == ("recurrent", ("lstm", "fc", "bn"))
