"""keras_vs.batches: the checked-batch loop every pass shares, and its one empty-data error."""

import keras
import numpy as np
import pytest

from keras_vs import batches
from keras_vs.batches import Batches


def test_checked_skips_empty_batches_and_gives_each_size():
    x = keras.Input((2,))
    data = [np.ones((3, 2)), np.ones((0, 2)), (np.ones((1, 2)), np.zeros(1))]
    got = [(size, y is None) for _, y, size in batches.checked(Batches(iter(data)), [x])]
    assert got == [(3, True), (1, False)]


def test_checked_names_the_batch_that_does_not_fit():
    data = [np.ones((3, 2)), np.ones((3, 5))]
    with pytest.raises(ValueError, match="batch 1: the data does not fit"):
        list(batches.checked(Batches(iter(data)), [keras.Input((2,))]))


@pytest.mark.parametrize("steps,read", [(None, "every batch"), (2, "2 step")])
def test_data_without_examples_raises_the_one_empty_error(steps, read):
    data = [np.ones((0, 2))] * 3
    with pytest.raises(ValueError, match=f"The data set is empty: .*Received: no examples in {read}"):
        list(batches.checked(Batches(iter(data), steps), [keras.Input((2,))]))


def test_head_of_empty_data_raises_the_same_error():
    with pytest.raises(ValueError, match="The data set is empty: no examples reached the model"):
        Batches(iter([np.ones((0, 2))])).head(4)
