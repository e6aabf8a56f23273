"""The doctor's cost as a ratio to one `fit` epoch over the same data, side by side.

On the issue-24 model (a CNN with Dropout(0.5) right before its first BN,
trained 8 epochs on digits with AdamW, batch 64), or a zoo model on random
32x32 data with `--model`, times: one `fit` epoch over the data (on a
compiled copy, warm); `attribute_shift` (the three parts); `doctor` (held
out: the last 20% of the data; candidates keep and both re-estimations);
and, unless --no_fine_tune, `doctor(fine_tune_epochs=1)` (plus fine-tuning
as it is and after each applicable rewrite, each re-estimated). Each row
is the median of `--repeats` runs taken round-robin after one warm-up run
of each (the first call compiles); it prints each ratio to the fit epoch.

    python benchmarks/bench_doctor.py [--repeats=3] [--model=wrn-16-4 --examples=1024]
        [--no_fine_tune] [--smoke]
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

import keras_vs as kvs  # noqa: E402
from keras_vs import data as data_lib  # noqa: E402
from keras_vs import graph  # noqa: E402


def timed(runs, repeats, warm_up=True):
    """``name -> (median s, times)``, the repeats taken round-robin."""
    if warm_up:
        for fn in runs.values():
            fn()
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: (statistics.median(t), t) for name, t in times.items()}


def _compile(model, logits=True):
    model.compile(keras.optimizers.AdamW(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=logits), metrics=["accuracy"])
    return model


def issue_model(x, y, epochs):
    """The issue-24 CNN: Dropout(0.5) right before bn1, trained `epochs` epochs."""
    i = keras.Input(x.shape[1:])
    h = layers.ReLU()(layers.Conv2D(16, 3, padding="same")(i))
    h = layers.BatchNormalization(name="bn1")(layers.Dropout(0.5)(h))
    h = layers.ReLU()(layers.BatchNormalization(name="bn2")(layers.Conv2D(16, 3, padding="same")(h)))
    model = _compile(keras.Model(i, layers.Dense(10)(layers.GlobalAveragePooling2D()(h))))
    model.fit(x, y, batch_size=64, epochs=epochs, verbose=0)
    return model


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model", default="issue", help="issue (digits CNN), or a zoo name")
    parser.add_argument("--examples", type=int, default=1024, help="random examples for a zoo model")
    parser.add_argument("--batch_size", type=int, default=64)
    parser.add_argument("--no_fine_tune", action="store_true", help="skip doctor(fine_tune_epochs=1)")
    parser.add_argument("--smoke", action="store_true",
                        help="the issue model trained 1 epoch on 256 digits, 1 repeat, no warm-up")
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    if args.model == "issue":
        x, y = data_lib.load("digits", "train")
        if args.smoke:
            x, y, args.repeats, args.no_fine_tune = x[:256], y[:256], 1, True
        name, model = "issue-24 CNN on digits", issue_model(x, y, 1 if args.smoke else 8)
    else:
        import zoo

        rng = np.random.default_rng(0)
        x = rng.uniform(-1, 1, size=(args.examples, 32, 32, 3)).astype("float32")
        y = rng.integers(0, 10, size=args.examples)
        name, model = f"{args.model} on random 32x32", _compile(zoo.get(args.model), logits=False)
        model.fit(x, y, batch_size=args.batch_size, epochs=1, verbose=0)
    bs = args.batch_size
    trainee = graph.copy(model)
    graph.compile_like(trainee, model)
    runs = {
        "fit (1 epoch)": lambda: trainee.fit(x, y, batch_size=bs, epochs=1, verbose=0),
        "attribute_shift": lambda: kvs.attribute_shift(model, x, batch_size=bs),
        "doctor": lambda: kvs.doctor(model, (x, y), batch_size=bs),
        "doctor fine_tune_epochs=1": lambda: kvs.doctor(model, (x, y), batch_size=bs, fine_tune_epochs=1),
    }
    if args.no_fine_tune:
        del runs["doctor fine_tune_epochs=1"]
    print(f"backend={keras.backend.backend()} model={name} examples={len(x)} batch={bs} "
          f"repeats={args.repeats} (median of round-robin repeats after one warm-up run)")
    results = timed(runs, args.repeats, not args.smoke)
    base = results["fit (1 epoch)"][0]
    for row, (median, times) in results.items():
        print(f"{row:<27} median {median:7.3f} s  ratio to a fit epoch {median / base:6.2f}  "
              f"{['%.3f' % t for t in times]}")


if __name__ == "__main__":
    main()
