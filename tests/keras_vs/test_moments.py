"""keras_vs.moments: the per-batch moments row every tool pools, and its pooling."""

import keras
import numpy as np
import pytest

from keras_vs import moments


@pytest.mark.parametrize("shape,axis", [((12, 3), -1), ((12, 4, 5, 3), -1), ((12, 3, 4, 5), 1)])
@pytest.mark.parametrize("loc,scale", [(5.0, 2.0), (-1e4, 1e-2)])  # |mean|/std up to 1e6
def test_moments_row_is_count_mean_and_m2_of_the_batch(shape, axis, loc, scale):
    x = np.random.default_rng(0).normal(loc, scale, shape).astype("float32")
    row = np.asarray(keras.ops.convert_to_numpy(moments.moments_row(x, axis))[0], np.float64)
    c = shape[axis]
    flat = np.moveaxis(x.astype(np.float64), axis, -1).reshape(-1, c)
    assert row[0] == len(flat)
    mean = row[1 : c + 1] + row[c + 1 : 2 * c + 1]
    np.testing.assert_allclose(mean, flat.mean(0), rtol=1e-7, atol=1e-4 * scale)
    np.testing.assert_allclose(row[2 * c + 1 :], ((flat - flat.mean(0)) ** 2).sum(0), rtol=1e-4)


def test_pooled_rows_are_the_moments_of_the_union_of_their_batches():
    rng = np.random.default_rng(1)
    batches = [rng.normal(3.0, 2.0, (n, 4)).astype("float32") for n in (5, 1, 9)]
    rows = np.stack([keras.ops.convert_to_numpy(moments.moments_row(b, -1))[0] for b in batches])
    rows = rows.astype(np.float64)
    empty = np.zeros((1, rows.shape[1]))  # a row with no examples changes nothing
    row = moments.pooled(np.concatenate([rows, empty]))
    union = np.concatenate(batches).astype(np.float64)
    assert row[0] == len(union)
    np.testing.assert_allclose(row[1:5] + row[5:9], union.mean(0), rtol=1e-6)
    np.testing.assert_allclose(row[9:], ((union - union.mean(0)) ** 2).sum(0), rtol=1e-5)


def test_merging_rows_one_by_one_gives_the_pooled_row():
    rng = np.random.default_rng(2)
    rows = [np.asarray(keras.ops.convert_to_numpy(moments.moments_row(b, -1))[0], np.float64)
            for b in (rng.normal(-2.0, 3.0, (n, 3)).astype("float32") for n in (4, 7, 2))]
    acc = {}
    for row in rows:
        moments.merge(acc, "bn", row)
    n, mean, var = moments.finish(acc)["bn"]
    whole = moments.pooled(np.stack(rows))
    assert n == whole[0] == 13
    np.testing.assert_allclose(mean, whole[1:4], rtol=1e-12)
    np.testing.assert_allclose(var, whole[7:] / 13, rtol=1e-12)


def test_pool_gives_each_name_its_mean_and_variance():
    a = np.arange(12.0, dtype="float32").reshape(6, 2)
    b = -a[:3]
    pooled = moments.pool([("x", moments.moments_row(a, -1)[0]), ("y", moments.moments_row(b, -1)[0]),
                           ("x", moments.moments_row(b, -1)[0])])
    both = np.concatenate([a, b]).astype(np.float64)
    np.testing.assert_allclose(pooled["x"][0], both.mean(0), rtol=1e-6)
    np.testing.assert_allclose(pooled["x"][1], both.var(0), rtol=1e-6)
    np.testing.assert_allclose(pooled["y"][1], b.astype(np.float64).var(0), rtol=1e-6)


@pytest.mark.parametrize("shape,axis", [((8, 3), -1), ((8, 3, 4, 4), 1)])
def test_batch_norm_train_is_what_a_bn_computes_in_training(shape, axis):
    keras.utils.set_random_seed(0)
    x = np.random.default_rng(3).normal(2.0, 3.0, shape).astype("float32")
    bn = keras.layers.BatchNormalization(axis=axis)
    bn.build(shape)
    bn.gamma.assign(np.linspace(0.5, 2.0, shape[axis]).astype("float32"))
    bn.beta.assign(np.linspace(-1.0, 1.0, shape[axis]).astype("float32"))
    got = keras.ops.convert_to_numpy(moments.batch_norm_train(bn, x))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(bn.moving_variance), 1.0)  # untouched
    expected = keras.ops.convert_to_numpy(bn(x, training=True))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
