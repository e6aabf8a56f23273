"""The zoo against the reference code: weights copied from PyTorch networks
written after pytorch-classification (tests/zoo/reference_torch.py), same outputs.

Each config is the smallest that keeps every code path of its family:
identity and projection shortcuts (stride 1 and 2), basic and bottleneck
blocks, dense layers with and without bottleneck, both transitions.
"""

import importlib.util
import pathlib
import sys

import keras
import numpy as np
import pytest

import zoo

torch = pytest.importorskip("torch")

pytestmark = pytest.mark.reference


def _load_reference():
    name = "keras_vs_tests_reference_torch"
    if name not in sys.modules:
        path = pathlib.Path(__file__).resolve().parent / "reference_torch.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


ref = _load_reference()

# name -> (zoo family, zoo builder, reference builder); both take ``drop`` /
# dropout arguments and build the same architecture, 10 classes.
CONFIGS = {
    "preresnet-20": (
        "preresnet",
        lambda **kw: zoo.preresnet(20, **kw),
        lambda drop: ref.PreResNet(20, 10, "BasicBlock", drop=drop),
    ),
    "preresnet-20-bottleneck": (
        "preresnet",
        lambda **kw: zoo.preresnet(20, block="bottleneck", **kw),
        lambda drop: ref.PreResNet(20, 10, "Bottleneck", drop=drop),
    ),
    "resnext-20-2x4d-widen2": (
        "resnext",
        lambda **kw: zoo.resnext(20, 2, 4, widen_factor=2, **kw),
        lambda drop: ref.CifarResNeXt(2, 20, 10, widen_factor=2, base_width=4, drop=drop),
    ),
    "wrn-16-2": (
        "wide_resnet",
        lambda **kw: zoo.wide_resnet(16, 2, **kw),
        lambda drop: ref.WideResNet(16, 10, widen_factor=2, drop=drop),
    ),
    "densenet-bc-22-4": (
        "densenet",
        lambda **kw: zoo.densenet(22, 4, **kw),
        lambda drop: ref.DenseNet(22, ref.DenseNetBottleneck, growthRate=4, compressionRate=2,
                                  drop=drop),
    ),
    "densenet-10-4": (
        "densenet",
        lambda **kw: zoo.densenet(10, 4, bottleneck=False, compression=1.0, **kw),
        lambda drop: ref.DenseNet(10, ref.DenseNetBasicBlock, growthRate=4, compressionRate=1,
                                  stem=16, drop=drop),
    ),
}
POSITIONS = ["none", "before_bn", "before_conv", "after_conv", "head"]


def _pair(name, position="none", rate=0.0, seed=0):
    """The zoo model and the reference network of ``name``, weights copied."""
    family, build_zoo, build_ref = CONFIGS[name]
    torch.manual_seed(seed)
    net = build_ref(ref.Drop(position, rate))
    ref.randomize_batch_norms(net, seed)
    model = build_zoo(dropout=zoo.DropoutPlan(rate, position), classifier_activation=None)
    ref.transfer(net, family, model)
    return model, net


def _images(batch, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, 32, 32, 3)).astype("float32")


def _reference_logits(net, x, training):
    net.train(training)
    with torch.no_grad():
        return net(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()).numpy()


def _relative_error(actual, expected):
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("name", list(CONFIGS))
def test_inference_logits_match_the_reference(name, position):
    model, net = _pair(name, position, rate=0.0 if position == "none" else 0.5)
    if position != "none":  # the dropout layers are there (identities at inference)
        assert any(isinstance(l, keras.layers.Dropout) for l in model.layers)
    x = _images(4)
    logits = keras.ops.convert_to_numpy(model(x, training=False))
    assert _relative_error(logits, _reference_logits(net, x, training=False)) <= 1e-5


@pytest.mark.parametrize("name", list(CONFIGS))
def test_training_mode_logits_match_the_reference_on_batch_statistics(name):
    # Rate 0: no dropout; every BN normalises with the batch's own moments.
    model, net = _pair(name)
    x = _images(8, seed=1)
    logits, _ = model.stateless_call(
        model.trainable_variables, model.non_trainable_variables, x, training=True
    )
    expected = _reference_logits(net, x, training=True)
    assert _relative_error(keras.ops.convert_to_numpy(logits), expected) <= 1e-4
    # Batch statistics, not the moving ones: inference mode differs.
    assert _relative_error(_reference_logits(net, x, training=False), expected) > 1e-2


def _small_pair():
    net = ref.WideResNet(10, 10, widen_factor=1)
    return zoo.wide_resnet(10, 1, classifier_activation=None), net


def test_transfer_counts_every_reference_tensor_once():
    model, net = _small_pair()
    tensors = [k for k in net.state_dict() if not k.endswith("num_batches_tracked")]
    assert ref.transfer(net, "wide_resnet", model) == len(tensors) == len(model.weights)


def test_transfer_refuses_a_keras_weight_left_unassigned():
    model, net = _small_pair()
    state = {k: v for k, v in net.state_dict().items() if k != "fc.bias"}
    with pytest.raises(ref.MappingError, match="unassigned.*predictions"):
        ref.transfer(net, "wide_resnet", model, state=state)


def test_transfer_refuses_two_tensors_for_one_keras_weight():
    model, net = _small_pair()
    # Every stage's blocks renamed as stage 1's: stage 2 lands on stage 1's layers.
    rules = [(p, t.replace("stage{0}", "stage1")) for p, t in ref.RENAMES["wide_resnet"]]
    with pytest.raises(ref.MappingError, match="already assigned"):
        ref.transfer(net, "wide_resnet", model, rules=rules)
