"""The data of a search: training and validation sets, and the probe the shift is measured on.

`load` reads a data set by name (``"digits"`` offline, or a TensorFlow
Datasets name as a `tf.data` pipeline), a ``.npz`` file (20% held out for
validation) or the caller's own arrays, and returns a `SearchData`.

Example:

>>> data = load("digits", DataConfig(take=64, probe_size=32), batch_size=16, seed=0)
>>> data.num_classes, data.steps_per_epoch, len(data.probe[0])
(10, 4, 32)
"""

import dataclasses
import math
import os

import numpy as np

from keras_vs import data as data_lib
from tuner import tfds
from tuner.config import DataConfig

__all__ = ["SearchData", "load"]


@dataclasses.dataclass(frozen=True)
class SearchData:
    """What every trial trains and is measured on.

    Attributes:
        train: ``(x, y)`` NumPy arrays or a `tf.data.Dataset` of batches.
        validation: Likewise, for the validation accuracy.
        probe: ``(x, y)`` NumPy training examples on which the variance shift
            and the inconsistency are measured.
        num_classes: Classes of the labels.
        input_shape: Shape of one example.
        steps_per_epoch: Training batches per epoch (for the recipe's
            schedule).
    """

    train: object
    validation: object
    probe: tuple
    num_classes: int
    input_shape: tuple
    steps_per_epoch: int


def load(dataset, config, batch_size, seed):
    """Reads the data of a search.

    Args:
        dataset: ``"digits"``, ``"cifar10"``, ``"cifar100"``,
            ``"imagenet2012"``, a ``.npz`` file with ``x`` and ``y``, or
            ``((x_train, y_train), (x_val, y_val))``.
        config: A `tuner.DataConfig`.
        batch_size: Global batch size.
        seed: Seeds the TFDS shuffle and the ``.npz`` validation split.

    Returns:
        A `SearchData`.
    """
    if isinstance(dataset, (str, os.PathLike)) and os.fspath(dataset) in tfds.NAMES:
        return _tfds(os.fspath(dataset), config, batch_size, seed)
    if isinstance(dataset, tuple) and len(dataset) == 2:
        (x_train, y_train), (x_val, y_val) = (tuple(np.asarray(a) for a in split) for split in dataset)
        num_classes = int(max(y_train.max(), y_val.max())) + 1
    else:
        (x_train, y_train), (x_val, y_val), num_classes = _from_file(dataset, seed)
    if config.take is not None:
        x_train, y_train = x_train[: config.take], y_train[: config.take]
    return SearchData(
        train=(x_train, y_train),
        validation=(x_val, y_val),
        probe=(x_train[: config.probe_size], y_train[: config.probe_size]),
        num_classes=num_classes,
        input_shape=tuple(x_train.shape[1:]),
        steps_per_epoch=max(1, math.ceil(len(x_train) / batch_size)),
    )


def _from_file(dataset, seed):
    """``(train, validation, num_classes)`` of ``"digits"`` or a ``.npz`` file."""
    x_train, y_train = data_lib.load(dataset, "train")
    x_val, y_val = data_lib.load(dataset, "test")
    if y_train is None:
        raise ValueError(f"The data set has no labels (array 'y'). Received: dataset={dataset!r}")
    if os.fspath(dataset) == "digits":
        return (x_train, y_train), (x_val, y_val), data_lib.spec("digits").num_classes
    # A .npz file has one split: hold out a fixed 20% for validation.
    order = np.random.default_rng(seed).permutation(len(x_train))
    cut = max(1, len(order) // 5)
    validation = (x_train[order[:cut]], y_train[order[:cut]])
    return (x_train[order[cut:]], y_train[order[cut:]]), validation, int(np.max(y_train)) + 1


def _tfds(name, config, batch_size, seed):
    """A TensorFlow Datasets set as `tf.data` pipelines, the probe read from its first batches."""
    spec = tfds.spec(name)
    options = dict(data_dir=config.data_dir, download=config.download, seed=seed)
    train = tfds.tfds_dataset(spec.name, "train", batch_size, True, take=config.take, **options)
    validation = tfds.tfds_dataset(spec.name, "test", batch_size, False, **options)
    px, py = [], []
    for xb, yb in train:
        px.append(xb.numpy())
        py.append(yb.numpy())
        if sum(len(b) for b in py) >= config.probe_size:
            break
    probe = (np.concatenate(px)[: config.probe_size], np.concatenate(py)[: config.probe_size])
    # TFDS datasets know their size; the schedule needs steps per epoch.
    steps = int(train.cardinality())
    if steps < 1:
        raise ValueError(
            f"Could not tell the number of batches per epoch of {spec.name!r}. Received: cardinality={steps}"
        )
    return SearchData(train, validation, probe, spec.num_classes, spec.input_shape, steps)
