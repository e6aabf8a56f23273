"""The forward-pass remedies against one model.predict pass, side by side.

On MobileNetV2 (alpha 0.35, 32x32, 52 BN layers) with random inputs, times
one `model.predict` pass; `recalibrate_bn(method="precise")` (one pass)
returning a new model (the default) and writing into the model
(``inplace=True``); `recalibrate_bn(method="exact")` with the activations
cached (the data fits the memory budget), both ways, and recomputed
(`memory_budget=0`: the same stages, one pass over the data each; the same
statistics to the bit); the copy a call without ``inplace`` adds
(`keras_vs.graph.copy`) next to Keras' own copy (`clone_model` and
`set_weights`); `measure_variance_shift` and `prediction_inconsistency`.
Each is the median of `--repeats` runs, taken round-robin over the rows,
after one warm-up run of each (the first call compiles its function); it
prints each ratio to predict and the peak resident memory each added
(sampled every 2 ms) over the memory before it.

`--model` takes a zoo name instead (e.g. ``wrn-16-4``); `--image_size`
sets the side of the square inputs (32 by default; the issue-27 case is
MobileNetV2 at 64); `--dtype_policy` builds the model under a mixed policy
(``mixed_bfloat16``, ``mixed_float16``), the data staying float32.

    python benchmarks/bench_recalibrate.py [--repeats=3] [--examples=1024] [--image_size=64]
        [--dtype_policy=mixed_bfloat16] [--no_passes] [--smoke]
"""

import argparse
import os
import statistics
import threading
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_vs as kvs  # noqa: E402
from keras_vs import graph  # noqa: E402


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakMemory:
    """Peak resident memory above the level at entry, sampled in a thread."""

    def __enter__(self):
        self.base = self.peak = _rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(0.002):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss())
        self.added = self.peak - self.base


def timed(runs, repeats, warm_up=True):
    """``name -> (median s, peak bytes, times)``, the repeats taken round-robin.

    Round-robin (every row once, then again) rather than row after row, so
    that a slow spell of the machine lands on every row alike.
    """
    if warm_up:
        for fn in runs.values():
            fn()  # compiles
    times = {name: [] for name in runs}
    peaks = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            with PeakMemory() as mem:
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
            peaks[name].append(mem.added)
    return {name: (statistics.median(times[name]), max(peaks[name]), times[name]) for name in runs}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--examples", type=int, default=1024)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument(
        "--model", default="mobilenetv2", help="mobilenetv2, or a zoo name"
    )
    parser.add_argument("--image_size", type=int, default=32, help="side of the square inputs")
    parser.add_argument(
        "--dtype_policy", default="float32", help="float32, mixed_bfloat16 or mixed_float16"
    )
    parser.add_argument(
        "--smoke", action="store_true",
        help="a small WRN, 1 repeat, 32 examples, no warm-up, no passes",
    )
    parser.add_argument(
        "--no_passes", action="store_true", help="skip exact recomputed (memory_budget=0, the slowest row)"
    )
    args = parser.parse_args()
    if args.smoke:
        args.repeats, args.examples = 1, 32
    keras.utils.set_random_seed(0)
    keras.config.set_dtype_policy(args.dtype_policy)  # the model's layers take it when made
    size = args.image_size
    if args.smoke:  # every row runs, in seconds: the zoo's smallest WRN (7 BNs), 8x8
        import zoo

        name, model = "wrn-10-1 (8x8, smoke)", zoo.get("wrn-10-1", input_shape=(8, 8, 3))
    elif args.model != "mobilenetv2":
        import zoo

        name, model = f"{args.model} ({size}x{size})", zoo.get(args.model, input_shape=(size, size, 3))
    else:
        name = f"MobileNetV2(alpha=0.35, {size}x{size})"
        model = keras.applications.MobileNetV2(
            input_shape=(size, size, 3), alpha=0.35, weights=None, classes=10
        )
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(args.examples, *model.input_shape[1:])).astype("float32")
    y = rng.integers(0, 10, size=args.examples)
    target = graph.copy(model)  # written in place by one row
    n_bn = sum(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    bs = args.batch_size
    runs = {
        "predict": lambda: model.predict(x, batch_size=bs, verbose=0),
        "recalibrate precise": lambda: kvs.recalibrate_bn(model, x, batch_size=bs),
        # The same pass writing into the model itself: the default's cost
        # less the copy it returns (every layer re-created, state carried).
        "recalibrate precise inplace": lambda: kvs.recalibrate_bn(
            target, x, batch_size=bs, inplace=True
        ),
        "recalibrate exact (cached)": lambda: kvs.recalibrate_bn(
            model, x, batch_size=bs, method="exact"
        ),
        "recalibrate exact inplace": lambda: kvs.recalibrate_bn(
            target, x, batch_size=bs, method="exact", inplace=True
        ),
        "recalibrate exact (recomputed)": lambda: kvs.recalibrate_bn(
            model, x, batch_size=bs, method="exact", memory_budget=0
        ),
        # What a call without inplace adds, next to Keras' own copy of a model.
        "copy: keras_vs.graph.copy": lambda: graph.copy(model),
        "copy: clone_model+set_weights": lambda: keras.models.clone_model(model).set_weights(
            model.get_weights()
        ),
        "measure_variance_shift": lambda: kvs.measure_variance_shift(model, x, batch_size=bs),
        "prediction_inconsistency": lambda: kvs.prediction_inconsistency(
            model, (x, y), batch_size=bs
        ),
    }
    print(
        f"backend={keras.backend.backend()} model={name} dtype_policy={args.dtype_policy} "
        f"BN layers={n_bn} examples={args.examples} batch={bs} repeats={args.repeats} "
        f"(median of round-robin repeats after one warm-up run; peak = resident memory added)"
    )
    if args.smoke or args.no_passes:  # seconds, not minutes: the test suite runs this
        del runs["recalibrate exact (recomputed)"]
    results = timed(runs, args.repeats, not args.smoke)
    base = results["predict"][0]
    for name, (median, peak, times) in results.items():
        print(
            f"{name:<31} median {median:7.3f} s  ratio to predict {median / base:6.2f}  "
            f"peak +{peak / 2**20:7.1f} MiB  {['%.3f' % t for t in times]}"
        )
    if "recalibrate exact (recomputed)" in runs:
        cached, recomputed = (
            _statistics(runs[f"recalibrate exact ({how})"]()) for how in ("cached", "recomputed")
        )
        same = sum(np.array_equal(a, b) for a, b in zip(cached, recomputed, strict=True))
        print(f"exact cached vs recomputed: {same} of {len(cached)} statistics arrays bit-identical")


def _statistics(model):
    names = ("moving_mean", "moving_variance")
    return [keras.ops.convert_to_numpy(v) for v in model.weights if v.path.endswith(names)]


if __name__ == "__main__":
    main()
