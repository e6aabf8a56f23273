"""VarianceShiftCallback's epoch-end cost vs one predict pass over its probe set.

Trains the same small CNN on the digits set (same seed) with and without the
callback at its default probe size, alternating the two. Inside the
callback, each epoch end is timed, and so is one `model.predict` pass over
the same probe examples right after it; the ratio of their medians (epochs
after the first, whose calls compile) is the callback's cost in predict
passes. The ratio of the median training times is printed too.

    python benchmarks/bench_callback.py [--repeats=5] [--epochs=5] [--smoke]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
from keras import layers  # noqa: E402

from keras_vs import VarianceShiftCallback  # noqa: E402
from keras_vs import data as data_lib  # noqa: E402


class TimedCallback(VarianceShiftCallback):
    """Times each epoch end and one predict pass over the probe set after it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.epoch_end, self.predict = [], []

    def on_epoch_end(self, epoch, logs=None):
        start = time.perf_counter()
        super().on_epoch_end(epoch, logs)
        self.epoch_end.append(time.perf_counter() - start)
        start = time.perf_counter()
        self.model.predict(self.probe_x, batch_size=self.batch_size, verbose=0)
        self.predict.append(time.perf_counter() - start)


def build(seed):
    keras.utils.set_random_seed(seed)
    x = keras.Input((8, 8, 1))
    h = x
    for i, width in enumerate((32, 64)):
        h = layers.Conv2D(width, 3, padding="same", use_bias=False)(h)
        h = layers.Dropout(0.3)(h)
        h = layers.ReLU()(layers.BatchNormalization(name=f"bn{i}")(h))
    h = layers.GlobalAveragePooling2D()(h)
    model = keras.Model(x, layers.Dense(10)(h))
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return model


def train_time(x, y, epochs, batch_size, callback):
    model = build(seed=0)
    start = time.perf_counter()
    model.fit(x, y, epochs=epochs, batch_size=batch_size, verbose=0, callbacks=[callback] if callback else [])
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--smoke", action="store_true", help="1 repeat, 2 epochs, 256 examples")
    args = parser.parse_args()
    x, y = data_lib.load("digits", "train")
    if args.smoke:
        args.repeats, args.epochs, x, y = 1, 2, x[:256], y[:256]
    without, with_cb, epoch_end, predict = [], [], [], []
    for _ in range(args.repeats):
        without.append(train_time(x, y, args.epochs, args.batch_size, None))
        callback = TimedCallback(x)
        with_cb.append(train_time(x, y, args.epochs, args.batch_size, callback))
        epoch_end += callback.epoch_end[1:] or callback.epoch_end
        predict += callback.predict[1:] or callback.predict
    a, b = statistics.median(without), statistics.median(with_cb)
    c, d = statistics.median(epoch_end), statistics.median(predict)
    print(
        f"backend={keras.backend.backend()} examples={len(x)} epochs={args.epochs} "
        f"batch={args.batch_size} repeats={args.repeats}"
    )
    print(f"without callback: median {a:.3f} s  {['%.3f' % t for t in without]}")
    print(f"with callback:    median {b:.3f} s  {['%.3f' % t for t in with_cb]}")
    print(f"ratio (with / without, includes the predict timing): {b / a:.3f}")
    print(f"epoch end: median {c * 1000:.1f} ms; predict over the probe: median {d * 1000:.1f} ms")
    print(f"ratio (epoch end / predict pass over the probe): {c / d:.3f}")


if __name__ == "__main__":
    main()
