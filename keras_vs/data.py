"""Data sets by name: NumPy sets here, pipeline sets registered by other packages.

`load` gives NumPy arrays: ``"digits"`` (scikit-learn's 1,797 8x8
handwritten digits, shipped inside the scikit-learn wheel, so it works
offline) and any ``.npz`` file that holds an array ``x`` (and optionally
``y``). Other packages register named sets read as batched `tf.data`
pipelines through the ``keras_vs.datasets`` entry-point group (the tuner
registers ``"cifar10"``, ``"cifar100"`` and ``"imagenet2012"``, from
TensorFlow Datasets): each entry is a `DatasetSpec` whose `pipeline` reads
it, and `pipeline` calls it. `names` lists every name, `spec` says the
classes and input shape of any of them. keras-vs imports none of those
packages by name: ``keras-vs measure MODEL --data=cifar10`` finds the set
through the group.

A package adds a set in its setup.py:

    entry_points={"keras_vs.datasets": ["svhn = mypkg.sets:SVHN"]}

with ``SVHN = DatasetSpec("svhn", 10, (32, 32, 3), "tfds", pipeline=read)``
and ``read(name, split, batch_size, training, **options)`` returning the
batched pipeline.
"""

import dataclasses
import functools
import os
import typing
import warnings

import numpy as np

from keras_vs import entry_points
from keras_vs.deprecation import KerasVsDeprecationWarning

__all__ = [
    "GROUP", "SPLITS", "DatasetSpec", "load", "names", "pipeline", "pipeline_names", "spec",
    "tfds_dataset",
]

GROUP = "keras_vs.datasets"
SPLITS = ("train", "test")
_TEST_FRACTION = 0.2
_SPLIT_SEED = 0


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What a model needs to know about a named data set, and how to read a pipeline set.

    Attributes:
        name: The data set name.
        num_classes: Number of label classes.
        input_shape: Shape of one (preprocessed) input, channels last.
        source: Where it comes from: ``"sklearn"`` (offline), ``"tfds"``.
        mean: Per-channel mean used to normalise (pipeline sets), in [0, 1] units.
        std: Per-channel standard deviation used to normalise (pipeline sets).
        pipeline: For a set read as a `tf.data` pipeline, ``pipeline(name,
            split, batch_size, training, **options)`` returning it; None for
            a NumPy set (read by `load`).
    """

    name: str
    num_classes: int
    input_shape: tuple
    source: str
    mean: tuple = None
    std: tuple = None
    pipeline: typing.Callable = dataclasses.field(default=None, repr=False, compare=False)


_DIGITS = DatasetSpec("digits", 10, (8, 8, 1), "sklearn")


@functools.cache
def _targets():
    """The registered pipeline sets, ``{name: "module:attribute"}`` (none named "digits")."""
    return {k: v for k, v in entry_points.targets(GROUP).items() if k != _DIGITS.name}


def pipeline_names():
    """The names of the registered sets read as `tf.data` pipelines (nothing is imported)."""
    return tuple(_targets())


def names():
    """The data set names `load` and `pipeline` know (besides ``.npz`` paths).

    Example:

    >>> names()[0]
    'digits'
    """
    return (_DIGITS.name,) + pipeline_names()


@functools.cache
def _registered(name):
    target = _targets()[name]
    try:
        value = entry_points.load(target, name.upper())
    except Exception as e:  # noqa: BLE001  (any failure of a provider is reported, not raised)
        raise ValueError(
            f"The data set {name!r} could not be loaded from {target} ({type(e).__name__}: {e}). "
            f"Received: name={name!r}") from None
    if not isinstance(value, DatasetSpec) or value.name != name or not callable(value.pipeline):
        raise ValueError(
            f"{target} is not a DatasetSpec named {name!r} with a pipeline. Received: {value!r}")
    return value


def spec(name):
    """Returns the `DatasetSpec` of a named data set.

    Args:
        name: One of `names()`.

    Returns:
        A `DatasetSpec`.

    Example:

    >>> spec("digits").num_classes
    10
    """
    if name == _DIGITS.name:
        return _DIGITS
    if isinstance(name, str) and name in _targets():
        return _registered(name)
    raise ValueError(
        f"Unknown data set. Expected one of {', '.join(names())}. Received: name={name!r}")


def pipeline(name, split="train", batch_size=128, training=None, **options):
    """A registered set as a batched `tf.data.Dataset` of ``(inputs, labels)``.

    Args:
        name: One of `pipeline_names()`, e.g. ``"cifar10"`` (the tuner's).
        split: ``"train"`` or ``"test"``.
        batch_size: Examples per batch.
        training: Augment and shuffle; defaults to ``split == "train"``.
        **options: Passed to the set's reader (for the TFDS sets of the
            tuner: ``data_dir``, ``download``, ``seed``, ``shuffle_buffer``,
            ``take``; see `tuner.tfds.tfds_dataset`).

    Returns:
        What the set's `DatasetSpec.pipeline` returns.
    """
    if name not in pipeline_names():
        raise ValueError(
            f"Unknown pipeline data set. Expected one of {', '.join(pipeline_names()) or '(none registered)'}. "
            f"Received: name={name!r}")
    return spec(name).pipeline(name, split, batch_size, training, **options)


def tfds_dataset(name, split="train", batch_size=128, training=None, **options):
    """Deprecated: use `tuner.tfds.tfds_dataset` (or `pipeline`, by name).

    Reads the set through the registry, as `pipeline` does.
    """
    warnings.warn(
        "keras_vs.data.tfds_dataset is deprecated and will be removed in the next release: "
        "use tuner.tfds.tfds_dataset (or keras_vs.data.pipeline, which finds a set by name). "
        f"Received: name={name!r}", KerasVsDeprecationWarning, stacklevel=2)
    return pipeline(name, split, batch_size, training, **options)


def __getattr__(name):
    if name == "TFDS_NAMES":
        warnings.warn(
            "keras_vs.data.TFDS_NAMES is deprecated and will be removed in the next release: "
            "use keras_vs.data.pipeline_names() (or tuner.tfds.NAMES).",
            KerasVsDeprecationWarning, stacklevel=2)
        return pipeline_names()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    if text in pipeline_names():
        raise ValueError(
            f"{text!r} is read as a tf.data pipeline: use keras_vs.data.pipeline({text!r}, ...) "
            f"(registered by {_targets()[text].partition(':')[0]}). Received: name={text!r}"
        )
    if text.endswith(".npz") or os.path.isfile(text):
        return _npz(text)
    raise ValueError(
        f"Unknown data set {text!r}. Expected one of {', '.join(names())} or a "
        f"path to a .npz file with arrays x (and y). Received: name={text!r}"
    )


def _digits(split):
    """scikit-learn's digits, split 80/20 by a fixed permutation."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images.astype("float32") / 16.0)[..., None]
    y = bunch.target.astype("int64")
    order = np.random.default_rng(_SPLIT_SEED).permutation(len(x))
    n_test = int(round(_TEST_FRACTION * len(x)))
    idx = order[n_test:] if split == "train" else order[:n_test]
    return x[idx], y[idx]


def _npz(path):
    """The arrays ``x`` and ``y`` (or None) of a ``.npz`` file, checked."""
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
