"""Zoo benchmark: training throughput with and without XLA, and the peak
memory of building the largest registered model.

For each model, one compiled copy per setting (``jit_compile=True`` and
``False``) is warmed up (tracing and XLA compilation excluded), then the two
are timed alternately, ``--repeats`` times ``--steps`` train steps each; the
script prints the median images/s of each and their ratio. The build memory
is measured in a fresh subprocess (peak resident set size after building the
model, minus the peak after importing Keras and the zoo).

Usage:

    python benchmarks/bench_zoo.py            # wrn-16-4, densenet-bc-100-12
    python benchmarks/bench_zoo.py --smoke    # tiny models and inputs, seconds
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

FULL = {"models": ["wrn-16-4", "densenet-bc-100-12"], "image": 32, "batch": 32}
# One small model: an XLA compile of a DenseNet alone takes half a minute.
SMOKE = {"models": ["wrn-10-1"], "image": 8, "batch": 4}

_MEMORY_CHILD = r"""
import gc, json, os, resource, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import keras, zoo

def rss_kib():
    # Current resident set (Linux); ru_maxrss is a high-water mark that the
    # TensorFlow import alone may already have set.
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))

gc.collect()
base = rss_kib()
model = zoo.get(sys.argv[1], **json.loads(sys.argv[2]))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"base_kib": base, "peak_kib": peak, "after_kib": rss_kib(),
                  "params": model.count_params()}))
"""


def build_memory(name, overrides):
    """RSS figures (KiB, Linux) of building ``name`` in a fresh interpreter:
    before the build, peak, and after the build."""
    out = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, name, json.dumps(overrides)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def throughput(name, image, batch, steps, repeats):
    """Median images/s of training ``name`` with XLA and without."""
    import keras
    import numpy as np

    import zoo

    rng = np.random.default_rng(0)
    x = rng.normal(size=(batch, image, image, 3)).astype("float32")
    y = (np.arange(batch) % 10).astype("int32")
    models = {}
    for jit in (True, False):
        keras.utils.set_random_seed(0)
        model = zoo.get(name, input_shape=(image, image, 3))
        model.compile(
            keras.optimizers.SGD(0.1, momentum=0.9),
            "sparse_categorical_crossentropy",
            jit_compile=jit,
        )
        start = time.perf_counter()
        model.train_on_batch(x, y)  # trace (and compile) outside the timing
        print(f"  {name}: jit_compile={jit} warm-up {time.perf_counter() - start:.1f} s",
              flush=True)
        models[jit] = model
    rates = {True: [], False: []}
    for _ in range(repeats):
        for jit, model in models.items():  # alternate: both see the same load
            start = time.perf_counter()
            for _ in range(steps):
                model.train_on_batch(x, y)  # returns numpy: synchronises
            rates[jit].append(steps * batch / (time.perf_counter() - start))
    return statistics.median(rates[True]), statistics.median(rates[False])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny models and inputs")
    parser.add_argument("--steps", type=int, default=None, help="train steps per repeat")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats")
    args = parser.parse_args(argv)
    config = SMOKE if args.smoke else FULL
    steps = args.steps or (2 if args.smoke else 5)
    repeats = args.repeats or (3 if args.smoke else 5)

    import keras

    import zoo

    print(f"backend={keras.backend.backend()} cpus={os.cpu_count()} "
          f"batch={config['batch']} image={config['image']} steps={steps} "
          f"repeats={repeats}")
    rows = []
    for name in config["models"]:
        xla, eager = throughput(name, config["image"], config["batch"], steps, repeats)
        rows.append((name, xla, eager))
        keras.backend.clear_session()
    print(f"{'model':<22}{'XLA img/s':>12}{'no-XLA img/s':>14}{'XLA/no-XLA':>12}")
    for name, xla, eager in rows:
        print(f"{name:<22}{xla:>12.1f}{eager:>14.1f}{xla / eager:>12.2f}")
    for name, xla, eager in rows:
        print(f"ratio (XLA / no-XLA throughput) {name}: {xla / eager:.2f}")

    candidates = zoo.entries("*") if not args.smoke else [zoo.entry(n) for n in config["models"]]
    largest = max(candidates, key=lambda e: e.params[10])
    mem = build_memory(largest.name, {} if not args.smoke else {"input_shape": (8, 8, 3)})
    print(
        f"build memory of the largest model {largest.name} "
        f"({mem['params']:,} parameters): peak RSS {mem['peak_kib'] / 1024:.0f} MiB "
        f"(process high-water mark), RSS {mem['base_kib'] / 1024:.0f} MiB before the "
        f"build and {mem['after_kib'] / 1024:.0f} MiB after it "
        f"(+{(mem['after_kib'] - mem['base_kib']) / 1024:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
