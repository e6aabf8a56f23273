"""kvs.rewrite time vs keras.models.clone_model on the same large model, side by side.

The model is a Keras application built with weights=None (ResNet50 by
default: 177 layers, 53 BN) with a Dropout inserted before every 4th BN, so
that every policy has work to do. Both sides re-create every layer from its
config and call it on new symbolic tensors; rewrite also analyses the graph
and copies the trained weights over, which clone_model does not do, so the
"clone_model + set_weights" line is printed as well for scale.

    python benchmarks/bench_rewrite.py [--model=resnet50|mobilenetv2] [--repeats=5] [--smoke]
"""

import argparse
import gc
import os
import statistics
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

import keras_vs as kvs  # noqa: E402

POLICIES = ("after_bn", "head", "uout", "remove")


def build(name, smoke):
    if smoke:  # seconds: the zoo's smallest WRN (7 BNs, so one dropout), 8x8
        import zoo

        base = zoo.get("wrn-10-1", input_shape=(8, 8, 3))
    elif name == "resnet50":
        base = keras.applications.ResNet50(input_shape=(64, 64, 3), weights=None, classes=10)
    else:
        base = keras.applications.MobileNetV2(input_shape=(64, 64, 3), weights=None, classes=10)
    count = [0]

    def call_function(layer, *args, **kwargs):
        if isinstance(layer, keras.layers.BatchNormalization):
            count[0] += 1
            if count[0] % 4 == 0:
                x = keras.layers.Dropout(0.3, name=f"{layer.name}_pre_drop")(args[0])
                args = (x,) + args[1:]
        return layer(*args, **kwargs)

    return keras.models.clone_model(base, clone_function=lambda l: l, call_function=call_function)


def timed(candidates, repeats):
    """Median seconds per candidate; candidates take turns within each repeat
    so that a busy machine slows all of them alike."""
    times = {name: [] for name, _ in candidates}
    for _ in range(repeats):
        for name, fn in candidates:
            # Freeing the previous candidate's models (reference cycles) would
            # otherwise be charged to whichever candidate runs next; as in
            # timeit, collect first and keep the collector off while timing.
            gc.collect()
            gc.disable()
            try:
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
            finally:
                gc.enable()
    return [(name, (statistics.median(times[name]), times[name])) for name, _ in candidates]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=["resnet50", "mobilenetv2"], default="resnet50")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="a small WRN, 1 repeat")
    args = parser.parse_args()
    repeats = 1 if args.smoke else args.repeats
    model = build(args.model, args.smoke)
    n_drop = sum(isinstance(layer, keras.layers.Dropout) for layer in model.layers)
    print(
        f"backend={keras.backend.backend()} "
        f"model={'wrn-10-1-smoke' if args.smoke else args.model} "
        f"layers={len(model.layers)} dropouts={n_drop} "
        f"findings={len(kvs.find_disharmony(model))} repeats={repeats}"
    )

    def clone_and_copy():
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())

    # Warm-up: the first call of anything pays for imports and tracing caches.
    keras.models.clone_model(model)
    kvs.rewrite(model, "after_bn")
    candidates = [
        ("clone_model", lambda: keras.models.clone_model(model)),
        ("clone_model + set_weights", clone_and_copy),
        ("find_disharmony", lambda: kvs.find_disharmony(model)),
        ("plan('after_bn')", lambda: kvs.plan(model, "after_bn")),
    ]
    candidates += [(f"rewrite('{p}')", lambda p=p: kvs.rewrite(model, p)) for p in POLICIES]
    rows = timed(candidates, repeats)
    base, base_min = rows[0][1][0], min(rows[0][1][1])
    for name, (median, times) in rows:
        print(f"{name:<28} median {median:7.3f} s  min {min(times):7.3f} s  "
              f"ratio to clone_model {median / base:5.2f} (min {min(times) / base_min:5.2f})")
    rewrites = [(median, min(times)) for name, (median, times) in rows if name.startswith("rewrite")]
    worst, worst_min = max(m for m, _ in rewrites), max(m for _, m in rewrites)
    # On a shared machine the minimum is the steadier estimate; both are printed.
    print(f"ratio (slowest rewrite / clone_model): median {worst / base:.2f}, "
          f"min {worst_min / base_min:.2f}  (aim: <= 1.5)")

if __name__ == "__main__":
    main()
