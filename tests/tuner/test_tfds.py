"""tuner.tfds: the TFDS pipelines, on tfds.testing.mock_data (real loading code, fake bytes),
and their registration with keras_vs.data (entry-point group ``keras_vs.datasets``)."""

import os

import numpy as np
import pytest

from keras_vs import data, entry_points
from tuner import tfds as tuner_tfds

try:
    import tensorflow_datasets as tfds
except ImportError:  # the JAX install without TensorFlow
    tfds = None

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAMES = ("cifar10", "cifar100", "imagenet2012")


def needs_tfds(test):
    """TensorFlow Datasets and the TensorFlow backend (tf.data)."""
    return pytest.mark.tf_only(pytest.mark.skipif(tfds is None, reason="needs tensorflow_datasets")(test))


def _batches(name, split="train", seed=0, **kwargs):
    with tfds.testing.mock_data(num_examples=10):
        ds = tuner_tfds.tfds_dataset(name, split, batch_size=4, seed=seed, **kwargs)
    return ds, [(x.numpy(), y.numpy()) for x, y in ds]


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
@needs_tfds
def test_cifar_batches_have_the_spec_shape_and_labels(name):
    _, batches = _batches(name)
    spec = tuner_tfds.spec(name)
    assert [len(y) for _, y in batches] == [4, 4, 2]
    for x, y in batches:
        assert x.shape[1:] == spec.input_shape and x.dtype == np.float32
        assert y.dtype == np.int64 and 0 <= y.min() and y.max() < spec.num_classes


@needs_tfds
def test_evaluation_images_are_normalised_per_channel():
    with tfds.testing.mock_data(num_examples=4):
        raw = next(iter(tfds.load("cifar10", split="test", as_supervised=True).batch(4)))[0].numpy()
        _, batches = _batches("cifar10", "test")
    spec = tuner_tfds.spec("cifar10")
    expected = (raw / 255.0 - np.array(spec.mean)) / np.array(spec.std)
    np.testing.assert_allclose(batches[0][0], expected, rtol=1e-5, atol=1e-5)


@needs_tfds
def test_training_augmentation_is_seeded_and_changes_every_epoch():
    ds, first = _batches("cifar10", seed=1)
    _, again = _batches("cifar10", seed=1)
    second_epoch = [x.numpy() for x, _ in ds]
    for (a, _), (b, _) in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for (a, _), b in zip(first, second_epoch))


@needs_tfds
def test_training_crop_keeps_image_content_within_four_pixels():
    # Pad 4 + random 32x32 crop (+ flip): each augmented image is a shifted
    # copy of the original, with zero padding (normalised) at the borders.
    with tfds.testing.mock_data(num_examples=4):
        raw = next(iter(tfds.load("cifar10", split="train", as_supervised=True, shuffle_files=False).batch(4)))
        ds = tuner_tfds.tfds_dataset("cifar10", "train", batch_size=4, seed=0, shuffle_buffer=1)
    spec = tuner_tfds.spec("cifar10")
    x_aug = next(iter(ds))[0].numpy()
    pixel = x_aug * np.array(spec.std) + np.array(spec.mean)
    image = raw[0].numpy()[0] / 255.0
    found = False
    padded = np.pad(image, ((4, 4), (4, 4), (0, 0)))
    for dy in range(9):
        for dx in range(9):
            crop = padded[dy:dy + 32, dx:dx + 32]
            for candidate in (crop, crop[:, ::-1]):
                if np.allclose(candidate, pixel[0], atol=1e-5):
                    found = True
    assert found


@needs_tfds
def test_imagenet_is_cropped_to_224():
    _, train = _batches("imagenet2012")
    _, val = _batches("imagenet2012", "test")
    assert train[0][0].shape[1:] == val[0][0].shape[1:] == (224, 224, 3)


@needs_tfds
def test_missing_data_without_download_says_how_to_prepare_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"tfds build cifar10.*Received: name='cifar10'"):
        tuner_tfds.tfds_dataset("cifar10", data_dir=str(tmp_path), download=False)


