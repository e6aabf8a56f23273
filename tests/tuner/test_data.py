"""tuner.data: the training, validation and probe sets of a search."""

import numpy as np
import pytest

from tuner import data
from tuner.config import DataConfig


def test_arrays_are_used_as_given_with_take_and_probe():
    rng = np.random.default_rng(0)
    train = (rng.normal(size=(50, 4)).astype("float32"), np.arange(50) % 3)
    val = (rng.normal(size=(10, 4)).astype("float32"), np.arange(10) % 4)
    loaded = data.load((train, val), DataConfig(take=40, probe_size=8), batch_size=16, seed=0)
    assert len(loaded.train[0]) == 40 and loaded.steps_per_epoch == 3
    assert loaded.num_classes == 4  # the largest label of either split
    assert loaded.input_shape == (4,)
    np.testing.assert_array_equal(loaded.probe[0], train[0][:8])


def test_an_npz_file_holds_out_a_fixed_fifth(tmp_path):
    path = tmp_path / "set.npz"
    np.savez(path, x=np.arange(100, dtype="float32").reshape(50, 2), y=np.arange(50) % 5)
    first, second = (data.load(str(path), DataConfig(probe_size=4), batch_size=8, seed=1) for _ in range(2))
    assert len(first.validation[0]) == 10 and len(first.train[0]) == 40
    np.testing.assert_array_equal(first.validation[0], second.validation[0])
    assert not set(first.validation[0][:, 0]) & set(first.train[0][:, 0])
    assert first.num_classes == 5


def test_digits_know_their_classes():
    loaded = data.load("digits", DataConfig(take=64, probe_size=32), batch_size=16, seed=0)
    assert loaded.num_classes == 10 and len(loaded.probe[1]) == 32 and loaded.steps_per_epoch == 4


def test_unlabelled_files_are_refused(tmp_path):
    path = tmp_path / "x_only.npz"
    np.savez(path, x=np.zeros((10, 2), "float32"))
    with pytest.raises(ValueError, match="no labels"):
        data.load(str(path), DataConfig(), batch_size=8, seed=0)
