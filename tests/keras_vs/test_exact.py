"""keras_vs.exact: chunking the data and the stage plan of an "exact" tap."""

import keras
import numpy as np
import pytest

from keras_vs import exact, probe
from keras_vs.batches import Batches


@pytest.mark.parametrize(
    "sizes,per_example,expected",
    [
        ([10, 10, 10, 5], 1, [(0, 4)]),  # all fit in one chunk
        ([10, 10, 10, 5], None, [(0, 1), (1, 2), (2, 3), (3, 4)]),  # unknown shape: per batch
        ([4, 4, 4], exact._CHUNK_BYTES // 8, [(0, 2), (2, 3)]),  # 8 examples a chunk
        ([4], 2 * exact._CHUNK_BYTES, [(0, 1)]),  # one batch over the limit still runs
    ],
)
def test_chunks_group_consecutive_batches_under_the_byte_limit(sizes, per_example, expected):
    groups = exact._chunked(zip(sizes, range(len(sizes))), per_example)
    assert list(groups) == [list(range(a, b)) for a, b in expected]


def _chain():
    x = keras.Input((3,))
    h = keras.layers.BatchNormalization(name="bn1")(keras.layers.Dense(4, name="d1")(x))
    h = keras.layers.BatchNormalization(name="bn2")(keras.layers.Dense(2, name="d2")(h))
    return keras.Model(x, h)


def test_the_plan_puts_each_bn_one_stage_after_the_last():
    tap = probe.Probe(_chain(), "exact")
    plan = tap.method.plan(tap)
    assert [(name, at) for name, _, at in plan.sources] == [("bn1", 0), ("bn2", 1)]
    assert plan.last == 1 and plan.per_example == 16  # d1's output: 4 float32 per example
    assert tap.method.plan(tap) is plan  # made once, kept by the method


def test_a_bn_called_at_two_depths_has_no_plan():
    x = keras.Input((4,))
    bn = keras.layers.BatchNormalization(name="bn")
    tap = probe.Probe(keras.Model(x, bn(keras.layers.Dense(4)(bn(x)))), "exact")
    assert tap.method.plan(tap) is None


def test_empty_data_raises_the_one_empty_error():
    tap = probe.Probe(_chain(), "exact")
    with pytest.raises(ValueError, match="The data set is empty"):
        exact.by_stages(tap, tap.method, tap.method.plan(tap), Batches(np.ones((0, 3), "float32")),
                        exact.Options(2**30))


def test_a_one_shot_iterator_is_refused_where_the_data_is_read_twice():
    batches = Batches(iter([np.ones((2, 3), "float32")]))
    with pytest.raises(ValueError, match="one-shot iterator of type list_iterator"):
        exact.require_reiterable(batches, iter([]))
