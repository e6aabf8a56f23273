"""recalibrate_bn time vs one model.predict pass over the same data, side by side.

recalibrate_bn makes one pass per level of BN depth (plus one to confirm), so
the ratio is about the number of BN levels of the model; this prints it with
the number of BN layers for scale.

    python benchmarks/bench_recalibrate.py [--repeats=3] [--examples=512] [--smoke]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_vs import recalibrate_bn  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--examples", type=int, default=512)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--smoke", action="store_true", help="1 repeat, 32 examples")
    args = parser.parse_args()
    if args.smoke:
        args.repeats, args.examples = 1, 32
    model = keras.applications.MobileNetV2(
        input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=10
    )
    x = np.random.default_rng(0).uniform(-1, 1, size=(args.examples, 32, 32, 3)).astype("float32")
    n_bn = sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    predict, recal = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        model.predict(x, batch_size=args.batch_size, verbose=0)
        predict.append(time.perf_counter() - start)
        start = time.perf_counter()
        recalibrate_bn(model, x, batch_size=args.batch_size)
        recal.append(time.perf_counter() - start)
    a, b = statistics.median(predict), statistics.median(recal)
    print(
        f"backend={keras.backend.backend()} model=MobileNetV2(alpha=0.35, 32x32) "
        f"BN layers={n_bn} examples={args.examples} batch={args.batch_size} repeats={args.repeats}"
    )
    print(f"predict:        median {a:.3f} s  {['%.3f' % t for t in predict]}")
    print(f"recalibrate_bn: median {b:.3f} s  {['%.3f' % t for t in recal]}")
    print(f"ratio (recalibrate / predict): {b / a:.2f}  ({b / a / n_bn:.2f} per BN layer)")


if __name__ == "__main__":
    main()
