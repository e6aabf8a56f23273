"""The registry table: names, exact parameter counts, and the behaviour every
registered model shares (training under XLA, saving, disharmony findings)."""

import re

import keras
import numpy as np
import pytest

import keras_vs
import zoo

PAPER = [e.name for e in zoo.entries() if e.source == "paper"]
SMALL = [e.name for e in zoo.entries() if e.small]
COMBOS = [("none", "bernoulli")] + [
    (position, dropout_type)
    for position in zoo.POSITIONS[1:]
    for dropout_type in zoo.DROPOUT_TYPES
]
SHAPE = (8, 8, 3)
# Small configs trained under XLA on every position and type; the others get
# one combination each (an XLA compilation costs ~10 s per model here).
MATRIX = ("wrn-10-1", "densenet-bc-22-4")
# DenseNet's 9 variants took two minutes to compile jointly: it trains every
# position once, the two dropout types taking turns (wrn-10-1 has them all).
ALTERNATING = [(p, zoo.DROPOUT_TYPES[i % 2]) for i, p in enumerate(zoo.POSITIONS)]
COMBOS_OF = {"wrn-10-1": COMBOS, "densenet-bc-22-4": ALTERNATING}


def trainable_count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def small_model(entry_name, position, dropout_type, rate=0.3, **kwargs):
    amount = "beta" if dropout_type == "uout" else "rate"
    plan = zoo.DropoutPlan(
        position=position, type=dropout_type, **{amount: 0.0 if position == "none" else rate}
    )
    return zoo.get(entry_name, input_shape=SHAPE, dropout=plan, **kwargs)


# -- the table and the API ---------------------------------------------------


def test_registry_holds_the_papers_ten_networks():
    assert sorted(PAPER) == sorted([
        "preresnet-110", "preresnet-164", "resnext-29-8x64d", "resnext-29-16x64d",
        "wrn-16-4", "wrn-16-8", "wrn-28-10", "densenet-bc-100-12",
        "densenet-bc-190-40", "densenet-40-12",
    ])


def test_every_family_has_a_small_config():
    assert {zoo.entry(n).family for n in SMALL} == {
        "preresnet", "resnext", "wide_resnet", "densenet"
    }


def test_list_models_filters_with_fnmatch():
    assert zoo.list_models("densenet-bc-*") == [
        "densenet-bc-100-12", "densenet-bc-190-40", "densenet-bc-22-4"
    ]
    assert zoo.list_models() == sorted(zoo.list_models("*"))
    assert zoo.list_models("nothing-*") == []


def test_list_models_rejects_a_non_string_pattern():
    with pytest.raises(ValueError, match="Received: pattern=3"):
        zoo.list_models(3)


def test_get_rejects_an_unknown_name_and_suggests_close_ones():
    with pytest.raises(ValueError, match=r"Did you mean .*wrn-16-4.*Received: name='wrn-16-5'"):
        zoo.get("wrn-16-5")


def test_get_passes_overrides_including_name():
    model = zoo.get("wrn-10-1", num_classes=7, name="wrn-10-1-copy")
    assert model.name == "wrn-10-1-copy"
    assert model.output.shape == (None, 7)


def test_get_rejects_unknown_overrides():
    with pytest.raises(TypeError, match="'dropuot'"):
        zoo.get("wrn-10-1", dropuot=zoo.DropoutPlan(0.3, "head"))
    with pytest.raises(ValueError, match="Received: dropout=0.3"):
        zoo.get("wrn-10-1", dropout=0.3)


def test_every_registered_variant_is_exported_under_its_function_name():
    for e in zoo.entries():
        assert getattr(zoo, e.builder.__name__) is e.builder
        assert e.builder.__name__ in zoo.__all__


def test_one_decorated_function_adds_a_model(monkeypatch):
    from zoo import registry

    monkeypatch.setattr(registry, "_BY_NAME", dict(registry._BY_NAME))

    @zoo.register(zoo.wide_resnet, "wrn-10-2", {10: 1, 100: 2}, "derived")
    def wrn_10_2(depth=10, width=2, **overrides):
        """WRN-10-2."""
        return zoo.wide_resnet(depth, width, **overrides)

    assert "wrn-10-2" in zoo.list_models("wrn-10-*")
    assert zoo.entry("wrn-10-2").config == {"depth": 10, "width": 2}
    assert zoo.entry("wrn-10-2").family == "wide_resnet"
    assert "| `wrn-10-2` | `zoo.wide_resnet` | depth=10, width=2 |" in zoo.registry_markdown()
    model = zoo.get("wrn-10-2", num_classes=3, dropout=zoo.DropoutPlan(0.1, "head"))
    assert (model.name, model.output.shape) == ("wrn-10-2", (None, 3))


