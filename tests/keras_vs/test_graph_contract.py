"""The copy contract of `keras_vs.graph`: a model a tool returns is the model
it was given (its class, every layer's state, dtype policies, compile state),
made through Keras' own serialization contract."""

import warnings

import keras
import numpy as np
import pytest
from keras import layers as L

import keras_vs as kvs
from keras_vs import vocab
from keras_vs import graph
from keras_vs.graph import GraphError

X = np.random.default_rng(1).normal(size=(4, 4)).astype("float32")


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for v in model.weights:
        v.assign(rng.uniform(0.5, 1.5, v.shape).astype(v.dtype))
    return model


def _out(model, x=X):
    return keras.ops.convert_to_numpy(model(x, training=False))


@keras.saving.register_keras_serializable(package="keras_vs_tests")
class StepModel(keras.Model):
    """A Functional subclass with its own training step (counts its calls)."""

    def train_step(self, *args):  # (data) on TF and torch, (state, data) on JAX
        self.steps_seen = getattr(self, "steps_seen", 0) + 1
        return super().train_step(*args)


def _step_model():
    x = L.Input((4,))
    h = L.Dense(4, name="fc")(x)
    h = L.BatchNormalization(name="bn")(L.Dropout(0.5, name="drop")(h))
    return _randomize(StepModel(x, L.Dense(2, name="out")(h), name="step_model"))


@keras.saving.register_keras_serializable(package="keras_vs_tests")
class Tower(keras.Model):
    """A class that builds its own graph from hyperparameters (as a keras-hub
    backbone does) and returns them as its config."""

    def __init__(self, width=4, **kwargs):
        x = L.Input((4,))
        h = L.Dense(width, name="tower_fc")(x)
        h = L.BatchNormalization(name="tower_bn")(L.Dropout(0.5, name="tower_drop")(h))
        super().__init__(x, h, **kwargs)
        self.width = width

    def get_config(self):
        return {"width": self.width, "name": self.name, "trainable": self.trainable}


@keras.saving.register_keras_serializable(package="keras_vs_tests")
class Task(keras.Model):
    """A task around a backbone, configured by it (as a keras-hub task is)."""

    def __init__(self, backbone, classes=2, **kwargs):
        x = L.Input((4,))
        y = L.Dense(classes, name="task_head")(backbone(x))
        super().__init__(x, y, **kwargs)
        self.backbone, self.classes = backbone, classes

    def get_config(self):
        return {"backbone": keras.saving.serialize_keras_object(self.backbone),
                "classes": self.classes, "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config["backbone"], dict):
            config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"])
        return cls(**config)

    def decode(self, x):
        return keras.ops.argmax(self(x), axis=-1)


def _task():
    return _randomize(Task(Tower(name="tower"), name="task"))


def test_copy_keeps_a_functional_subclass():
    model = _step_model()
    new = graph.copy(model)
    assert type(new) is StepModel
    np.testing.assert_array_equal(_out(new), _out(model))


@pytest.mark.parametrize("policy", vocab.POLICIES)
def test_rewrite_keeps_a_functional_subclass_and_its_train_step(policy):
    new = kvs.rewrite(_step_model(), policy)
    assert type(new) is StepModel
    new.compile(optimizer="sgd", loss="mse")
    new.fit(X, np.zeros((4, 2), "float32"), epochs=1, batch_size=4, verbose=0)
    assert new.steps_seen >= 1  # traced once (TF, JAX) or run once (eager)


def test_rewrite_compiles_the_new_model_as_the_input_was():
    model = _step_model()
    model.compile(optimizer=keras.optimizers.SGD(0.125), loss="mae")
    new = kvs.rewrite(model, "after_bn")
    assert new.compiled and new.loss == "mae"
    assert float(new.optimizer.learning_rate) == 0.125
    assert new.optimizer is not model.optimizer


def test_a_task_keeps_its_class_when_its_backbone_is_rewritten():
    model = _task()
    new = kvs.rewrite(model, "after_bn")
    assert type(new) is Task
    assert [layer.name for layer in new.backbone.layers][-1] == "tower_bn_dropout"
    np.testing.assert_allclose(_out(new), _out(model), rtol=1e-6)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(new.decode(X)),
                                  keras.ops.convert_to_numpy(model.decode(X)))


def test_a_rewritten_task_round_trips_through_a_keras_file(tmp_path):
    model = _task()
    new = kvs.rewrite(model, "remove")
    new.save(tmp_path / "task.keras")
    loaded = keras.saving.load_model(tmp_path / "task.keras")
    assert type(loaded) is Task
    np.testing.assert_allclose(_out(loaded), _out(model), rtol=1e-6)


def test_an_unedited_class_with_its_own_config_is_made_by_from_config():
    model = _task()
    new = graph.copy(model)
    assert type(new) is Task and type(new.backbone) is Tower
    assert new.backbone is not model.backbone
    np.testing.assert_array_equal(_out(new), _out(model))


def test_a_class_whose_own_graph_is_edited_comes_back_functional_with_a_warning():
    model = _randomize(Tower(name="alone"))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        new = kvs.rewrite(model, "after_bn")
    assert type(new) is keras.Model or type(new).__name__ == "Functional"
    assert any("Tower 'alone' comes back as a Functional" in str(w.message) for w in seen)
    np.testing.assert_allclose(_out(new), _out(model), rtol=1e-6)