@needs_tfds
def test_missing_imagenet_mentions_the_manual_download(tmp_path):
    with pytest.raises(FileNotFoundError, match="downloads/manual"):
        tuner_tfds.tfds_dataset("imagenet2012", data_dir=str(tmp_path))


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"name": "mnist"}, "name='mnist'"),
        ({"name": "cifar10", "split": "valid"}, "split='valid'"),
        ({"name": "cifar10", "batch_size": 0}, "batch_size=0"),
        ({"name": "cifar10", "take": -1}, "take=-1"),
    ],
)
@needs_tfds
def test_bad_arguments_name_what_was_received(kwargs, match):
    with pytest.raises(ValueError, match=match):
        tuner_tfds.tfds_dataset(**kwargs)


def test_spec_and_load_point_tfds_names_to_the_pipeline():
    assert data.spec("imagenet2012").num_classes == 1000
    with pytest.raises(ValueError, match=r"keras_vs.data.pipeline\('cifar10'.*tuner.tfds"):
        data.load("cifar10")
    with pytest.raises(ValueError, match="name='svhn'"):
        data.spec("svhn")
    with pytest.raises(ValueError, match="name='svhn'"):
        tuner_tfds.spec("svhn")


def test_cifar_uses_the_reference_normalisation_for_both_sets():
    # pytorch-classification's cifar.py normalises CIFAR-10 and CIFAR-100 alike.
    for name in ("cifar10", "cifar100"):
        spec = tuner_tfds.spec(name)
        assert spec.mean == (0.4914, 0.4822, 0.4465)
        assert spec.std == (0.2023, 0.1994, 0.2010)


def test_the_tuner_registers_its_sets_with_keras_vs():
    assert data.names() == ("digits", *NAMES) and data.pipeline_names() == NAMES
    for name in NAMES:
        assert data.spec(name) is tuner_tfds.spec(name) and data.spec(name).pipeline is tuner_tfds.tfds_dataset
    # From a source tree without installed metadata, the group is read from setup.py.
    assert entry_points.source_tree(data.GROUP, ROOT) == {
        name: f"tuner.tfds:{name.upper()}" for name in NAMES}


def test_old_tfds_names_are_deprecated_and_keep_working():
    with pytest.warns(DeprecationWarning, match=r"keras_vs.data.pipeline_names\(\)"):
        assert data.TFDS_NAMES == NAMES


@needs_tfds
def test_keras_vs_reads_a_registered_set_through_the_registry():
    with tfds.testing.mock_data(num_examples=4):
        direct = tuner_tfds.tfds_dataset("cifar10", "test", batch_size=4)
        by_name = data.pipeline("cifar10", "test", 4, data_dir=None)
        with pytest.warns(DeprecationWarning, match=r"use tuner\.tfds\.tfds_dataset"):
            old = data.tfds_dataset("cifar10", "test", batch_size=4)
    first = next(iter(direct))[0].numpy()
    for ds in (by_name, old):
        np.testing.assert_array_equal(next(iter(ds))[0].numpy(), first)


def _indexed_cifar(n):
    """A mock CIFAR split whose example i is a constant image spelling i."""
    import tensorflow as tf

    def as_dataset(self, split, **kwargs):
        def example(i):
            pixel = tf.stack([i // 256, i % 256, tf.zeros_like(i)])
            image = tf.cast(tf.broadcast_to(pixel, (32, 32, 3)), tf.uint8)
            return {"image": image, "label": i % 10, "id": tf.strings.as_string(i)}

        return tf.data.Dataset.range(n).map(example)

    return tfds.testing.mock_data(as_dataset_fn=as_dataset)


@pytest.mark.slow
@needs_tfds
def test_training_order_is_a_full_permutation_of_the_split():
    # More examples than the old 10,000-example shuffle buffer: with it, the
    # first batch could only hold examples < 10,000 + 256.
    n, batch = 20_000, 256
    with _indexed_cifar(n):
        ds = tuner_tfds.tfds_dataset("cifar10", "train", batch_size=batch, seed=0)
    spec = tuner_tfds.spec("cifar10")
    epochs = []
    for _ in range(2):
        x = next(iter(ds))[0].numpy()[:, 16, 16, :2]  # the centre pixel is never padding
        pixel = np.round((x * np.array(spec.std[:2]) + np.array(spec.mean[:2])) * 255).astype(int)
        epochs.append(pixel[:, 0] * 256 + pixel[:, 1])
    for index in epochs:
        assert len(set(index)) == batch and index.max() < n
        assert (index >= 10_000 + batch).sum() > batch // 4
    assert not np.array_equal(epochs[0], epochs[1])  # a new permutation every epoch