def test_register_rejects_a_duplicate_name_and_incomplete_counts():
    with pytest.raises(ValueError, match="Received: name='wrn-10-1'"):
        zoo.register(zoo.wide_resnet, "wrn-10-1", {10: 1, 100: 1})
    with pytest.raises(ValueError, match=r"Received: source='paper', params=\{10: 1\}"):
        zoo.register(zoo.wide_resnet, "wrn-x", {10: 1})


def test_get_builds_a_fresh_model_each_time():
    assert zoo.get("wrn-10-1") is not zoo.get("wrn-10-1")


@pytest.mark.parametrize("family", ["preresnet", "resnext", "wide_resnet", "densenet"])
def test_family_names_are_builders_not_modules(family):
    import importlib
    import types

    assert callable(getattr(zoo, family))
    assert not isinstance(getattr(zoo, family), types.ModuleType)
    # No module of that name exists to be shadowed by (or to shadow) the builder.
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module(f"zoo.{family}")


def test_markdown_table_lists_every_entry_with_its_counts():
    text = zoo.registry_markdown()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(rows) == len(zoo.list_models())
    for entry in zoo.entries():
        (row,) = [r for r in rows if r.startswith(f"| `{entry.name}` |")]
        assert f"{entry.params[10]:,}" in row and f"{entry.params[100]:,}" in row


@pytest.mark.parametrize("name", zoo.list_models())
def test_entry_summary_is_a_sentence(name):
    assert re.match(r"^[A-Z].*\.$", zoo.entry(name).summary)


# -- exact trainable-parameter counts -------------------------------------------


def _check_count(name, num_classes):
    keras.backend.clear_session()
    model = zoo.get(name, num_classes=num_classes)
    try:
        assert model.name == name
        assert trainable_count(model) == zoo.entry(name).params[num_classes]
        # Keras adds the BN moving mean and variance as non-trainable weights.
        bn_channels = sum(
            l.gamma.shape[0] for l in model.layers
            if isinstance(l, keras.layers.BatchNormalization)
        )
        assert model.count_params() == trainable_count(model) + 2 * bn_channels
    finally:
        del model
        keras.backend.clear_session()


@pytest.mark.parametrize("num_classes", [10, 100])
@pytest.mark.parametrize("name", SMALL)
def test_small_config_has_the_derived_parameter_count(name, num_classes):
    _check_count(name, num_classes)


# Parameter counts do not depend on the backend, and JAX initialises the
# full-size networks' weights eagerly, op by op (minutes for the DenseNets).
@pytest.mark.slow
@pytest.mark.tf_only
@pytest.mark.parametrize("num_classes", [10, 100])
@pytest.mark.parametrize("name", PAPER)
def test_paper_network_has_the_reference_parameter_count(name, num_classes):
    _check_count(name, num_classes)


# -- dropout positions as find_disharmony sees them ------------------------------


def _findings(model):
    return {(f.dropout, f.bn, f.kind) for f in keras_vs.find_disharmony(model)}


def _block_prefixes(model):
    return sorted({
        m.group(1) for l in model.layers
        if (m := re.match(r"^(stage\d+_block\d+)_conv1$", l.name))
    })


def _last_bn(model, prefix):
    indices = [
        int(m.group(1)) for l in model.layers
        if (m := re.match(rf"^{prefix}_bn(\d+)$", l.name))
    ]
    return f"{prefix}_bn{max(indices)}"


@pytest.mark.parametrize("dropout_type", ["bernoulli", "uout"])
@pytest.mark.parametrize("name", SMALL)
def test_before_bn_feeds_each_blocks_last_bn_directly(name, dropout_type):
    model = small_model(name, "before_bn", dropout_type)
    prefixes = _block_prefixes(model)
    assert prefixes
    assert _findings(model) == {
        (f"{p}_dropout", _last_bn(model, p), "direct") for p in prefixes
    }


