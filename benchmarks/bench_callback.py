"""Training time with VarianceShiftCallback vs without it, measured side by side.

Trains the same small CNN on the digits set (same seed) with and without the
callback at its default probe size, alternating the two, and prints the ratio
of the median times. Aim: <= 1.03.

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
    parser.add_argument("--smoke", action="store_true", help="1 repeat, 1 epoch, 256 examples")
    args = parser.parse_args()
    x, y = data_lib.load("digits", "train")
    if args.smoke:
        args.repeats, args.epochs, x, y = 1, 1, x[:256], y[:256]
    without, with_cb = [], []
    for _ in range(args.repeats):
        without.append(train_time(x, y, args.epochs, args.batch_size, None))
        with_cb.append(train_time(x, y, args.epochs, args.batch_size, VarianceShiftCallback(x)))
    a, b = statistics.median(without), statistics.median(with_cb)
    print(
        f"backend={keras.backend.backend()} examples={len(x)} epochs={args.epochs} "
        f"batch={args.batch_size} repeats={args.repeats}"
    )
    print(f"without callback: median {a:.3f} s  {['%.3f' % t for t in without]}")
    print(f"with callback:    median {b:.3f} s  {['%.3f' % t for t in with_cb]}")
    print(f"ratio (with / without): {b / a:.3f}")


if __name__ == "__main__":
    main()
