"""Data sets by name.

`load` gives NumPy arrays: ``"digits"`` (scikit-learn's 1,797 8x8
handwritten digits, shipped inside the scikit-learn wheel, so it works
offline) and any ``.npz`` file that holds an array ``x`` (and optionally
``y``). `tfds_dataset` gives a batched `tf.data.Dataset` of ``"cifar10"``,
``"cifar100"`` or ``"imagenet2012"`` from TensorFlow Datasets with the paper's
augmentation; `spec` says the classes and input shape of any named set.
"""

import dataclasses
import numbers
import os

import numpy as np

from keras_vs import optional

SPLITS = ("train", "test")
_TEST_FRACTION = 0.2
_SPLIT_SEED = 0


TFDS_NAMES = ("cifar10", "cifar100", "imagenet2012")


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What a model needs to know about a named data set.

    Attributes:
        name: The data set name.
        num_classes: Number of label classes.
        input_shape: Shape of one (preprocessed) input, channels last.
        source: ``"sklearn"`` (offline) or ``"tfds"``.
        mean: Per-channel mean used to normalise (TFDS sets), in [0, 1] units.
        std: Per-channel standard deviation used to normalise (TFDS sets).
    """

    name: str
    num_classes: int
    input_shape: tuple
    source: str
    mean: tuple = None
    std: tuple = None


# Per-channel normalisation (pixel values in [0, 1]). CIFAR uses the
# reference code's constants (pytorch-classification's cifar.py), for
# CIFAR-100 too: its std (0.2023, 0.1994, 0.2010) is not CIFAR-10's pixel std
# (0.2470, 0.2435, 0.2616), but it is what the paper's numbers were trained on.
_CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
_CIFAR_STD = (0.2023, 0.1994, 0.2010)
_SPECS = {
    "digits": DatasetSpec("digits", 10, (8, 8, 1), "sklearn"),
    "cifar10": DatasetSpec("cifar10", 10, (32, 32, 3), "tfds", _CIFAR_MEAN, _CIFAR_STD),
    "cifar100": DatasetSpec("cifar100", 100, (32, 32, 3), "tfds", _CIFAR_MEAN, _CIFAR_STD),
    "imagenet2012": DatasetSpec(
        "imagenet2012", 1000, (224, 224, 3), "tfds", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    ),
}
# TFDS split names for our "train"/"test".
_TFDS_SPLITS = {
    "cifar10": {"train": "train", "test": "test"},
    "cifar100": {"train": "train", "test": "test"},
    "imagenet2012": {"train": "train", "test": "validation"},
}
_CIFAR_PAD = 4
_IMAGENET_SHUFFLE = 10_000
_IMAGENET_RESIZE = 256


def names():
    """Returns the data set names `load` and `tfds_dataset` know (besides ``.npz`` paths)."""
    return ("digits",) + TFDS_NAMES


def spec(name):
    """Returns the `DatasetSpec` of a named data set.

    Args:
        name: One of `names()`.

    Returns:
        A `DatasetSpec`.

    Example:

    >>> spec("cifar100").num_classes
    100
    """
    try:
        return _SPECS[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown data set. Expected one of {', '.join(names())}. Received: name={name!r}"
        ) from None


def load(name, split="train"):
    """Loads a data set as ``(x, y)`` NumPy arrays.

    Args:
        name: ``"digits"``, or a path to a ``.npz`` file with an array ``x``
            (inputs, first axis = examples) and optionally ``y`` (labels).
        split: ``"train"`` or ``"test"``. ``"digits"`` is split 80/20 with a
            fixed permutation, so both splits are the same on every call. A
            ``.npz`` file is returned whole whatever the split.

    Returns:
        ``(x, y)``: for ``"digits"`` ``x`` is float32 of shape ``(N, 8, 8, 1)``
        scaled to [0, 1] and ``y`` int64 labels 0-9. For a ``.npz`` file, its
        arrays (``y`` is None when the file has none).

    Example:

    >>> x, y = load("digits", "test")
    >>> x.shape[1:], x.dtype.name, int(y.max())
    ((8, 8, 1), 'float32', 9)
    """
    if split not in SPLITS:
        raise ValueError(
            f"Unknown split. Expected one of {SPLITS}. Received: split={split!r}"
        )
    if not isinstance(name, (str, os.PathLike)):
        raise ValueError(
            "Expected a data set name or a path to a .npz file. "
            f"Received: name={name!r}"
        )
    text = os.fspath(name)
    if text == "digits":
        return _digits(split)
    if text in TFDS_NAMES:
        raise ValueError(
            f"{text!r} is a TensorFlow Datasets set: read it as a tf.data pipeline with "
            f"keras_vs.data.tfds_dataset. Received: name={text!r}"
        )
    if text.endswith(".npz") or os.path.isfile(text):
        return _npz(text)
    raise ValueError(
        f"Unknown data set {text!r}. Expected one of {', '.join(names())} or a "
        f"path to a .npz file with arrays x (and y). Received: name={text!r}"
    )


def _digits(split):
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images.astype("float32") / 16.0)[..., None]
    y = bunch.target.astype("int64")
    order = np.random.default_rng(_SPLIT_SEED).permutation(len(x))
    n_test = int(round(_TEST_FRACTION * len(x)))
    idx = order[n_test:] if split == "train" else order[:n_test]
    return x[idx], y[idx]


def _npz(path):
    if not os.path.isfile(path):
        raise ValueError(f"No such .npz file. Received: name={path!r}")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as e:
        raise ValueError(
            f"Could not read {path!r} as a .npz file ({e}). Received: name={path!r}"
        ) from None
    if "x" not in arrays:
        raise ValueError(
            f"The .npz file has no array named 'x'. Received: {path!r} with "
            f"arrays {sorted(arrays)}"
        )
    x, y = arrays["x"], arrays.get("y")
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"Array 'x' in {path!r} is empty. Received: x.shape={x.shape}")
    if y is not None and (y.ndim == 0 or len(y) != len(x)):
        raise ValueError(
            f"Arrays 'x' and 'y' in {path!r} differ in length. "
            f"Received: x.shape={x.shape}, y.shape={y.shape}"
        )
    return x, y


# ---------------------------------------------------------------------------
# TensorFlow Datasets


def _check_positive_int(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"Expected {name} to be a positive integer. Received: {name}={value!r}")


def tfds_dataset(
    name,
    split="train",
    batch_size=128,
    training=None,
    *,
    data_dir=None,
    download=False,
    seed=0,
    shuffle_buffer=None,
    take=None,
):
    """A batched `tf.data.Dataset` of ``(image, label)`` from TensorFlow Datasets.

    Training pipelines use the paper's augmentation: CIFAR images are padded
    by 4 pixels, randomly cropped back to 32x32 and randomly flipped; ImageNet
    images get a random-area crop resized to 224x224 and a flip (evaluation:
    shorter side resized to 256, central 224x224 crop). Every image is scaled
    to [0, 1] and normalised with the per-channel mean and std of `spec`. The
    random crops and flips are stateless, seeded per example and per epoch,
    so one ``seed`` gives the same data order and augmentation on every run.
    CIFAR training data is drawn in a new full permutation every epoch, as
    the reference's ``DataLoader(shuffle=True)``.

    Args:
        name: ``"cifar10"``, ``"cifar100"`` or ``"imagenet2012"``.
        split: ``"train"`` or ``"test"`` (ImageNet's validation split).
        batch_size: Examples per batch.
        training: Augment and shuffle; defaults to ``split == "train"``.
        data_dir: TFDS data folder (TFDS' default when None).
        download: Let TFDS download and prepare the data if it is missing.
            ImageNet must be downloaded by hand into
            ``<data_dir>/downloads/manual`` whatever this says.
        seed: Seed of the shuffle and of the augmentation.
        shuffle_buffer: Shuffle buffer size (training only); default the
            whole split for CIFAR (a uniform permutation per epoch) and
            10,000 for ImageNet (whose decoded split does not fit in memory).
        take: Use only the first ``take`` examples of the split.

    Returns:
        A `tf.data.Dataset` of float32 images ``(batch, H, W, C)`` and int64
        labels ``(batch,)``, prefetched.

    Raises:
        FileNotFoundError: The data is not in ``data_dir`` and ``download`` is
            False (the message says how to prepare it).
        keras_vs.optional.MissingDependencyError: TensorFlow or TensorFlow
            Datasets is not installed (the message says what to install).

    Example:

    >>> import tensorflow_datasets as tfds
    >>> with tfds.testing.mock_data(num_examples=4):
    ...     ds = tfds_dataset("cifar10", batch_size=2)
    >>> tuple(ds.element_spec[0].shape)
    (None, 32, 32, 3)
    """
    if name not in TFDS_NAMES:
        raise ValueError(
            f"Unknown TFDS data set. Expected one of {', '.join(TFDS_NAMES)}. Received: name={name!r}"
        )
    # TensorFlow and TFDS are optional (keras-vs runs on JAX without them).
    tf = optional.require("tensorflow", f"The TFDS data set {name!r}", f"name={name!r}")
    tfds = optional.require("tensorflow_datasets", f"The TFDS data set {name!r}", f"name={name!r}")
    if split not in SPLITS:
        raise ValueError(f"Unknown split. Expected one of {SPLITS}. Received: split={split!r}")
    _check_positive_int("batch_size", batch_size)
    if shuffle_buffer is not None:
        _check_positive_int("shuffle_buffer", shuffle_buffer)
    if take is not None:
        _check_positive_int("take", take)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"Expected seed to be an integer. Received: seed={seed!r}")
    training = split == "train" if training is None else bool(training)
    info = spec(name)
    tfds_split = _TFDS_SPLITS[name][split]
    try:
        ds = tfds.load(
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
    if take is not None:
        ds = ds.take(int(take))
    mean = tf.constant(info.mean, tf.float32)
    std = tf.constant(info.std, tf.float32)
    height, width, _ = info.input_shape
    imagenet = name == "imagenet2012"

    def normalise(image):
        return (tf.cast(image, tf.float32) / 255.0 - mean) / std

    def augment(example, pair_seed):
        image, label = example
        seeds = tf.random.experimental.stateless_split(pair_seed, 3)
        if imagenet:
            begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
                tf.shape(image),
                bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
                seed=seeds[0],
                area_range=(0.08, 1.0),
                aspect_ratio_range=(3 / 4, 4 / 3),
                use_image_if_no_bounding_boxes=True,
            )
            image = tf.slice(image, begin, size)
            image = tf.image.resize(image, (height, width))
        else:
            image = tf.image.resize_with_crop_or_pad(image, height + 2 * _CIFAR_PAD, width + 2 * _CIFAR_PAD)
            image = tf.image.stateless_random_crop(image, (height, width, 3), seed=seeds[1])
        image = tf.image.stateless_random_flip_left_right(image, seed=seeds[2])
        return normalise(image), tf.cast(label, tf.int64)

    def evaluate(image, label):
        if imagenet:
            shape = tf.cast(tf.shape(image)[:2], tf.float32)
            scale = _IMAGENET_RESIZE / tf.reduce_min(shape)
            image = tf.image.resize(image, tf.cast(tf.round(shape * scale), tf.int32))
            image = tf.image.resize_with_crop_or_pad(image, height, width)
        return normalise(image), tf.cast(label, tf.int64)

    autotune = tf.data.AUTOTUNE
    if training:
        if shuffle_buffer is None:
            # A buffer as large as the split shuffles uniformly (150 MB of
            # uint8 CIFAR images); a smaller one only shuffles locally.
            size = int(ds.cardinality())
            shuffle_buffer = _IMAGENET_SHUFFLE if imagenet or size < 1 else size
        ds = ds.shuffle(int(shuffle_buffer), seed=int(seed), reshuffle_each_iteration=True)
        # One stateless seed pair per example, different every epoch and the
        # same on every run: augmentation does not depend on thread timing.
        seeds = tf.data.Dataset.random(seed=int(seed), rerandomize_each_iteration=True).batch(2)
        ds = tf.data.Dataset.zip((ds, seeds)).map(augment, num_parallel_calls=autotune)
    else:
        ds = ds.map(evaluate, num_parallel_calls=autotune)
    return ds.batch(int(batch_size)).prefetch(autotune)