@pytest.mark.parametrize("dropout_type", ["bernoulli", "uout"])
@pytest.mark.parametrize("name", SMALL)
def test_before_conv_feeds_bns_only_through_the_conv(name, dropout_type):
    model = small_model(name, "before_conv", dropout_type)
    findings = keras_vs.find_disharmony(model)
    assert {f.kind for f in findings} == {"through_linear"}
    assert {f.dropout for f in findings} == {
        f"{p}_dropout" for p in _block_prefixes(model)
    }
    for f in findings:
        prefix = f.dropout[: -len("_dropout")]
        assert f.path[0] == f.dropout
        assert re.fullmatch(rf"{prefix}_conv\d", f.path[1])


@pytest.mark.parametrize("name", SMALL)
def test_after_conv_feeds_a_bn_directly_from_every_block(name):
    # Right after the last conv, before the merge: the next BN to see the
    # dropped channels (the block's own last BN in ResNeXt, the next block's
    # or a later layer's first BN elsewhere) gets them with no conv between.
    model = small_model(name, "after_conv", "bernoulli")
    direct = {f.dropout for f in keras_vs.find_disharmony(model) if f.kind == "direct"}
    assert direct == {f"{p}_dropout" for p in _block_prefixes(model)}


@pytest.mark.parametrize("position", ["head", "none"])
@pytest.mark.parametrize("name", SMALL)
def test_head_and_none_have_no_disharmony(name, position):
    assert keras_vs.find_disharmony(small_model(name, position, "bernoulli")) == []


# -- training, inference and saving --------------------------------------------


def _joint_model(models):
    """One functional model running ``models`` side by side, so a single XLA
    compilation trains every variant (compiling each alone costs ~10 s)."""
    inputs = keras.Input(SHAPE)
    return keras.Model(inputs, [m(inputs) for m in models])


@pytest.mark.slow
@pytest.mark.tf_only
@pytest.mark.parametrize("name", MATRIX)
def test_every_position_trains_under_xla(name):
    keras.utils.set_random_seed(0)
    models = [
        small_model(name, position, dropout_type, name=f"{position}-{dropout_type}")
        for position, dropout_type in COMBOS_OF[name]
    ]
    before = [keras.ops.convert_to_numpy(m.trainable_weights[0]) for m in models]
    joint = _joint_model(models)
    joint.compile(
        keras.optimizers.SGD(0.1),
        ["sparse_categorical_crossentropy"] * len(models),
        jit_compile=True,
    )
    x = np.random.default_rng(0).normal(size=(4, *SHAPE)).astype("float32")
    y = np.arange(4) % 10
    history = joint.fit(x, [y] * len(models), batch_size=4, epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    for model, old in zip(models, before):
        assert not np.allclose(keras.ops.convert_to_numpy(model.trainable_weights[0]), old)


@pytest.mark.slow
@pytest.mark.tf_only
def test_other_small_configs_train_under_xla():
    keras.utils.set_random_seed(0)
    others = [name for name in SMALL if name not in MATRIX]
    models = [
        small_model(name, *COMBOS[1 + i % (len(COMBOS) - 1)], name=f"m{i}")
        for i, name in enumerate(others)
    ]
    joint = _joint_model(models)
    joint.compile("sgd", ["sparse_categorical_crossentropy"] * len(models), jit_compile=True)
    x = np.random.default_rng(1).normal(size=(4, *SHAPE)).astype("float32")
    logs = joint.train_on_batch(x, [np.arange(4) % 10] * len(models), return_dict=True)
    assert np.isfinite(logs["loss"])


@pytest.mark.parametrize("name", SMALL)
def test_small_config_trains_a_step_with_uout_before_bn(name):
    # Backend-agnostic (also runs on JAX, where every train step is jitted).
    keras.utils.set_random_seed(0)
    model = small_model(name, "before_bn", "uout")
    model.compile("sgd", "sparse_categorical_crossentropy")
    x = np.random.default_rng(2).normal(size=(4, *SHAPE)).astype("float32")
    logs = model.train_on_batch(x, np.arange(4) % 10, return_dict=True)
    assert np.isfinite(logs["loss"])


@pytest.mark.parametrize("name", SMALL)
def test_inference_ignores_dropout(name):
    keras.utils.set_random_seed(0)
    plain = small_model(name, "none", "bernoulli")
    dropped = small_model(name, "before_bn", "bernoulli", rate=0.5)
    for layer in plain.layers:
        dropped.get_layer(layer.name).set_weights(layer.get_weights())
    x = np.random.default_rng(3).normal(size=(2, *SHAPE)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(dropped(x, training=False)),
        keras.ops.convert_to_numpy(plain(x, training=False)),
        rtol=1e-5, atol=1e-6,
    )


@pytest.mark.parametrize(
    "name, position, dropout_type",
    [(name, *COMBOS[1 + i % (len(COMBOS) - 1)]) for i, name in enumerate(SMALL)],
)
def test_keras_save_load_round_trip_reproduces_outputs(tmp_path, name, position, dropout_type):
    keras.utils.set_random_seed(0)
    model = small_model(name, position, dropout_type)
    x = np.random.default_rng(4).normal(size=(2, *SHAPE)).astype("float32")
    path = tmp_path / f"{name}.keras"
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [l.name for l in loaded.layers] == [l.name for l in model.layers]
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x, training=False)),
        keras.ops.convert_to_numpy(model(x, training=False)),
        rtol=1e-6, atol=1e-6,
    )


