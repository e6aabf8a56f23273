"""keras_vs.data: the offline digits set and .npz files."""

import numpy as np
import pytest

from keras_vs import data


def test_digits_train_split_is_real_scaled_images():
    x, y = data.load("digits", "train")
    assert x.shape[1:] == (8, 8, 1) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() == 1.0
    assert y.dtype == np.int64 and set(np.unique(y)) == set(range(10))


def test_digits_splits_partition_the_set_and_are_deterministic():
    from sklearn.datasets import load_digits

    x_train, y_train = data.load("digits", "train")
    x_test, y_test = data.load("digits", "test")
    assert len(x_test) == 359
    both = np.concatenate([x_train, x_test]).reshape(1797, 64) * 16
    full = load_digits().data
    key = lambda a: sorted(map(bytes, a.astype("uint8")))  # noqa: E731
    assert key(both) == key(full)
    again, _ = data.load("digits", "test")
    np.testing.assert_array_equal(x_test, again)


def test_npz_file_with_x_and_y(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.ones((3, 2)), y=np.arange(3))
    x, y = data.load(str(path))
    assert x.shape == (3, 2) and list(y) == [0, 1, 2]


def test_npz_file_without_labels(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.ones((3, 2)))
    assert data.load(path)[1] is None


def test_npz_without_x_is_named(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, images=np.ones((3, 2)))
    with pytest.raises(ValueError, match=r"no array named 'x'.*\['images'\]"):
        data.load(str(path))


def test_npz_with_mismatched_labels_is_named(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.ones((3, 2)), y=np.arange(4))
    with pytest.raises(ValueError, match=r"y.shape=\(4,\)"):
        data.load(str(path))


def test_missing_npz_is_named(tmp_path):
    with pytest.raises(ValueError, match="No such .npz file"):
        data.load(str(tmp_path / "nope.npz"))


def test_unknown_name_is_echoed():
    with pytest.raises(ValueError, match=r"Unknown data set 'cifar11'.*Received: name='cifar11'"):
        data.load("cifar11")


def test_unknown_split_is_echoed():
    with pytest.raises(ValueError, match="Received: split='val'"):
        data.load("digits", "val")
