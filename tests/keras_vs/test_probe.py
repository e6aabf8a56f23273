"""keras_vs.probe: the per-batch moments row every tool pools."""

import keras
import numpy as np
import pytest

from keras_vs import probe


@pytest.mark.parametrize("shape,axis", [((12, 3), -1), ((12, 4, 5, 3), -1), ((12, 3, 4, 5), 1)])
@pytest.mark.parametrize("loc,scale", [(5.0, 2.0), (-1e4, 1e-2)])  # |mean|/std up to 1e6
def test_moments_row_is_count_mean_and_m2_of_the_batch(shape, axis, loc, scale):
    x = np.random.default_rng(0).normal(loc, scale, shape).astype("float32")
    row = np.asarray(keras.ops.convert_to_numpy(probe.moments_row(x, axis))[0], np.float64)
    c = shape[axis]
    flat = np.moveaxis(x.astype(np.float64), axis, -1).reshape(-1, c)
    assert row[0] == len(flat)
    mean = row[1 : c + 1] + row[c + 1 : 2 * c + 1]
    np.testing.assert_allclose(mean, flat.mean(0), rtol=1e-7, atol=1e-4 * scale)
    np.testing.assert_allclose(row[2 * c + 1 :], ((flat - flat.mean(0)) ** 2).sum(0), rtol=1e-4)


def test_pooled_rows_are_the_moments_of_the_union_of_their_batches():
    rng = np.random.default_rng(1)
    batches = [rng.normal(3.0, 2.0, (n, 4)).astype("float32") for n in (5, 1, 9)]
    rows = np.stack([keras.ops.convert_to_numpy(probe.moments_row(b, -1))[0] for b in batches])
    rows = rows.astype(np.float64)
    empty = np.zeros((1, rows.shape[1]))  # a row with no examples changes nothing
    row = probe.pooled(np.concatenate([rows, empty]))
    union = np.concatenate(batches).astype(np.float64)
    assert row[0] == len(union)
    np.testing.assert_allclose(row[1:5] + row[5:9], union.mean(0), rtol=1e-6)
    np.testing.assert_allclose(row[9:], ((union - union.mean(0)) ** 2).sum(0), rtol=1e-5)
