"""keras_vs.probe: the per-batch moments row every tool pools."""

import keras
import numpy as np
import pytest

from keras_vs import probe


@pytest.mark.parametrize("shape,axis", [((12, 3), -1), ((12, 4, 5, 3), -1), ((12, 3, 4, 5), 1)])
def test_moments_row_is_count_mean_and_m2_of_the_batch(shape, axis):
    x = np.random.default_rng(0).normal(5.0, 2.0, shape).astype("float32")
    row = np.asarray(keras.ops.convert_to_numpy(probe.moments_row(x, axis))[0], np.float64)
    c = shape[axis]
    flat = np.moveaxis(x.astype(np.float64), axis, -1).reshape(-1, c)
    assert row[0] == len(flat)
    np.testing.assert_allclose(row[1 : c + 1] + row[c + 1 : 2 * c + 1], flat.mean(0), rtol=1e-6)
    np.testing.assert_allclose(row[2 * c + 1 :], ((flat - flat.mean(0)) ** 2).sum(0), rtol=1e-4)