# -- dtype policies (zoo.get(..., dtype_policy=)) -------------------------------

MIXED = ["mixed_float16", "mixed_bfloat16"]


@pytest.mark.parametrize("policy", MIXED)
def test_get_builds_in_the_dtype_policy_it_is_given_and_leaves_the_global_one(policy):
    model = small_model("wrn-10-1", "before_bn", "bernoulli", dtype_policy=policy)
    compute = policy.split("_")[1]
    assert keras.config.dtype_policy().name == "float32"
    assert model.dtype_policy.name == policy
    assert model.get_layer("stem_conv").compute_dtype == compute
    bn = next(layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization))
    assert bn.compute_dtype == compute and bn.moving_variance.dtype == "float32"
    assert all(w.dtype == "float32" for w in model.weights)
    # The classifier computes in float32, as Keras' mixed-precision guide advises.
    assert model.get_layer("predictions").compute_dtype == "float32"
    assert model.output.dtype == "float32"
    assert trainable_count(model) == trainable_count(small_model("wrn-10-1", "before_bn", "bernoulli"))


def test_get_names_a_bad_dtype_policy():
    with pytest.raises(ValueError, match=r"Received: dtype_policy='float8'"):
        zoo.get("wrn-10-1", dtype_policy="float8")
    with pytest.raises(ValueError, match=r"Received: dtype_policy=16"):
        zoo.get("wrn-10-1", dtype_policy=16)
    assert keras.config.dtype_policy().name == "float32"


@pytest.mark.parametrize("policy", MIXED)
def test_a_mixed_precision_zoo_model_trains_and_its_tools_agree_with_float32(policy):
    x = np.random.default_rng(0).normal(size=(32, *SHAPE)).astype("float32")
    y = np.arange(32) % 10
    keras.utils.set_random_seed(0)
    mixed = small_model("wrn-10-1", "before_bn", "bernoulli", rate=0.5, dtype_policy=policy)
    mixed.compile("sgd", "sparse_categorical_crossentropy")
    if policy == "mixed_float16":  # Keras scales the loss of float16 training itself
        assert isinstance(mixed.optimizer, keras.optimizers.LossScaleOptimizer)
    mixed.fit(x, y, batch_size=16, epochs=1, verbose=0)
    full = small_model("wrn-10-1", "before_bn", "bernoulli", rate=0.5)
    full.set_weights(mixed.get_weights())
    assert keras_vs.find_disharmony(mixed) == keras_vs.find_disharmony(full)
    got, expected = (keras_vs.measure_variance_shift(m, x) for m in (mixed, full))
    assert got.keys() == expected.keys()
    for name, value in expected.items():
        assert got[name] == pytest.approx(value, rel=0.05), name
    for method in ("precise", "exact"):
        fixed, fixed_32 = (keras_vs.recalibrate_bn(m, x, method=method) for m in (mixed, full))
        assert fixed.dtype_policy.name == policy
        for a, b in zip(fixed.layers, fixed_32.layers):
            if isinstance(a, keras.layers.BatchNormalization):
                assert a.moving_variance.dtype == "float32"
                np.testing.assert_allclose(keras.ops.convert_to_numpy(a.moving_variance),
                                           keras.ops.convert_to_numpy(b.moving_variance), rtol=0.05)