@keras.saving.register_keras_serializable(package="keras_vs_tests")
class Opaque(Task):
    """A task whose config does not hold its backbone."""

    def get_config(self):
        return {"classes": self.classes, "name": self.name}


def test_a_class_whose_config_does_not_hold_the_edited_part_is_named():
    model = Opaque(Tower(name="tower"), name="opaque")
    with pytest.raises(GraphError, match=r"Cannot rebuild Opaque 'opaque' around its rewritten "
                                         r"part 'tower'.*model.get_layer\('tower'\)"):
        kvs.rewrite(model, "after_bn")


@pytest.mark.requires("tensorflow")  # Discretization.adapt reads its data through tf.data
def test_copy_keeps_adapted_discretization_bins():
    disc = L.Discretization(num_bins=4, name="bins")
    disc.adapt(np.random.default_rng(0).uniform(size=(64, 4)).astype("float32"))
    x = L.Input((4,))
    h = L.BatchNormalization(name="bn")(L.Dropout(0.5)(L.Dense(4)(disc(x))))
    model = keras.Model(x, h)
    new = kvs.rewrite(model, "after_bn")
    assert new.get_layer("bins").bin_boundaries == disc.bin_boundaries
    np.testing.assert_array_equal(_out(new, np.abs(X) % 1), _out(model, np.abs(X) % 1))


def test_carry_state_keeps_an_adapted_normalization():
    a, b = L.Normalization(), L.Normalization()
    a.adapt(np.random.default_rng(0).normal(3.0, 2.0, size=(64, 4)).astype("float32"))
    b.build((None, 4))
    graph.carry_state(a, b)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(b(X)), keras.ops.convert_to_numpy(a(X)))


def test_carry_state_names_the_layer_whose_copy_does_not_fit():
    a, b = L.Dense(2, name="wide"), L.Dense(2)
    a.build((None, 3))
    b.build((None, 5))
    with pytest.raises(GraphError, match="state of 'wide'"):
        graph.carry_state(a, b)


@pytest.mark.parametrize("policy_name", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("policy", ["after_bn", "head", "uout"])
def test_inserted_layers_take_the_policy_of_the_layer_they_read(policy_name, policy):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy_name)
    try:
        x = L.Input((4,))
        h = L.BatchNormalization(name="bn")(L.Dropout(0.5, name="drop")(L.Dense(4)(x)))
        model = keras.Model(x, L.Dense(2, name="out")(h))
    finally:
        keras.config.set_dtype_policy(previous)
    new = kvs.rewrite(model, policy)
    added = [layer for layer in new.layers if layer.name not in {l.name for l in model.layers}]
    assert added and all(layer.dtype_policy.name == policy_name for layer in added)


@pytest.mark.parametrize("policy_name", ["mixed_float16", "mixed_bfloat16"])
@pytest.mark.parametrize("sequential", [False, True])
def test_a_copy_keeps_the_models_own_dtype_policy(policy_name, sequential):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(policy_name)
    try:
        parts = [L.Dense(4), L.Dropout(0.5, name="drop"), L.BatchNormalization(name="bn")]
        if sequential:
            model = keras.Sequential([L.Input((4,)), *parts], name="seq")
        else:
            x = L.Input((4,))
            h = x
            for layer in parts:
                h = layer(h)
            model = keras.Model(x, h)
        model.compile("sgd", "mse")
    finally:
        keras.config.set_dtype_policy(previous)  # the tools run under float32
    copied = graph.copy(model)
    graph.compile_like(copied, model)
    for new in (copied, kvs.rewrite(model, "after_bn"), kvs.recalibrate_bn(model, X)):
        assert new.dtype_policy.name == policy_name
        # Keras wraps a mixed_float16 model's optimizer in loss scaling when it compiles.
        scaled = isinstance(new.optimizer, keras.optimizers.LossScaleOptimizer)
        assert scaled == (policy_name == "mixed_float16")


@keras.saving.register_keras_serializable(package="keras_vs_tests")
class OwnCompile(StepModel):
    """A `compile` of its own that builds `loss` itself (as keras-hub's
    ObjectDetector does), so the saved compile settings do not fit it."""

    def compile(self, optimizer="sgd", box_loss="mse", **kwargs):
        super().compile(optimizer=optimizer, loss=box_loss, **kwargs)


def test_a_class_whose_compile_takes_other_arguments_comes_back_uncompiled_with_a_warning():
    x = L.Input((4,))
    h = L.BatchNormalization(name="bn")(L.Dropout(0.5, name="drop")(x))
    model = OwnCompile(x, h, name="own")
    model.compile(box_loss="mae")
    with pytest.warns(UserWarning, match=r"OwnCompile.compile\(\) does not take the compile "
                                         r"settings OwnCompile 'own' was saved with"):
        new = kvs.rewrite(model, "after_bn")
    assert type(new) is OwnCompile and not new.compiled


class Stack(keras.Sequential):
    """A Sequential subclass with a method of its own."""

    def depth(self):
        return len(self.layers)


def test_rewrite_keeps_a_sequential_subclass():
    model = Stack([L.Input((4,)), L.Dropout(0.5), L.BatchNormalization(), L.Dense(2)], name="stack")
    new = kvs.rewrite(model, "after_bn")
    assert type(new) is Stack and new.depth() == model.depth() == 3
