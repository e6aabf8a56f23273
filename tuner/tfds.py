"""CIFAR-10, CIFAR-100 and ImageNet from TensorFlow Datasets, with the paper's augmentation.

`tfds_dataset` reads one of them as a batched `tf.data.Dataset`; `CIFAR10`,
`CIFAR100` and `IMAGENET2012` are their `keras_vs.data.DatasetSpec`s, which
this package registers with keras-vs through the ``keras_vs.datasets``
entry-point group (setup.py), so that ``keras_vs.data.spec("cifar10")`` and
``keras-vs measure MODEL --data=cifar10`` know them while the plugin never
imports the tuner. TensorFlow and TFDS are imported only when a set is read.

Example:

>>> spec("cifar100").num_classes
100
"""

import dataclasses
import numbers

from keras_vs import checks, optional
from keras_vs.data import SPLITS, DatasetSpec

__all__ = ["CIFAR10", "CIFAR100", "IMAGENET2012", "NAMES", "spec", "tfds_dataset"]

NAMES = ("cifar10", "cifar100", "imagenet2012")

# Per-channel normalisation (pixel values in [0, 1]). CIFAR uses the
# reference code's constants (pytorch-classification's cifar.py), for
# CIFAR-100 too: its std (0.2023, 0.1994, 0.2010) is not CIFAR-10's pixel std
# (0.2470, 0.2435, 0.2616), but it is what the paper's numbers were trained on.
_CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
_CIFAR_STD = (0.2023, 0.1994, 0.2010)
# TFDS split names for our "train"/"test".
_TFDS_SPLITS = {
    "cifar10": {"train": "train", "test": "test"},
    "cifar100": {"train": "train", "test": "test"},
    "imagenet2012": {"train": "train", "test": "validation"},
}
_CIFAR_PAD = 4
_IMAGENET_SHUFFLE = 10_000
_IMAGENET_RESIZE = 256


def spec(name):
    """The `keras_vs.data.DatasetSpec` of ``"cifar10"``, ``"cifar100"`` or ``"imagenet2012"``."""
    specs = {s.name: s for s in (CIFAR10, CIFAR100, IMAGENET2012)}
    try:
        return specs[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown TFDS data set. Expected one of {', '.join(NAMES)}. Received: name={name!r}"
        ) from None


def _check_tfds_arguments(name, split, batch_size, seed, shuffle_buffer, take):
    """Validates `tfds_dataset`'s arguments; returns ``(tf, tfds)``."""
    spec(name)  # a known name
    # TensorFlow and TFDS are optional (keras-vs runs on JAX without them).
    tf = optional.require("tensorflow", f"The TFDS data set {name!r}", f"name={name!r}")
    tfds = optional.require("tensorflow_datasets", f"The TFDS data set {name!r}", f"name={name!r}")
    if split not in SPLITS:
        raise ValueError(f"Unknown split. Expected one of {SPLITS}. Received: split={split!r}")
    checks.integer("batch_size", batch_size)
    if shuffle_buffer is not None:
        checks.integer("shuffle_buffer", shuffle_buffer)
    if take is not None:
        checks.integer("take", take)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"Expected seed to be an integer. Received: seed={seed!r}")
    return tf, tfds


def _load_tfds(tfds, name, split, data_dir, download, training, seed):
    """The TFDS split as ``(image, label)`` pairs; missing data says how to prepare it."""
    tfds_split = _TFDS_SPLITS[name][split]
    try:
        return tfds.load(
            name,
            split=tfds_split,
            data_dir=data_dir,
            download=bool(download),
            as_supervised=True,
            shuffle_files=training,
            read_config=tfds.ReadConfig(shuffle_seed=int(seed)),
        )
    except AssertionError as e:
        # TFDS says "could not find data in ..." with an assert when the
        # prepared files are missing and download=False.
        where = data_dir or "TFDS' default data folder (~/tensorflow_datasets)"
        manual = (
            " ImageNet cannot be downloaded automatically: put ILSVRC2012_img_train.tar "
            "and ILSVRC2012_img_val.tar in <data_dir>/downloads/manual first."
            if name == "imagenet2012"
            else ""
        )
        raise FileNotFoundError(
            f"The TFDS data set {name!r} (split {tfds_split!r}) is not prepared in {where}. "
            f"Prepare it on a machine with internet access (`tfds build {name} "
            f"--data_dir DIR`, or pass download=True / --download) and point data_dir at "
            f"it.{manual} ({e}) Received: name={name!r}, data_dir={data_dir!r}, "
            f"download={download!r}"
        ) from None


