"""Per-channel moments of BN inputs: one row per batch, pooled exactly on the host.

A moments row is ``[count, shift_1..C, offset_1..C, M2_1..C]`` for one batch
(`moments_row`, computed on the device in float32); the host pools rows in
float64 with the parallel (Chan et al.) formula (`pooled`, `merge`,
`finish`), which gives the exact pooled mean and variance over all batches.
`batch_norm_train` is what a BN computes in training, from the same row.

Example:

>>> import numpy as np
>>> from keras import ops
>>> acc = {}
>>> for batch in (np.array([[1.0], [3.0]]), np.array([[5.0]])):
...     merge(acc, "bn", np.asarray(ops.convert_to_numpy(moments_row(batch, -1)), np.float64)[0])
>>> n, mean, var = finish(acc)["bn"]
>>> float(n), float(mean[0]), round(float(var[0]), 4)
(3.0, 3.0, 2.6667)
"""

import numpy as np
from keras import ops

from keras_vs import graph as graph_lib

__all__ = [
    "batch_norm_train",
    "finish",
    "merge",
    "moments_row",
    "pool",
    "pooled",
    "row_statistics",
]


def moments_row(x, axis):
    """``[[count, shift, offset, M2]]`` of one batch along every axis but `axis`.

    The batch mean is ``shift + offset`` (kept apart so the host can add them
    in float64): ``shift`` is the batch mean at the first position of every
    non-batch axis (the full batch mean for 2-D inputs), and the mean and
    ``M2`` (sum of squared deviations) of the data less ``shift`` come from
    `keras.ops.moments`, whose two-pass variance is what BN computes in
    training. Shifting first keeps float32 accurate when the mean is large
    next to the standard deviation (|mean|/std of 1e6 is tested); computing
    the shift reads only a slice of the data, and on TF the variance is one
    fused pass.
    """
    x = ops.cast(x, "float32")
    rank = len(x.shape)
    axis = axis % rank
    reduce = [i for i in range(rank) if i != axis]
    channels = x.shape[axis]
    count = ops.cast(ops.size(x) // channels, "float32")
    corner, corner_axis = x, axis
    for i in reversed(reduce):
        if i > 0 and x.shape[i]:  # a static, non-empty axis: index 0 exists
            corner = ops.take(corner, 0, axis=i)
            corner_axis -= i < axis
    corner_reduce = [i for i in range(len(corner.shape)) if i != corner_axis]
    corner_count = ops.cast(ops.size(corner) // channels, "float32")
    shift = ops.divide_no_nan(ops.sum(corner, axis=corner_reduce), corner_count)
    shape = [1] * rank
    shape[axis] = channels
    offset, var = ops.moments(x - ops.reshape(shift, shape), reduce)
    empty = count <= 0  # ops.moments of nothing is NaN
    offset = ops.where(empty, 0.0, offset)
    m2 = ops.where(empty, 0.0, var * count)
    return ops.expand_dims(ops.concatenate([ops.reshape(count, (1,)), shift, offset, m2]), 0)


def row_statistics(row, channels):
    """Per-channel ``(mean, var)`` of the batch a moments row describes (on the device)."""
    count = row[0, 0]
    mean = row[0, 1 : channels + 1] + row[0, channels + 1 : 2 * channels + 1]
    var = ops.divide_no_nan(ops.maximum(row[0, 2 * channels + 1 :], 0.0), count)
    return mean, var


def batch_norm_train(bn, x, row=None):
    """What BN computes in training, without updating its moving statistics.

    Computed in float32 (as BN computes under mixed precision) and returned
    in the BN's compute dtype.

    Args:
        bn: A BN-like layer (possibly wrapped).
        x: Its input.
        row: The batch's `moments_row` when already computed (the statistics
            are then read from it rather than computed again).
    """
    inner = graph_lib.unwrap(bn)
    rank = len(x.shape)
    axis = graph_lib.bn_axis(bn, rank)
    if row is None:
        row = moments_row(x, axis)
    # Moments are taken over every position, masked ones included, as
    # measuring does (BN skips masked steps in training).
    mean, var = row_statistics(row, x.shape[axis])
    out = ops.batch_normalization(
        ops.cast(x, "float32"), mean, var, axis,
        offset=ops.cast(inner.beta, "float32") if inner.center else None,
        scale=ops.cast(inner.gamma, "float32") if inner.scale else None,
        epsilon=inner.epsilon,
    )
    return ops.cast(out, inner.compute_dtype)


def pooled(rows):
    """One moments row for the union of the batches `rows` (2-D, float64) describe."""
    n = rows[:, :1]
    total = n.sum()
    c = (rows.shape[1] - 1) // 3
    if total <= 0:
        return np.zeros(rows.shape[1])
    means = rows[:, 1 : c + 1] + rows[:, c + 1 : 2 * c + 1]
    mean = (n * means).sum(0) / total
    m2 = np.maximum(rows[:, 2 * c + 1 :], 0.0).sum(0) + (n * (means - mean) ** 2).sum(0)
    return np.concatenate([[total], mean, np.zeros(c), m2])


def merge(acc, key, row):
    """Chan et al.'s parallel update of ``acc[key] = (n, mean, M2)`` with one row."""
    n_b = row[0]
    if n_b <= 0:
        return
    c = (len(row) - 1) // 3
    mean_b = row[1 : c + 1] + row[c + 1 : 2 * c + 1]
    m2_b = np.maximum(row[2 * c + 1 :], 0.0)
    if key not in acc:
        acc[key] = (n_b, mean_b.copy(), m2_b.copy())
        return
    n_a, mean_a, m2_a = acc[key]
    n = n_a + n_b
    delta = mean_b - mean_a
    acc[key] = (n, mean_a + delta * (n_b / n), m2_a + m2_b + delta**2 * (n_a * n_b / n))


def finish(acc):
    """``name -> (count, mean, var)`` from merged ``(n, mean, M2)``."""
    return {key: (n, mean, m2 / n) for key, (n, mean, m2) in acc.items()}


def pool(named_rows):
    """``name -> (mean, var)`` pooled from ``[(name, moments row)]`` (rows on any device).

    The first read waits for every row's computation, so rows left on the
    device let their calls queue.
    """
    acc = {}
    for name, row in named_rows:
        merge(acc, name, np.asarray(ops.convert_to_numpy(row), dtype=np.float64))
    return {name: (mean, var) for name, (_, mean, var) in finish(acc).items()}