@dataclasses.dataclass(frozen=True)
class _Preprocessing:
    """The per-example maps of one data set: training augmentation and evaluation.

    Attributes:
        tf: The TensorFlow module (imported only when a TFDS set is read).
        info: The data set's `DatasetSpec`.
    """

    tf: object
    info: DatasetSpec

    @property
    def imagenet(self):
        """Whether the set is ImageNet (else CIFAR)."""
        return self.info.name == "imagenet2012"

    def normalise(self, image):
        """Scales a uint8 image to [0, 1] and normalises it per channel."""
        tf = self.tf
        mean = tf.constant(self.info.mean, tf.float32)
        std = tf.constant(self.info.std, tf.float32)
        return (tf.cast(image, tf.float32) / 255.0 - mean) / std

    def _imagenet_crop(self, image, seed):
        """Random-area crop (8%-100% of the image, aspect 3/4-4/3) resized to 224x224."""
        tf = self.tf
        begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
            tf.shape(image),
            bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
            seed=seed,
            area_range=(0.08, 1.0),
            aspect_ratio_range=(3 / 4, 4 / 3),
            use_image_if_no_bounding_boxes=True,
        )
        return tf.image.resize(tf.slice(image, begin, size), self.info.input_shape[:2])

    def _cifar_crop(self, image, seed):
        """Pads by 4 pixels and crops back at random (``RandomCrop(32, padding=4)``)."""
        tf = self.tf
        height, width, channels = self.info.input_shape
        padded = (height + 2 * _CIFAR_PAD, width + 2 * _CIFAR_PAD)
        image = tf.image.resize_with_crop_or_pad(image, *padded)
        return tf.image.stateless_random_crop(image, (height, width, channels), seed=seed)

    def augment(self, example, pair_seed):
        """Random crop and flip of one ``(image, label)`` under a stateless seed pair."""
        tf = self.tf
        image, label = example
        seeds = tf.random.experimental.stateless_split(pair_seed, 3)
        if self.imagenet:
            image = self._imagenet_crop(image, seeds[0])
        else:
            image = self._cifar_crop(image, seeds[1])
        image = tf.image.stateless_random_flip_left_right(image, seed=seeds[2])
        return self.normalise(image), tf.cast(label, tf.int64)

    def evaluate(self, image, label):
        """ImageNet: shorter side to 256, central crop; then normalisation."""
        tf = self.tf
        if self.imagenet:
            shape = tf.cast(tf.shape(image)[:2], tf.float32)
            scale = _IMAGENET_RESIZE / tf.reduce_min(shape)
            image = tf.image.resize(image, tf.cast(tf.round(shape * scale), tf.int32))
            image = tf.image.resize_with_crop_or_pad(image, *self.info.input_shape[:2])
        return self.normalise(image), tf.cast(label, tf.int64)


def _augmented(tf, ds, preprocessing, seed, shuffle_buffer):
    """Shuffled every epoch, then augmented with one stateless seed pair per example."""
    if shuffle_buffer is None:
        # A buffer as large as the split shuffles uniformly (150 MB of
        # uint8 CIFAR images); a smaller one only shuffles locally.
        size = int(ds.cardinality())
        shuffle_buffer = _IMAGENET_SHUFFLE if preprocessing.imagenet or size < 1 else size
    ds = ds.shuffle(int(shuffle_buffer), seed=int(seed), reshuffle_each_iteration=True)
    # The seed pairs differ every epoch and are the same on every run:
    # augmentation does not depend on thread timing.
    seeds = tf.data.Dataset.random(seed=int(seed), rerandomize_each_iteration=True).batch(2)
    pairs = tf.data.Dataset.zip((ds, seeds))
    return pairs.map(preprocessing.augment, num_parallel_calls=tf.data.AUTOTUNE)


def tfds_dataset(
    name, split="train", batch_size=128, training=None, *,
    data_dir=None, download=False, seed=0, shuffle_buffer=None, take=None,
):
    """A batched `tf.data.Dataset` of ``(image, label)`` from TensorFlow Datasets.

    Training pipelines use the paper's augmentation (CIFAR: 4-pixel pad,
    random 32x32 crop, flip; ImageNet: random-area crop resized to 224x224,
    flip; evaluation: shorter side 256, central 224x224 crop), seeded per
    example and per epoch, so one ``seed`` gives the same order and
    augmentation on every run. Images are scaled to [0, 1] and normalised
    with the mean and std of `spec`. CIFAR training data is drawn in a new
    full permutation every epoch, as the reference's ``DataLoader(shuffle=True)``.

    Args:
        name: ``"cifar10"``, ``"cifar100"`` or ``"imagenet2012"``.
        split: ``"train"`` or ``"test"`` (ImageNet's validation split).
        batch_size: Examples per batch.
        training: Augment and shuffle; defaults to ``split == "train"``.
        data_dir: TFDS data folder (TFDS' default when None).
        download: Let TFDS download and prepare missing data (ImageNet must
            be put in ``<data_dir>/downloads/manual`` by hand whatever this says).
        seed: Seed of the shuffle and of the augmentation.
        shuffle_buffer: Shuffle buffer size (training only); default the
            whole split for CIFAR, 10,000 for ImageNet (too large for memory).
        take: Use only the first ``take`` examples of the split.

    Returns:
        A prefetched `tf.data.Dataset` of float32 images ``(batch, H, W, C)``
        and int64 labels ``(batch,)``.

    Raises:
        FileNotFoundError: The data is not prepared in ``data_dir`` and
            ``download`` is False (the message says how to prepare it).
        keras_vs.optional.MissingDependencyError: TensorFlow or TensorFlow
            Datasets is not installed (the message says what to install).

    Example:

    >>> import tensorflow_datasets as tfds
    >>> with tfds.testing.mock_data(num_examples=4):
    ...     ds = tfds_dataset("cifar10", batch_size=2)
    >>> tuple(ds.element_spec[0].shape)
    (None, 32, 32, 3)
    """
    tf, tfds = _check_tfds_arguments(name, split, batch_size, seed, shuffle_buffer, take)
    training = split == "train" if training is None else bool(training)
    ds = _load_tfds(tfds, name, split, data_dir, download, training, seed)
    if take is not None:
        ds = ds.take(int(take))
    preprocessing = _Preprocessing(tf, spec(name))
    if training:
        ds = _augmented(tf, ds, preprocessing, seed, shuffle_buffer)
    else:
        ds = ds.map(preprocessing.evaluate, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.batch(int(batch_size)).prefetch(tf.data.AUTOTUNE)


CIFAR10 = DatasetSpec("cifar10", 10, (32, 32, 3), "tfds", _CIFAR_MEAN, _CIFAR_STD, tfds_dataset)
CIFAR100 = DatasetSpec("cifar100", 100, (32, 32, 3), "tfds", _CIFAR_MEAN, _CIFAR_STD, tfds_dataset)
IMAGENET2012 = DatasetSpec(
    "imagenet2012", 1000, (224, 224, 3), "tfds", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225),
    tfds_dataset,
)
